// The routing policy: [sql, session state] -> reason code and target, for every reason the policy decides,
// with catalog facts (a fake CatalogFacts) and configured rules.
import { describe, expect, it } from 'vitest';
import { classifyUncached } from '../../../src/router/classify/index.js';
import { Hint, leadingHints } from '../../../src/router/hints.js';
import { applyDefaults, compileRouterRules, decide, decideCached, reasonDetail, type CatalogFacts, type SessionRouting } from '../../../src/router/policy.js';
import { REASON_COUNT, REASON_LABELS, Reason, reasonLabel, targetOf } from '../../../src/router/reasons.js';
import { POLICY_ROWS, type State } from './fixtures/policy-cases.js';

const RULES = {
  /** No function lists: the catalog's volatility decides. */
  catalog: compileRouterRules({ write_functions: [], read_only_functions: [] }),
  write: compileRouterRules({ write_functions: ['audit_.*', 'public\\.log_it'], read_only_functions: [] }),
  readOnly: compileRouterRules({ write_functions: [], read_only_functions: ['safe_.*', 'lower'] }),
  split: compileRouterRules({ write_functions: [], read_only_functions: [], transactions: 'split' }),
};

const CATALOG: CatalogFacts = {
  isVolatile: (name) => name === 'now_audit' || name === 'random' || name === 'public.now_audit',
  isUnlogged: (relation) => relation === 'scratch' || relation === 'public.scratch',
};

const fresh = (): SessionRouting => ({ defaultReadOnly: false, defaultIsolation: 'read committed' });

function run(sql: string, state: State): { reason: Reason; detail: string } {
  const c = classifyUncached(sql);
  const b = Buffer.from(sql);
  const hints = leadingHints(b, 0, b.length);
  const rules = RULES[state.rules ?? 'write'];
  const session = state.session ?? fresh();
  const catalog = state.catalog === false ? null : CATALOG;
  return { reason: decide(c, hints, rules, session, catalog), detail: reasonDetail(c, hints, rules, session, catalog) };
}


describe('decide', () => {
  it.each(POLICY_ROWS)('%j %o -> %i (%s)', (sql, state, reason, target, detail) => {
    const r = run(sql, state);
    expect(reasonLabel(r.reason)).toBe(reasonLabel(reason));
    expect(targetOf(r.reason)).toBe(target);
    if (detail !== undefined) expect(r.detail).toBe(detail);
  });

  it('covers every reason the policy decides', () => {
    const decided = new Set(POLICY_ROWS.map((r) => r[2]));
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
