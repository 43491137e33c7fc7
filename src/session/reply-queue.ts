/**
 * What each reply a backend connection owes answers, in order. The backend answers every Parse with
 * ParseComplete, every Close with CloseComplete, and every Sync or simple Query with one ReadyForQuery; after an
 * error in an extended batch it skips to the batch's Sync. Entries pgproxy injected itself (a Parse re-prepared on
 * another node, its own Sync or Query) are answered too, and those answers must never reach the client.
 *
 * Pure bookkeeping: the link feeds it reply types, it says what the client gets. No I/O, no allocation per entry
 * (entries are the shared constants below).
 */
import { BackendCode } from '../wire/codes.js';

export type OwedKind =
  /** ParseComplete answers it. */
  | 'parse'
  /** CloseComplete answers it. */
  | 'close'
  /** ReadyForQuery answers it (a Sync). */
  | 'sync'
  /** ReadyForQuery answers it (a simple Query, with everything it returns before). */
  | 'query'
  /** pgproxy's own WAL-position query: its DataRow is read by pgproxy, the rest swallowed. */
  | 'lsn'
  /**
   * The client's CopyDone/CopyFail, sent before the backend said it entered COPY IN: marks which of the
   * client's pipelined Syncs came before the copy data ends (PostgreSQL ignores Sync in copy-in mode).
   */
  | 'copy-end'
  /** An answer pgproxy gives itself, due once everything before it was answered (see LocalAnswer). */
  | 'local';

export interface Owed {
  readonly kind: OwedKind;
  /** pgproxy sent it: its answer is swallowed. */
  readonly injected: boolean;
  /** Answered by a ReadyForQuery. */
  readonly endsUnit: boolean;
  /**
   * The client's unit whose ReadyForQuery waits for pgproxy's WAL-position query that follows it (read-your-writes
   * across connections): the client hears the unit is done only once its position is known.
   */
  readonly holdsReady: boolean;
}

/**
 * An answer pgproxy gives itself (an error, SET / SHOW pgproxy.*, a deferred BEGIN, an explain notice): its bytes go
 * to the client when everything owed before it has been answered, so the client sees replies in its own order.
 */
export interface LocalAnswer extends Owed {
  readonly kind: 'local';
  readonly bytes: Buffer | null;
  /**
   * The ReadyForQuery that ends it: 'none', 'current' (the transaction status once the replies before it are in),
   * 'failed' (the same for an error pgproxy raised: an open transaction is failed from then on, as any error fails
   * it in PostgreSQL), or a status byte it fixes itself (a locally answered BEGIN, COMMIT or ROLLBACK).
   */
  readonly ready: LocalReady;
}

export type LocalReady = 'none' | 'current' | 'failed' | number;

function owed(kind: OwedKind, injected: boolean, holdsReady = false): Owed {
  return Object.freeze({ kind, injected, endsUnit: kind === 'sync' || kind === 'query' || kind === 'lsn', holdsReady });
}

export function localAnswer(bytes: Buffer | null, ready: LocalReady): LocalAnswer {
  return { kind: 'local', injected: false, endsUnit: false, holdsReady: false, bytes, ready };
}

/** The entries; compared by identity. */
export const OWED = Object.freeze({
  parse: owed('parse', false),
  close: owed('close', false),
  sync: owed('sync', false),
  query: owed('query', false),
  syncHoldingReady: owed('sync', false, true),
  queryHoldingReady: owed('query', false, true),
  copyEnd: owed('copy-end', false),
  injectedParse: owed('parse', true),
  injectedClose: owed('close', true),
  injectedSync: owed('sync', true),
  injectedQuery: owed('query', true),
  lsnQuery: owed('lsn', true),
  /** A statement that fails, sent to fail the backend's transaction after an error pgproxy raised in it. */
  failTransaction: owed('query', true),
});

export class ReplyQueue {
  private items: Owed[] = [];
  private head = 0;
  /** Entries answered by a ReadyForQuery (the client's and pgproxy's). */
  private units = 0;
  /** Of those, the ones the client sent. */
  private clientUnits = 0;
  /** Local answers queued that end with a ReadyForQuery (the client waits for those too). */
  private localUnits = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** ReadyForQuery messages still to come on this connection. */
  get pendingReady(): number {
    return this.units;
  }

  /** ReadyForQuery messages still to come from the backend that the client waits for (its own Syncs and Queries). */
  get clientPendingReady(): number {
    return this.clientUnits;
  }

  /** Local answers still queued that end with a ReadyForQuery. */
  get localPendingReady(): number {
    return this.localUnits;
  }

  /** The oldest entry not yet answered, or null. */
  peek(): Owed | null {
    return this.head < this.items.length ? this.items[this.head]! : null;
  }

  push(entry: Owed): void {
    this.items.push(entry);
    if (entry.endsUnit) {
      this.units++;
      if (!entry.injected) this.clientUnits++;
    } else if (entry.kind === 'local' && (entry as LocalAnswer).ready !== 'none') this.localUnits++;
  }

  /**
   * Local answers now due (at the head, after a unit ended), removed from the queue; null when there is none.
   * Local answers are queued only behind a unit's end, so they are due right after its ReadyForQuery.
   */
  takeDueLocal(): LocalAnswer | null {
    const head = this.peek();
    if (head === null || head.kind !== 'local') return null;
    this.shift();
    if ((head as LocalAnswer).ready !== 'none') this.localUnits--;
    return head as LocalAnswer;
  }

  /** The backend is gone: everything still owed, in order (the caller answers the client's part). */
  drain(): Owed[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.units = 0;
    this.clientUnits = 0;
    this.localUnits = 0;
    return rest;
  }

  /**
   * A reply's header arrived: whether the client gets that reply. ParseComplete and CloseComplete consume
   * their entry here; ReadyForQuery is consumed by `ready()` once it is complete.
   */
  forwards(type: number): boolean {
    const head = this.peek();
    // Everything an injected Query or WAL-position query returns is pgproxy's.
    if (head !== null && head.injected && (head.kind === 'query' || head.kind === 'lsn')) return false;
    switch (type) {
      case BackendCode.ParseComplete:
        return head !== null && head.kind === 'parse' ? !this.shift().injected : true;
      case BackendCode.CloseComplete:
        return head !== null && head.kind === 'close' ? !this.shift().injected : true;
      case BackendCode.ReadyForQuery: {
        // Parse/Close entries still queued were skipped by an error: the ReadyForQuery answers the first unit.
        const unit = this.firstUnit();
        return unit === null || (!unit.injected && !unit.holdsReady);
      }
      default:
        return true;
    }
  }

  /** The current unit failed: in an extended batch the backend skips its remaining Parse and Close. */
  errorArrived(): void {
    const head = this.peek();
    if (head === null || head.kind === 'query' || head.kind === 'lsn') return;
    for (let e = this.peek(); e !== null && (e.kind === 'parse' || e.kind === 'close'); e = this.peek()) this.shift();
  }

  /** A ReadyForQuery arrived: consumes entries up to the unit it answers, and returns that unit (null: none owed). */
  ready(): Owed | null {
    while (this.head < this.items.length) {
      const e = this.shift();
      if (e.endsUnit) {
        this.units--;
        if (!e.injected) this.clientUnits--;
        return e;
      }
    }
    return null;
  }

  /** Whether an entry of `kind` is queued. */
  has(kind: OwedKind): boolean {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!.kind === kind) return true;
    return false;
  }

  /**
   * The backend entered COPY IN. PostgreSQL ignores Sync (and Flush) in copy-in mode, so the client's Syncs sent
   * after the COPY's Execute and before its CopyDone/CopyFail get no ReadyForQuery: drop them, and the marker.
   * Returns true when the client has not sent its CopyDone/CopyFail yet.
   */
  copyInStarted(): boolean {
    const kept: Owed[] = [];
    let beforeEnd = true;
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i]!;
      if (beforeEnd && e.kind === 'copy-end') {
        beforeEnd = false;
        continue;
      }
      if (beforeEnd && e.kind === 'sync' && !e.injected) {
        this.units--;
        this.clientUnits--;
        continue;
      }
      kept.push(e);
    }
    this.items = kept;
    this.head = 0;
    return beforeEnd;
  }

  private firstUnit(): Owed | null {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!.endsUnit) return this.items[i]!;
    return null;
  }

  private shift(): Owed {
    const e = this.items[this.head++]!;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    }
    return e;
  }
}
