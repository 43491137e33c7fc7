// The reply queue's local entries (answers pgproxy gives itself: SET / SHOW pgproxy.*, a deferred BEGIN, explain
// notices, errors) and the entries of pgproxy's own statements around them (the WAL-position query, the
// statement that fails a transaction): when a local answer is due, what counts as owed, what the client never sees.
import { describe, expect, it } from 'vitest';
import { localAnswer, OWED, ReplyQueue, type LocalAnswer, type Owed } from '../../../src/session/reply-queue.js';
import { BackendCode } from '../../../src/wire/codes.js';

/** Feeds reply types as a link does; after each ReadyForQuery, takes the local answers now due. */
function feed(q: ReplyQueue, types: number[]): { forwarded: string; units: (Owed | null)[]; due: LocalAnswer[][] } {
  let forwarded = '';
  const units: (Owed | null)[] = [];
  const due: LocalAnswer[][] = [];
  for (const t of types) {
    const fwd = q.forwards(t);
    if (t === BackendCode.ErrorResponse && fwd) q.errorArrived();
    if (fwd) forwarded += String.fromCharCode(t);
    if (t === BackendCode.ReadyForQuery) {
      units.push(q.ready());
      const now: LocalAnswer[] = [];
      for (let l = q.takeDueLocal(); l !== null; l = q.takeDueLocal()) now.push(l);
      due.push(now);
    }
  }
  return { forwarded, units, due };
}

const text = (l: LocalAnswer): string => (l.bytes === null ? '' : l.bytes.toString());
const QUERY_REPLY = [BackendCode.RowDescription, BackendCode.DataRow, BackendCode.CommandComplete, BackendCode.ReadyForQuery];

describe('local answers in the reply queue', () => {
  it('a local answer on an empty queue is due at once', () => {
    const q = new ReplyQueue();
    const a = localAnswer(Buffer.from('SET'), 'current');
    q.push(a);
    expect(q.localPendingReady).toBe(1);
    expect(q.pendingReady).toBe(0);
    expect(q.takeDueLocal()).toBe(a);
    expect(q.takeDueLocal()).toBeNull();
    expect(q.localPendingReady).toBe(0);
    expect(q.length).toBe(0);
  });

  it('behind a unit, local answers wait for its ReadyForQuery, then come in order; one behind the next unit waits for that', () => {
    const q = new ReplyQueue();
    q.push(OWED.query);
    q.push(localAnswer(Buffer.from('notice'), 'none'));
    q.push(localAnswer(Buffer.from('SHOW'), 'current'));
    q.push(OWED.query);
    q.push(localAnswer(Buffer.from('BEGIN'), 73));
    // Not due while the unit before them is owed.
    expect(q.takeDueLocal()).toBeNull();
    expect(q.localPendingReady).toBe(2);
    expect(q.pendingReady).toBe(2);
    const r = feed(q, [...QUERY_REPLY, ...QUERY_REPLY]);
    expect(r.forwarded).toBe('TDCZTDCZ');
    expect(r.units).toEqual([OWED.query, OWED.query]);
    expect(r.due.map((d) => d.map(text))).toEqual([['notice', 'SHOW'], ['BEGIN']]);
    expect(r.due[1]![0]!.ready).toBe(73);
    expect(q.length).toBe(0);
    expect(q.localPendingReady).toBe(0);
  });

  it("'failed' answers (errors pgproxy raised) count as ReadyForQuery the client waits for, like 'current' and fixed ones", () => {
    const q = new ReplyQueue();
    q.push(OWED.sync);
    q.push(localAnswer(Buffer.from('E'), 'failed'));
    q.push(localAnswer(Buffer.from('N'), 'none'));
    q.push(localAnswer(null, 'current'));
    expect(q.localPendingReady).toBe(2);
    expect(q.clientPendingReady).toBe(1);
    feed(q, [BackendCode.ReadyForQuery]);
    expect(q.localPendingReady).toBe(0);
  });

  it('read-your-writes across connections: the unit’s ReadyForQuery is held for the position query, local answers come after both', () => {
    const q = new ReplyQueue();
    q.push(OWED.queryHoldingReady);
    q.push(OWED.lsnQuery);
    q.push(localAnswer(Buffer.from('SHOW last_commit_lsn'), 'current'));
    expect(q.pendingReady).toBe(2);
    expect(q.clientPendingReady).toBe(1);
    // The client's unit: CommandComplete forwarded, ReadyForQuery held (the link sends it once the position is in).
    const unit = feed(q, [BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(unit.forwarded).toBe('C');
    expect(unit.units).toEqual([OWED.queryHoldingReady]);
    expect(unit.due).toEqual([[]]);
    // The position query: nothing of it reaches the client; then the local answer is due.
    const lsn = feed(q, [BackendCode.RowDescription, BackendCode.DataRow, BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(lsn.forwarded).toBe('');
    expect(lsn.units).toEqual([OWED.lsnQuery]);
    expect(lsn.due.map((d) => d.map(text))).toEqual([['SHOW last_commit_lsn']]);
  });

  it('the statement that fails a transaction: its error and ReadyForQuery are pgproxy’s, the error answered before it reaches the client after the unit before', () => {
    const q = new ReplyQueue();
    q.push(OWED.query);
    q.push(OWED.failTransaction);
    q.push(localAnswer(Buffer.from('ERROR 42704'), 'failed'));
    q.push(OWED.query);
    expect(q.pendingReady).toBe(3);
    expect(q.clientPendingReady).toBe(2);
    const r = feed(q, [...QUERY_REPLY, BackendCode.ErrorResponse, BackendCode.ReadyForQuery, BackendCode.ErrorResponse, BackendCode.ReadyForQuery]);
    // The client: the first unit's replies, then (not from the backend) the local error, then the 25P02 of its next unit.
    expect(r.forwarded).toBe('TDCZEZ');
    expect(r.units).toEqual([OWED.query, OWED.failTransaction, OWED.query]);
    expect(r.due.map((d) => d.map(text))).toEqual([[], ['ERROR 42704'], []]);
  });

  it('an extended batch part ended by pgproxy’s Sync: the local answers queued after it are due at its ReadyForQuery, which the client never sees', () => {
    const q = new ReplyQueue();
    q.push(OWED.parse);
    q.push(OWED.injectedSync);
    q.push(localAnswer(Buffer.from('ParseComplete'), 'none'));
    q.push(localAnswer(Buffer.from('BindComplete'), 'none'));
    const r = feed(q, [BackendCode.ParseComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded).toBe('1');
    expect(r.units).toEqual([OWED.injectedSync]);
    expect(r.due.map((d) => d.map(text))).toEqual([['ParseComplete', 'BindComplete']]);
  });

  it('a lost backend drains local answers with everything else, in order, and resets every count', () => {
    const q = new ReplyQueue();
    const a = localAnswer(Buffer.from('a'), 'current');
    q.push(OWED.sync);
    q.push(a);
    q.push(OWED.lsnQuery);
    expect(q.drain()).toEqual([OWED.sync, a, OWED.lsnQuery]);
    expect([q.length, q.pendingReady, q.clientPendingReady, q.localPendingReady]).toEqual([0, 0, 0, 0]);
  });
});
