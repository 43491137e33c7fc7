/**
 * One backend connection leased by a session: the replies it owes (a ReplyQueue), the header scan of what it
 * sends back, and what happened on it since the client's last ReadyForQuery. It reports upward only through
 * the LinkOwner interface it declares.
 */
import type { NodeState } from '../nodes/topology.js';
import type { BackendConnection, BackendOwner } from '../pool/backend.js';
import { parseErrorFields, readyForQuery } from '../wire/backend.js';
import { BackendCode, TxStatus } from '../wire/codes.js';
import { captureSet, ReplyScanner, type ReplyHandler } from '../wire/reply-scanner.js';
import { OWED, ReplyQueue, type LocalAnswer, type Owed } from './reply-queue.js';
import type { SegmentSetting } from './segment.js';

/** What a link tells the session that holds it. */
export interface LinkOwner {
  /** Backend bytes the client gets, in order. Returns true when they (views of a read buffer) were queued. */
  toClient(bytes: Buffer): boolean;
  /** A ReadyForQuery arrived, answering `unit` (null: one nobody asked for); the link's status is updated. */
  linkReady(link: Link, unit: Owed | null): void;
  /**
   * An ErrorResponse arrived; it is not forwarded yet (the owner decides). `injected`: it answers a statement
   * pgproxy sent itself (settings replay, its own BEGIN/COMMIT, the WAL-position query).
   */
  linkError(link: Link, body: Buffer, severity: string, code: string, injected: boolean): void;
  /** A NotificationResponse arrived; it is not forwarded yet (its pid may need rewriting). */
  linkNotification(link: Link, body: Buffer): void;
  /** pgproxy's own WAL-position query answered. */
  linkWalPosition(link: Link, lsn: string): void;
  /** The backend connection closed or failed. */
  linkLost(link: Link, error: Error | null): void;
  /** The backend socket drained after a write that filled it. */
  linkDrained(link: Link): void;
  /** A local answer is due: everything owed before it has reached the client. */
  linkLocal(link: Link, answer: LocalAnswer): void;
  /** `releaseAfterFeed` was set and the chunk that set it has been handled. */
  linkSettled(link: Link): void;
  /** The backend sent bytes that are not the protocol: the connection is destroyed after this. */
  linkMalformed(link: Link, err: Error): void;
}

const EMPTY = Buffer.alloc(0);
const CAPTURE_TYPES = [BackendCode.ReadyForQuery, BackendCode.ErrorResponse, BackendCode.NotificationResponse];
/** ErrorResponse and NotificationResponse bodies up to this size are inspected before forwarding (real ones are far smaller). */
const MAX_INSPECTED = 64 * 1024;

export class Link implements ReplyHandler, BackendOwner {
  readonly scanner: ReplyScanner;
  readonly queue = new ReplyQueue();
  private readonly capture = captureSet(...CAPTURE_TYPES);
  /** Transaction status from the backend's last ReadyForQuery. */
  status: number = TxStatus.Idle;
  /** The backend is in COPY IN (or COPY BOTH) mode. */
  copyIn = false;
  /** The client is still sending COPY data (its CopyDone/CopyFail not sent yet). */
  clientCopyOpen = false;
  /** Extended-protocol messages were sent since the last Sync: a backend left so skips to Sync or keeps a portal. */
  batchOpen = false;
  /** Transaction pooling: give this link back to its pool once the current inbound chunk is handled. */
  releaseAfterFeed = false;
  /** Statements the client closed elsewhere, to close here before this backend runs anything else. */
  pendingCloses: string[] | null = null;
  /**
   * The client unit under way copies data in (COPY FROM): the WAL-position query goes after its ReadyForQuery
   * (a message sent behind it would arrive while the backend is in COPY).
   */
  captureAfterUnit = false;
  /** How many of the session's recorded settings this backend has applied (see SessionSettings). */
  appliedSettings = 0;
  /** Which of the session's unnamed statements this backend holds (0: none of this session's). */
  unnamedGeneration = 0;

  // What happened since the client's last ReadyForQuery on this link (a "segment").
  /** Session settings sent in the segment (applied once it succeeds), or null. */
  segmentSettings: SegmentSetting[] | null = null;
  segmentError = false;
  segmentRollback = false;
  /** The segment changed the schema: the database's catalog facts must be reloaded. */
  segmentDdl = false;
  /** Transaction status before the segment. */
  statusBefore: number = TxStatus.Idle;

  /** The ReadyForQuery status of a client unit held until pgproxy's WAL-position query behind it is answered (0: none). */
  private heldReady = 0;
  /** A view of the backend chunk being handled was queued for the client (the read buffer must not be reused). */
  private kept = false;
  private runBuf: Buffer = EMPTY;
  private runStart = 0;
  private runEnd = 0;

  /** When the oldest unit still owed a reply was sent (0: none), and its SQL for the slow-statement log. */
  unitStartedAt = 0;
  unitSql = '';

  constructor(
    readonly conn: BackendConnection,
    readonly node: NodeState,
    private readonly owner: LinkOwner,
  ) {
    this.scanner = new ReplyScanner(this, this.capture);
    conn.owner = this;
  }

  /** Owes the client no reply and holds no open transaction, batch or COPY: safe to give back to a pool. */
  get settled(): boolean {
    return this.queue.pendingReady === 0 && this.status === TxStatus.Idle && !this.copyIn && !this.batchOpen && this.scanner.atBoundary;
  }

  expect(entry: Owed): void {
    this.queue.push(entry);
    if (entry === OWED.lsnQuery) this.capture[BackendCode.DataRow] = 1;
  }

  /**
   * Queues the client frame [start, end) of `buf` (a view valid until the chunk it came in is handled).
   * Contiguous frames of one chunk go out as one write, at `flush()` or before anything else is written here.
   */
  send(buf: Buffer, start: number, end: number): void {
    if (this.runBuf === buf && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.flush();
    this.runBuf = buf;
    this.runStart = start;
    this.runEnd = end;
  }

  /** Writes the queued client frames. Returns false when the backend's socket is full. */
  flush(): boolean {
    const buf = this.runBuf;
    if (buf === EMPTY) return true;
    this.runBuf = EMPTY;
    if (this.conn.closed) return true;
    return this.conn.write(this.runStart === 0 && this.runEnd === buf.length ? buf : buf.subarray(this.runStart, this.runEnd));
  }

  /** Forgets queued client frames (the session ended). */
  dropQueued(): void {
    this.runBuf = EMPTY;
  }

  /** Sends a frame of pgproxy's own, after the client frames queued before it, and records the reply it owes. */
  inject(frame: Buffer, entry: Owed): void {
    this.flush();
    this.conn.write(frame);
    this.expect(entry);
  }

  // ------------------------------------------------------------------ BackendOwner

  onBackendData(conn: BackendConnection, chunk: Buffer): boolean {
    this.node.bytesFromNode += chunk.length;
    this.kept = false;
    try {
      this.scanner.feed(chunk);
    } catch (err) {
      this.owner.linkMalformed(this, err as Error);
      conn.destroy();
      return this.kept;
    }
    if (this.releaseAfterFeed) this.owner.linkSettled(this);
    return this.kept;
  }

  onBackendClosed(_conn: BackendConnection, error: Error | null): void {
    this.owner.linkLost(this, error);
  }

  onBackendDrain(): void {
    this.owner.linkDrained(this);
  }

  // ------------------------------------------------------------------ ReplyHandler

  onReplyHeader(type: number, bodyLength: number): boolean {
    switch (type) {
      case BackendCode.ErrorResponse:
        if (!this.queue.forwards(type)) return false;
        this.queue.errorArrived();
        // Inspected (and forwarded or not) in onReplyMessage; an oversized one goes through as it is.
        return bodyLength > MAX_INSPECTED;
      case BackendCode.NotificationResponse:
        return this.queue.forwards(type) && bodyLength > MAX_INSPECTED;
      case BackendCode.CopyInResponse:
      case BackendCode.CopyBothResponse:
        this.copyIn = true;
        this.clientCopyOpen = this.queue.copyInStarted();
        return this.queue.forwards(type);
      default:
        return this.queue.forwards(type);
    }
  }

  onReplyMessage(type: number, body: Buffer): void {
    switch (type) {
      case BackendCode.ReadyForQuery: {
        const unit = this.queue.ready();
        this.copyIn = false;
        this.status = body[0]!;
        if (unit !== null && unit.holdsReady) this.heldReady = this.status;
        this.owner.linkReady(this, unit);
        if (unit === OWED.lsnQuery) {
          if (!this.queue.has('lsn')) this.capture[BackendCode.DataRow] = 0;
          if (this.heldReady !== 0) {
            // The position of the unit before it is known now: the client may hear that unit is done.
            const status = this.heldReady;
            this.heldReady = 0;
            this.owner.toClient(readyForQuery(status));
          }
        }
        for (let local = this.queue.takeDueLocal(); local !== null; local = this.queue.takeDueLocal()) this.owner.linkLocal(this, local);
        return;
      }
      case BackendCode.ErrorResponse: {
        const head = this.queue.peek();
        // The statement pgproxy sent to fail a transaction failed, as meant.
        if (head === OWED.failTransaction) return;
        const f = parseErrorFields(body);
        const injected = head !== null && head.injected && (head.kind === 'query' || head.kind === 'lsn');
        this.owner.linkError(this, body, f.severity, f.code, injected);
        return;
      }
      case BackendCode.NotificationResponse:
        this.owner.linkNotification(this, body);
        return;
      case BackendCode.DataRow:
        if (this.queue.peek() === OWED.lsnQuery) {
          // One text column: the LSN as 'X/Y'.
          const len = body.readInt32BE(2);
          if (len > 0) this.owner.linkWalPosition(this, body.toString('latin1', 6, 6 + len));
        }
        return;
      default:
        return;
    }
  }

  onForward(bytes: Buffer): void {
    if (this.owner.toClient(bytes)) this.kept = true;
  }
}
