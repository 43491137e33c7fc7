// The reply queue: what each reply a backend owes answers, and which replies the client gets.
import { describe, expect, it } from 'vitest';
import { OWED, ReplyQueue, type Owed } from '../../../src/session/reply-queue.js';
import { BackendCode } from '../../../src/wire/codes.js';


/** Feeds reply types through the queue as a link does; returns the ones the client gets, and the units ended. */
function replies(q: ReplyQueue, types: number[]): { forwarded: string[]; units: (Owed | null)[] } {
  const forwarded: string[] = [];
  const units: (Owed | null)[] = [];
  for (const t of types) {
    let fwd: boolean;
    if (t === BackendCode.ErrorResponse) {
      fwd = q.forwards(t);
      if (fwd) q.errorArrived();
    } else if (t === BackendCode.CopyInResponse) {
      q.copyInStarted();
      fwd = q.forwards(t);
    } else fwd = q.forwards(t);
    if (fwd) forwarded.push(String.fromCharCode(t));
    if (t === BackendCode.ReadyForQuery) units.push(q.ready());
  }
  return { forwarded, units };
}

describe('ReplyQueue', () => {
  it('pipelined Parse/Bind/Execute/Sync units: every reply reaches the client, each ReadyForQuery ends one unit', () => {
    const q = new ReplyQueue();
    for (let i = 0; i < 3; i++) {
      q.push(OWED.parse);
      q.push(OWED.sync);
    }
    expect(q.pendingReady).toBe(3);
    expect(q.clientPendingReady).toBe(3);
    const unit = [BackendCode.ParseComplete, BackendCode.BindComplete, BackendCode.DataRow, BackendCode.CommandComplete, BackendCode.ReadyForQuery];
    const r = replies(q, [...unit, ...unit, ...unit]);
    expect(r.forwarded.join('')).toBe('12DCZ'.repeat(3));
    expect(r.units).toEqual([OWED.sync, OWED.sync, OWED.sync]);
    expect(q.length).toBe(0);
    expect(q.pendingReady).toBe(0);
  });

  it('an error mid-batch: the Parses the backend skips are dropped, the ReadyForQuery answers the Sync', () => {
    const q = new ReplyQueue();
    q.push(OWED.parse);
    q.push(OWED.parse);
    q.push(OWED.close);
    q.push(OWED.sync);
    q.push(OWED.parse);
    q.push(OWED.sync);
    const r = replies(q, [BackendCode.ParseComplete, BackendCode.ErrorResponse, BackendCode.ReadyForQuery, BackendCode.ParseComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('1EZ1Z');
    expect(r.units).toEqual([OWED.sync, OWED.sync]);
    expect(q.length).toBe(0);
  });

  it('an injected Parse (re-prepare on another node) is answered but its ParseComplete never reaches the client', () => {
    const q = new ReplyQueue();
    q.push(OWED.injectedParse);
    q.push(OWED.sync);
    const r = replies(q, [BackendCode.ParseComplete, BackendCode.BindComplete, BackendCode.DataRow, BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('2DCZ');
    expect(r.units).toEqual([OWED.sync]);
  });

  it('a failed injected Parse takes its place in the skip: the client sees the error and its ReadyForQuery', () => {
    const q = new ReplyQueue();
    q.push(OWED.injectedParse);
    q.push(OWED.sync);
    const r = replies(q, [BackendCode.ErrorResponse, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('EZ');
    expect(r.units).toEqual([OWED.sync]);
  });

  it("an injected Query (settings replay) ahead of the client's: everything it returns is swallowed", () => {
    const q = new ReplyQueue();
    q.push(OWED.injectedQuery);
    q.push(OWED.query);
    expect(q.pendingReady).toBe(2);
    expect(q.clientPendingReady).toBe(1);
    const r = replies(q, [BackendCode.ParameterStatus, BackendCode.CommandComplete, BackendCode.ReadyForQuery, BackendCode.RowDescription, BackendCode.DataRow, BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('TDCZ');
    expect(r.units).toEqual([OWED.injectedQuery, OWED.query]);
    expect(q.clientPendingReady).toBe(0);
  });

  it('an error of an injected Query is swallowed too', () => {
    const q = new ReplyQueue();
    q.push(OWED.injectedQuery);
    q.push(OWED.query);
    const r = replies(q, [BackendCode.ErrorResponse, BackendCode.ReadyForQuery, BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('CZ');
  });

  it("pgproxy's own WAL-position query behind a write: swallowed whole, and marked while it is owed", () => {
    const q = new ReplyQueue();
    q.push(OWED.query);
    q.push(OWED.lsnQuery);
    expect(q.has('lsn')).toBe(true);
    const r = replies(q, [BackendCode.CommandComplete, BackendCode.ReadyForQuery, BackendCode.RowDescription, BackendCode.DataRow, BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('CZ');
    expect(r.units).toEqual([OWED.query, OWED.lsnQuery]);
    expect(q.has('lsn')).toBe(false);
  });

  it('an error in a simple Query ends it with its ReadyForQuery', () => {
    const q = new ReplyQueue();
    q.push(OWED.query);
    q.push(OWED.query);
    const r = replies(q, [BackendCode.ErrorResponse, BackendCode.ReadyForQuery, BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('EZCZ');
    expect(r.units).toEqual([OWED.query, OWED.query]);
  });

  it('COPY FROM STDIN in the extended protocol with Syncs pipelined inside it (PostgreSQL ignores them)', () => {
    const q = new ReplyQueue();
    // Parse, Bind, Execute, Sync (libpq), copy data, CopyDone (before the backend said it entered COPY), Sync.
    q.push(OWED.parse);
    q.push(OWED.sync);
    q.push(OWED.copyEnd);
    q.push(OWED.sync);
    expect(q.clientPendingReady).toBe(2);
    expect(q.forwards(BackendCode.ParseComplete)).toBe(true);
    expect(q.forwards(BackendCode.BindComplete)).toBe(true);
    expect(q.copyInStarted()).toBe(false);
    expect(q.clientPendingReady).toBe(1);
    expect(q.forwards(BackendCode.CopyInResponse)).toBe(true);
    const r = replies(q, [BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('CZ');
    expect(r.units).toEqual([OWED.sync]);
    expect(q.length).toBe(0);
  });

  it('COPY entered while the client is still sending: its Syncs so far are dropped, it is told to go on', () => {
    const q = new ReplyQueue();
    q.push(OWED.query);
    expect(q.copyInStarted()).toBe(true);
    expect(q.clientPendingReady).toBe(1);
    q.push(OWED.sync); // a Sync after CopyDone, handled later
    const r = replies(q, [BackendCode.CommandComplete, BackendCode.ReadyForQuery, BackendCode.ReadyForQuery]);
    expect(r.units).toEqual([OWED.query, OWED.sync]);
  });

  it("a pgproxy Sync that ends a batch's part on a standby: its ReadyForQuery is swallowed", () => {
    const q = new ReplyQueue();
    q.push(OWED.parse);
    q.push(OWED.injectedSync);
    const r = replies(q, [BackendCode.ParseComplete, BackendCode.BindComplete, BackendCode.DataRow, BackendCode.CommandComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('12DC');
    expect(r.units).toEqual([OWED.injectedSync]);
    expect(q.clientPendingReady).toBe(0);
  });

  it('injected and client Close: only the client hears its CloseComplete', () => {
    const q = new ReplyQueue();
    q.push(OWED.injectedClose);
    q.push(OWED.close);
    q.push(OWED.sync);
    const r = replies(q, [BackendCode.CloseComplete, BackendCode.CloseComplete, BackendCode.ReadyForQuery]);
    expect(r.forwarded.join('')).toBe('3Z');
  });

  it('a ReadyForQuery nobody asked for is forwarded and ends nothing', () => {
    const q = new ReplyQueue();
    expect(q.forwards(BackendCode.ReadyForQuery)).toBe(true);
    expect(q.ready()).toBeNull();
  });

  it('grows and shrinks without losing order over many units', () => {
    const q = new ReplyQueue();
    const sent: Owed[] = [];
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < round % 7; i++) {
        const e = i % 3 === 0 ? OWED.injectedQuery : i % 3 === 1 ? OWED.query : OWED.sync;
        q.push(e);
        sent.push(e);
      }
      while (q.pendingReady > (round % 2)) {
        q.forwards(BackendCode.ReadyForQuery);
        expect(q.ready()).toBe(sent.shift());
      }
    }
  });
});
