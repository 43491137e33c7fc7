/**
 * Backend connections for one (node, database, user): an idle stack, FIFO waiters, a size limit, and a reset
 * before a returned connection is reused. Limits shared with other pools (per node, user, database) are the
 * gate's: the pool asks it before opening a connection and tells it when one closes or goes idle.
 */
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';
import { SqlState } from '../wire/codes.js';
import type { ScramClientKeys } from '../wire/auth/scram.js';
import { BackendConnection, type BackendTls, type LoginSpec, type NodeAddress } from './backend.js';
import { runInternalQuery } from './internal-query.js';

export interface PoolLimits {
  maxPerNode: number;
  minIdle: number;
  /** 0 = wait as long as it takes. */
  acquireTimeoutMs: number;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  connectTimeoutMs: number;
  tls?: BackendTls;
}

/** Limits across pools (per node, per user, per database); the manager implements it. */
export interface ConnectionGate {
  /**
   * Whether `pool` may open one more connection; counts it when it returns true. With `evict`, an idle connection
   * of another pool under the same full limit is closed to make room (PgBouncer does the same).
   */
  tryOpen(pool: Pool, evict: boolean): boolean;
  /** A connection counted by tryOpen is gone. */
  closed(pool: Pool): void;
  /** A connection of `pool` went idle: a pool waiting under a shared limit may take its place. */
  idled(pool: Pool): void;
  /** `pool`'s queue of waiting sessions became non-empty (true) or empty (false). */
  queueChanged(pool: Pool, waiting: boolean): void;
  /** Which shared limit keeps `pool` from opening a connection now, for the 53300 message; null when none does. */
  limitReached(pool: Pool): string | null;
  /**
   * A session of another pool has waited longer than `pool`'s oldest for a slot under a shared limit that closing
   * one of `pool`'s connections would free: the slot goes to it (first come, first served across pools).
   */
  olderWaiterElsewhere(pool: Pool): boolean;
}

interface Waiter {
  since: number;
  resolve: (conn: BackendConnection) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class Pool {
  private readonly idle: BackendConnection[] = [];
  private readonly waiters: Waiter[] = [];
  /** Connections leased, being opened, or being reset: everything counted against the limit but not idle. */
  private busy = 0;
  /** Every open connection of the pool (idle, leased, being reset), for SHOW SERVERS. */
  private readonly open_ = new Set<BackendConnection>();
  private closed = false;

  constructor(
    readonly node: NodeAddress,
    readonly user: string,
    readonly database: string,
    private secret: string,
    private limits: PoolLimits,
    private readonly log: Logger,
    private readonly gate: ConnectionGate,
  ) {}

  get currentSecret(): string {
    return this.secret;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  get activeCount(): number {
    return this.busy;
  }

  get waitingCount(): number {
    return this.waiters.length;
  }

  /** How long the oldest waiting session has waited. */
  get maxWaitMs(): number {
    return this.waiters.length === 0 ? 0 : Date.now() - this.waiters[0]!.since;
  }

  /** Below its own size limit: only limits shared with other pools can keep it from opening a connection. */
  get mayOpen(): boolean {
    return !this.closed && this.busy < this.limits.maxPerNode;
  }

  /** When the oldest waiting session began to wait (Date.now()); Infinity when none waits. */
  get oldestWaitSince(): number {
    return this.waiters.length === 0 ? Infinity : this.waiters[0]!.since;
  }

  /** The open connections (idle, leased, being reset), for SHOW SERVERS. */
  connections(): IterableIterator<BackendConnection> {
    return this.open_.values();
  }

  /** A connection past max_lifetime_ms: it is closed when it comes back instead of being reused. */
  expired(conn: BackendConnection): boolean {
    return this.limits.maxLifetimeMs > 0 && Date.now() - conn.createdAt > this.limits.maxLifetimeMs;
  }

  /** SCRAM pass-through keys of this user, once a client has authenticated with SCRAM against a verifier. */
  private scramKeys: ScramClientKeys | null = null;

  updateLimits(limits: PoolLimits, secret: string): void {
    this.limits = limits;
    this.secret = secret;
  }

  setScramKeys(keys: ScramClientKeys): void {
    this.scramKeys = keys;
  }

  acquire(): Promise<BackendConnection> {
    if (this.closed) return Promise.reject(new ProxyError(SqlState.ConnectionFailure, `node ${this.node.name} is not available`));
    const conn = this.idle.pop();
    if (conn) {
      this.busy++;
      return Promise.resolve(this.lease(conn));
    }
    if (this.waiters.length === 0 && this.busy < this.limits.maxPerNode && this.gate.tryOpen(this, false)) return this.open();
    // In line behind the sessions already waiting; served at once if the limits allow it now (after a reload).
    const queued = new Promise<BackendConnection>((resolve, reject) => {
      const timeoutMs = this.limits.acquireTimeoutMs;
      const waiter: Waiter = { since: Date.now(), resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        waiter.timer = setTimeout(() => {
          const limit = this.busy >= this.limits.maxPerNode ? `pool.max_per_node (${this.limits.maxPerNode})` : (this.gate.limitReached(this) ?? 'a limit');
          this.removeWaiter(waiter);
          reject(new ProxyError(SqlState.TooManyConnections, `no connection to ${this.node.name} free within ${timeoutMs} ms (${limit} reached; pool.acquire_timeout_ms)`));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
      if (this.waiters.length === 1) this.gate.queueChanged(this, true);
    });
    while (this.serveWaiter());
    return queued;
  }

  private nextWaiter(): Waiter | undefined {
    const w = this.waiters.shift();
    if (w !== undefined) {
      clearTimeout(w.timer);
      if (this.waiters.length === 0) this.gate.queueChanged(this, false);
    }
    return w;
  }

  private removeWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    if (this.waiters.length === 0) this.gate.queueChanged(this, false);
  }

  private lease(conn: BackendConnection): BackendConnection {
    conn.poolState = 'leased';
    conn.leasedAt = Date.now();
    return conn;
  }

  /** Opens a connection; the caller has counted it with the gate. */
  private open(): Promise<BackendConnection> {
    this.busy++;
    const login: LoginSpec = { user: this.user, database: this.database, secret: this.secret, connectTimeoutMs: this.limits.connectTimeoutMs, ...(this.limits.tls ? { tls: this.limits.tls } : {}), scramKeys: this.scramKeys };
    return BackendConnection.connect(this.node, login).then(
      (conn) => {
        conn.onClosed = (c) => this.forget(c);
        this.open_.add(conn);
        return this.lease(conn);
      },
      (err: Error) => {
        this.busy--;
        this.gate.closed(this);
        this.serveWaiter();
        throw err;
      },
    );
  }

  /**
   * Returns a connection. A connection inside a transaction is rolled back; with `reset` (or inside a transaction)
   * it runs DISCARD ALL, so that the next client finds it as a new connection would be. One that cannot be reset,
   * or has outlived max_lifetime_ms, is closed instead. Without `reset`, whatever state tag it carries stays.
   */
  release(conn: BackendConnection, state: { reusable: boolean; inTransaction: boolean; reset: boolean }): void {
    conn.owner = null;
    if (!state.reusable || conn.closed || this.closed || this.expired(conn)) {
      this.discard(conn);
      return;
    }
    if (!state.reset && !state.inTransaction) {
      this.putIdle(conn);
      return;
    }
    conn.poolState = 'reset';
    runInternalQuery(conn, state.inTransaction ? 'ROLLBACK; DISCARD ALL' : 'DISCARD ALL', this.limits.connectTimeoutMs).then(
      () => {
        conn.prepared.clear();
        conn.stateTag = null;
        this.putIdle(conn);
      },
      (err: Error) => {
        this.log.debug({ node: this.node.name, err: err.message }, 'backend reset failed; closing it');
        this.discard(conn);
      },
    );
  }

  private putIdle(conn: BackendConnection): void {
    // A connection whose reset (or opening) finished after the pool was closed must not stay open behind it.
    if (conn.closed || this.closed) return this.discard(conn);
    conn.lastReleasedAt = Date.now();
    // Under a full shared limit, a session of another pool that has waited longer takes the slot (this
    // connection is closed for it) rather than this pool's next waiter.
    if (this.waiters.length > 0 && this.gate.olderWaiterElsewhere(this)) return this.discard(conn);
    const waiter = this.nextWaiter();
    if (waiter) {
      waiter.resolve(this.lease(conn));
      return;
    }
    this.busy--;
    conn.poolState = 'idle';
    this.idle.push(conn);
    this.gate.idled(this);
  }

  private discard(conn: BackendConnection): void {
    this.busy--;
    this.closeSlot(conn);
    this.serveWaiter();
  }

  /**
   * Closes a connection no longer idle or leased. Limits shared with other pools count it until its backend is
   * gone, so that a connection opened in its place never finds the node's max_connections taken by it.
   */
  private closeSlot(conn: BackendConnection): void {
    conn.onClosed = null;
    this.open_.delete(conn);
    void conn.terminateAndWait(this.limits.connectTimeoutMs).then(() => this.gate.closed(this));
  }

  /** A connection closed on its own (idle one lost, or a leased one whose owner handles the error). */
  private forget(conn: BackendConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) {
      this.idle.splice(i, 1);
      this.open_.delete(conn);
      this.gate.closed(this);
    }
    // A leased connection stays counted as busy until its owner releases it (release() discards closed ones).
  }

  /** Opens a connection for the first waiter, if the limits allow one now; false when none was served. */
  serveWaiter(): boolean {
    if (this.waiters.length === 0 || this.busy >= this.limits.maxPerNode || this.closed) return false;
    if (!this.gate.tryOpen(this, true)) return false;
    const waiter = this.nextWaiter()!;
    this.open().then(waiter.resolve, waiter.reject);
    return true;
  }

  /** Keeps `pool.min_idle` warm connections (called by the manager's sweep; nodes that are down are skipped). */
  warm(): void {
    if (this.closed || this.limits.minIdle <= 0) return;
    const missing = Math.min(this.limits.minIdle - this.idle.length, this.limits.maxPerNode - this.busy - this.idle.length);
    for (let i = 0; i < missing; i++) {
      // Warm connections never push out another pool's.
      if (!this.gate.tryOpen(this, false)) return;
      this.open().then(
        (conn) => this.putIdle(conn),
        (err: Error) => this.log.debug({ node: this.node.name, err: err.message }, 'could not open a warm connection'),
      );
    }
  }

  /** Closes idle connections past idle_timeout_ms or max_lifetime_ms. */
  sweep(now: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i]!;
      const idleTooLong = this.limits.idleTimeoutMs > 0 && now - conn.lastReleasedAt > this.limits.idleTimeoutMs;
      if (idleTooLong || this.expired(conn)) {
        this.idle.splice(i, 1);
        this.closeSlot(conn);
      }
    }
  }

  /**
   * Closes the longest-idle connection to make room for another pool's session; resolves once its backend is gone.
   * The gate, which asked, does the counting. Null when no connection is idle.
   */
  dropIdle(): Promise<void> | null {
    const conn = this.idle.shift();
    if (conn === undefined) return null;
    conn.onClosed = null;
    this.open_.delete(conn);
    return conn.terminateAndWait(this.limits.connectTimeoutMs);
  }

  /** Closes idle connections (the node went down, or the proxy stops). Leased ones are closed by their sessions. */
  closeIdle(): void {
    for (const conn of this.idle.splice(0)) this.closeSlot(conn);
  }

  close(): void {
    this.closed = true;
    this.closeIdle();
    for (let w = this.nextWaiter(); w !== undefined; w = this.nextWaiter()) {
      w.reject(new ProxyError(SqlState.AdminShutdown, 'pgproxy is shutting down', 'FATAL'));
    }
  }
}
