// The classifier against PostgreSQL's own parser (libpg-query), on every statement the router's tests use: the
// classifier's tables, the routing tests' statements, and the other statement lists of test/unit/router. Each
// statement's facts come from both (test/unit/router/oracle.ts); a disagreement fails the test unless DOCUMENTED
// below says why it cannot change routing, and one that sends the statement elsewhere (any rules, session state or
// catalog facts: see routingDifference) fails it always. PostgreSQL's regression suite runs the same way in
// pg-regress.test.ts. The documented disagreements are in oracle.ts (DOCUMENTED).
import { beforeAll, describe, expect, it } from 'vitest';
import { CLASSIFIER_TABLES, MULTI_STATEMENT_ROWS, TRICKY_TEXTS } from './fixtures/classifier-cases.js';
import { CHARACTERISTICS_ROWS, DEFAULTS_ROWS, ISOLATION_ROWS, NOT_UNDERSTOOD_TX, REPLAY_ROWS, RESET_ALL_ROWS, SUMMARY_ROWS } from './fixtures/facts-cases.js';
import { PGBENCH_STATEMENTS } from './fixtures/pgbench.js';
import { POLICY_ROWS } from './fixtures/policy-cases.js';
import { routingTableCorpus } from './fixtures/routing-table-sql.js';
import { DOCUMENTED, loadOracle, summaryLine, tally } from './oracle.js';

const SOURCES: readonly [name: string, texts: () => Iterable<string>][] = [
  [
    'the classifier tables',
    () => [...CLASSIFIER_TABLES.flatMap(([, rows]) => rows.map(([sql]) => sql)), ...MULTI_STATEMENT_ROWS.map(([sql]) => sql), ...TRICKY_TEXTS],
  ],
  ['the routing tests', () => routingTableCorpus()],
  [
    'the policy, facts and pgbench lists',
    () => [
      ...POLICY_ROWS.map(([sql]) => sql),
      ...[ISOLATION_ROWS, CHARACTERISTICS_ROWS, DEFAULTS_ROWS, RESET_ALL_ROWS, SUMMARY_ROWS, REPLAY_ROWS].flatMap((rows) => rows.map((r) => r[0])),
      ...NOT_UNDERSTOOD_TX,
      ...PGBENCH_STATEMENTS,
    ],
  ],
];

beforeAll(loadOracle);

describe('the classifier agrees with PostgreSQL\'s parser', () => {
  it.each(SOURCES)('on %s', (name, texts) => {
    const t = tally(new Set(texts()), DOCUMENTED);
    console.log(summaryLine(name, t));
    expect(t.failures).toEqual([]);
    expect(t.statements).toBeGreaterThan(0);
  });
});
