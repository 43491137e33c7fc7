/**
 * All pools of the process, keyed by (node, database, user), the limits they share (connections per node, per user,
 * per database: limits.*), and the server parameters each (database, user) reports.
 *
 * A session that finds a shared limit full waits in its pool's queue. When a connection under that limit closes,
 * or goes idle in another pool (which then gives it up, like PgBouncer), the longest-waiting session of any pool
 * under the limit is served first. A connection given back to a pool whose own sessions wait goes to them, unless
 * another pool's session has waited longer: then it is closed and that session gets the slot. First come, first
 * served across pools costs a login when connections move between pools, but no pool starves while another keeps
 * reusing its connections.
 */
import type { Logger } from 'pino';
import type { NodeAddress } from './backend.js';
import { Pool, type ConnectionGate, type PoolLimits } from './pool.js';

export interface GlobalLimits {
  /** Connections to one node across pools: this process's share of limits.max_connections_per_node. 0 or absent = no limit. */
  maxPerNode?: number;
  /** 0 = no limit. */
  maxPerUser: number;
  maxPerDatabase: number;
  /** These are one worker's shares of the configured limits (workers: N). */
  workerShare?: boolean;
}

/** Which shared limits are full for a pool (each is false when that limit is off). */
interface Full {
  node: boolean;
  user: boolean;
  database: boolean;
}

/** A connection of `other` counts against every limit in `full` for `pool`: closing it makes room for `pool`. */
function sharesEvery(full: Full, pool: Pool, other: Pool): boolean {
  return !((full.node && other.node.id !== pool.node.id) || (full.user && other.user !== pool.user) || (full.database && other.database !== pool.database));
}

export class PoolManager implements ConnectionGate {
  private readonly pools = new Map<string, Pool>();
  private readonly params = new Map<string, Map<string, string>>();
  private readonly perNode = new Map<number, number>();
  private readonly perUser = new Map<string, number>();
  private readonly perDatabase = new Map<string, number>();
  /** Pools with sessions waiting (the only ones a freed slot can go to). */
  private readonly waiting = new Set<Pool>();
  /** Idle connections being closed to make room for a pool's waiting sessions, by that pool. */
  private readonly evicting = new Map<Pool, number>();
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

  // ------------------------------------------------------------------ ConnectionGate

  tryOpen(pool: Pool, evict: boolean): boolean {
    const full = this.fullFor(pool);
    if (full === null) {
      this.count(pool, 1);
      return true;
    }
    // Room is made by closing an idle connection of another pool under the same limits, one per waiting session
    // at a time; once its backend is gone, closed() serves the longest-waiting session.
    if (evict && (this.evicting.get(pool) ?? 0) < pool.waitingCount) this.evictIdle(pool, full);
    return false;
  }

  closed(pool: Pool): void {
    this.count(pool, -1);
    // A slot under a shared limit is free: the longest-waiting session under that limit takes it.
    this.serveWaiting(pool);
  }

  idled(pool: Pool): void {
    // A session waiting under a shared limit takes the slot of this idle connection (tryOpen evicts it).
    this.serveWaiting(pool);
  }

  queueChanged(pool: Pool, waiting: boolean): void {
    if (waiting) this.waiting.add(pool);
    else this.waiting.delete(pool);
  }

  limitReached(pool: Pool): string | null {
    const full = this.fullFor(pool);
    if (full === null) return null;
    if (full.node) return `limits.max_connections_per_node (${this.nodeLimit()}${this.shareNote()})`;
    if (full.user) return `limits.max_connections_per_user (${this.global.maxPerUser}${this.shareNote()})`;
    return `limits.max_connections_per_database (${this.global.maxPerDatabase}${this.shareNote()})`;
  }

  olderWaiterElsewhere(pool: Pool): boolean {
    const since = pool.oldestWaitSince;
    for (const p of this.waiting) {
      if (p === pool || p.oldestWaitSince >= since || !p.mayOpen) continue;
      const full = this.fullFor(p);
      if (full !== null && sharesEvery(full, p, pool)) return true;
    }
    return false;
  }

  private shareNote(): string {
    return this.global.workerShare === true ? ' for this worker' : '';
  }

  private nodeLimit(): number {
    return this.global.maxPerNode ?? 0;
  }

  /** The shared limits that keep `pool` from opening a connection now, or null when none does. */
  private fullFor(pool: Pool): Full | null {
    const g = this.global;
    const node = this.nodeLimit() > 0 && (this.perNode.get(pool.node.id) ?? 0) >= this.nodeLimit();
    const user = g.maxPerUser > 0 && (this.perUser.get(pool.user) ?? 0) >= g.maxPerUser;
    const database = g.maxPerDatabase > 0 && (this.perDatabase.get(pool.database) ?? 0) >= g.maxPerDatabase;
    return node || user || database ? { node, user, database } : null;
  }

  private count(pool: Pool, delta: 1 | -1): void {
    this.perNode.set(pool.node.id, Math.max(0, (this.perNode.get(pool.node.id) ?? 0) + delta));
    this.perUser.set(pool.user, Math.max(0, (this.perUser.get(pool.user) ?? 0) + delta));
    this.perDatabase.set(pool.database, Math.max(0, (this.perDatabase.get(pool.database) ?? 0) + delta));
  }

  /** Closes the longest-idle connection of another pool that counts against every limit full for `pool`, if any. */
  private evictIdle(pool: Pool, full: Full): void {
    for (const p of this.pools.values()) {
      if (p === pool || !sharesEvery(full, pool, p)) continue;
      const gone = p.dropIdle();
      if (gone === null) continue;
      this.evicting.set(pool, (this.evicting.get(pool) ?? 0) + 1);
      void gone.then(() => {
        const n = (this.evicting.get(pool) ?? 1) - 1;
        if (n > 0) this.evicting.set(pool, n);
        else this.evicting.delete(pool);
        this.closed(p);
      });
      return;
    }
  }

  /** Serves waiting sessions, oldest first, of the pools that share a limit with `origin` (a slot there may be free). */
  private serveWaiting(origin: Pool): void {
    if (this.waiting.size === 0) return;
    const g = this.global;
    const nodeLimited = this.nodeLimit() > 0;
    const candidates: Pool[] = [];
    for (const p of this.waiting) {
      if (p === origin || (nodeLimited && p.node.id === origin.node.id) || (g.maxPerUser > 0 && p.user === origin.user) || (g.maxPerDatabase > 0 && p.database === origin.database)) {
        candidates.push(p);
      }
    }
    if (candidates.length > 1) candidates.sort((a, b) => a.oldestWaitSince - b.oldestWaitSince);
    for (const p of candidates) while (p.serveWaiter());
  }

  // ------------------------------------------------------------------ pools

  /** Backend connections counted for a user (all nodes and databases). */
  connectionsOfUser(user: string): number {
    return this.perUser.get(user) ?? 0;
  }

  /** Backend connections counted to a node (all pools of this process: open, being opened or reset). */
  connectionsToNode(nodeId: number): number {
    return this.perNode.get(nodeId) ?? 0;
  }

  /** This process's limits across pools (SHOW USERS, SHOW DATABASES). */
  get globalLimits(): Readonly<GlobalLimits> {
    return this.global;
  }

  get poolLimits(): Readonly<PoolLimits> {
    return this.limits;
  }

  /** New limits for every pool (reload). Sessions waiting may fit under the new limits at once. */
  updateLimits(limits: PoolLimits, global: GlobalLimits): void {
    this.limits = limits;
    this.global = global;
    for (const p of this.pools.values()) p.updateLimits(limits, p.currentSecret);
    for (const p of [...this.waiting].sort((a, b) => a.oldestWaitSince - b.oldestWaitSince)) while (p.serveWaiter());
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
