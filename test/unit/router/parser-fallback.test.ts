// The parser fallback: a statement the classifier does not understand is routed on the facts of PostgreSQL's own
// parse tree (src/router/classify/parser.ts), behind the same cache; before the parser is loaded it stays "not
// understood" and is not cached. The routing tests' statements and pgbench's never need it.
import { describe, expect, it } from 'vitest';
import { classify, classifyCacheStats, clearClassifyCache, loadParser, parserReady, parserStats, type Classification } from '../../../src/router/classify/index.js';
import { parsedStatement } from '../../../src/router/classify/parser.js';
import { Hint } from '../../../src/router/hints.js';
import { compileRouterRules, decide } from '../../../src/router/policy.js';
import { Reason } from '../../../src/router/reasons.js';
import { CLASSIFIER_TABLES } from './fixtures/classifier-cases.js';
import { PGBENCH_STATEMENTS } from './fixtures/pgbench.js';
import { routingTableCorpus } from './fixtures/routing-table-sql.js';

const RULES = compileRouterRules({ write_functions: [], read_only_functions: [] });
const reason = (c: Classification, hints = 0): Reason => decide(c, hints, RULES, { defaultReadOnly: false, defaultIsolation: 'read committed' }, null);

// `SET NAMES` (no value: the default encoding) is valid SQL the classifier does not read.
const ONLY_THE_PARSER_READS = 'SET NAMES';

describe('before the parser is loaded', () => {
  // first in the file: nothing has loaded the parser in this module instance yet
  it('a statement only the parser reads is not understood, not cached, and starts the load', async () => {
    expect(parserReady()).toBe(false);
    clearClassifyCache();
    const c = classify(ONLY_THE_PARSER_READS);
    expect(c.statements[0]).toMatchObject({ understood: false, parsed: false });
    expect(c.summary).toMatchObject({ notUnderstood: 1, parsed: 0 });
    expect(reason(c)).toBe(Reason.NotUnderstood);
    expect(classifyCacheStats().size).toBe(0);
    expect(parserStats().pending).toBe(1);
    await loadParser();
    expect(parserReady()).toBe(true);
    expect(classify(ONLY_THE_PARSER_READS).statements[0]).toMatchObject({ understood: true, parsed: true });
  });
});

describe('with the parser loaded', () => {
  it('routes on the parse tree, cached by shape like any other statement', async () => {
    await loadParser();
    clearClassifyCache();
    const before = parserStats().parsed;
    const c = classify(ONLY_THE_PARSER_READS);
    expect(c.statements[0]).toMatchObject({ kind: 'session', understood: true, parsed: true, session: { op: 'set', local: false, name: 'client_encoding', value: 'DEFAULT' } });
    expect(c.summary).toMatchObject({ notUnderstood: 0, parsed: 1, settings: 1 });
    expect(reason(c)).toBe(Reason.Any);
    const hits = classifyCacheStats().hits;
    expect(classify('SET   NAMES')).toBe(c); // same shape: spacing differs
    expect(classifyCacheStats().hits).toBe(hits + 1);
    expect(parserStats().parsed).toBe(before + 1);
  });

  it('keeps a leading hint and the other statements of the unit', async () => {
    await loadParser();
    const c = classify(`/*NO LOAD BALANCE*/ ${ONLY_THE_PARSER_READS}; SELECT 1`);
    expect(c.statements.map((s) => [s.kind, s.parsed, s.hint])).toEqual([['session', true, 'primary'], ['read', false, null]]);
    expect(reason(c, Hint.Primary)).toBe(Reason.Hint);
  });

  it('leaves what PostgreSQL cannot parse either to the primary, and asks once per shape', async () => {
    await loadParser();
    clearClassifyCache();
    const failed = parserStats().failed;
    const c = classify('FROBNICATE t');
    expect(c.summary).toMatchObject({ notUnderstood: 1, parsed: 0 });
    expect(reason(c)).toBe(Reason.NotUnderstood);
    expect(classify('FROBNICATE t')).toBe(c);
    expect(parserStats().failed).toBe(failed + 1);
    // unterminated or unbalanced text never reaches the parser
    expect(classify("SELECT 'x").summary.notUnderstood).toBe(1);
    expect(classify('SELECT (1').summary.notUnderstood).toBe(1);
    expect(parserStats().failed).toBe(failed + 1);
  });

  it('gives the facts of one statement, and nothing for more or none', async () => {
    await loadParser();
    expect(parsedStatement('SELECT * FROM t FOR UPDATE')).toMatchObject({ kind: 'read', locking: true, relations: ['t'], parsed: true });
    expect(parsedStatement('WITH d AS (DELETE FROM t RETURNING *) SELECT nextval(\'s\') FROM d')).toMatchObject({ kind: 'write', writableCte: true, functions: ['nextval'], relations: ['t'] });
    // locations are UTF-8 byte offsets: a raw value after non-ASCII text is still cut at the right place
    expect(parsedStatement("SET LOCAL \"ünï\".x = 'é', 'ü'")?.session).toEqual({ op: 'set', local: true, name: 'ünï.x', value: "'é', 'ü'" });
    expect(parsedStatement('EXPLAIN (ANALYZE 0) DELETE FROM t')).toMatchObject({ kind: 'read', explainAnalyze: false });
    expect(parsedStatement('SELECT 1; SELECT 2')).toBeNull();
    expect(parsedStatement('-- nothing')).toBeNull();
    expect(parsedStatement('SELEC 1')).toBeNull();
  });

  it('is not needed by the routing tests, pgbench, or the classifier tables', async () => {
    await loadParser();
    clearClassifyCache();
    const parsed = (texts: Iterable<string>): string[] => [...texts].filter((sql) => classify(sql).summary.parsed > 0);
    expect(parsed(routingTableCorpus())).toEqual([]);
    expect(parsed(PGBENCH_STATEMENTS)).toEqual([]);
    expect(parsed(CLASSIFIER_TABLES.flatMap(([, rows]) => rows.map(([sql]) => sql)))).toEqual([]);
    for (const sql of [...routingTableCorpus(), ...PGBENCH_STATEMENTS]) expect(classify(sql).summary.notUnderstood, sql).toBe(0);
  });
});
