/** All pools of the process, keyed by (node, database, user), and the server parameters each (database, user) reports. */
import type { Logger } from 'pino';
import type { NodeAddress } from './backend.js';
import { Pool, type ConnectionGate, type PoolLimits } from './pool.js';

export interface GlobalLimits {
  /** 0 = no limit. */
  maxPerUser: number;
  maxPerDatabase: number;
}

export class PoolManager implements ConnectionGate {
  private readonly pools = new Map<string, Pool>();
  private readonly params = new Map<string, Map<string, string>>();
  private readonly perUser = new Map<string, number>();
  private readonly perDatabase = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout;

  constructor(
    private limits: PoolLimits,
    private readonly log: Logger,
    private global: GlobalLimits = { maxPerUser: 0, maxPerDatabase: 0 },
    private readonly nodeUp: (nodeId: number) => boolean = () => true,
  ) {
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const p of this.pools.values()) {
        p.sweep(now);
        if (this.nodeUp(p.node.id)) p.warm();
      }
    }, 1000);
    this.sweepTimer.unref();
  }

  tryOpen(user: string, database: string): boolean {
    while (this.overLimit(user, database)) {
      // Like PgBouncer: an idle connection of the same user (or database) in another pool makes room.
      if (!this.evictIdle(user, database)) return false;
    }
    this.perUser.set(user, (this.perUser.get(user) ?? 0) + 1);
    this.perDatabase.set(database, (this.perDatabase.get(database) ?? 0) + 1);
    return true;
  }

  private overLimit(user: string, database: string): boolean {
    return (
      (this.global.maxPerUser > 0 && (this.perUser.get(user) ?? 0) >= this.global.maxPerUser) ||
      (this.global.maxPerDatabase > 0 && (this.perDatabase.get(database) ?? 0) >= this.global.maxPerDatabase)
    );
  }

  /** Closes one idle connection counted against the user's or the database's limit; false when there is none. */
  private evictIdle(user: string, database: string): boolean {
    const userFull = this.global.maxPerUser > 0 && (this.perUser.get(user) ?? 0) >= this.global.maxPerUser;
    for (const p of this.pools.values()) {
      if ((userFull ? p.user === user : p.database === database) && p.dropIdle()) {
        this.perUser.set(p.user, Math.max(0, (this.perUser.get(p.user) ?? 1) - 1));
        this.perDatabase.set(p.database, Math.max(0, (this.perDatabase.get(p.database) ?? 1) - 1));
        return true;
      }
    }
    return false;
  }

  closed(user: string, database: string): void {
    this.perUser.set(user, Math.max(0, (this.perUser.get(user) ?? 1) - 1));
    this.perDatabase.set(database, Math.max(0, (this.perDatabase.get(database) ?? 1) - 1));
    if (this.global.maxPerUser > 0 || this.global.maxPerDatabase > 0) {
      // A slot under a shared limit is free: let a waiting pool of the same user or database use it.
      for (const p of this.pools.values()) if (p.user === user || p.database === database) p.serveWaiter();
    }
  }

  idled(user: string, database: string): void {
    if (this.global.maxPerUser === 0 && this.global.maxPerDatabase === 0) return;
    // Like PgBouncer: a session waiting under the user's or database's limit takes the slot of an idle connection
    // of another pool (serveWaiter evicts it through tryOpen).
    for (const p of this.pools.values()) if (p.hasWaiters && (p.user === user || p.database === database)) p.serveWaiter();
  }

  /** Backend connections counted for a user (all nodes and databases). */
  connectionsOfUser(user: string): number {
    return this.perUser.get(user) ?? 0;
  }

  /** New limits for every pool (reload). */
  updateLimits(limits: PoolLimits, global: GlobalLimits): void {
    this.limits = limits;
    this.global = global;
    for (const p of this.pools.values()) p.updateLimits(limits, p.currentSecret);
  }

  get(node: NodeAddress, database: string, user: string, secret: string): Pool {
    const key = `${node.id}\0${database}\0${user}`;
    let pool = this.pools.get(key);
    if (pool && pool.currentSecret !== secret) pool.updateLimits(this.limits, secret);
    if (!pool) {
      pool = new Pool(node, user, database, secret, this.limits, this.log, this);
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
