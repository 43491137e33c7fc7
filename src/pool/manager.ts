/** All pools of the process, keyed by (node, database, user), and the server parameters each (database, user) reports. */
import type { Logger } from 'pino';
import type { NodeAddress } from './backend.js';
import { Pool, type PoolLimits } from './pool.js';

export class PoolManager {
  private readonly pools = new Map<string, Pool>();
  private readonly params = new Map<string, Map<string, string>>();
  private sweepTimer: NodeJS.Timeout;

  constructor(
    private limits: PoolLimits,
    private readonly log: Logger,
  ) {
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const p of this.pools.values()) p.sweep(now);
    }, 1000);
    this.sweepTimer.unref();
  }

  get(node: NodeAddress, database: string, user: string, secret: string): Pool {
    const key = `${node.id}\0${database}\0${user}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(node, user, database, secret, this.limits, this.log);
      this.pools.set(key, pool);
    }
    return pool;
  }

  all(): Pool[] {
    return [...this.pools.values()];
  }

  /** ParameterStatus values a backend reported for this (database, user), if any connection was made yet. */
  serverParams(database: string, user: string): Map<string, string> | undefined {
    return this.params.get(`${database}\0${user}`);
  }

  rememberServerParams(database: string, user: string, params: Map<string, string>): void {
    this.params.set(`${database}\0${user}`, new Map(params));
  }

  closeIdleOn(nodeId: number): void {
    for (const p of this.pools.values()) if (p.node.id === nodeId) p.closeIdle();
  }

  close(): void {
    clearInterval(this.sweepTimer);
    for (const p of this.pools.values()) p.close();
  }
}
