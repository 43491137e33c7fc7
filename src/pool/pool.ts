/**
 * Backend connections for one (node, database, user): an idle stack, FIFO waiters, a size limit, and a reset
 * before a returned connection is reused.
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
  acquireTimeoutMs: number;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  connectTimeoutMs: number;
  tls?: BackendTls;
}

/** Limits across pools (per user, per database); the manager implements it. */
export interface ConnectionGate {
  /** Whether one more connection for (user, database) may be opened; counts it when it returns true. */
  tryOpen(user: string, database: string): boolean;
  /** A connection counted by tryOpen is gone. */
  closed(user: string, database: string): void;
  /** A connection of (user, database) went idle: a pool waiting under a shared limit may take its place. */
  idled(user: string, database: string): void;
}

interface Waiter {
  since: number;
  resolve: (conn: BackendConnection) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Pool {
  private readonly idle: BackendConnection[] = [];
  private readonly waiters: Waiter[] = [];
  /** Connections leased, being opened, or being reset: everything counted against the limit but not idle. */
  private busy = 0;
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
      return Promise.resolve(conn);
    }
    if (this.busy < this.limits.maxPerNode && this.gate.tryOpen(this.user, this.database)) return this.open();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        since: Date.now(),
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new ProxyError(SqlState.TooManyConnections, `no connection to ${this.node.name} free within ${this.limits.acquireTimeoutMs} ms (pool.max_per_node = ${this.limits.maxPerNode}, or a limits.* setting)`));
        }, this.limits.acquireTimeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Opens a connection; the caller has counted it with the gate. */
  private open(): Promise<BackendConnection> {
    this.busy++;
    const login: LoginSpec = { user: this.user, database: this.database, secret: this.secret, connectTimeoutMs: this.limits.connectTimeoutMs, ...(this.limits.tls ? { tls: this.limits.tls } : {}), scramKeys: this.scramKeys };
    return BackendConnection.connect(this.node, login).then(
      (conn) => {
        conn.onClosed = (c) => this.forget(c);
        return conn;
      },
      (err: Error) => {
        this.busy--;
        this.gate.closed(this.user, this.database);
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
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(conn);
      return;
    }
    this.busy--;
    this.idle.push(conn);
    this.gate.idled(this.user, this.database);
  }

  /** Waiters queued for a connection (another pool may give up an idle one for them under a shared limit). */
  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  private discard(conn: BackendConnection): void {
    conn.onClosed = null;
    if (!conn.closed) conn.terminate();
    this.busy--;
    this.gate.closed(this.user, this.database);
    this.serveWaiter();
  }

  /** A connection closed on its own (idle one lost, or a leased one whose owner handles the error). */
  private forget(conn: BackendConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) {
      this.idle.splice(i, 1);
      this.gate.closed(this.user, this.database);
    }
    // A leased connection stays counted as busy until its owner releases it (release() discards closed ones).
  }

  /** Opens a connection for the first waiter, if the limits allow one now. */
  serveWaiter(): void {
    if (this.waiters.length === 0 || this.busy >= this.limits.maxPerNode || this.closed) return;
    if (!this.gate.tryOpen(this.user, this.database)) return;
    const waiter = this.waiters.shift()!;
    clearTimeout(waiter.timer);
    this.open().then(waiter.resolve, waiter.reject);
  }

  /** Keeps `pool.min_idle` warm connections (called by the manager's sweep; nodes that are down are skipped). */
  warm(): void {
    if (this.closed || this.limits.minIdle <= 0) return;
    const missing = Math.min(this.limits.minIdle - this.idle.length, this.limits.maxPerNode - this.busy - this.idle.length);
    for (let i = 0; i < missing; i++) {
      if (!this.gate.tryOpen(this.user, this.database)) return;
      this.open().then(
        (conn) => this.putIdle(conn),
        (err: Error) => this.log.debug({ node: this.node.name, err: err.message }, 'could not open a warm connection'),
      );
    }
  }

  private expired(conn: BackendConnection): boolean {
    return this.limits.maxLifetimeMs > 0 && Date.now() - conn.createdAt > this.limits.maxLifetimeMs;
  }

  /** Closes idle connections past idle_timeout_ms or max_lifetime_ms. */
  sweep(now: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i]!;
      const idleTooLong = this.limits.idleTimeoutMs > 0 && now - conn.lastReleasedAt > this.limits.idleTimeoutMs;
      if (idleTooLong || this.expired(conn)) {
        this.idle.splice(i, 1);
        conn.onClosed = null;
        conn.terminate();
        this.gate.closed(this.user, this.database);
      }
    }
  }

  /** Closes the longest-idle connection without telling the gate (the manager does its own counting). */
  dropIdle(): boolean {
    const conn = this.idle.shift();
    if (conn === undefined) return false;
    conn.onClosed = null;
    conn.terminate();
    return true;
  }

  /** Closes idle connections (the node went down, or the proxy stops). Leased ones are closed by their sessions. */
  closeIdle(): void {
    for (const conn of this.idle.splice(0)) {
      conn.onClosed = null;
      conn.terminate();
      this.gate.closed(this.user, this.database);
    }
  }

  close(): void {
    this.closed = true;
    this.closeIdle();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new ProxyError(SqlState.AdminShutdown, 'pgproxy is shutting down', 'FATAL'));
    }
  }
}
