// Facts the session used to take from regexes on SQL text: isolation levels, what a setting does to the
// session's transaction defaults, RESET ALL / DISCARD ALL, and the per-unit summary.
import { describe, expect, it } from 'vitest';
import { Pin, Replay, classifyUncached, settingsToReplay, type SessionDefaults, type UnitSummary } from '../../../src/router/classify/index.js';
import { CHARACTERISTICS_ROWS, DEFAULTS_ROWS, ISOLATION_ROWS, NOT_UNDERSTOOD_TX, REPLAY_ROWS, RESET_ALL_ROWS, SUMMARY_ROWS } from './fixtures/facts-cases.js';

const first = (sql: string) => classifyUncached(sql).statements[0]!;
const summary = (sql: string): UnitSummary => classifyUncached(sql).summary;

describe('isolation levels', () => {
  it.each(ISOLATION_ROWS)('%s -> tx.isolation %s', (sql, isolation) => {
    const f = first(sql);
    expect(f.understood).toBe(true);
    expect(f.tx?.isolation).toBe(isolation);
    expect(f.tx?.serializable).toBe(isolation === 'serializable');
  });

  it.each(CHARACTERISTICS_ROWS)('%s -> txCharacteristics.isolation %s', (sql, isolation) => {
    expect(first(sql).txCharacteristics?.isolation).toBe(isolation);
  });

  it.each(NOT_UNDERSTOOD_TX)(
    '%s is not understood',
    (sql) => {
      expect(first(sql).understood).toBe(false);
    },
  );
});

describe('session defaults', () => {
  const SERVER: SessionDefaults = { readOnly: false, isolation: 'read committed' };
  it.each(DEFAULTS_ROWS)('%s', (sql, defaults) => {
    expect(first(sql).defaults).toEqual(defaults);
    expect(summary(sql).defaults).toEqual(defaults);
  });

  it('combines a unit\'s statements in order', () => {
    expect(summary('SET default_transaction_read_only = on; SET default_transaction_isolation = serializable').defaults).toEqual({ readOnly: true, isolation: 'serializable' });
    expect(summary('SET default_transaction_read_only = on; RESET ALL').defaults).toEqual(SERVER);
    expect(summary('DISCARD ALL; SET default_transaction_read_only = on').defaults).toEqual({ readOnly: true, isolation: 'read committed' });
    expect(summary('SELECT 1; SELECT 2').defaults).toBeNull();
  });
});

describe('RESET ALL and DISCARD ALL', () => {
  it.each(RESET_ALL_ROWS)('%s: resetsAll %s, discardsAll %s', (sql, resetsAll, discardsAll) => {
    const s = summary(sql);
    expect(s.resetsAll).toBe(resetsAll);
    expect(s.discardsAll).toBe(discardsAll);
  });
});

describe('unit summary', () => {
  const base: UnitSummary = {
    reads: 0,
    writes: false,
    begins: false,
    rollsBack: false,
    pin: Pin.None,
    notUnderstood: 0,
    parsed: 0,
    ddl: false,
    hint: false,
    settings: Replay.None,
    resetsAll: false,
    discardsAll: false,
    defaults: null,
  };
  it.each(SUMMARY_ROWS)('%s', (sql, expected) => {
    expect(summary(sql)).toEqual({ ...base, ...expected });
  });

  it('is frozen and computed once per classification', () => {
    const c = classifyUncached('SELECT 1');
    expect(Object.isFrozen(c.summary)).toBe(true);
    expect(c.summary).toBe(c.summary);
  });
});

describe('settingsToReplay', () => {
  it.each(REPLAY_ROWS)('%s', (sql, replay) => {
    expect(settingsToReplay(sql, classifyUncached(sql))).toBe(replay);
  });
});
