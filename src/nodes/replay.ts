/**
 * Commit and replay positions beyond what the health check sees once a period:
 * - the highest commit position pgproxy acknowledged per database (`read_your_writes: database`), kept no higher
 *   than the primary's own position after a primary change (commits lost in an asynchronous failover must not
 *   leave a position no node will ever reach);
 * - fast polling of replay positions while reads wait for a standby to catch up: every standby's
 *   pg_last_wal_replay_lsn() (and its replay lag), and the primary's current position, back to back, only while
 *   some read waits. The topology's lsn, lagBytes, lagMs and measuredAt are updated as the health check would.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { parseLsn, type NodeState, type Topology } from './topology.js';

export interface ReplaySettings {
  user: string;
  password: string;
  database: string;
  ssl?: false | { rejectUnauthorized: boolean; ca?: Buffer };
  timeoutMs: number;
}

interface Waiter {
  ready: () => boolean;
  /** The position the read needs, when it needs one. */
  target: bigint | null;
  deadline: number;
  resolve: (ready: boolean) => void;
}

/** Pause between poll rounds while reads wait (a round is a round trip to each node, well under a millisecond). */
const POLL_GAP_MS = 1;
/** Least time between two flushes of the primary's WAL on behalf of waiting reads. */
const FLUSH_GAP_MS = 5;

const STANDBY_QUERY = `SELECT pg_last_wal_replay_lsn()::text AS lsn,
  (extract(epoch from (clock_timestamp() - pg_last_xact_replay_timestamp())) * 1000)::float8 AS replay_age_ms`;
const INSERT_LSN_QUERY = 'SELECT pg_current_wal_insert_lsn()::text AS lsn';
const PRIMARY_QUERY = `SELECT pg_current_wal_lsn()::text AS lsn, pg_current_wal_flush_lsn()::text AS flush, pg_current_wal_insert_lsn()::text AS insert`;
/**
 * A transaction that writes one tiny WAL record (a logical decoding message with the prefix 'pgproxy', which
 * decoding consumers can ignore by its prefix): its commit flushes the WAL before it. pgproxy's positions come from
 * pg_current_wal_insert_lsn(), which also counts WAL no commit has flushed yet (full-page images of hint bits, say);
 * on a quiet primary that WAL stays unflushed, and no standby ever receives it. (A transaction that only takes an
 * id commits without flushing.)
 */
const FLUSH_QUERY = `SELECT pg_logical_emit_message(true, 'pgproxy', '')`;

export class ReplayTracker {
  private readonly acknowledged = new Map<string, bigint>();
  /** The primary the acknowledged positions were last kept under. */
  private primaryId: number | null = null;
  private waiters: Waiter[] = [];
  private polling = false;
  /** One connection per node, kept open: a read that waits must not wait for a connection first. */
  private readonly clients = new Map<number, pg.Client>();
  private closed = false;
  /** Poll rounds run (for tests and the admin console). */
  rounds = 0;

  constructor(
    private readonly topology: Topology,
    private settings: ReplaySettings,
    private readonly log: Logger,
  ) {}

  /** The polling connections, by node id (SHOW SERVERS). */
  get connections(): ReadonlyMap<number, pg.Client> {
    return this.clients;
  }

  updateSettings(settings: ReplaySettings): void {
    this.settings = settings;
  }

  /** A commit at `lsn` on `database` was acknowledged to a client. */
  acknowledge(database: string, lsn: bigint): void {
    const seen = this.acknowledged.get(database);
    if (seen === undefined || lsn > seen) this.acknowledged.set(database, lsn);
  }

  /** The highest commit position acknowledged on `database`, or null. */
  acknowledgedOn(database: string): bigint | null {
    this.followPrimary();
    return this.acknowledged.get(database) ?? null;
  }

  /** After a primary change, no acknowledged position stays ahead of the new primary's. */
  private followPrimary(): void {
    const primary = this.topology.primary();
    if (primary === null || primary.id === this.primaryId || primary.lsn === null) return;
    const changed = this.primaryId !== null;
    this.primaryId = primary.id;
    if (!changed) return;
    for (const [db, lsn] of this.acknowledged) if (lsn > primary.lsn) this.acknowledged.set(db, primary.lsn);
    this.log.warn({ primary: primary.name }, 'new primary: acknowledged commit positions kept no higher than its own');
  }

  /**
   * Resolves true once `ready()` holds (checked after each round of fresh replay positions), or false when
   * `waitMs` passed first. Polling runs only while some read waits.
   */
  waitUntil(ready: () => boolean, waitMs: number, target: bigint | null = null): Promise<boolean> {
    if (this.closed || waitMs <= 0) return Promise.resolve(ready());
    return new Promise((resolve) => {
      this.waiters.push({ ready, target, deadline: performance.now() + waitMs, resolve });
      if (!this.polling) void this.poll();
    });
  }

  /** Flushes issued because a waited-for position was beyond the primary's flushed WAL. */
  flushes = 0;
  private flushedAt = 0;

  /** A read waits for a position the primary has not flushed: flush it (at most once per few milliseconds). */
  private async flushIfNeeded(): Promise<void> {
    const primary = this.topology.primary();
    if (primary === null || this.primaryFlush === null || performance.now() - this.flushedAt < FLUSH_GAP_MS) return;
    let needed = false;
    for (const w of this.waiters) if (w.target !== null && w.target > this.primaryFlush) needed = true;
    if (!needed) return;
    this.flushedAt = performance.now();
    this.flushes++;
    try {
      await (await this.client(primary)).query(FLUSH_QUERY);
    } catch {
      // the node's health is the health checker's business
    }
  }

  /** The primary's flushed and inserted WAL positions at the last round. */
  private primaryFlush: bigint | null = null;
  private primaryCurrent: bigint | null = null;

  /** Opens the polling connections ahead of the first wait (connecting costs more than a wait may last). */
  warm(): void {
    for (const n of this.topology.nodes) {
      if (n.up && !n.detached && (n.role === 'primary' || n.role === 'standby')) this.client(n).catch(() => undefined);
    }
  }

  /** Calls of primaryInsertLsn (tests and the admin console read it). */
  insertLsnFetches = 0;

  /**
   * The primary's WAL insert position now (as text, 'X/Y'), on the kept connection; null when there is no primary
   * or the query fails. For a session whose last commits were not captured (read_your_writes session or off): its
   * first read after them, SHOW pgproxy.last_commit_lsn.
   */
  async primaryInsertLsn(): Promise<string | null> {
    const primary = this.topology.primary();
    if (primary === null || this.closed) return null;
    this.insertLsnFetches++;
    try {
      const res = await (await this.client(primary)).query(INSERT_LSN_QUERY);
      return (res.rows[0] as { lsn: string | null }).lsn;
    } catch {
      return null; // the node's health is the health checker's business
    }
  }

  /** Waits in progress (the admin console and tests read it). */
  get waiting(): number {
    return this.waiters.length;
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      while (this.waiters.length > 0 && !this.closed) {
        await this.round();
        this.settle();
        await this.flushIfNeeded();
        if (this.waiters.length > 0) await new Promise((r) => setTimeout(r, POLL_GAP_MS));
      }
    } finally {
      this.polling = false;
    }
  }

  /** Resolves the waiters whose condition holds now, and those whose time is up. */
  private settle(): void {
    const now = performance.now();
    const still: Waiter[] = [];
    const primaryAt = this.primaryCurrent;
    for (const w of this.waiters) {
      if (w.ready()) w.resolve(true);
      // A position ahead of the primary's own (a commit lost in a failover, a token from elsewhere) is one no
      // standby will reach: the read goes to the primary at once.
      else if (now >= w.deadline || (w.target !== null && primaryAt !== null && w.target > primaryAt)) w.resolve(false);
      else still.push(w);
    }
    this.waiters = still;
  }

  /** One round: the primary's current position and every standby's replay position, in parallel. */
  private async round(): Promise<void> {
    this.rounds++;
    const nodes = this.topology.nodes.filter((n) => n.up && !n.detached && (n.role === 'primary' || n.role === 'standby'));
    const results = await Promise.all(nodes.map((n) => this.measure(n).catch(() => null)));
    const primaryAt = nodes.findIndex((n) => n.role === 'primary');
    const primaryLsn = primaryAt >= 0 ? results[primaryAt]?.lsn ?? null : null;
    this.primaryFlush = primaryAt >= 0 ? results[primaryAt]?.flush ?? null : null;
    // Commit positions are insert positions (read-your-writes.ts): compared with the primary's insert position.
    this.primaryCurrent = primaryAt >= 0 ? results[primaryAt]?.insert ?? null : null;
    const now = Date.now();
    nodes.forEach((n, i) => {
      const r = results[i];
      if (r === null || r === undefined) return;
      n.lsn = r.lsn;
      n.measuredAt = now;
      if (n.role !== 'standby') return;
      if (primaryLsn !== null && r.lsn !== null) {
        n.lagBytes = Math.max(0, Number(primaryLsn - r.lsn));
        n.lagMs = n.lagBytes === 0 ? 0 : r.replayAgeMs === null ? null : Math.max(0, Math.round(r.replayAgeMs));
      }
    });
  }

  private async measure(n: NodeState): Promise<{ lsn: bigint | null; replayAgeMs: number | null; flush: bigint | null; insert: bigint | null }> {
    const client = await this.client(n);
    const res = await client.query(n.role === 'standby' ? STANDBY_QUERY : PRIMARY_QUERY);
    const row = res.rows[0] as { lsn: string | null; replay_age_ms?: number | null; flush?: string | null; insert?: string | null };
    return { lsn: parseLsn(row.lsn), replayAgeMs: row.replay_age_ms ?? null, flush: parseLsn(row.flush ?? null), insert: parseLsn(row.insert ?? null) };
  }

  private readonly connecting = new Map<number, Promise<pg.Client>>();

  private client(n: NodeState): Promise<pg.Client> {
    const known = this.clients.get(n.id);
    if (known !== undefined) return Promise.resolve(known);
    const pending = this.connecting.get(n.id);
    if (pending !== undefined) return pending;
    const s = this.settings;
    // synchronous_commit on: the flush transaction's commit must reach the disk (and a synchronous standby).
    const client = new pg.Client({ host: n.host, port: n.port, user: s.user, password: s.password, database: s.database, ssl: s.ssl ?? false, connectionTimeoutMillis: s.timeoutMs, query_timeout: s.timeoutMs, application_name: 'pgproxy replay poll', options: '-c synchronous_commit=on' });
    client.on('error', () => this.drop(n.id, client));
    const connected = client.connect().then(
      () => {
        this.connecting.delete(n.id);
        if (this.closed) {
          client.end().catch(() => undefined);
          throw new Error('closed');
        }
        this.clients.set(n.id, client);
        return client;
      },
      (err: Error) => {
        this.connecting.delete(n.id);
        client.end().catch(() => undefined);
        throw err;
      },
    );
    this.connecting.set(n.id, connected);
    return connected;
  }

  private drop(id: number, client: pg.Client): void {
    if (this.clients.get(id) === client) this.clients.delete(id);
    client.end().catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters) w.resolve(w.ready());
    this.waiters = [];
    for (const [id, c] of this.clients) this.drop(id, c);
  }
}
