/**
 * Everything a process shares between its sessions, in one place (so that worker processes can later each
 * hold their own): configuration, logger, topology, pools, router rules, and the cancel-key registry.
 */
import { randomInt } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { AuthQuery } from './pool/auth-query.js';
import type { CompiledHbaRule } from './wire/auth/hba.js';
import type { FailureLimiter } from './wire/auth/limiter.js';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { PoolManager } from './pool/manager.js';
import type { Topology } from './pool/topology.js';
import type { LagLimits } from './router/balancer.js';
import type { CatalogCache } from './router/catalog.js';
import type { RouterRules } from './router/policy.js';

export interface CancelTarget {
  cancel(): void;
}

/** Proxy-issued BackendKeyData: clients never see a backend's own pid and secret. */
export class SessionRegistry {
  private readonly byPid = new Map<number, { secret: number; target: CancelTarget }>();
  private lastId = 0;

  nextSessionId(): number {
    return ++this.lastId;
  }

  get size(): number {
    return this.byPid.size;
  }

  newCancelKey(target: CancelTarget): { pid: number; secret: number } {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff);
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
    const e = this.byPid.get(pid);
    if (e && e.secret === secret) e.target.cancel();
  }
}

/** Counters of the process (exposed by admin and metrics). */
export interface ProxyStats {
  /** Statements the classifier could not understand (sent to the primary). */
  notUnderstood: number;
}

export interface ProxyContext {
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
  router: RouterRules;
  registry: SessionRegistry;
  maxMessageBytes: number;
  lagLimits: LagLimits;
  /** Volatile functions and unlogged relations per database, from the primary's catalog. */
  catalog: CatalogCache;
  stats: ProxyStats;
  /** A session saw a node fail (socket error, EOF, 57P0x): it counts as a failed health check. */
  reportNodeFailure(nodeId: number, reason: string): void;
}
