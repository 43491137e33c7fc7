// Settings replay: what a session records from the classifier's facts, and what it replays on other connections.
import { describe, expect, it } from 'vitest';
import { classify } from '../../../src/router/classify/index.js';
import type { Link } from '../../../src/session/link.js';
import type { SegmentSetting } from '../../../src/session/segment.js';
import { parseOptions, SessionSettings, settingOf, startupSettingsSql } from '../../../src/session/settings.js';
import { TxStatus } from '../../../src/wire/codes.js';

const I = TxStatus.Idle;
const T = TxStatus.InTransaction;

/** A link as settings sees it: a connection with prepared statements and a state tag, and the queries injected. */
function fakeLink(stateTag: unknown = null): Link & { injected: string[] } {
  const injected: string[] = [];
  const conn = { prepared: new Map<string, string>(), stateTag };
  const link = {
    conn,
    injected,
    appliedSettings: 0,
    segmentSettings: null as SegmentSetting[] | null,
    segmentError: false,
    segmentRollback: false,
    inject(frame: Buffer) {
      injected.push(frame.toString('utf8', 5, frame.length - 1));
    },
  };
  return link as unknown as Link & { injected: string[] };
}

function setting(sql: string): SegmentSetting {
  const s = settingOf(sql, classify(sql));
  if (s === null) throw new Error(`not a setting: ${sql}`);
  return s;
}

/** Runs `sql` on `link` as one client segment from status `before` to `after`. */
function run(settings: SessionSettings, link: Link, sqls: string[], before: number, after: number, opts: { error?: boolean; rollback?: boolean } = {}) {
  link.segmentSettings = sqls.map(setting);
  link.segmentError = opts.error ?? false;
  link.segmentRollback = opts.rollback ?? false;
  const r = settings.segmentEnded(link, before, after);
  link.segmentSettings = null;
  return r;
}

describe('settingOf: session settings from the classifier', () => {
  it.each([
    ['SET work_mem = 4096', { name: 'work_mem', resetsAll: false, discardsAll: false }],
    ["SET application_name = 'discard all'", { name: 'application_name', resetsAll: false, discardsAll: false }],
    ["SET application_name = 'reset all'", { name: 'application_name', resetsAll: false, discardsAll: false }],
    ['RESET work_mem', { name: 'work_mem', resetsAll: false, discardsAll: false }],
    ['RESET ALL', { name: null, resetsAll: true, discardsAll: false }],
    ['reset   all ;', { name: null, resetsAll: true, discardsAll: false }],
    ['DISCARD ALL', { name: null, resetsAll: true, discardsAll: true }],
    ['DISCARD PLANS', { name: null, resetsAll: false, discardsAll: false }],
    ["SELECT set_config('work_mem', '7MB', false)", { name: null, resetsAll: false, discardsAll: false }],
  ])('%s', (sql, expected) => {
    const s = settingOf(sql, classify(sql));
    expect(s).not.toBeNull();
    expect({ name: s!.name, resetsAll: s!.resetsAll, discardsAll: s!.discardsAll }).toEqual(expected);
  });

  it.each(['SET LOCAL work_mem = 1', 'SET TRANSACTION READ ONLY', "SELECT set_config('work_mem', '1MB', true)", 'SELECT 1', "SELECT 'discard all'"])('%s is not a session setting', (sql) => {
    expect(settingOf(sql, classify(sql))).toBeNull();
  });

  it('a setting mixed with other statements is rebuilt alone', () => {
    const sql = 'SELECT 1; SET work_mem = 64; SET LOCAL search_path = x';
    expect(settingOf(sql, classify(sql))!.sql).toBe('SET work_mem TO 64');
  });
});

describe('SessionSettings', () => {
  it('startup parameters and options become SETs, applied to a new connection and tagged with their signature', () => {
    const params = new Map([
      ['user', 'u'],
      ['database', 'd'],
      ['application_name', 'leaky'],
      ['options', '-c search_path=pg_catalog --work-mem=5MB'],
    ]);
    const sql = startupSettingsSql(params);
    expect(sql).toBe(`SET "application_name" = 'leaky'; SET "search_path" = 'pg_catalog'; SET "work_mem" = '5MB'`);
    const s = new SessionSettings(params);
    const fresh = fakeLink(null);
    s.adopt(fresh);
    expect(fresh.injected).toEqual([sql]);
    expect(fresh.conn.stateTag).toBe(sql);
    // Another connection carrying exactly these parameters is used as it is.
    const same = fakeLink(sql);
    s.adopt(same);
    expect(same.injected).toEqual([]);
  });

  it("a connection carrying another client's state is reset before this session uses it", () => {
    const s = new SessionSettings(new Map([['application_name', 'mine']]));
    const foreign = fakeLink({});
    foreign.conn.prepared.set('s1', 'SELECT 1');
    s.adopt(foreign);
    expect(foreign.injected).toEqual(['DISCARD ALL', `SET "application_name" = 'mine'`]);
    expect(foreign.conn.prepared.size).toBe(0);
    // ...and so is one with other startup parameters, also for a session without any.
    const plain = new SessionSettings(new Map());
    const other = fakeLink(`SET "application_name" = 'leaky'`);
    plain.adopt(other);
    expect(other.injected).toEqual(['DISCARD ALL']);
    expect(other.conn.stateTag).toBeNull();
  });

  it('records autocommit settings at once and replays them on the next connection, latest value only', () => {
    const s = new SessionSettings(new Map());
    const a = fakeLink();
    s.adopt(a);
    run(s, a, ['SET work_mem = 1000'], I, I);
    run(s, a, ['SET search_path = x'], I, I);
    run(s, a, ['SET work_mem = 2000'], I, I);
    expect(s.upToDate(a)).toBe(true);
    expect(a.conn.stateTag).toBe(s.tag);
    const b = fakeLink();
    s.adopt(b);
    expect(s.upToDate(b)).toBe(false);
    s.replay(b);
    expect(b.injected).toEqual(['SET search_path = x;\nSET work_mem = 2000']);
    expect(s.upToDate(b)).toBe(true);
    expect(b.conn.stateTag).toBe(s.tag);
  });

  it('inside a transaction: kept at COMMIT, dropped at ROLLBACK and when the transaction failed', () => {
    const s = new SessionSettings(new Map());
    const a = fakeLink();
    s.adopt(a);
    run(s, a, ['SET work_mem = 1'], I, T);
    run(s, a, [], T, I, { rollback: true });
    const b = fakeLink();
    s.adopt(b);
    expect(s.upToDate(b)).toBe(true);
    run(s, a, ['SET work_mem = 2'], I, T);
    run(s, a, [], T, I, { error: true });
    expect(s.upToDate(b)).toBe(true);
    run(s, a, ['SET work_mem = 3'], I, T);
    run(s, a, ['SET search_path = y'], T, T);
    run(s, a, [], T, I);
    s.replay(b);
    expect(b.injected).toEqual(['SET work_mem = 3;\nSET search_path = y']);
  });

  it('an autocommit segment that failed keeps nothing (its implicit transaction rolled back)', () => {
    const s = new SessionSettings(new Map());
    const a = fakeLink();
    s.adopt(a);
    run(s, a, ['SET work_mem = 1'], I, I, { error: true });
    const b = fakeLink();
    s.adopt(b);
    expect(s.upToDate(b)).toBe(true);
  });

  it('RESET ALL replaces what came before, and the startup parameters come back after it', () => {
    const s = new SessionSettings(new Map([['application_name', 'app']]));
    const a = fakeLink();
    s.adopt(a);
    run(s, a, ['SET work_mem = 1'], I, I);
    run(s, a, ['RESET ALL'], I, I);
    // PostgreSQL keeps startup parameters as session defaults: pgproxy restores them where RESET ALL ran.
    expect(a.injected).toEqual([`SET "application_name" = 'app'`, `SET "application_name" = 'app'`]);
    const b = fakeLink(`SET "application_name" = 'app'`);
    s.adopt(b);
    s.replay(b);
    expect(b.injected).toEqual(['RESET ALL', `SET "application_name" = 'app'`]);
  });

  it('DISCARD ALL drops prepared statements on the connection that ran it and where it is replayed', () => {
    const s = new SessionSettings(new Map());
    const a = fakeLink();
    const b = fakeLink();
    s.adopt(a);
    s.adopt(b);
    a.conn.prepared.set('s1', 'SELECT 1');
    b.conn.prepared.set('s1', 'SELECT 1');
    expect(run(s, a, ['DISCARD ALL'], I, I)).toBe(SessionSettings.RESET_ALL | SessionSettings.DISCARD_ALL);
    expect(a.conn.prepared.size).toBe(0);
    s.replay(b);
    expect(b.conn.prepared.size).toBe(0);
    // A SET whose value merely says so discards nothing.
    a.conn.prepared.set('s2', 'SELECT 2');
    expect(run(s, a, ["SET application_name = 'discard all'"], I, I)).toBe(0);
    expect(a.conn.prepared.size).toBe(1);
  });

  it('the default transaction mode follows settings (it decides where transactions run)', () => {
    const s = new SessionSettings(new Map([['options', '-c default_transaction_read_only=on']]));
    expect(s.routing.defaultReadOnly).toBe(true);
    const a = fakeLink();
    s.adopt(a);
    run(s, a, ['SET default_transaction_read_only = off'], I, I);
    expect(s.routing.defaultReadOnly).toBe(false);
    run(s, a, ["SET default_transaction_isolation = 'serializable'"], I, I);
    expect(s.routing.defaultIsolation).toBe('serializable');
    run(s, a, ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY'], I, I);
    expect(s.routing.defaultReadOnly).toBe(true);
    run(s, a, ['RESET default_transaction_isolation'], I, I);
    expect(s.routing.defaultIsolation).toBe('read committed');
    // RESET ALL goes back to the session's defaults: here, the startup option's read-only.
    run(s, a, ['SET default_transaction_read_only = off'], I, I);
    run(s, a, ['RESET ALL'], I, I);
    expect(s.routing.defaultReadOnly).toBe(true);
  });
});

describe('parseOptions', () => {
  it.each([
    ['-c a=1', [['a', '1']]],
    ['-ca=1 --b-c=2', [['a', '1'], ['b_c', '2']]],
    ['-c search_path=a\\ b', [['search_path', 'a b']]],
    ['-c  x=1  -c y=2', [['x', '1'], ['y', '2']]],
    ['-c novalue', []],
  ])('%s', (options, expected) => {
    expect(parseOptions(options)).toEqual(expected);
  });
});
