/**
 * Periodic health check of every node: one query returning whether the node is in recovery and its WAL
 * position; on the primary also its replication rows. Failures are retried `max_retries` times before the
 * node is marked down; a node that answers again is marked up (fail-back).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { parseLsn, type Topology } from './topology.js';

export interface FailoverSettings {
  autoPromote: boolean;
  afterMs: number;
  user: string;
  password: string;
}

export interface HealthSettings {
  periodMs: number;
  timeoutMs: number;
  maxRetries: number;
  retryDelayMs: number;
  user: string;
  password: string;
  database: string;
  ssl?: false | { rejectUnauthorized: boolean; ca?: Buffer };
  failover?: FailoverSettings;
}

const NODE_QUERY = `SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn,
  (extract(epoch from (clock_timestamp() - pg_last_xact_replay_timestamp())) * 1000)::float8 AS replay_age_ms,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  (SELECT coalesce(substring(conninfo from 'application_name=([^ ]+)'), nullif(current_setting('cluster_name'), ''), 'walreceiver')
     FROM pg_stat_wal_receiver) AS receiver_name`;

const REPLICATION_QUERY = `SELECT application_name, state, sync_state FROM pg_stat_replication`;

interface Probe {
  inRecovery: boolean;
  receiveLsn: bigint | null;
  replayAgeMs: number | null;
  lsn: bigint | null;
  receiverName: string | null;
  replication: { application_name: string; state: string; sync_state: string }[];
}

export class HealthChecker {
  private timer: NodeJS.Timeout | null = null;
  private clients = new Map<number, pg.Client>();
  private running = false;
  private stopped = false;
  private firstRound: Promise<void> | null = null;
  private primaryLostAt: number | null = null;
  private promoting = false;
  /** Sync state each standby last had while a primary reported it (kept after the primary is gone). */
  private readonly lastSyncState = new Map<number, string>();

  /** Called after every round (the primary process of `workers` shares the view then). */
  onRound: (() => void) | null = null;

  constructor(
    private readonly topology: Topology,
    private settings: HealthSettings,
    private readonly log: Logger,
  ) {}

  /** The checker's open connections, by node id (SHOW SERVERS). */
  get connections(): ReadonlyMap<number, pg.Client> {
    return this.clients;
  }

  updateSettings(settings: HealthSettings): void {
    const periodChanged = settings.periodMs !== this.settings.periodMs;
    this.settings = settings;
    if (periodChanged && this.timer !== null) {
      clearInterval(this.timer);
      this.schedule();
    }
  }

  private schedule(): void {
    this.timer = setInterval(() => {
      if (!this.running) void this.round();
    }, this.settings.periodMs);
    this.timer.unref();
  }

  /** Starts checking; resolves after the first round so the proxy starts with a known topology. */
  start(): Promise<void> {
    this.firstRound = this.round();
    this.schedule();
    return this.firstRound;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const c of this.clients.values()) c.end().catch(() => {});
    this.clients.clear();
  }

  /** One check of every node, in parallel. */
  async round(): Promise<void> {
    this.running = true;
    try {
      const probes = await Promise.all(this.topology.nodes.map((n) => this.checkWithRetries(n.id)));
      if (this.stopped) return;
      this.applyReplication(probes);
      await this.maybePromote(probes);
      const primaries = this.topology.primaryCount();
      if (primaries > 1) {
        this.log.error({ primaries: this.topology.nodes.filter((n) => n.up && n.role === 'primary').map((n) => n.name) }, 'more than one node claims to be primary; writes are refused until this resolves');
      }
    } finally {
      this.running = false;
      this.onRound?.();
    }
  }

  private async checkWithRetries(id: number): Promise<Probe | null> {
    const node = this.topology.nodes[id]!;
    let lastError = '';
    for (let attempt = 0; attempt <= this.settings.maxRetries; attempt++) {
      if (attempt > 0) await delay(this.settings.retryDelayMs);
      if (this.stopped) return null;
      try {
        const started = performance.now();
        const probe = await this.probe(id);
        node.checkDurationMs = performance.now() - started;
        this.topology.setNodeState(id, true, probe.inRecovery ? 'standby' : 'primary', null);
        node.lsn = probe.lsn;
        node.walReceiverName = probe.receiverName;
        return probe;
      } catch (err) {
        lastError = (err as Error).message;
        this.dropClient(id);
      }
    }
    if (!this.stopped) this.topology.setNodeState(id, false, node.role, lastError);
    return null;
  }

  private async probe(id: number): Promise<Probe> {
    const client = await this.client(id);
    const res = await withTimeout(client.query(NODE_QUERY), this.settings.timeoutMs, 'health check query timed out');
    const row = res.rows[0] as { in_recovery: boolean; lsn: string | null; receiver_name: string | null; replay_age_ms: number | null; receive_lsn: string | null };
    let replication: Probe['replication'] = [];
    if (!row.in_recovery) {
      const rep = await withTimeout(client.query(REPLICATION_QUERY), this.settings.timeoutMs, 'health check query timed out');
      replication = rep.rows as Probe['replication'];
    }
    return { inRecovery: row.in_recovery, receiveLsn: parseLsn(row.receive_lsn), replayAgeMs: row.in_recovery ? row.replay_age_ms : null, lsn: parseLsn(row.lsn), receiverName: row.in_recovery ? row.receiver_name : null, replication };
  }

  private async client(id: number): Promise<pg.Client> {
    const existing = this.clients.get(id);
    if (existing) return existing;
    const client = this.newClient(id);
    client.on('error', () => this.dropClient(id));
    this.clients.set(id, client);
    try {
      await withTimeout(client.connect(), this.settings.timeoutMs, 'health check connection timed out');
    } catch (err) {
      this.dropClient(id);
      throw err;
    }
    return client;
  }

  private newClient(id: number): pg.Client {
    const node = this.topology.nodes[id]!;
    return new pg.Client({
      host: node.host,
      port: node.port,
      user: this.settings.user,
      password: this.settings.password,
      database: this.settings.database,
      application_name: 'pgproxy health check',
      ssl: this.settings.ssl ?? false,
      connectionTimeoutMillis: this.settings.timeoutMs,
    });
  }

  private readonly confirming = new Set<number>();
  /** Checks made because a session saw a node fail, completed (either way). */
  confirmations = 0;

  /**
   * A session saw a node fail: a backend connection lost, or a 57P0x. One backend ending is not the node ending
   * (pg_terminate_backend, idle_session_timeout), so the node is checked at once, on a new connection (a node
   * shutting down refuses new connections while old ones live on), and marked down only if that check fails too.
   */
  confirm(id: number, reason: string): void {
    const node = this.topology.nodes[id];
    if (node === undefined || !node.up || this.stopped || this.confirming.has(id)) return;
    this.confirming.add(id);
    const client = this.newClient(id);
    client.on('error', () => undefined);
    withTimeout(
      client.connect().then(() => client.query('SELECT 1')),
      this.settings.timeoutMs,
      'health check timed out',
    ).then(
      () => this.log.info({ node: node.name, reason }, 'a session saw the node fail; it answers a new connection, so it stays up'),
      (err: Error) => {
        if (!this.stopped && node.up) this.topology.markDown(id, `${reason} (then: ${err.message})`);
      },
    ).finally(() => {
      this.confirming.delete(id);
      this.confirmations++;
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      client.end().catch(() => {});
    });
  }

  private dropClient(id: number): void {
    const c = this.clients.get(id);
    if (!c) return;
    this.clients.delete(id);
    // A hung node never answers a polite end(); destroy the socket underneath.
    (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    c.end().catch(() => {});
  }

  /**
   * failover.auto_promote: once no primary has answered for failover.after_ms, promote the standby that has
   * received the most WAL, preferring one that was synchronous (every acknowledged commit is flushed there).
   */
  private async maybePromote(probes: (Probe | null)[]): Promise<void> {
    const fo = this.settings.failover;
    if (!fo?.autoPromote || this.promoting) return;
    if (this.topology.primaryCount() > 0) {
      this.primaryLostAt = null;
      return;
    }
    const now = Date.now();
    this.primaryLostAt ??= now;
    if (now - this.primaryLostAt < fo.afterMs) return;
    const candidates = this.topology.nodes.filter((n) => n.up && n.role === 'standby' && probes[n.id]?.inRecovery);
    if (candidates.length === 0) return;
    const receive = (id: number): bigint => probes[id]?.receiveLsn ?? probes[id]?.lsn ?? 0n;
    candidates.sort((a, b) => {
      const syncA = this.lastSyncState.get(a.id) === 'sync' ? 1 : 0;
      const syncB = this.lastSyncState.get(b.id) === 'sync' ? 1 : 0;
      if (syncA !== syncB) return syncB - syncA;
      const d = receive(b.id) - receive(a.id);
      return d > 0n ? 1 : d < 0n ? -1 : a.id - b.id;
    });
    const chosen = candidates[0]!;
    this.promoting = true;
    this.log.warn({ node: chosen.name, receiveLsn: String(receive(chosen.id)), sync: this.lastSyncState.get(chosen.id) ?? '' }, 'no primary for failover.after_ms: promoting the most advanced standby');
    const client = new pg.Client({ host: chosen.host, port: chosen.port, user: fo.user, password: fo.password, database: this.settings.database, connectionTimeoutMillis: this.settings.timeoutMs });
    try {
      await client.connect();
      await client.query('SELECT pg_promote(true, 60)');
      this.log.warn({ node: chosen.name }, 'standby promoted');
      this.primaryLostAt = null;
    } catch (err) {
      this.log.error({ node: chosen.name, err: (err as Error).message }, 'promotion failed');
    } finally {
      this.promoting = false;
      await client.end().catch(() => {});
    }
  }

  private applyReplication(probes: (Probe | null)[]): void {
    const nodes = this.topology.nodes;
    const primaryIdx = probes.findIndex((p, i) => p !== null && !p.inRecovery && nodes[i]!.up);
    const primary = primaryIdx >= 0 ? nodes[primaryIdx]! : null;
    const rows = primaryIdx >= 0 ? probes[primaryIdx]!.replication : [];
    const now = Date.now();
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const p = probes[i];
      if (p) n.measuredAt = now;
      if (!p || !p.inRecovery) {
        n.following = null;
        n.lagBytes = p && !p.inRecovery ? 0 : null;
        n.lagMs = n.lagBytes;
        n.replayAgeMs = null;
        n.replicationState = '';
        n.replicationSyncState = '';
        continue;
      }
      const row = rows.find((r) => r.application_name === p.receiverName);
      const following = primary === null ? null : row !== undefined && (row.state === 'streaming' || row.state === 'catchup');
      if (following === false && n.following !== false) {
        this.log.warn({ node: n.name, primary: primary?.name }, 'standby is not streaming from the current primary; it takes no reads until it does');
      } else if (following === true && n.following === false) {
        this.log.warn({ node: n.name, primary: primary?.name }, 'standby streams from the current primary again');
      }
      n.following = following;
      n.replicationState = row?.state ?? (following === false ? 'not streaming from primary' : '');
      n.replicationSyncState = row?.sync_state ?? '';
      if (primary !== null) this.lastSyncState.set(n.id, n.replicationSyncState);
      n.lagBytes = primary?.lsn != null && p.lsn != null ? Math.max(0, Number(primary.lsn - p.lsn)) : null;
      n.replayAgeMs = p.replayAgeMs;
      // Caught up means no lag in time, however long ago the last transaction was (an idle primary).
      n.lagMs = n.lagBytes === 0 ? 0 : p.replayAgeMs === null ? null : Math.max(0, Math.round(p.replayAgeMs));
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(message)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
