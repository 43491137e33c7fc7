// What both providers do the same way, over plain PostgreSQL connections to each node's host:port: queries,
// waiting for a node to accept connections, for standbys to stream and replay, for a promotion to finish.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import {
  type ClusterInfo,
  ClusterNodeError,
  type ClusterNodeInfo,
  type ClusterUser,
  DEFAULT_TIMEOUT_MS,
  type DevCluster,
  type NodeStatus,
  type StopMode,
} from './cluster-types.js';
import { setSynchronous } from './roles.js';

export type Log = Pick<Logger, 'info' | 'warn' | 'debug'>;

export const silentLog: Log = { info: () => undefined, warn: () => undefined, debug: () => undefined } as unknown as Log;

/** Where a node's standbys reach it for replication (what their primary_conninfo names). */
export interface ReplicationAddress {
  host: string;
  port: number;
}

function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/** The value of `key` in a libpq conninfo string (key=value pairs, values possibly quoted). */
function conninfoValue(conninfo: string, key: string): string | null {
  const m = new RegExp(`(?:^|\\s)${key}=('(?:[^'\\\\]|\\\\.)*'|\\S+)`).exec(conninfo);
  if (!m) return null;
  const v = m[1] as string;
  return v.startsWith("'") ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
}

export abstract class ClusterBase implements DevCluster {
  abstract readonly info: ClusterInfo;
  abstract readonly relocated: boolean;
  protected readonly log: Log;
  protected readonly timeoutMs: number;
  protected synchronousStandby: boolean;

  protected constructor(opts: { logger?: Log | undefined; timeoutMs?: number | undefined; synchronousStandby: boolean }) {
    this.log = opts.logger ?? silentLog;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.synchronousStandby = opts.synchronousStandby;
  }

  abstract down(opts?: { purge?: boolean }): Promise<void>;
  abstract status(): Promise<NodeStatus[]>;
  abstract stopNode(i: number, mode?: StopMode): Promise<void>;
  abstract startNode(i: number): Promise<void>;
  abstract killNode(i: number, signal?: NodeJS.Signals): Promise<void>;
  abstract suspendNode(i: number): Promise<void>;
  abstract resumeNode(i: number): Promise<void>;
  /** Ask node i to leave recovery (pg_ctl promote where its server runs); promote() then waits for it. */
  protected abstract requestPromotion(i: number): Promise<void>;
  /** The last lines of node i's server log, for error messages. */
  protected abstract logTail(i: number): Promise<string>;

  protected node(i: number): ClusterNodeInfo {
    const n = this.info.nodes[i];
    if (!n) throw new RangeError(`no node ${i} (cluster has ${this.info.nodes.length} nodes)`);
    return n;
  }

  protected async nodeError(i: number, message: string): Promise<ClusterNodeError> {
    return new ClusterNodeError(this.node(i).name, message, await this.logTail(i).catch(() => ''));
  }

  protected describePorts(): string {
    return this.info.nodes.map((n) => `${n.name}=${n.port}`).join(' ');
  }

  /** Where standbys reach node i for replication. Host networking: the address everyone uses. */
  protected replicationAddress(i: number): ReplicationAddress {
    const n = this.node(i);
    return { host: n.host, port: n.port };
  }

  async promote(i: number): Promise<void> {
    this.log.info({ node: this.node(i).name }, 'promoting');
    try {
      await this.requestPromotion(i);
    } catch (err) {
      throw await this.nodeError(i, `pg_ctl promote failed: ${(err as Error).message}`);
    }
    const deadline = Date.now() + this.timeoutMs;
    while (Date.now() < deadline) {
      const rows = await this.probe<{ r: boolean }>(i, 'SELECT pg_is_in_recovery() AS r').catch(() => []);
      if (rows[0]?.r === false) return;
      await sleep(100);
    }
    throw await this.nodeError(i, `still in recovery ${this.timeoutMs} ms after promote`);
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  connectionConfig(i: number, user: ClusterUser = this.info.users.superuser, database: string = this.info.database): pg.ClientConfig {
    const n = this.node(i);
    return {
      host: n.host,
      port: n.port,
      user: user.name,
      password: user.password,
      database,
      ssl: false,
      application_name: 'pgproxy-devcluster',
    };
  }

  connectionString(i: number, user: ClusterUser = this.info.users.superuser, database: string = this.info.database): string {
    const n = this.node(i);
    const e = encodeURIComponent;
    return `postgres://${e(user.name)}:${e(user.password)}@${n.host}:${n.port}/${e(database)}`;
  }

  protected async withClient<T>(
    i: number,
    database: string,
    user: ClusterUser,
    fn: (c: pg.Client) => Promise<T>,
    // Bounded even when the node is suspended under us; long enough for any setup statement.
    { connectMs = 10_000, queryMs = 120_000 }: { connectMs?: number; queryMs?: number } = {},
  ): Promise<T> {
    const client = new pg.Client({
      ...this.connectionConfig(i, user, database),
      connectionTimeoutMillis: connectMs,
      query_timeout: queryMs,
    });
    // A server that dies under us emits 'error' on the client; the query rejects anyway.
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async query<T = any>(
    i: number,
    sql: string,
    params: unknown[] = [],
    user: ClusterUser = this.info.users.superuser,
    database: string = this.info.database,
  ): Promise<T[]> {
    return this.withClient(i, database, user, async (c) => (await c.query(sql, params)).rows as T[]);
  }

  /** A short superuser query on database postgres for status checks and waits (5 s bounds). */
  protected probe<T>(i: number, sql: string, params: unknown[] = []): Promise<T[]> {
    return this.withClient(i, 'postgres', this.info.users.superuser, async (c) => (await c.query(sql, params)).rows as T[], {
      connectMs: 5_000,
      queryMs: 5_000,
    });
  }

  /** Role and LSN of node i as status() reports them, assuming its server runs. */
  protected async probeStatus(i: number, down: NodeStatus): Promise<NodeStatus> {
    try {
      const rows = await this.probe<{ r: boolean; lsn: string | null }>(
        i,
        `SELECT pg_is_in_recovery() AS r,
                CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn`,
      );
      const row = rows[0];
      return { ...down, up: true, inRecovery: row?.r ?? null, lsn: row?.lsn ?? null };
    } catch {
      return down;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Waits

  /** Until node i answers `SELECT 1`; stops early when `exited()` reports the server gone. */
  protected async waitAccepting(i: number, exited: () => string | null | Promise<string | null> = () => null): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      const gone = await exited();
      if (gone !== null) throw await this.nodeError(i, `server exited during startup (${gone})`);
      try {
        await this.probe(i, 'SELECT 1');
        return;
      } catch (err) {
        last = err;
        await sleep(50);
      }
    }
    throw await this.nodeError(i, `not accepting connections after ${this.timeoutMs} ms: ${(last as Error | undefined)?.message ?? ''}`);
  }

  /** Wait until every standby in `standbys` streams from node `p` (pg_stat_replication, state streaming). */
  protected async waitStreaming(p: number, standbys: number[]): Promise<void> {
    if (standbys.length === 0) return;
    const deadline = Date.now() + this.timeoutMs;
    const names = standbys.map((i) => this.node(i).name);
    let missing = names;
    while (Date.now() < deadline) {
      try {
        const rows = await this.probe<{ application_name: string }>(
          p,
          `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'`,
        );
        const streaming = new Set(rows.map((r) => r.application_name));
        missing = names.filter((name) => !streaming.has(name));
        if (missing.length === 0) return;
      } catch {
        // primary restarting; retry
      }
      await sleep(100);
    }
    const first = standbys[names.indexOf(missing[0] as string)] ?? p;
    throw await this.nodeError(first, `not streaming from ${this.node(p).name} after ${this.timeoutMs} ms (missing: ${missing.join(', ')})`);
  }

  /** The node node i replicates from (its primary_conninfo), or null. */
  protected async upstreamOf(i: number): Promise<number | null> {
    const rows = await this.probe<{ primary_conninfo: string }>(i, 'SHOW primary_conninfo');
    const conninfo = rows[0]?.primary_conninfo ?? '';
    const host = conninfoValue(conninfo, 'host');
    const port = Number(conninfoValue(conninfo, 'port') ?? 5432);
    const j = this.info.nodes.findIndex((_, k) => {
      const a = this.replicationAddress(k);
      return a.port === port && (host === null || a.host === host);
    });
    return j >= 0 ? j : null;
  }

  async waitForReplay(timeoutMs: number = this.timeoutMs): Promise<void> {
    const st = await this.status();
    const targets = new Map<number, bigint>(); // upstream node -> its LSN now
    for (const [i, s] of st.entries()) {
      if (s.up && s.inRecovery === false) {
        const rows = await this.probe<{ lsn: string }>(i, 'SELECT pg_current_wal_lsn()::text AS lsn');
        targets.set(i, lsnToBigInt(rows[0]?.lsn ?? '0/0'));
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (const [i, s] of st.entries()) {
      if (!s.up || !s.inRecovery) continue;
      const upstream = await this.upstreamOf(i);
      const target = upstream === null ? undefined : targets.get(upstream);
      if (target === undefined) continue; // its upstream is down or unknown
      let replayed = -1n;
      while (Date.now() < deadline) {
        const rows = await this.probe<{ lsn: string | null }>(i, 'SELECT pg_last_wal_replay_lsn()::text AS lsn');
        replayed = lsnToBigInt(rows[0]?.lsn ?? '0/0');
        if (replayed >= target) break;
        await sleep(20);
      }
      if (replayed < target) {
        throw await this.nodeError(i, `replay did not reach the primary's LSN within ${timeoutMs} ms`);
      }
    }
  }

  /**
   * After the nodes of an existing cluster were started again: with one primary, wait until its standbys stream,
   * and apply a change of the synchronous setting. Returns whether the state to save changed.
   */
  protected async settle(wantSync: boolean | undefined): Promise<boolean> {
    const st = await this.status();
    const primaries = st.flatMap((s, i) => (s.up && s.inRecovery === false ? [i] : []));
    if (primaries.length !== 1) {
      this.log.warn({ primaries: primaries.map((i) => this.node(i).name) }, `expected one primary, found ${primaries.length}`);
      return false;
    }
    const p = primaries[0] as number;
    const followers: number[] = [];
    for (const [i, s] of st.entries()) {
      if (s.inRecovery && (await this.upstreamOf(i)) === p) followers.push(i);
    }
    await this.waitStreaming(p, followers);
    if (p === 0 && wantSync !== undefined && wantSync !== this.synchronousStandby && this.info.nodes.length > 1) {
      await this.applySynchronous(wantSync);
      return true;
    }
    return false;
  }

  /** Turn synchronous replication to node1 on or off on the primary (node0). */
  protected async applySynchronous(on: boolean): Promise<void> {
    const names = on ? this.node(1).name : '';
    await this.withClient(0, 'postgres', this.info.users.superuser, (client) => setSynchronous(client, names));
    this.synchronousStandby = on;
    this.log.info({ synchronousStandby: on ? names : null }, on ? `synchronous standby: ${names}` : 'asynchronous replication');
  }
}
