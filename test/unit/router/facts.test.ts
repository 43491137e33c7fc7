// Facts the session used to take from regexes on SQL text: isolation levels, what a setting does to the
// session's transaction defaults, RESET ALL / DISCARD ALL, and the per-unit summary.
import { describe, expect, it } from 'vitest';
import { Pin, Replay, classifyUncached, settingsToReplay, type SessionDefaults, type UnitSummary } from '../../../src/router/classify/index.js';

const first = (sql: string) => classifyUncached(sql).statements[0]!;
const summary = (sql: string): UnitSummary => classifyUncached(sql).summary;

describe('isolation levels', () => {
  it.each([
    ['BEGIN', null],
    ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'serializable'],
    ['begin transaction isolation level repeatable read', 'repeatable read'],
    ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', 'repeatable read'],
    ['START TRANSACTION READ WRITE, ISOLATION LEVEL READ COMMITTED', 'read committed'],
    ['start transaction isolation /* x */ level read uncommitted', 'read uncommitted'],
    ['BEGIN ISOLATION LEVEL REPEATABLE READ, ISOLATION LEVEL SERIALIZABLE', 'serializable'],
  ])('%s -> tx.isolation %s', (sql, isolation) => {
    const f = first(sql);
    expect(f.understood).toBe(true);
    expect(f.tx?.isolation).toBe(isolation);
    expect(f.tx?.serializable).toBe(isolation === 'serializable');
  });

  it.each([
    ['SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'repeatable read'],
    ['set transaction read only, isolation level serializable', 'serializable'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED', 'read committed'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', null],
    ["SET transaction_isolation = 'repeatable read'", 'repeatable read'],
    ["SET default_transaction_isolation TO 'SERIALIZABLE'", 'serializable'],
    ['SET default_transaction_isolation TO serializable', 'serializable'],
    ["SET default_transaction_isolation TO 'bogus'", null],
  ])('%s -> txCharacteristics.isolation %s', (sql, isolation) => {
    expect(first(sql).txCharacteristics?.isolation).toBe(isolation);
  });

  it.each(['BEGIN ISOLATION LEVEL READ', 'BEGIN ISOLATION LEVEL REPEATABLE', 'BEGIN ISOLATION LEVEL READ WRITE', 'SET TRANSACTION ISOLATION LEVEL SNAPSHOT'])(
    '%s is not understood',
    (sql) => {
      expect(first(sql).understood).toBe(false);
    },
  );
});

describe('session defaults', () => {
  const RW: SessionDefaults = { readOnly: false };
  const RO: SessionDefaults = { readOnly: true };
  const SERVER: SessionDefaults = { readOnly: false, isolation: 'read committed' };
  it.each<[string, SessionDefaults | null]>([
    ['SET default_transaction_read_only = on', RO],
    ["SET SESSION default_transaction_read_only TO 'off'", RW],
    ['set default_transaction_read_only to TRUE', RO],
    ["SET default_transaction_read_only = 'yes'", RO],
    ['SET default_transaction_read_only = 1', RO],
    ['SET default_transaction_read_only = 0', RW],
    ["SET default_transaction_read_only = 'of'", RW],
    ["SET default_transaction_read_only = 'o'", null], // ambiguous: PostgreSQL refuses it
    ["SET default_transaction_read_only = 'maybe'", null],
    ['SET default_transaction_read_only TO DEFAULT', RW],
    ['SET "Default_Transaction_Read_Only" = on', RO],
    ['SET LOCAL default_transaction_read_only = on', null],
    ['SET transaction_read_only = on', null], // this transaction only
    ['SET default_transaction_read_only FROM CURRENT', null],
    ['RESET default_transaction_read_only', RW],
    ["SET default_transaction_isolation = 'serializable'", { isolation: 'serializable' }],
    ["SET default_transaction_isolation TO 'Repeatable Read'", { isolation: 'repeatable read' }],
    ['SET default_transaction_isolation = DEFAULT', { isolation: 'read committed' }],
    ['RESET default_transaction_isolation', { isolation: 'read committed' }],
    ["SET default_transaction_isolation = 'snapshot'", null],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', RO],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', RW],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE', { isolation: 'serializable' }],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', { readOnly: true, isolation: 'repeatable read' }],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION DEFERRABLE', null],
    ['SET TRANSACTION READ ONLY', null],
    ['RESET ALL', SERVER],
    ['DISCARD ALL', SERVER],
    ['DISCARD PLANS', null],
    ["SELECT set_config('default_transaction_read_only', 'on', false)", RO],
    ["SELECT pg_catalog.set_config('DEFAULT_TRANSACTION_ISOLATION', 'serializable', false)", { isolation: 'serializable' }],
    ["SELECT set_config('default_transaction_read_only', 'on', true)", null],
    ["SELECT set_config('default_transaction_read_only', $1, false)", null],
    ["SELECT set_config($1, 'on', false)", null],
    ["SELECT set_config('default_transaction_read_only', 'on', $1)", null],
    ["SELECT set_config('search_path', 'x', false)", null],
    ["EXPLAIN SELECT set_config('default_transaction_read_only', 'on', false)", null],
    ["PREPARE p AS SELECT set_config('default_transaction_read_only', 'on', false)", null],
    ['SET search_path = a', null],
  ])('%s', (sql, defaults) => {
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
  it.each([
    ['RESET ALL', true, false],
    ['reset all;', true, false],
    ['  RESET /* c */ ALL  ', true, false],
    ['Reset\n\tAll', true, false],
    ['DISCARD ALL', true, true],
    ['discard all', true, true],
    ['/*NO LOAD BALANCE*/ DISCARD -- x\n ALL', true, true],
    ['SET search_path = a; DISCARD ALL', true, true],
    ['SELECT 1; RESET ALL', true, false],
    ["SET application_name = 'discard all'", false, false],
    ["SELECT 'reset all', 'discard all'", false, false],
    ['SELECT 1 -- DISCARD ALL', false, false],
    ['/* RESET ALL */ SELECT 1', false, false],
    ['RESET "all"', false, false],
    ['RESET ALL TIME', false, false],
    ['DISCARD "all"', false, false],
    ['DISCARD PLANS', false, false],
    ['DISCARD TEMP', false, false],
    ['DISCARD ALL PLANS', false, false],
    ['EXPLAIN DISCARD ALL', false, false],
    ['PREPARE p AS RESET ALL', false, false],
    ['RESET all_things', false, false],
    ['SET reset_all = 1', false, false],
  ])('%s: resetsAll %s, discardsAll %s', (sql, resetsAll, discardsAll) => {
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
    ddl: false,
    hint: false,
    settings: Replay.None,
    resetsAll: false,
    discardsAll: false,
    defaults: null,
  };
  it.each<[string, Partial<UnitSummary>]>([
    ['SELECT 1', { reads: 1 }],
    ['SELECT 1; SELECT 2; TABLE t', { reads: 3 }],
    ['', {}],
    ['INSERT INTO t VALUES (1)', { writes: true }],
    ['SELECT 1; UPDATE t SET a = 1', { reads: 1, writes: true }],
    ['CREATE TABLE t (a int)', { writes: true, ddl: true }],
    ['LOCK t', { writes: true }],
    ['FROBNICATE', { writes: true, ddl: true, notUnderstood: 1 }],
    ["SELECT 'unterminated", { reads: 1, notUnderstood: 1 }],
    ['BEGIN', { begins: true }],
    ['BEGIN; SELECT 1', { begins: true, reads: 1 }],
    ['COMMIT', { writes: true }],
    ["COMMIT PREPARED 'x'", { writes: true }],
    ['ROLLBACK', { rollsBack: true }],
    ['ABORT', { rollsBack: true }],
    ['ROLLBACK TO SAVEPOINT s', { rollsBack: true }],
    ["ROLLBACK PREPARED 'x'", {}],
    ['EXPLAIN BEGIN', { notUnderstood: 1, writes: true, ddl: true }],
    ['CREATE TEMP TABLE x (a int)', { writes: true, ddl: true, pin: Pin.TempTable }],
    ['SELECT * INTO TEMP x FROM t', { writes: true, pin: Pin.TempTable }],
    ['LISTEN ch', { writes: true, pin: Pin.Listen }],
    ['UNLISTEN ch', { writes: true }],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', { writes: true, pin: Pin.WithHoldCursor }],
    ['DECLARE c CURSOR FOR SELECT 1', { writes: true }],
    ['PREPARE p AS SELECT 1', { writes: true, pin: Pin.SqlPrepare }],
    ['SELECT pg_advisory_lock(1)', { reads: 1, pin: Pin.AdvisoryLock }],
    ['SELECT pg_catalog.pg_try_advisory_lock_shared(1)', { reads: 1, pin: Pin.AdvisoryLock }],
    ['SELECT pg_advisory_xact_lock(1)', { reads: 1 }],
    ['LISTEN a; CREATE TEMP TABLE b (x int)', { writes: true, ddl: true, pin: Pin.Listen }],
    ['/*NO LOAD BALANCE*/ SELECT 1', { reads: 1, hint: true }],
    ['SELECT 1; /* pgproxy: primary */ SELECT 2', { reads: 2, hint: true }],
    ['SET search_path = a', { settings: Replay.Text }],
    ['SET a.b = 1; RESET c', { settings: Replay.Text }],
    ['SET LOCAL a.b = 1', {}],
    ['SET TRANSACTION READ ONLY', {}],
    ['SET search_path = a; SELECT 1', { reads: 1, settings: Replay.Rebuild }],
    ["SELECT set_config('a.b', 'x', false)", { reads: 1, settings: Replay.Text }],
    ["SELECT set_config('a.b', 'x', $1)", { reads: 1, settings: Replay.Text }],
    ["SELECT set_config('a.b', 'x', true)", { reads: 1 }],
    ["SELECT set_config('a.b', 'x', false); SELECT 1", { reads: 2 }],
    ['DISCARD ALL', { settings: Replay.Text, resetsAll: true, discardsAll: true, defaults: { readOnly: false, isolation: 'read committed' } }],
  ])('%s', (sql, expected) => {
    expect(summary(sql)).toEqual({ ...base, ...expected });
  });

  it('is frozen and computed once per classification', () => {
    const c = classifyUncached('SELECT 1');
    expect(Object.isFrozen(c.summary)).toBe(true);
    expect(c.summary).toBe(c.summary);
  });
});

describe('settingsToReplay', () => {
  it.each<[string, string | null]>([
    ['SELECT 1', null],
    ['SET search_path = a', 'SET search_path = a'],
    ['SET search_path = a; RESET work_mem', 'SET search_path = a; RESET work_mem'],
    ['SET LOCAL search_path = a', null],
    ['SET search_path = a; SELECT 1', 'SET search_path TO a'],
    ["SELECT 1; SET TIME ZONE 'UTC'; RESET work_mem; SELECT 2; DISCARD ALL; RESET ALL", "SET timezone TO 'UTC'; RESET work_mem; DISCARD all; RESET ALL"],
    ['SELECT 1; SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', 'SELECT 1; SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY'],
    ["SELECT set_config('a.b', 'x', false)", "SELECT set_config('a.b', 'x', false)"],
    ['SELECT 1; SET LOCAL a.b = 1', null],
  ])('%s', (sql, replay) => {
    expect(settingsToReplay(sql, classifyUncached(sql))).toBe(replay);
  });
});
