// The differential test on a corpus no one here wrote: PostgreSQL's own regression suite, built by
// scripts/pg-regress.sh (run by CI after npm test; it fetches the suite, which is not part of this repository), each
// statement classified by pgproxy and parsed by PostgreSQL's own parser. Same rules as differential.test.ts: no
// undocumented disagreement, and none that sends a statement to another node.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { DOCUMENTED, loadOracle, summaryLine, tally } from '../unit/router/oracle.js';

interface Corpus {
  tag: string;
  files: string[];
  total: number;
  rejected: number;
  statements: [file: number, line: number, sql: string][];
}

const file = process.env.PGPROXY_REGRESS_CORPUS;
if (!file) throw new Error('PGPROXY_REGRESS_CORPUS is not set: run bash scripts/pg-regress.sh');
const corpus = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as Corpus;

beforeAll(loadOracle);

describe(`PostgreSQL ${corpus.tag} regression suite`, () => {
  it('is a whole regression suite (its files, most of their statements accepted by the parser)', () => {
    expect(corpus.files.length).toBeGreaterThan(150);
    expect(corpus.statements.length).toBeGreaterThan(20_000);
    expect(corpus.rejected).toBeLessThan(corpus.total / 20);
  });

  it('the classifier agrees with PostgreSQL\'s parser on every statement', () => {
    const where = new Map(corpus.statements.map(([file, line, sql]) => [sql, `${corpus.files[file]}:${line}`]));
    const t = tally(
      corpus.statements.map(([, , sql]) => sql),
      DOCUMENTED,
      (sql) => `${where.get(sql)} ${JSON.stringify(sql.length > 160 ? `${sql.slice(0, 160)}...` : sql)}`,
    );
    console.log(`${summaryLine(`regression suite ${corpus.tag}`, t)}; ${corpus.rejected} statements of the files were rejected by the parser when the corpus was built`);
    expect(t.failures).toEqual([]);
    expect(t.statements).toBe(corpus.statements.length);
  }, 120_000);
});
