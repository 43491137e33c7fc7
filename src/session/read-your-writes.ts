/**
 * `routing.read_your_writes`: which acknowledged writes a read must see.
 * - session: the session's later reads go only to nodes that have replayed the session's last commit. Its position
 *   is learned lazily: after a unit that may have written on the primary, it is marked unknown, and the first read
 *   that would leave the primary after it first asks the primary for its WAL insert position (routing.ts). Writes
 *   that no read follows cost nothing; a read after writes costs one round trip to the primary.
 * - database: after a unit that may have written commits on the primary, pgproxy asks the same connection for its
 *   WAL insert position, pipelined right behind the unit (the client never sees that query), and publishes it for
 *   the database (nodes/replay.ts): every read of any session on that database needs it. The unit's ReadyForQuery
 *   reaches the client only once the position is published, so a read the application sends on another connection
 *   after hearing of the commit cannot overtake it.
 * - off: nothing is captured; SHOW pgproxy.last_commit_lsn fetches the primary's position when asked.
 */
import type { ProxyContext } from '../context.js';
import { parseLsn } from '../nodes/topology.js';
import { queryMessage } from '../wire/frontend.js';
import type { Link } from './link.js';
import { OWED, type Owed } from './reply-queue.js';

const LSN_QUERY = queryMessage('SELECT pg_current_wal_insert_lsn()::text');
const XLOG_PAGE_SIZE = 8192n;
/** The long page header (first page of a segment) is 40 bytes, the short one 24. */
const MAX_PAGE_HEADER = 40n;

/**
 * pg_current_wal_insert_lsn() may point just past a page header when the last record ended at the page boundary;
 * replay stops at the boundary. The boundary holds everything committed before, so it is the position to wait for.
 */
export function normaliseInsertLsn(lsn: bigint): bigint {
  const offset = lsn % XLOG_PAGE_SIZE;
  return offset > 0n && offset <= MAX_PAGE_HEADER ? lsn - offset : lsn;
}

export class ReadYourWrites {
  /** The commit position of the session's last write (normalised), or null. */
  lastCommitLsn: bigint | null = null;
  /**
   * read_your_writes off or session: the session may have written since lastCommitLsn was known (nothing is
   * captured in those modes; the primary's position is fetched when a read or SHOW pgproxy.last_commit_lsn needs it).
   */
  positionUnknown = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly database: string,
  ) {}

  get mode(): 'off' | 'session' | 'database' {
    return this.ctx.config.routing.read_your_writes;
  }

  /** Whether a client unit sent on `link` that may have written is followed by the position query (database mode). */
  capturesAfter(link: Link, mayWrite: boolean): boolean {
    if (!mayWrite || link.node.role !== 'primary') return false;
    if (this.mode === 'database') return true;
    this.positionUnknown = true;
    return false;
  }

  /** Session mode, after writes: a read must not leave the primary before their position is fetched. */
  get positionPending(): boolean {
    return this.positionUnknown && this.mode === 'session';
  }

  /** The entry of a client unit ending in `kind`; `captured`: the position query follows it. */
  entryFor(kind: 'query' | 'sync', captured: boolean): Owed {
    if (captured && this.mode === 'database') return kind === 'query' ? OWED.queryHoldingReady : OWED.syncHoldingReady;
    return kind === 'query' ? OWED.query : OWED.sync;
  }

  /** Sends the position query behind the unit just sent on `link`. */
  capture(link: Link): void {
    link.inject(LSN_QUERY, OWED.lsnQuery);
  }

  /** The position query answered. */
  walPosition(text: string): void {
    const parsed = parseLsn(text);
    if (parsed === null) return;
    const lsn = normaliseInsertLsn(parsed);
    if (this.lastCommitLsn === null || lsn > this.lastCommitLsn) this.lastCommitLsn = lsn;
    if (this.mode === 'database') this.ctx.replay.acknowledge(this.database, lsn);
  }

  /**
   * The primary's WAL position, fetched after the session's writes were acknowledged: at or past their commits,
   * so a token for them. False: it could not be fetched (null); the position stays unknown.
   */
  fetched(text: string | null): boolean {
    const parsed = text === null ? null : parseLsn(text);
    if (parsed === null) return false;
    this.positionUnknown = false;
    const lsn = normaliseInsertLsn(parsed);
    if (this.lastCommitLsn === null || lsn > this.lastCommitLsn) this.lastCommitLsn = lsn;
    return true;
  }

  /**
   * The position could not be fetched because there is no primary (it went down after the writes). The last
   * position measured on the former primary stands in for it, but no higher than the most advanced standby's: WAL
   * the primary had not sent is lost with it, and reads must stay possible while a failover runs. (This is the rule
   * that keeps database mode's positions no higher than a new primary's.) A commit acknowledged just before the
   * primary went down may therefore be missing from a read until the failover ends.
   */
  primaryGone(): void {
    this.positionUnknown = false;
    let formerPrimary: bigint | null = null;
    let bestStandby: bigint | null = null;
    for (const n of this.ctx.topology.nodes) {
      if (n.lsn === null) continue;
      if (n.role === 'primary' && (formerPrimary === null || n.lsn > formerPrimary)) formerPrimary = n.lsn;
      if (n.role === 'standby' && n.up && (bestStandby === null || n.lsn > bestStandby)) bestStandby = n.lsn;
    }
    if (bestStandby === null) return;
    const lsn = formerPrimary !== null && formerPrimary < bestStandby ? formerPrimary : bestStandby;
    if (this.lastCommitLsn === null || lsn > this.lastCommitLsn) this.lastCommitLsn = lsn;
  }

  /** The position reads must see (the session's own commits, and in database mode every client's), or null. */
  requiredLsn(): bigint | null {
    const mode = this.mode;
    if (mode === 'off') return null;
    const own = this.lastCommitLsn;
    if (mode === 'session') return own;
    const shared = this.ctx.replay.acknowledgedOn(this.database);
    return own === null ? shared : shared === null || own > shared ? own : shared;
  }
}
