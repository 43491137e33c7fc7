/**
 * Where statements land, tested the way pgpool-II users do: many concurrent sessions running
 * `SELECT inet_server_port()` (count per backend and role), and many sessions INSERTing into a fresh table
 * (every row on the primary, then on every standby once replay catches up, and equal WAL positions).
 * node-postgres clients, simple-protocol statements, fixed loop counts.
 *
 * pgproxy runs this as users run it: with the pool and limits of the shipped pgproxy.yaml (startShippedPgproxy),
 * not the raised pool the workloads use. 100 sessions then share the shipped per-node connection limit: the ones
 * beyond it wait for a connection, and none may fail.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfigFile } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import type { LocalCluster } from '../src/devcluster/cluster.js';
import { proxyConfigForCluster } from '../src/devcluster/proxy-config.js';
import type { ProcessTracker } from './procs.js';
import { type PgproxyOptions, type PgproxyTarget, startPgproxy } from './targets/pgproxy.js';
import type { Target } from './targets/target.js';

/** The sample configuration pgproxy ships (bench/ and dist/bench/ both find it two or three levels up). */
function shippedConfigFile(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.basename(path.dirname(here)) === 'dist' ? ['..', '..'] : ['..'];
  return path.join(here, ...up, 'pgproxy.yaml');
}

let shippedSettings: Pick<Config, 'pool' | 'limits'> | null = null;

/** pgproxy.yaml's pool and limits sections, as shipped. */
export function shippedPoolSettings(): Pick<Config, 'pool' | 'limits'> {
  if (shippedSettings === null) {
    const shipped = loadConfigFile(shippedConfigFile(), {});
    shippedSettings = { pool: shipped.pool, limits: shipped.limits };
  }
  return shippedSettings;
}

/**
 * pgproxy for the distribution step, with the shipped pool and limits. The target writes only pool.max_per_node to
 * its file; every other pool and limits key comes from the defaults, which must be what pgproxy.yaml ships (the
 * config unit tests hold them equal): checked here, so that the step never runs with anything else.
 */
export async function startShippedPgproxy(opts: Omit<PgproxyOptions, 'maxPerNode'>): Promise<PgproxyTarget> {
  const shipped = shippedPoolSettings();
  const defaults = proxyConfigForCluster(opts.info, { overrides: { pool: { max_per_node: shipped.pool.max_per_node } } });
  const differ = (['pool', 'limits'] as const).filter((k) => JSON.stringify(defaults[k]) !== JSON.stringify(shipped[k]));
  if (differ.length > 0) throw new Error(`pgproxy.yaml's ${differ.join(' and ')} differ from the defaults: the distribution step cannot run as shipped`);
  return startPgproxy({ ...opts, maxPerNode: shipped.pool.max_per_node });
}

/** One line for the report: the pool and limits the distribution step ran pgproxy with. */
export function shippedPoolSummary(): string {
  const { pool, limits } = shippedPoolSettings();
  return `pool.mode ${pool.mode}, pool.max_per_node ${pool.max_per_node}, pool.acquire_timeout_ms ${pool.acquire_timeout_ms}, limits.max_connections_per_node ${limits.max_connections_per_node} (pgproxy.yaml as shipped)`;
}

export interface NodeCount {
  node: string;
  port: number;
  role: 'primary' | 'standby';
  count: number;
}

export interface SelectDistribution {
  target: string;
  sessions: number;
  perSession: number;
  perNode: NodeCount[];
  /** Answers from a port that is none of the nodes (should be none). */
  unknown: number;
  perRole: { primary: number; standby: number };
  errors: string[];
  elapsedMs: number;
}

export interface InsertDistribution {
  target: string;
  sessions: number;
  perSession: number;
  table: string;
  expectedRows: number;
  /** Rows counted directly on each node after replay caught up. */
  rows: { node: string; role: 'primary' | 'standby'; rows: number; lsn: string }[];
  rowsEqual: boolean;
  lsnEqual: boolean;
  errors: string[];
  elapsedMs: number;
  insertsPerSecond: number;
}

interface Ctx {
  cluster: LocalCluster;
  tracker: ProcessTracker;
  /** Role of each node by index, from the cluster's own status. */
  roles: ('primary' | 'standby')[];
}

/**
 * A statement's bound: beyond the longest a session may wait for a connection in pgproxy as shipped (then
 * pgproxy's own answer, 53300, is what the report shows), plus the statement itself.
 */
function queryTimeoutMs(): number {
  const acquire = shippedPoolSettings().pool.acquire_timeout_ms;
  return acquire === 0 ? 600_000 : acquire + 60_000;
}

function clientFor(t: Target): pg.Client {
  const c = new pg.Client({
    host: t.host,
    port: t.port,
    user: t.user,
    password: t.password,
    database: t.database,
    connectionTimeoutMillis: 30_000,
    query_timeout: queryTimeoutMs(),
    application_name: 'pgproxy-bench',
  });
  c.on('error', () => undefined);
  return c;
}

/** Run `sessions` concurrent sessions of `body`; collects distinct error messages. */
async function sessionsOf(t: Target, sessions: number, body: (c: pg.Client, s: number) => Promise<void>, tracker: ProcessTracker): Promise<string[]> {
  const errors = new Map<string, number>();
  await Promise.all(
    Array.from({ length: sessions }, async (_, s) => {
      const c = clientFor(t);
      try {
        tracker.check();
        await c.connect();
        await body(c, s);
      } catch (err) {
        const msg = (err as Error).message;
        errors.set(msg, (errors.get(msg) ?? 0) + 1);
      } finally {
        await c.end().catch(() => undefined);
      }
    }),
  );
  return [...errors].map(([m, n]) => `${m} (${n} session${n === 1 ? '' : 's'})`);
}

export async function rolesOf(cluster: LocalCluster): Promise<('primary' | 'standby')[]> {
  const st = await cluster.status();
  return st.map((s) => (s.inRecovery === false ? 'primary' : 'standby'));
}

export async function selectDistribution(ctx: Ctx, t: Target, sessions: number, perSession: number): Promise<SelectDistribution> {
  const nodes = ctx.cluster.info.nodes;
  const counts = new Map<number, number>();
  const started = Date.now();
  const errors = await sessionsOf(
    t,
    sessions,
    async (c) => {
      for (let i = 0; i < perSession; i++) {
        ctx.tracker.check();
        const r = await c.query<{ port: number }>('SELECT inet_server_port() AS port');
        const port = Number(r.rows[0]?.port);
        counts.set(port, (counts.get(port) ?? 0) + 1);
      }
    },
    ctx.tracker,
  );
  const perNode = nodes.map((n, i): NodeCount => ({ node: n.name, port: n.port, role: ctx.roles[i] ?? 'standby', count: counts.get(n.port) ?? 0 }));
  const known = new Set(nodes.map((n) => n.port));
  let unknown = 0;
  for (const [port, n] of counts) if (!known.has(port)) unknown += n;
  return {
    target: t.label,
    sessions,
    perSession,
    perNode,
    unknown,
    perRole: {
      primary: perNode.filter((n) => n.role === 'primary').reduce((a, n) => a + n.count, 0),
      standby: perNode.filter((n) => n.role === 'standby').reduce((a, n) => a + n.count, 0),
    },
    errors,
    elapsedMs: Date.now() - started,
  };
}

export async function insertDistribution(ctx: Ctx, t: Target, sessions: number, perSession: number): Promise<InsertDistribution> {
  const { cluster } = ctx;
  const table = `bench_dist_${t.id}`;
  const primary = ctx.roles.indexOf('primary');
  if (primary < 0) throw new Error('no primary in the cluster');
  // A fresh table, made directly on the primary as the app role.
  await cluster.query(primary, `DROP TABLE IF EXISTS ${table}`, [], cluster.info.users.app);
  await cluster.query(primary, `CREATE TABLE ${table} (session int NOT NULL, seq int NOT NULL, at timestamptz NOT NULL DEFAULT now())`, [], cluster.info.users.app);
  await cluster.waitForReplay(60_000);

  const started = Date.now();
  const errors = await sessionsOf(
    t,
    sessions,
    async (c, s) => {
      for (let i = 0; i < perSession; i++) {
        ctx.tracker.check();
        await c.query(`INSERT INTO ${table} (session, seq) VALUES (${s}, ${i})`);
      }
    },
    ctx.tracker,
  );
  const elapsedMs = Date.now() - started;

  await cluster.waitForReplay(120_000);
  // The primary may write a little WAL of its own (running-xacts records, checkpoints) after the wait:
  // read counts once, then WAL positions until they agree (bounded).
  const rowsByNode = await Promise.all(
    cluster.info.nodes.map(async (_, i) => Number((await cluster.query<{ n: string }>(i, `SELECT count(*) AS n FROM ${table}`))[0]?.n ?? -1)),
  );
  let lsns: string[] = [];
  for (let attempt = 0; attempt < 40; attempt++) {
    lsns = await Promise.all(
      cluster.info.nodes.map(async (_, i) => {
        const sql = ctx.roles[i] === 'primary' ? 'SELECT pg_current_wal_lsn()::text AS lsn' : 'SELECT pg_last_wal_replay_lsn()::text AS lsn';
        return (await cluster.query<{ lsn: string }>(i, sql))[0]?.lsn ?? '?';
      }),
    );
    if (lsns.every((l) => l === lsns[0])) break;
    await sleep(250);
  }
  return {
    target: t.label,
    sessions,
    perSession,
    table,
    expectedRows: sessions * perSession,
    rows: cluster.info.nodes.map((n, i) => ({ node: n.name, role: ctx.roles[i] ?? 'standby', rows: rowsByNode[i] ?? -1, lsn: lsns[i] ?? '?' })),
    rowsEqual: rowsByNode.every((r) => r === rowsByNode[0]),
    lsnEqual: lsns.every((l) => l === lsns[0]),
    errors,
    elapsedMs,
    insertsPerSecond: Math.round(((rowsByNode[primary] ?? 0) * 1000) / Math.max(1, elapsedMs)),
  };
}
