/**
 * `routing.transactions: split` (pgpool-II's behaviour): a read-write transaction opens on the session's read
 * node and runs there until its first statement that needs the primary. Then pgproxy ends the standby part with its
 * own COMMIT (nothing was written there) and opens the transaction again on the primary, with its savepoints,
 * before that statement runs. The policy starts a REPEATABLE READ or SERIALIZABLE read-write transaction on the
 * primary (reasons RepeatableRead, Serializable): its snapshot could not survive the move.
 */
import type { Classification } from '../router/classify/index.js';
import { queryMessage } from '../wire/frontend.js';
import type { Link } from './link.js';
import { OWED } from './reply-queue.js';

const COMMIT = queryMessage('COMMIT');

export class SplitTransaction {
  /** The BEGIN of a transaction running on a standby until its first write, or null. */
  private begin: string | null = null;
  /** ...and its savepoint commands so far, to recreate them on the primary. */
  private savepoints: string[] = [];
  /** The transaction is moving to the primary: this opens it there before the next statement. */
  private pendingBegin: string | null = null;

  /** A transaction runs on a standby in split mode. */
  get active(): boolean {
    return this.begin !== null;
  }

  /** Whether track() needs the unit's text: it opens a transaction on a standby, or makes a savepoint in one. */
  wantsText(c: Classification, link: Link, txLink: Link | null): boolean {
    if (c.summary.begins) return link.node.role !== 'primary' && txLink === null;
    return this.begin !== null && link === txLink && hasSavepointCommand(c);
  }

  /** Remembers how a read-write transaction began on a standby, and its savepoints. */
  track(sql: string, c: Classification, link: Link, txLink: Link | null): void {
    if (c.summary.begins && link.node.role !== 'primary' && txLink === null) {
      this.begin = sql;
      this.savepoints = [];
      return;
    }
    if (this.begin !== null && link === txLink && hasSavepointCommand(c)) this.savepoints.push(sql);
  }

  /** A transaction pgproxy deferred opened on a standby, with this BEGIN: it runs there until its first write. */
  opened(sql: string): void {
    this.begin = sql;
    this.savepoints = [];
  }

  /** Ends the standby part (pgproxy's COMMIT, unseen by the client); the primary part opens at the next statement. */
  moveToPrimary(standby: Link): void {
    standby.inject(COMMIT, OWED.injectedQuery);
    this.pendingBegin = [this.begin!, ...this.savepoints].join(';\n');
    this.begin = null;
    this.savepoints = [];
  }

  /** The BEGIN (and savepoints) to send `link` first, when the transaction is moving there. */
  takePendingBegin(link: Link): Buffer | null {
    if (this.pendingBegin === null || link.node.role !== 'primary') return null;
    const frame = queryMessage(this.pendingBegin);
    this.pendingBegin = null;
    return frame;
  }

  /** The transaction ended. */
  ended(): void {
    this.begin = null;
    this.savepoints = [];
  }
}

function hasSavepointCommand(c: Classification): boolean {
  for (const st of c.statements) {
    const op = st.tx?.op;
    if (op === 'savepoint' || op === 'release' || op === 'rollback_to') return true;
  }
  return false;
}
