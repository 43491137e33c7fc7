/**
 * The client's view of its transaction, shared by the routing loop (which sends work) and the replies (which
 * learn the outcome). The backend's ReadyForQuery status is the authority; pgproxy states a status itself only
 * where no backend is involved: a BEGIN it answered and has not sent yet (deferred to the transaction's first
 * statement, so that the transaction runs where its access mode allows), a COMMIT or ROLLBACK of such a
 * transaction, and a transaction whose backend was lost (kept failed until the client ends it).
 */
import type { ProxyError } from '../errors.js';
import type { Isolation } from '../router/classify/index.js';
import { TxStatus } from '../wire/codes.js';
import type { Link } from './link.js';

/** A BEGIN pgproxy answered itself, to be sent on the node its transaction's first statement chooses. */
export interface DeferredBegin {
  /** The client's BEGIN, as a Query to inject there. */
  readonly frame: Buffer;
  /** Its text (split transactions recreate it on the primary). */
  readonly sql: string;
  /** READ ONLY (true), READ WRITE (false), or not given (null: the session's default, unless SET TRANSACTION decides). */
  readonly readOnly: boolean | null;
  /** The isolation level given, or null (the session's default, unless SET TRANSACTION decides). */
  readonly isolation: Isolation | null;
}

export class TxState {
  /** Link of the open transaction (its last client-visible ReadyForQuery said T or E). */
  link: Link | null = null;
  /** Status from the backend's last client-visible ReadyForQuery. */
  status: number = TxStatus.Idle;
  /** The transaction lost its backend: statements get 25P02 until the client ends it. */
  aborted = false;
  /** The backend of a transaction the client was idle in was lost: its next statement is told so. */
  lostError: ProxyError | null = null;
  /** An extended batch failed in pgproxy itself (or in an earlier part of it): everything up to Sync is discarded. */
  skipToSync = false;
  /** A BEGIN answered and not sent yet. */
  deferred: DeferredBegin | null = null;
  /** The open transaction may have written (its COMMIT is followed by the WAL-position query). */
  wrote = false;

  /** The status the client was (or will be) told for the point reached now. */
  get clientStatus(): number {
    if (this.aborted) return TxStatus.Failed;
    if (this.deferred !== null) return TxStatus.InTransaction;
    return this.status;
  }

  /**
   * An error pgproxy raised reaches the client: an open transaction is failed from here on, as any error fails it
   * in PostgreSQL (its backend, if any, was sent a failing statement). Returns the status to report with it.
   */
  failed(): number {
    const status = this.clientStatus;
    if (status !== TxStatus.InTransaction) return status;
    this.status = TxStatus.Failed;
    // The client's next segment there starts in a failed transaction (its COMMIT rolls back).
    if (this.link !== null) this.link.statusBefore = TxStatus.Failed;
    return TxStatus.Failed;
  }

  /** Inside a transaction, as the client sees it. */
  get open(): boolean {
    return this.clientStatus !== TxStatus.Idle;
  }
}
