/**
 * The backend connections a session holds, one per node at most: which node a unit runs on (the primary, or the
 * session's read node by weight, lag and read-your-writes), acquiring a connection there from its pool, moving work
 * from one link to another without reordering replies, giving links back, and what a lost link leaves behind.
 */
import type { ProxyContext } from '../context.js';
import { BackendError, NodeConnectionError, ProxyError, isNodeUnavailableState } from '../errors.js';
import type { NodeState } from '../nodes/topology.js';
import type { BackendConnection } from '../pool/backend.js';
import { sendCancel } from '../pool/cancel.js';
import type { Pool } from '../pool/pool.js';
import { canRead, NO_LAG_LIMITS, pickReadNode, readable } from '../router/balancer.js';
import { Reason, type Target } from '../router/reasons.js';
import type { ScramClientKeys } from '../wire/auth/scram.js';
import { SqlState, TxStatus } from '../wire/codes.js';
import type { Framer } from '../wire/framer.js';
import { SYNC } from '../wire/frontend.js';
import { Link, type LinkOwner } from './link.js';
import { OWED } from './reply-queue.js';
import type { SessionSettings } from './settings.js';

/** What the link set tells its session. */
export interface LinksHost {
  /** A connection the session waited for was acquired, or could not be: re-run the held message. */
  acquired(): void;
  readonly log: import('pino').Logger;
}

export interface PoolKey {
  database: string;
  user: string;
  secret: string;
  scramKeys: ScramClientKeys | null;
}

/** What a read needs of the node that serves it, beyond being up and following the primary (filled per read). */
export interface ReadNeeds {
  /** The node must have replayed this position (read-your-writes, pgproxy.min_lsn, a min_lsn hint). */
  minLsn: bigint | null;
  /** A staleness bound of the session or the statement, ms (its measured lag plus the measurement's age); 0 = none. */
  boundMs: number;
  /** A bound of 0: only a standby measured caught up at or after this time (Date.now()); 0 = none. */
  freshSince: number;
  /** pgproxy.route = standby (or its hint): only standbys. */
  onlyStandbys: boolean;
  /** pgproxy.route = primary: the primary. */
  primary: boolean;
  /** No standby meets the needs now: ask to wait for one to catch up (readWait) instead of using the primary. */
  mayWait: boolean;
}

export function noNeeds(): ReadNeeds {
  return { minLsn: null, boundMs: 0, freshSince: 0, onlyStandbys: false, primary: false, mayWait: false };
}

/** What a lost link leaves for the client: replies it is owed, and whether a transaction or batch died with it. */
export interface LostLink {
  owed: number;
  wasInTx: boolean;
  midBatch: boolean;
}

export class Links {
  private readonly byNode = new Map<number, Link>();
  /** The link of the current or last unit: where messages without routing information go. */
  cur: Link | null = null;
  /** Node whose connection is being acquired (at most one at a time; the session waits meanwhile). */
  private acquiringNode: number | null = null;
  private acquireError: { nodeId: number; error: Error } | null = null;
  /** The link whose part of a batch pgproxy ended with its own Sync, to move the rest elsewhere. */
  private splitFrom: Link | null = null;
  /** The link with client frames queued but not written yet (one write per inbound chunk). */
  private runLink: Link | null = null;

  /** The session's load-balance node for reads (pgpool's session-level load balancing), chosen as it starts. */
  private readNodeId: number | null = null;
  /** The node of the session's last read (SHOW POOL_NODES when every read picks its node). */
  private lastReadNodeId: number | null = null;
  /** Why the session's reads are tied to the primary (an object living in its primary backend session). */
  private pinned: string | null = null;
  /** Why the last read went where it went (Read, or why not a standby): the routed-reasons counter. */
  readReason: Reason = Reason.Read;
  /** The last read asked to wait for a standby to catch up (forRoute returned null for it). */
  readWait = false;
  /** The limits of the read being placed (reused: no allocation per read). */
  private readonly limits: Required<import('../router/balancer.js').LagLimits> = { maxBytes: 0, maxMs: 0, boundMs: 0, now: 0, freshSince: 0 };
  /** Set while the session itself drops links to a node that was marked down (not a new failure to report). */
  private closingNode = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly host: LinksHost,
    private readonly owner: LinkOwner,
    private readonly key: PoolKey,
    private readonly settings: SessionSettings,
    /** Where a redirect rule sends this session's reads: 'primary', 'standby', a node id, or null (no rule). */
    private readonly readPreference: 'primary' | 'standby' | number | null,
  ) {
    // As pgpool does, the session's read node is chosen when it starts (SHOW POOL_NODES shows it before any read).
    if (this.sessionBalance && readPreference !== 'primary') {
      this.readNodeId = pickReadNode(ctx.topology.nodes, this.limitsFor(noNeeds()), null, readPreference === 'standby')?.id ?? null;
    }
  }

  /** Reads keep the node the session started with (load_balance: session), rather than picking one each. */
  private get sessionBalance(): boolean {
    const routing = this.ctx.config.routing;
    return routing.load_balance === 'session' && !routing.prefer_lower_delay;
  }

  get acquiring(): boolean {
    return this.acquiringNode !== null;
  }

  /** Some link owes the client replies. */
  get busy(): boolean {
    for (const l of this.byNode.values()) if (l.queue.pendingReady > 0) return true;
    return false;
  }

  /**
   * The node SHOW POOL_NODES reports as this session's load_balance_node: where its reads go. With load_balance:
   * statement (or prefer_lower_delay) each read picks its node: the node of the last read (none before the first).
   */
  get loadBalanceNodeId(): number | null {
    if (this.pinned !== null || this.readPreference === 'primary') return this.ctx.topology.primary()?.id ?? null;
    const preferred = typeof this.readPreference === 'number' ? this.ctx.topology.nodes[this.readPreference] : undefined;
    if (preferred !== undefined && readable(preferred)) return preferred.id;
    return this.sessionBalance ? this.readNodeId : this.lastReadNodeId;
  }

  all(): IterableIterator<Link> {
    return this.byNode.values();
  }

  /** Reads of the rest of the session go to the primary, where an object of its backend session lives. */
  pin(reason: string): void {
    if (this.pinned !== null) return;
    this.pinned = reason;
    this.host.log.debug({ reason }, 'reads pinned to the primary for the rest of the session');
  }

  /** The client has sent this link part of a batch (no Sync yet) and may be waiting for its replies. */
  inOpenBatch(link: Link): boolean {
    return link.batchOpen || this.splitFrom === link;
  }

  /** `link`'s ReadyForQuery ended the part of a batch pgproxy moved elsewhere. */
  endedSplitPart(link: Link): boolean {
    if (link !== this.splitFrom) return false;
    this.splitFrom = null;
    return true;
  }

  // ------------------------------------------------------------------ choosing

  /**
   * The link for a unit with this target, or null while the session must wait (for a connection, for the current
   * link to finish, or, when `readWait` is set, for a standby to catch up). Throws errors meant for the client.
   */
  forRoute(target: Target, withinUnit: boolean, needs: ReadNeeds): Link | null {
    this.readReason = Reason.Read;
    this.readWait = false;
    const cur = this.cur;
    // Inside a batch, a statement that can run where the batch runs stays there: the batch is one implicit
    // transaction, and splitting it needlessly would break that.
    if (withinUnit && cur !== null && (target !== 'primary' || cur.node.role === 'primary') && cur.node.up) return cur;
    if (target === 'any' && cur !== null && !cur.conn.closed && cur.node.up) return this.switchTo(cur);
    if (target === 'primary' || needs.primary) {
      if (target !== 'primary') this.readReason = Reason.Redirect;
      return this.onNode(this.primaryNode());
    }
    const node = this.readNode(needs);
    if (node === null) return null;
    this.lastReadNodeId = node.id;
    return this.onNode(node);
  }

  /** The lag limits of a read with these needs (the configured ones and the session's own). */
  private limitsFor(needs: ReadNeeds): Required<import('../router/balancer.js').LagLimits> {
    const l = this.limits;
    const configured = this.ctx.lagLimits;
    l.maxBytes = configured.maxBytes;
    l.maxMs = configured.maxMs;
    l.boundMs = needs.boundMs;
    l.freshSince = needs.freshSince;
    l.now = needs.boundMs > 0 ? Date.now() : 0;
    return l;
  }

  /** Whether some standby could serve a read with these needs now (a waiting read's condition). */
  standbyQualifies(needs: ReadNeeds): boolean {
    const nodes = this.ctx.topology.nodes;
    const limits = this.limitsFor(needs);
    for (const n of nodes) if (n.weight > 0 && n.role === 'standby' && canRead(n, limits, needs.minLsn, true)) return true;
    return false;
  }

  currentOrPrimary(): Link | null {
    if (this.cur !== null && !this.cur.conn.closed) return this.cur;
    return this.onNode(this.primaryNode());
  }

  private primaryNode(): NodeState {
    const topo = this.ctx.topology;
    const primary = topo.primary();
    if (primary) return primary;
    if (topo.primaryCount() > 1) throw new ProxyError(SqlState.CannotConnectNow, 'more than one node claims to be primary; writes are refused until this resolves');
    throw new ProxyError(SqlState.CannotConnectNow, 'no primary available');
  }

  /** The node of a read; null when the read should wait for a standby to catch up (readWait is set). */
  private readNode(needs: ReadNeeds): NodeState | null {
    const minLsn = needs.minLsn;
    if (this.pinned !== null) {
      this.readReason = Reason.Pinned;
      return this.primaryNode();
    }
    if (this.readPreference === 'primary') {
      this.readReason = Reason.Redirect;
      return this.primaryNode();
    }
    const nodes = this.ctx.topology.nodes;
    if (typeof this.readPreference === 'number') {
      const n = nodes[this.readPreference];
      if (n && readable(n)) {
        this.readReason = Reason.Redirect;
        return n;
      }
    }
    const onlyStandbys = this.readPreference === 'standby' || needs.onlyStandbys;
    const limits = this.limitsFor(needs);
    const routing = this.ctx.config.routing;
    const sessionBalance = this.sessionBalance;
    if (sessionBalance && this.readNodeId !== null) {
      const n = nodes[this.readNodeId];
      if (n !== undefined && canRead(n, limits, minLsn, onlyStandbys) && (n.weight > 0 || noneReadable(nodes, limits, minLsn, onlyStandbys))) return n;
    }
    const picked = pickReadNode(nodes, limits, minLsn, onlyStandbys, Math.random, routing.prefer_lower_delay);
    if (picked === null) {
      this.readReason = !noneReadable(nodes, NO_LAG_LIMITS, null, onlyStandbys) ? (minLsn !== null && !noneReadable(nodes, limits, null, onlyStandbys) ? Reason.ReadYourWrites : Reason.Lag) : Reason.NoStandby;
      if (needs.mayWait && this.readReason !== Reason.NoStandby) {
        this.readWait = true;
        return null;
      }
      return this.primaryNode();
    }
    // Only a node picked by weight becomes the session's load-balance node (not a fallback to the primary).
    if (sessionBalance && (minLsn === null || picked.role !== 'primary')) this.readNodeId = picked.id;
    return picked;
  }

  /** The link on `node`, acquiring one when there is none (null: wait; the host hears when to retry). */
  private onNode(node: NodeState): Link | null {
    const existing = this.byNode.get(node.id);
    if (existing !== undefined && !existing.conn.closed) return this.switchTo(existing);
    if (this.acquireError !== null && this.acquireError.nodeId === node.id) {
      const err = this.acquireError.error;
      this.acquireError = null;
      throw err;
    }
    if (this.acquiringNode !== null) return null;
    // Before taking a new connection, let the current one finish what it owes the client.
    if (this.cur !== null && this.cur.queue.pendingReady > 0) return this.switchTo(null);
    const pool = this.pool(node);
    this.acquiringNode = node.id;
    const waitStart = performance.now();
    pool.acquire().then(
      (conn) => {
        this.acquiringNode = null;
        this.ctx.stats.poolWait.observe(performance.now() - waitStart);
        if (this.closed) {
          pool.release(conn, { reusable: true, inTransaction: false, reset: false });
          return;
        }
        this.add(node, conn);
        this.host.acquired();
      },
      (err: Error) => {
        this.acquiringNode = null;
        this.noteNodeError(node, err);
        this.acquireError = { nodeId: node.id, error: toClientError(node, err) };
        this.host.acquired();
      },
    );
    return null;
  }

  /**
   * Ends the part of the open batch sent on `link` with pgproxy's own Sync (its ReadyForQuery is swallowed; an error
   * in that part makes the rest of the batch skipped, as PostgreSQL skips to Sync).
   */
  endBatchPart(link: Link): void {
    link.inject(SYNC, OWED.injectedSync);
    link.batchOpen = false;
    this.splitFrom = link;
  }

  /** Moves work to `link` (null: only wait for the current link to finish). Returns null while waiting. */
  switchTo(link: Link | null): Link | null {
    const cur = this.cur;
    if (link !== null && (cur === link || cur === null || cur.conn.closed)) {
      this.cur = link;
      return link;
    }
    // Leaving a batch midway: end its part on the current link with a Sync whose reply the client never sees.
    if (cur !== null && cur.batchOpen && link !== null) this.endBatchPart(cur);
    if (cur !== null && cur.queue.pendingReady > 0) return null;
    if (link === null) return null;
    this.cur = link;
    return link;
  }

  private add(node: NodeState, conn: BackendConnection): Link {
    const link = new Link(conn, node, this.owner);
    this.byNode.set(node.id, link);
    this.settings.adopt(link);
    return link;
  }

  pool(node: NodeState): Pool {
    const k = this.key;
    const pool = this.ctx.pools.get(node, k.database, k.user, k.secret);
    if (k.scramKeys !== null) pool.setScramKeys(k.scramKeys);
    return pool;
  }

  // ------------------------------------------------------------------ writing client frames

  /**
   * Forwards the framer's current frame to `link` unchanged. Consecutive frames of one chunk for the same link go
   * out as one view of the chunk, in a single write when the chunk has been handled (or before anything else is
   * written to that link).
   */
  forward(link: Link, f: Framer): void {
    link.node.bytesToNode += f.end - f.start;
    if (this.runLink !== link && this.runLink !== null && !this.runLink.flush()) this.blockedWrite = true;
    this.runLink = link;
    link.send(f.buf, f.start, f.end);
  }

  /** Writes the queued frames. Returns false when a backend's socket filled up (stop reading the client). */
  flush(): boolean {
    const link = this.runLink;
    this.runLink = null;
    const ok = (link === null || link.flush()) && !this.blockedWrite;
    this.blockedWrite = false;
    return ok;
  }

  private blockedWrite = false;

  /** Whether some backend's socket is still full (the client's input stays paused until it drains). */
  anyBackendFull(): boolean {
    for (const l of this.byNode.values()) if (!l.conn.closed && l.conn.socket.writableNeedDrain) return true;
    return false;
  }

  /** Stops (or resumes) reading every backend while the client's socket is full. */
  pauseBackends(paused: boolean): void {
    for (const l of this.byNode.values()) {
      if (paused) l.conn.socket.pause();
      else l.conn.socket.resume();
    }
  }

  // ------------------------------------------------------------------ giving links back, losing them

  /** Transaction pooling: `link` may go back to its pool once the current inbound chunk is handled. */
  mayRelease(link: Link, txLink: Link | null): boolean {
    if (link.queue.pendingReady > 0 || link.status !== TxStatus.Idle || link === txLink || (link.batchOpen && this.cur === link)) return false;
    // Objects living in one backend session keep the session on its primary connection.
    return !(this.pinned !== null && link.node.role === 'primary');
  }

  /**
   * Gives an idle link back to its pool: with transaction pooling, keeping the session's settings on record; after
   * the session ended, once pgproxy's own statements on it were answered (then reset like releaseAll does).
   */
  release(link: Link): void {
    link.releaseAfterFeed = false;
    if (!link.settled || this.byNode.get(link.node.id) !== link) return;
    this.byNode.delete(link.node.id);
    if (this.cur === link) this.cur = null;
    if (this.runLink === link) this.flush();
    if (this.closed) return this.giveBack(link);
    link.conn.owner = null;
    this.settings.released(link);
    // Paused while this client's socket was full: the next session must hear its backend.
    link.conn.socket.resume();
    this.pool(link.node).release(link.conn, { reusable: !link.conn.closed, inTransaction: false, reset: false });
  }

  private closed = false;

  /**
   * The session ends: every link goes back to its pool, reset there, or closed when it cannot be reused. A link that
   * owes the client nothing but still runs pgproxy's own statements (a WAL-position query) goes back once they are
   * answered.
   */
  releaseAll(): void {
    this.closed = true;
    this.runLink = null;
    for (const link of [...this.byNode.values()]) {
      link.dropQueued(); // nothing more goes to backends once the session ends
      // Backends paused while the client's socket was full are read again: there is no client to wait for now,
      // pgproxy's own statements on them must be answered, and the pool must never hand out a paused socket.
      link.conn.socket.resume();
      const q = link.queue;
      if (q.pendingReady > 0 && q.clientPendingReady === 0 && q.localPendingReady === 0 && !link.copyIn && !link.batchOpen && !link.conn.closed) {
        link.releaseAfterFeed = true;
        continue;
      }
      this.byNode.delete(link.node.id);
      this.giveBack(link);
    }
    this.cur = null;
  }

  private giveBack(link: Link): void {
    const conn = link.conn;
    conn.owner = null;
    // A backend left mid-batch skips to Sync (or keeps a portal's implicit transaction): never reuse it.
    const clean = link.queue.pendingReady === 0 && !link.copyIn && !link.batchOpen && !conn.closed;
    const inTransaction = link.status !== TxStatus.Idle;
    // Only the startup parameters (or nothing) on it: it goes back as it is, to serve the same parameters again.
    const reset = inTransaction || (conn.stateTag !== null && conn.stateTag !== this.settings.startupSql);
    this.pool(link.node).release(conn, { reusable: clean, inTransaction, reset });
  }

  /** A link's connection closed: forget it, and say what the client was owed (null: nothing to tell it). */
  lost(link: Link, error: Error | null): LostLink | null {
    if (this.byNode.get(link.node.id) !== link) return null;
    this.byNode.delete(link.node.id);
    if (this.runLink === link) this.runLink = null;
    // Gone for good: the pool stops counting it (and may open another for whoever waits).
    link.conn.owner = null;
    this.pool(link.node).release(link.conn, { reusable: false, inTransaction: false, reset: false });
    if (this.closed) return null;
    if (!this.closingNode) this.ctx.reportNodeFailure(link.node.id, error?.message ?? 'connection lost');
    const midBatch = link.batchOpen && this.cur === link;
    if (link === this.cur) this.cur = null;
    if (this.splitFrom === link) this.splitFrom = null;
    const wasInTx = link.status !== TxStatus.Idle;
    const owed = link.queue.clientPendingReady;
    if (owed === 0 && !wasInTx && !midBatch) return null;
    return { owed, wasInTx, midBatch };
  }

  /** The node was marked down: statements in flight there fail now rather than hang, and its link is dropped. */
  nodeDown(nodeId: number): void {
    const link = this.byNode.get(nodeId);
    if (link === undefined) return;
    this.closingNode = true;
    try {
      link.conn.destroy();
    } finally {
      this.closingNode = false;
    }
  }

  /** Forwards a CancelRequest to the node running the session's statement. */
  cancel(): void {
    const link = this.cur;
    if (link === null || link.queue.pendingReady === 0) return;
    sendCancel(link.conn.node, link.conn.pid, link.conn.secretKey);
  }

  private noteNodeError(node: NodeState, err: Error): void {
    if (err instanceof NodeConnectionError || (err instanceof BackendError && isNodeUnavailableState(err.sqlstate))) {
      this.ctx.reportNodeFailure(node.id, err.message);
    }
  }

  /** For the admin console: the backend connections held. */
  describe(): { node: string; pid: number; active: boolean; connectionId: number }[] {
    return [...this.byNode.values()].map((l) => ({ node: l.node.name, pid: l.conn.pid, active: l.queue.pendingReady > 0, connectionId: l.conn.id }));
  }
}

/** No node with a weight can serve a read under these limits. */
function noneReadable(nodes: readonly NodeState[], limits: ProxyContext['lagLimits'], minLsn: bigint | null, onlyStandbys: boolean): boolean {
  for (const n of nodes) if (n.weight > 0 && canRead(n, limits, minLsn, onlyStandbys)) return false;
  return true;
}

function toClientError(node: NodeState, err: Error): Error {
  if (err instanceof ProxyError) return err;
  if (err instanceof BackendError) return new ProxyError(err.sqlstate, err.message);
  return new ProxyError(SqlState.ConnectionFailure, `could not connect to node ${node.name}: ${err.message}`);
}
