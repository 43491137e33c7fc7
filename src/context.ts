/**
 * Everything a process shares between its sessions, in one place (so that worker processes can later each
 * hold their own): configuration, logger, topology, pools, router rules, and the cancel-key registry.
 */
import { randomInt } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { Histogram } from './lib/histogram.js';
import type { AuthQuery } from './pool/auth-query.js';
import type { CompiledHbaRule } from './wire/auth/hba.js';
import type { FailureLimiter } from './wire/auth/limiter.js';
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import type { PoolManager } from './pool/manager.js';
import type { OwnConnections } from './pool/own-connections.js';
import type { ReplayTracker } from './nodes/replay.js';
import type { Topology } from './nodes/topology.js';
import type { LagLimits } from './router/balancer.js';
import type { CatalogCache } from './router/catalog.js';
import type { RouterRules } from './router/policy.js';

export interface CancelTarget {
  cancel(): void;
}

/**
 * Proxy-issued BackendKeyData: clients never see a backend's own pid and secret. With `workers`, the top bits
 * of the pid name the worker that owns the session, so a CancelRequest that lands on another worker can be
 * sent on to it.
 */
export class SessionRegistry {
  private readonly byPid = new Map<number, { secret: number; target: CancelTarget }>();
  private lastId = 0;

  /**
   * @param worker 1-based worker number (0: no workers)
   * @param forward sends a cancel for another worker's session on (to the primary process)
   */
  constructor(
    private readonly worker = 0,
    private readonly forward: ((pid: number, secret: number) => void) | null = null,
  ) {}

  /** Unique across workers too (the worker number in the top bits, as in pids): SHOW CLIENTS and SERVERS join them. */
  nextSessionId(): number {
    this.lastId = (this.lastId % 0xffffff) + 1;
    return this.worker * 0x1000000 + this.lastId;
  }

  get size(): number {
    return this.byPid.size;
  }

  newCancelKey(target: CancelTarget): { pid: number; secret: number } {
    let pid: number;
    do pid = this.worker === 0 ? randomInt(1, 0x7fffffff) : this.worker * 0x1000000 + randomInt(1, 0x1000000);
    while (this.byPid.has(pid));
    const secret = randomInt(0, 0x7fffffff);
    this.byPid.set(pid, { secret, target });
    return { pid, secret };
  }

  remove(target: CancelTarget & { cancelKey: { pid: number } }): void {
    const e = this.byPid.get(target.cancelKey.pid);
    if (e && e.target === target) this.byPid.delete(target.cancelKey.pid);
  }

  /** Unknown keys and wrong secrets are ignored silently, as PostgreSQL does. */
  cancel(pid: number, secret: number): void {
    if (this.worker !== 0 && this.forward !== null && workerOfPid(pid) !== this.worker) {
      this.forward(pid, secret);
      return;
    }
    this.cancelLocal(pid, secret);
  }

  /** A cancel for a session of this process (forwarded here by another worker, or received directly). */
  cancelLocal(pid: number, secret: number): void {
    const e = this.byPid.get(pid);
    if (e && e.secret === secret) e.target.cancel();
  }
}

/** The worker number a proxy-issued pid belongs to (0 when pgproxy runs without workers). */
export function workerOfPid(pid: number): number {
  return Math.floor(pid / 0x1000000);
}

/** Counters of the process (exposed by admin and metrics). */
export interface ProxyStats {
  /** Statements the classifier could not understand (sent to the primary). */
  notUnderstood: number;
  /** Statements the classifier could not read that PostgreSQL's own parser did (routed on its tree). */
  parsed: number;
  /** Units routed, indexed by router/reasons.ts Reason code (REASON_LABELS names them). */
  routed: Float64Array;
  /** ErrorResponses clients received, by SQLSTATE class (first two characters). */
  errorsByClass: Map<string, number>;
  /** Time sessions waited for a backend connection from a pool. */
  poolWait: Histogram;
  /** Reads that waited for a standby to catch up (read-your-writes, a staleness bound), and how that ended. */
  replayWaits: { standby: number; primary: number };
  /** How long those reads waited. */
  replayWait: Histogram;
  /** Client connections accepted since start. */
  clientsAccepted: number;
}

/** What the admin console and signals can do to the running proxy. */
export interface ProxyControls {
  /** Re-reads the configuration file; resolves to a summary, rejects (old config kept) when it is invalid. */
  reload(): Promise<string>;
  /** PAUSE: new units of work wait; those in flight finish. RESUME lets them go. */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  detachNode(id: number): void;
  attachNode(id: number): void;
  /** Graceful shutdown, as on SIGTERM. */
  shutdown(): void;
}

/** A client session as the admin console shows it. */
export interface ClientInfo {
  id: number;
  user: string;
  database: string;
  address: string;
  applicationName: string;
  tls: boolean;
  /** startup | auth | idle | active | idle in transaction | waiting */
  state: string;
  connectedAt: Date;
  /** Backend connections held: node name, backend pid, whether it owes replies. */
  servers: { node: string; pid: number; active: boolean; connectionId: number }[];
}

export interface SessionView {
  describe(): ClientInfo;
  /** Ends the session (SHUTDOWN / graceful stop): `error` is sent first when given. */
  terminate(error: { code: string; message: string } | null): void;
  /** Not inside a transaction and owing no replies. */
  readonly idle: boolean;
}

/** A SHOW result of the admin console before it is encoded: what workers send to be merged. */
export interface AdminTable {
  columns: string[];
  rows: (string | null)[][];
}

/** Answers queries on the admin console (virtual database `pgproxy`): result frames without ReadyForQuery. */
export type AdminHandler = (sql: string, ctx: ProxyContext) => Promise<Buffer>;

export interface ProxyContext {
  /** Every client session of this process. */
  sessions: Set<SessionView>;
  controls: ProxyControls;
  admin: AdminHandler;
  /** With workers: the tables of a SHOW command from every worker (this one included). */
  collectAdmin?: (cmd: string) => Promise<AdminTable[]>;
  /** Server-side TLS for clients; null when tls.mode is disable. */
  tls: SecureContext | null;
  hba: CompiledHbaRule[];
  /** auth.query lookups; null when not configured. */
  authQuery: AuthQuery | null;
  loginFailures: FailureLimiter;
  config: Config;
  log: Logger;
  topology: Topology;
  pools: PoolManager;
  /** pgproxy's own connections outside the pools (health checker, replay pollers, catalog, auth.query): SHOW SERVERS. */
  ownConnections?: OwnConnections;
  router: RouterRules;
  registry: SessionRegistry;
  maxMessageBytes: number;
  lagLimits: LagLimits;
  /** Volatile functions and unlogged relations per database, from the primary's catalog. */
  catalog: CatalogCache;
  /** Acknowledged commit positions per database, and replay positions polled while reads wait. */
  replay: ReplayTracker;
  stats: ProxyStats;
  /** A session saw a node fail (socket error, EOF, 57P0x): the node is checked at once, and marked down if that fails. */
  reportNodeFailure(nodeId: number, reason: string): void;
}
