// The routing policy: [sql, session state] -> reason code and target, for every reason the policy decides,
// with catalog facts (a fake CatalogFacts) and configured rules.
import { describe, expect, it } from 'vitest';
import { classifyUncached } from '../../../src/router/classify/index.js';
import { Hint, leadingHints } from '../../../src/router/hints.js';
import { applyDefaults, compileRouterRules, decide, decideCached, reasonDetail, type CatalogFacts, type SessionRouting } from '../../../src/router/policy.js';
import { REASON_COUNT, REASON_LABELS, Reason, reasonLabel, targetOf } from '../../../src/router/reasons.js';

const RULES = {
  /** No function lists: the catalog's volatility decides. */
  catalog: compileRouterRules({ write_functions: [], read_only_functions: [] }),
  write: compileRouterRules({ write_functions: ['audit_.*', 'public\\.log_it'], read_only_functions: [] }),
  readOnly: compileRouterRules({ write_functions: [], read_only_functions: ['safe_.*', 'lower'] }),
  split: compileRouterRules({ write_functions: [], read_only_functions: [], transactions: 'split' }),
};
type RulesName = keyof typeof RULES;

const CATALOG: CatalogFacts = {
  isVolatile: (name) => name === 'now_audit' || name === 'random' || name === 'public.now_audit',
  isUnlogged: (relation) => relation === 'scratch' || relation === 'public.scratch',
};

interface State {
  rules?: RulesName;
  session?: SessionRouting;
  catalog?: boolean;
}

const fresh = (): SessionRouting => ({ defaultReadOnly: false, defaultIsolation: 'read committed' });
const READ_ONLY_SESSION: SessionRouting = { defaultReadOnly: true, defaultIsolation: 'read committed' };
const SERIALIZABLE_SESSION: SessionRouting = { defaultReadOnly: false, defaultIsolation: 'serializable' };
const REPEATABLE_SESSION: SessionRouting = { defaultReadOnly: false, defaultIsolation: 'repeatable read' };

function run(sql: string, state: State): { reason: Reason; detail: string } {
  const c = classifyUncached(sql);
  const b = Buffer.from(sql);
  const hints = leadingHints(b, 0, b.length);
  const rules = RULES[state.rules ?? 'write'];
  const session = state.session ?? fresh();
  const catalog = state.catalog === false ? null : CATALOG;
  return { reason: decide(c, hints, rules, session, catalog), detail: reasonDetail(c, hints, rules, session, catalog) };
}

type Row = [sql: string, state: State, reason: Reason, target: 'read' | 'primary' | 'any', detail?: string];

const ROWS: Row[] = [
  // reads and anywhere
  ['SELECT * FROM t', {}, Reason.Read, 'read'],
  ['SELECT 1; TABLE t', {}, Reason.Read, 'read'],
  ['SHOW search_path', {}, Reason.Read, 'read'],
  ['EXPLAIN DELETE FROM t', {}, Reason.Read, 'read'],
  ['COPY t TO STDOUT', {}, Reason.Read, 'read'],
  ['SET search_path = a', {}, Reason.Any, 'any'],
  ['RESET ALL', {}, Reason.Any, 'any'],
  ['DISCARD ALL', {}, Reason.Any, 'any'],
  ['SET TRANSACTION READ ONLY', {}, Reason.Any, 'any'],
  ['', {}, Reason.Any, 'any'],
  // writes, DDL, utility, not understood
  ['INSERT INTO t VALUES (1)', {}, Reason.Write, 'primary'],
  ['EXPLAIN ANALYZE DELETE FROM t', {}, Reason.Write, 'primary'],
  ['SELECT 1; UPDATE t SET a = 1', {}, Reason.Write, 'primary'],
  ['CREATE TABLE t (a int)', {}, Reason.Ddl, 'primary'],
  ['VACUUM t', {}, Reason.Ddl, 'primary'],
  ['LISTEN ch', {}, Reason.Utility, 'primary'],
  ['CALL p()', {}, Reason.Utility, 'primary'],
  ['FROBNICATE', {}, Reason.NotUnderstood, 'primary', 'not understood'],
  ["SELECT 'unterminated", {}, Reason.NotUnderstood, 'primary'],
  // hints
  ['/*NO LOAD BALANCE*/ SELECT 1', {}, Reason.Hint, 'primary'],
  ['/* pgproxy: primary */ SELECT 1', {}, Reason.Hint, 'primary'],
  ['SELECT 1; /*NO LOAD BALANCE*/ SELECT 2', {}, Reason.Hint, 'primary'],
  ['/* app */ SELECT 1', {}, Reason.Read, 'read'],
  // transactions
  ['BEGIN', {}, Reason.ReadWriteTransaction, 'primary', 'read write transaction'],
  ['START TRANSACTION READ WRITE', { session: READ_ONLY_SESSION }, Reason.ReadWriteTransaction, 'primary'],
  ['BEGIN READ ONLY', {}, Reason.Read, 'read'],
  ['BEGIN', { session: READ_ONLY_SESSION }, Reason.Read, 'read'],
  ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', {}, Reason.Read, 'read'],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY', {}, Reason.Serializable, 'primary'],
  ['BEGIN READ ONLY', { session: SERIALIZABLE_SESSION }, Reason.Serializable, 'primary'],
  ['BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY', { session: SERIALIZABLE_SESSION }, Reason.Read, 'read'],
  ['COMMIT', {}, Reason.TransactionControl, 'primary'],
  ['ROLLBACK', {}, Reason.TransactionControl, 'primary'],
  ['SAVEPOINT s', {}, Reason.TransactionControl, 'primary'],
  // split transactions: a read-write transaction starts where reads go
  ['BEGIN', { rules: 'split' }, Reason.Read, 'read'],
  ['BEGIN ISOLATION LEVEL REPEATABLE READ', { rules: 'split' }, Reason.RepeatableRead, 'primary'],
  ['START TRANSACTION ISOLATION LEVEL REPEATABLE READ', { rules: 'split' }, Reason.RepeatableRead, 'primary'],
  ['BEGIN', { rules: 'split', session: REPEATABLE_SESSION }, Reason.RepeatableRead, 'primary'],
  ['BEGIN ISOLATION LEVEL READ COMMITTED', { rules: 'split', session: REPEATABLE_SESSION }, Reason.Read, 'read'],
  ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', { rules: 'split' }, Reason.Read, 'read'],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE', { rules: 'split' }, Reason.Serializable, 'primary'],
  // session statements that ask for a writable or serializable transaction
  ['SET TRANSACTION READ WRITE', {}, Reason.ReadWriteCharacteristics, 'primary'],
  ['SET default_transaction_read_only = off', {}, Reason.ReadWriteCharacteristics, 'primary'],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', {}, Reason.Serializable, 'primary'],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE', {}, Reason.Serializable, 'primary'],
  // reads that need the primary
  ['SELECT * FROM t FOR UPDATE', {}, Reason.LockingRead, 'primary', 'locking read'],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', {}, Reason.Write, 'primary'],
  ['EXPLAIN WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', {}, Reason.WritableCte, 'primary'],
  ['EXPLAIN SELECT * INTO x FROM t', {}, Reason.SelectInto, 'primary'],
  ['SELECT * FROM t', { session: SERIALIZABLE_SESSION }, Reason.Serializable, 'primary'],
  ["SELECT nextval('s')", {}, Reason.NeverOnStandbyFunction, 'primary', 'function nextval() cannot run on a standby'],
  ["SELECT pg_catalog.setval('s', 1)", {}, Reason.NeverOnStandbyFunction, 'primary', 'function pg_catalog.setval() cannot run on a standby'],
  ['SELECT public.nextval(1)', { catalog: false }, Reason.Read, 'read'],
  ['SELECT audit_login(1)', { rules: 'write' }, Reason.WriteFunction, 'primary', 'write function audit_login()'],
  ['SELECT public.log_it()', { rules: 'write' }, Reason.WriteFunction, 'primary', 'write function public.log_it()'],
  ['SELECT other.log_it()', { rules: 'write' }, Reason.Read, 'read'],
  ['SELECT now_audit()', { rules: 'write' }, Reason.Read, 'read'],
  ['SELECT lower(x), safe_fn() FROM t', { rules: 'readOnly' }, Reason.Read, 'read'],
  ['SELECT lower(x), risky(1) FROM t', { rules: 'readOnly' }, Reason.UnlistedFunction, 'primary', 'function risky() is not in read_only_functions'],
  ['SELECT now_audit()', { rules: 'catalog' }, Reason.VolatileFunction, 'primary', 'volatile function now_audit()'],
  ['SELECT public.now_audit() FROM t', { rules: 'catalog' }, Reason.VolatileFunction, 'primary', 'volatile function public.now_audit()'],
  ['SELECT now_audit()', { rules: 'catalog', catalog: false }, Reason.Read, 'read'],
  ['SELECT upper(x) FROM t', { rules: 'catalog' }, Reason.Read, 'read'],
  ['SELECT count(*) FROM pg_stat_activity', {}, Reason.NodeLocalRelation, 'primary', 'node-local view pg_stat_activity'],
  ['SELECT * FROM pg_catalog.pg_locks', {}, Reason.NodeLocalRelation, 'primary', 'node-local view pg_catalog.pg_locks'],
  ['SELECT * FROM pg_catalog.pg_statio_user_tables', {}, Reason.NodeLocalRelation, 'primary'],
  ['SELECT * FROM pg_class', {}, Reason.Read, 'read'],
  ['SELECT * FROM scratch', {}, Reason.UnloggedRelation, 'primary', 'unlogged table scratch'],
  ['SELECT * FROM scratch', { catalog: false }, Reason.Read, 'read'],
  ['SELECT * FROM a JOIN public.scratch s ON true', {}, Reason.UnloggedRelation, 'primary', 'unlogged table public.scratch'],
  // the first statement with a reason decides; within one, functions before relations
  ["SELECT nextval('s') FROM scratch", {}, Reason.NeverOnStandbyFunction, 'primary'],
  ["SELECT * FROM scratch; SELECT nextval('s')", {}, Reason.UnloggedRelation, 'primary'],
  ['SELECT 1; FROBNICATE; INSERT INTO t VALUES (1)', {}, Reason.NotUnderstood, 'primary'],
];

describe('decide', () => {
  it.each(ROWS)('%j %o -> %i (%s)', (sql, state, reason, target, detail) => {
    const r = run(sql, state);
    expect(reasonLabel(r.reason)).toBe(reasonLabel(reason));
    expect(targetOf(r.reason)).toBe(target);
    if (detail !== undefined) expect(r.detail).toBe(detail);
  });

  it('covers every reason the policy decides', () => {
    const decided = new Set(ROWS.map((r) => r[2]));
    for (let code = Reason.Read; code <= Reason.ReadWriteCharacteristics; code++) expect(decided.has(code), reasonLabel(code)).toBe(true);
  });

  it('takes the leading hint from the caller', () => {
    const c = classifyUncached('SELECT 1');
    expect(decide(c, Hint.Primary, RULES.write, fresh(), null)).toBe(Reason.Hint);
    expect(decide(c, Hint.None, RULES.write, fresh(), null)).toBe(Reason.Read);
  });
});

describe('reasons', () => {
  it('are a bounded set of unique snake_case labels', () => {
    expect(REASON_COUNT).toBe(Reason.NoStandby + 1);
    expect(new Set(REASON_LABELS).size).toBe(REASON_COUNT);
    for (const l of REASON_LABELS) expect(l).toMatch(/^[a-z_]+$/);
  });

  it.each<[Reason, string, 'read' | 'primary' | 'any']>([
    [Reason.FunctionCall, 'function_call', 'primary'],
    [Reason.InTransaction, 'in_transaction', 'any'],
    [Reason.Pinned, 'pinned', 'primary'],
    [Reason.Redirect, 'redirect', 'read'],
    [Reason.Lag, 'lag', 'primary'],
    [Reason.ReadYourWrites, 'read_your_writes', 'read'],
    [Reason.NoStandby, 'no_standby', 'primary'],
  ])('session reason %i is %s, target %s', (r, label, target) => {
    expect(reasonLabel(r)).toBe(label);
    expect(targetOf(r)).toBe(target);
  });
});

describe('applyDefaults', () => {
  it('records what settings did to the session defaults, and routing follows', () => {
    const s = fresh();
    const begin = classifyUncached('BEGIN');
    applyDefaults(s, classifyUncached('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY').summary.defaults);
    expect(s).toEqual({ defaultReadOnly: true, defaultIsolation: 'read committed' });
    expect(decide(begin, 0, RULES.write, s, null)).toBe(Reason.Read);
    applyDefaults(s, classifyUncached("SET default_transaction_isolation = 'serializable'").summary.defaults);
    expect(s).toEqual({ defaultReadOnly: true, defaultIsolation: 'serializable' });
    expect(decide(begin, 0, RULES.write, s, null)).toBe(Reason.Serializable);
    applyDefaults(s, classifyUncached('SELECT 1').summary.defaults);
    expect(s).toEqual({ defaultReadOnly: true, defaultIsolation: 'serializable' });
    applyDefaults(s, classifyUncached('DISCARD ALL').summary.defaults);
    expect(s).toEqual({ defaultReadOnly: false, defaultIsolation: 'read committed' });
    expect(decide(begin, 0, RULES.write, s, null)).toBe(Reason.ReadWriteTransaction);
  });

});

describe('decideCached', () => {
  it('answers as decide() does whenever the session state, the rules, the catalog or the hints change', () => {
    const catalogA: CatalogFacts = { isVolatile: () => false, isUnlogged: () => false };
    const catalogB: CatalogFacts = { isVolatile: (f) => f === 'f', isUnlogged: () => false };
    const sessions: SessionRouting[] = [
      { defaultReadOnly: false, defaultIsolation: 'read committed' },
      { defaultReadOnly: true, defaultIsolation: 'read committed' },
      { defaultReadOnly: false, defaultIsolation: 'serializable' },
    ];
    const statements = ['BEGIN', 'SELECT f(1)', 'SELECT 1', 'INSERT INTO t VALUES (1)'].map((sql) => classifyUncached(sql));
    for (let round = 0; round < 3; round++) {
      for (const c of statements) {
        for (const session of sessions) {
          for (const rules of [RULES.write, RULES.split]) {
            for (const catalog of [null, catalogA, catalogB]) {
              for (const hints of [0, Hint.Primary]) {
                expect(decideCached(c, hints, rules, session, catalog)).toBe(decide(c, hints, rules, session, catalog));
              }
            }
          }
        }
      }
    }
  });
});
