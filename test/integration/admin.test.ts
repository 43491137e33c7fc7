// The admin console (virtual database `pgproxy`, admin.users only) over psql and node-postgres against the
// shared cluster, RELOAD from a configuration file, SHUTDOWN, and the HTTP endpoints (/metrics, /health, /ready).
// Over 500 lines: the console's commands share one proxy and its traffic (beforeAll); helpers are at the top.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetricsServer, type MetricsServer } from '../../src/admin/http.js';
import { loadConfigFile } from '../../src/config/load.js';
import type { ClusterInfo } from '../../src/devcluster/cluster.js';
import { startProxy, type RunningProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { endAll, mapLimit, seenError, tally, waitUntilRunning, withDeadline } from './helpers/load.js';
import { eventually, healthChecks, proxyClient, run, sleep, startTestProxy, withProxyClient } from './helpers/proxy.js';
import { clusterYaml } from './helpers/config-file.js';

const info = sharedCluster();
const ADMIN_DB = 'pgproxy';
const QUERY_SECRET = 'auth-query-secret-for-show-config';
const portOf = (i: number): number => info.nodes[i]!.port;

// ------------------------------------------------------------------------------------------------ helpers

interface Table {
  columns: string[];
  rows: Record<string, string | null>[];
}

/** Runs admin commands over psql (one -c each, unaligned, tab-separated, with headers); never throws. */
async function psqlAdmin(p: RunningProxy, commands: string[], opts: { user?: string; password?: string; stopOnError?: boolean } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const user = opts.user ?? info.users.app.name;
  const args = [`host=${p.host} port=${p.port} user=${user} dbname=${ADMIN_DB} connect_timeout=10`, '-X', '-A', '-F', '\t', '-P', 'footer=off'];
  if (opts.stopOnError !== false) args.push('-v', 'ON_ERROR_STOP=1');
  for (const c of commands) args.push('-c', c);
  return run('psql', args, { PGPASSWORD: opts.password ?? info.users.app.password }, 30_000);
}

/** One psql result set (header line + rows, tab-separated). */
function parsePsql(stdout: string): Table {
  const lines = stdout.replace(/\n$/, '').split('\n');
  const columns = lines[0]!.split('\t');
  const rows = lines.slice(1).map((l) => {
    const cells = l.split('\t');
    return Object.fromEntries(columns.map((c, i) => [c, cells[i] ?? null]));
  });
  return { columns, rows };
}

async function psqlTable(p: RunningProxy, command: string): Promise<Table> {
  const r = await psqlAdmin(p, [command]);
  expect(r.stderr, command).toBe('');
  expect(r.code, command).toBe(0);
  return parsePsql(r.stdout);
}

/** A node-postgres connection to the admin console. */
async function adminClient(p: RunningProxy): Promise<pg.Client> {
  const c = new pg.Client({ host: p.host, port: p.port, user: info.users.app.name, password: info.users.app.password, database: ADMIN_DB, connectionTimeoutMillis: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function adminQuery(p: RunningProxy, sql: string): Promise<Table> {
  const c = await adminClient(p);
  try {
    const r = await withDeadline(c.query<Record<string, string | null>>(sql), 30_000, sql);
    return { columns: r.fields.map((f) => f.name), rows: r.rows };
  } finally {
    await c.end();
  }
}

/** Reads through `p` on a fresh session each: the server port each read ran on. */
async function readPorts(p: RunningProxy, sessions: number, concurrency = 5): Promise<number[]> {
  return mapLimit(Array.from({ length: sessions }, (_, i) => i), concurrency, () =>
    withProxyClient(p, info, async (c) => (await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port),
  );
}

interface PromLine {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text 0.0.4: every non-comment line must be `name{labels} value`. */
function parseProm(text: string): { samples: PromLine[]; types: Map<string, string>; helps: Map<string, string> } {
  const samples: PromLine[] = [];
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(raw);
    if (m) {
      helps.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(raw);
    if (m) {
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(raw);
    if (!m) throw new Error(`unparsable metrics line: ${JSON.stringify(raw)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      if (!l) throw new Error(`unparsable labels: ${JSON.stringify(raw)}`);
      labels[l[1]!] = l[2]!;
      pos = re.lastIndex;
    }
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    if (Number.isNaN(value) && !/^nan$/i.test(v)) throw new Error(`bad value: ${JSON.stringify(raw)}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types, helps };
}

function sampleValue(samples: PromLine[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** A GET on the metrics server: status, content type and body (bounded). */
function httpGet(port: number, pathName: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: pathName, method, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    }),
    10_000,
    `GET ${pathName}`,
  );
}

/** Runs `fn` on a superuser connection straight to node `i`. */
async function withNode<T>(i: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const n = info.nodes[i]!;
  const c = new pg.Client({ host: n.host, port: n.port, user: info.users.superuser.name, password: info.users.superuser.password, database: 'postgres', connectionTimeoutMillis: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

// ------------------------------------------------------------------------------------------------ the shared proxy

let proxy: RunningProxy;
let metrics: MetricsServer;

beforeAll(async () => {
  proxy = await startTestProxy(info, {
    admin: { users: ['app'] },
    // Only for SHOW CONFIG: a secret under a key that is not literally `password` must be hidden too.
    auth: { query: 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1', query_user: info.users.monitor.name, query_password: QUERY_SECRET },
  });
  metrics = await startMetricsServer(proxy.context, '127.0.0.1', 0);
  // Some traffic so that pools, stats and metrics have something to show: at least 10 sessions, and until both
  // standbys have served one (each session picks one at random).
  const seen = new Set<number>();
  for (let i = 0; i < 200 && (i < 10 || !(seen.has(portOf(1)) && seen.has(portOf(2)))); i += 5) for (const p of await readPorts(proxy, 5)) seen.add(p);
  expect([...seen].sort()).toEqual([portOf(1), portOf(2)].sort());
});

afterAll(async () => {
  await metrics?.close();
  await proxy?.close();
});

describe('admin console: SHOW commands', () => {
  it('SHOW HELP lists every command (psql and node-postgres)', async () => {
    const t = await psqlTable(proxy, 'SHOW HELP');
    expect(t.columns).toEqual(['command']);
    const commands = t.rows.map((r) => r.command);
    for (const c of ['SHOW NODES', 'SHOW POOL_NODES', 'SHOW POOLS', 'SHOW CLIENTS', 'SHOW SERVERS', 'SHOW USERS', 'SHOW DATABASES', 'SHOW STATS', 'SHOW CONFIG', 'SHOW VERSION', 'RELOAD', 'PAUSE', 'RESUME', 'DETACH NODE n', 'ATTACH NODE n', 'SHUTDOWN', 'SHOW HELP']) {
      expect(commands).toContain(c);
    }
    const viaPg = await adminQuery(proxy, 'show help;');
    expect(viaPg.rows.map((r) => r.command)).toEqual(commands);
  });

  it('SHOW NODES: one row per node, the primary and two streaming standbys, up', async () => {
    const t = await psqlTable(proxy, 'SHOW NODES');
    expect(t.columns).toEqual([
      'node_id', 'hostname', 'port', 'status', 'pg_status', 'lb_weight', 'role', 'pg_role', 'select_cnt', 'load_balance_node',
      'replication_delay', 'replication_state', 'replication_sync_state', 'last_status_change',
      'name', 'lag_bytes', 'lag_ms', 'last_check', 'error_count', 'last_error', 'detached',
    ]);
    expect(t.rows.map((r) => [r.node_id, r.name, r.port, r.status, r.role])).toEqual([
      ['0', 'node0', String(portOf(0)), 'up', 'primary'],
      ['1', 'node1', String(portOf(1)), 'up', 'standby'],
      ['2', 'node2', String(portOf(2)), 'up', 'standby'],
    ]);
    expect(t.rows.map((r) => Number(r.lb_weight))).toEqual([0, 0.5, 0.5]);
    for (const r of t.rows) {
      expect(r.detached).toBe('false');
      expect(Number.isNaN(Date.parse(r.last_check!))).toBe(false);
      expect(Number(r.error_count)).toBeGreaterThanOrEqual(0);
    }
    for (const r of t.rows.slice(1)) {
      expect(r.replication_state).toBe('streaming');
      expect(Number(r.lag_bytes)).toBeGreaterThanOrEqual(0);
      expect(Number(r.lag_ms)).toBeGreaterThanOrEqual(0);
    }
  });

  it("SHOW POOL_NODES on the console has pgpool-II's 14 columns", async () => {
    const t = await adminQuery(proxy, 'SHOW POOL_NODES');
    expect(t.columns).toEqual([
      'node_id', 'hostname', 'port', 'status', 'pg_status', 'lb_weight', 'role', 'pg_role', 'select_cnt', 'load_balance_node',
      'replication_delay', 'replication_state', 'replication_sync_state', 'last_status_change',
    ]);
    expect(t.rows.map((r) => [r.node_id, r.status, r.role, r.pg_role])).toEqual([
      ['0', 'up', 'primary', 'primary'],
      ['1', 'up', 'standby', 'standby'],
      ['2', 'up', 'standby', 'standby'],
    ]);
    expect(Number(t.rows[1]!.select_cnt) + Number(t.rows[2]!.select_cnt)).toBeGreaterThanOrEqual(10);
    expect(t.rows[0]!.last_status_change).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it('SHOW POOLS: a pool per node used, for database app and user app, with sensible counts', async () => {
    const held = proxyClient(proxy, info);
    await held.connect();
    try {
      await held.query('SELECT 1'); // a standby connection leased by this client
      const t = await psqlTable(proxy, 'SHOW POOLS');
      expect(t.columns).toEqual(['node', 'database', 'user', 'active', 'idle', 'waiting', 'maxwait_ms']);
      const mine = t.rows.filter((r) => r.database === info.database && r.user === info.users.app.name);
      expect(mine.map((r) => r.node).sort()).toEqual(expect.arrayContaining(['node1', 'node2']));
      for (const r of t.rows) {
        expect(Number(r.active)).toBeGreaterThanOrEqual(0);
        expect(Number(r.idle)).toBeGreaterThanOrEqual(0);
        expect(Number(r.waiting)).toBe(0);
        expect(Number(r.maxwait_ms)).toBe(0);
      }
      // The held client leases one connection; the earlier short sessions left theirs idle in the pools.
      expect(mine.reduce((a, r) => a + Number(r.active), 0)).toBeGreaterThanOrEqual(1);
      expect(mine.reduce((a, r) => a + Number(r.idle), 0)).toBeGreaterThanOrEqual(1);
    } finally {
      await held.end();
    }
  });

  it('SHOW CLIENTS lists an open client with its application_name; SHOW SERVERS lists its backends with the pids it sees', async () => {
    const appName = `admin-test-${process.pid}`;
    const c = proxyClient(proxy, info, info.users.app, { application_name: appName });
    await c.connect();
    try {
      const read = await c.query<{ pid: number; port: number }>('SELECT pg_backend_pid() AS pid, inet_server_port() AS port');
      await c.query('BEGIN');
      const inTx = await c.query<{ pid: number; port: number }>('SELECT pg_backend_pid() AS pid, inet_server_port() AS port');
      const seen = new Map<number, number>([[read.rows[0]!.port, read.rows[0]!.pid], [inTx.rows[0]!.port, inTx.rows[0]!.pid]]);
      expect(inTx.rows[0]!.port).toBe(portOf(0)); // a transaction runs on the primary
      expect(read.rows[0]!.port).not.toBe(portOf(0)); // an autocommit read on a standby

      const clients = await psqlTable(proxy, 'SHOW CLIENTS');
      expect(clients.columns).toEqual(['id', 'user', 'database', 'address', 'application_name', 'state', 'tls', 'connect_time', 'nodes']);
      const me = clients.rows.filter((r) => r.application_name === appName);
      expect(me).toHaveLength(1);
      expect(me[0]).toMatchObject({ user: 'app', database: info.database, state: 'idle in transaction', tls: 'false' });
      expect(me[0]!.address).toContain('127.0.0.1');
      expect(me[0]!.nodes!.split(',').sort()).toEqual(['node0', read.rows[0]!.port === portOf(1) ? 'node1' : 'node2'].sort());
      // psql's own session is listed as a client of the console.
      expect(clients.rows.some((r) => r.database === ADMIN_DB && r.user === 'app')).toBe(true);

      const servers = await adminQuery(proxy, 'SHOW SERVERS');
      const mine = servers.rows.filter((r) => r.link === me[0]!.id);
      expect(mine).toHaveLength(2);
      for (const s of mine) {
        expect(Number(s.port)).toBe(portOf(Number(s.node!.replace('node', ''))));
        expect(Number(s.remote_pid)).toBe(seen.get(Number(s.port)));
        expect(s).toMatchObject({ type: 'S', database: info.database, user: 'app', state: 'used', application_name: appName });
      }
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
    // Gone once it disconnects.
    await eventually(async () => !(await adminQuery(proxy, 'SHOW CLIENTS')).rows.some((r) => r.application_name === appName), 5_000);
  });

  it('SHOW SERVERS: every backend connection, pooled (idle, used, active) and pgproxy\u2019s own (health, replay), with the pid, user and database its node reports for it', async () => {
    const table = `adm_servers_${process.pid}`;
    await withProxyClient(proxy, info, (c) => c.query(`CREATE TABLE IF NOT EXISTS ${table} (i int)`));
    const [appX, appY] = [`servers-x-${process.pid}`, `servers-y-${process.pid}`];
    const x = proxyClient(proxy, info, info.users.app, { application_name: appX });
    const y = proxyClient(proxy, info, info.users.app, { application_name: appY });
    await Promise.all([x.connect(), y.connect()]);
    try {
      // X holds a lock on the primary; Y's statement waits for it there: X's connection is used, Y's active.
      await x.query('BEGIN');
      await x.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      const ySql = `SELECT count(*) FROM ${table}`;
      await y.query('BEGIN');
      const yDone = y.query(ySql);
      await waitUntilRunning(info, ySql);
      const servers = await adminQuery(proxy, 'SHOW SERVERS');
      const clients = await adminQuery(proxy, 'SHOW CLIENTS');
      expect(servers.columns).toEqual([
        'type', 'user', 'database', 'state', 'addr', 'port', 'local_addr', 'local_port', 'connect_time', 'request_time',
        'wait', 'wait_us', 'close_needed', 'ptr', 'link', 'remote_pid', 'tls', 'application_name', 'node',
      ]);
      const idOf = (app: string): string => clients.rows.find((r) => r.application_name === app)!.id!;
      const linked = (app: string): (string | null)[][] => servers.rows.filter((r) => r.link === idOf(app)).map((r) => [r.node, r.state, r.application_name]);
      expect(linked(appX)).toEqual([['node0', 'used', appX]]);
      expect(linked(appY)).toEqual([['node0', 'active', appY]]);
      // The short sessions of beforeAll left their standby connections idle in the pools.
      expect(servers.rows.filter((r) => r.state === 'idle' && r.node !== 'node0').length).toBeGreaterThanOrEqual(1);
      // One health-check connection and one replay-position poller per node.
      for (const kind of ['health', 'replay']) {
        expect(servers.rows.filter((r) => r.state === kind).map((r) => r.node).sort(), kind).toEqual(['node0', 'node1', 'node2']);
      }
      const pooled = servers.rows.filter((r) => ['idle', 'used', 'active', 'reset'].includes(r.state!));
      const pools = await adminQuery(proxy, 'SHOW POOLS');
      expect(pooled.length).toBe(pools.rows.reduce((n, r) => n + Number(r.active) + Number(r.idle), 0));
      // Each connection as its node sees it: matched by the port pgproxy's end of it uses.
      for (const [i, n] of info.nodes.entries()) {
        const activity = await withNode(i, (c) => c.query<{ pid: number; usename: string; datname: string; application_name: string; client_port: number }>(`SELECT pid, usename, datname, application_name, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL`));
        for (const r of servers.rows.filter((s) => s.node === n.name && s.state !== 'catalog' && s.state !== 'auth_query')) {
          expect(r).toMatchObject({ type: 'S', addr: n.host, port: String(n.port), local_addr: '127.0.0.1', wait: '0', close_needed: '0' });
          const a = activity.rows.find((row) => row.client_port === Number(r.local_port));
          expect(a, `${r.state} connection from port ${r.local_port} on ${n.name}`).toBeDefined();
          expect({ pid: String(a!.pid), user: a!.usename, database: a!.datname }).toEqual({ pid: r.remote_pid, user: r.user, database: r.database });
          if (r.state === 'health' || r.state === 'replay') expect(a!.application_name).toBe(r.application_name);
          if (r.state === 'used' || r.state === 'active') expect(a!.application_name).toBe(r.application_name);
        }
      }
      await x.query('COMMIT');
      await withDeadline(yDone, 10_000, 'Y after the lock');
      await y.query('COMMIT');
    } finally {
      await endAll([x, y]);
      await withProxyClient(proxy, info, (c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    }
  });

  it('SHOW USERS, SHOW DATABASES and SHOW VERSION with PgBouncer\u2019s columns', async () => {
    const held = proxyClient(proxy, info);
    await held.connect();
    try {
      await held.query('SELECT 1'); // a standby connection leased by this client
      const users = await psqlTable(proxy, 'SHOW USERS');
      expect(users.columns).toEqual(['name', 'pool_size', 'pool_mode', 'max_user_connections', 'current_connections', 'current_client_connections']);
      expect(users.rows.map((r) => r.name)).toEqual([info.users.app.name, info.users.scram.name]);
      const app = users.rows[0]!;
      expect(app).toMatchObject({ pool_size: '50', pool_mode: 'session', max_user_connections: '0' });
      const appPools = (await adminQuery(proxy, 'SHOW POOLS')).rows.filter((r) => r.user === info.users.app.name);
      expect(Number(app.current_connections)).toBe(appPools.reduce((n, r) => n + Number(r.active) + Number(r.idle), 0));
      // The held client and psql's own session on the console.
      expect(Number(app.current_client_connections)).toBeGreaterThanOrEqual(2);

      const dbs = await psqlTable(proxy, 'SHOW DATABASES');
      expect(dbs.columns).toEqual([
        'name', 'host', 'port', 'database', 'force_user', 'pool_size', 'min_pool_size', 'reserve_pool', 'pool_mode',
        'max_connections', 'current_connections', 'paused', 'disabled', 'node',
      ]);
      const appDb = dbs.rows.filter((r) => r.name === info.database);
      expect(appDb.map((r) => [r.node, r.host, r.port, r.database, r.pool_mode, r.paused, r.disabled])).toEqual(
        info.nodes.map((n) => [n.name, n.host, String(n.port), info.database, 'session', '0', '0']),
      );
      for (const r of appDb) {
        const pools = (await adminQuery(proxy, 'SHOW POOLS')).rows.filter((p) => p.database === info.database && p.node === r.node);
        expect(Number(r.current_connections), r.node!).toBe(pools.reduce((n, p) => n + Number(p.active) + Number(p.idle), 0));
      }
      expect(dbs.rows.find((r) => r.name === ADMIN_DB)).toMatchObject({ database: ADMIN_DB, pool_size: '0' });

      const version = await adminQuery(proxy, 'SHOW VERSION');
      const pkg = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')) as { version: string };
      expect(version).toEqual({ columns: ['version'], rows: [{ version: `pgproxy ${pkg.version}` }] });
    } finally {
      await held.end();
    }
  });

  it('SHOW POOL_NODES on a fresh client session marks the node its reads will go to, before its first read (load_balance: session)', async () => {
    for (let i = 0; i < 6; i++) {
      await withProxyClient(proxy, info, async (c) => {
        const marked = async (): Promise<number[]> => (await c.query<{ port: string; load_balance_node: string }>('SHOW POOL_NODES')).rows.filter((r) => r.load_balance_node === 'true').map((r) => Number(r.port));
        const before = await marked();
        expect(before).toHaveLength(1);
        expect([portOf(1), portOf(2)]).toContain(before[0]); // weights 0/1/1
        const read = (await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port;
        expect(read).toBe(before[0]);
        expect(await marked()).toEqual(before);
      });
    }
    // The console's own session reads nothing: no node is its load-balance node.
    expect((await adminQuery(proxy, 'SHOW POOL_NODES')).rows.map((r) => r.load_balance_node)).toEqual(['false', 'false', 'false']);
  });

  it('with load_balance: statement, SHOW POOL_NODES marks the node of the session\u2019s last read (none before the first)', async () => {
    const p = await startTestProxy(info, { routing: { load_balance: 'statement' } });
    try {
      await withProxyClient(p, info, async (c) => {
        const marked = async (): Promise<number[]> => (await c.query<{ port: string; load_balance_node: string }>('SHOW POOL_NODES')).rows.filter((r) => r.load_balance_node === 'true').map((r) => Number(r.port));
        expect(await marked()).toEqual([]);
        for (let i = 0; i < 6; i++) {
          const read = (await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port;
          expect(await marked()).toEqual([read]);
        }
      });
    } finally {
      await p.close();
    }
  });

  it('SHOW STATS: after reads and writes, the standbys count queries and reads, the primary writes', async () => {
    const before = await adminQuery(proxy, 'SHOW STATS');
    expect(before.columns).toEqual(['node', 'queries', 'reads', 'writes', 'bytes_in', 'bytes_out', 'avg_query_ms', 'total_query_ms']);
    const table = `adm_stats_${process.pid}`;
    await withProxyClient(proxy, info, async (c) => {
      await c.query(`CREATE TABLE ${table} (id int)`);
      await c.query(`INSERT INTO ${table} VALUES (1), (2)`);
    });
    const ports = await readPorts(proxy, 30);
    const after = await psqlTable(proxy, 'SHOW STATS');
    const num = (t: Table, node: string, col: string): number => Number(t.rows.find((r) => r.node === node)![col]);
    expect(after.rows.map((r) => r.node)).toEqual(['node0', 'node1', 'node2']);
    expect(num(after, 'node0', 'writes') - num(before, 'node0', 'writes')).toBeGreaterThanOrEqual(2);
    expect(num(after, 'node0', 'queries') - num(before, 'node0', 'queries')).toBeGreaterThanOrEqual(2);
    for (const [i, node] of [[1, 'node1'], [2, 'node2']] as const) {
      const served = ports.filter((p) => p === portOf(i)).length;
      expect(served, `reads on ${node}: ${JSON.stringify(tally(ports, String))}`).toBeGreaterThan(0);
      expect(num(after, node, 'queries') - num(before, node, 'queries')).toBeGreaterThanOrEqual(served);
      expect(num(after, node, 'reads') - num(before, node, 'reads')).toBeGreaterThanOrEqual(served);
      expect(num(after, node, 'writes')).toBe(0);
      expect(num(after, node, 'bytes_in')).toBeGreaterThan(num(before, node, 'bytes_in'));
      expect(num(after, node, 'bytes_out')).toBeGreaterThan(num(before, node, 'bytes_out'));
      expect(num(after, node, 'avg_query_ms')).toBeGreaterThan(0);
    }
    expect(ports.filter((p) => p === portOf(0))).toHaveLength(0);
    await withProxyClient(proxy, info, (c) => c.query(`DROP TABLE ${table}`));
  });

  it('SHOW CONFIG: every key with its value, passwords shown as ***', async () => {
    const t = await psqlTable(proxy, 'SHOW CONFIG');
    expect(t.columns).toEqual(['key', 'value']);
    const get = (k: string): string | null | undefined => t.rows.find((r) => r.key === k)?.value;
    expect(get('listen.port')).toBe('0');
    expect(get('health_check.period_ms')).toBe('300');
    expect(get('routing.load_balance')).toBe('session');
    expect(get('admin.users')).toBe('["app"]');
    expect(get('health_check.password')).toBe('***');
    expect(get('failover.password')).toBe('***');
    const users = JSON.parse(get('auth.users')!) as { name: string; password: string }[];
    expect(users.map((u) => u.name)).toEqual([info.users.app.name, info.users.scram.name]);
    for (const u of users) expect(u.password).toBe('***');
    // No secret in any form anywhere in the output.
    const all = JSON.stringify(t.rows);
    for (const secret of [info.users.app.password, info.users.scram.password, info.users.monitor.password, QUERY_SECRET]) {
      expect(all, `SHOW CONFIG shows a secret (${secret === QUERY_SECRET ? 'auth.query_password' : 'a password'})`).not.toContain(secret);
    }
  });
});

describe('admin console: access and errors', () => {
  it('a user not in admin.users gets FATAL 28000 on dbname=pgproxy (node-postgres and psql)', async () => {
    const c = new pg.Client({ host: proxy.host, port: proxy.port, user: info.users.scram.name, password: info.users.scram.password, database: ADMIN_DB, connectionTimeoutMillis: 10_000 });
    c.on('error', () => undefined);
    const err = await c.connect().then(
      () => null,
      (e: unknown) => seenError(e),
    );
    await c.end().catch(() => undefined);
    expect(err).not.toBeNull();
    expect(err!.code).toBe('28000');
    expect(err!.severity).toBe('FATAL');
    const r = await psqlAdmin(proxy, ['SHOW HELP'], { user: info.users.scram.name, password: info.users.scram.password });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FATAL:.*not allowed to use the pgproxy admin console/);
    // The same user reaches its ordinary database.
    await withProxyClient(proxy, info, (c2) => c2.query('SELECT 1'), info.users.scram);
  });

  it('an unknown command is an error and the console stays usable', async () => {
    const c = await adminClient(proxy);
    try {
      const err = await c.query('SHOW NOTHING_SUCH').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(err).not.toBeNull();
      expect(err!.code).toBe('0A000');
      expect(err!.message).toMatch(/unknown admin command.*SHOW HELP/);
      const help = await c.query('SHOW HELP');
      expect(help.rows.length).toBeGreaterThan(5);
      // Extended protocol is refused, and the console still answers afterwards.
      const ext = await c.query({ text: 'SHOW HELP', values: ['x'] }).then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(ext?.code).toBe('0A000');
      expect((await c.query('SHOW STATS')).rows).toHaveLength(3);
      // A bad node id for DETACH NODE is an error too.
      const bad = await c.query('DETACH NODE 7').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(bad?.code).toBe('22023');
      expect((await c.query('SHOW NODES')).rows.every((r: { detached: string }) => r.detached === 'false')).toBe(true);
    } finally {
      await c.end();
    }
    // psql: the failing command prints an ERROR, the next one on the same connection still works.
    const r = await psqlAdmin(proxy, ['FROBNICATE', 'SHOW HELP'], { stopOnError: false });
    expect(r.stderr).toMatch(/ERROR:.*unknown admin command/);
    expect(r.stdout).toContain('SHOW POOL_NODES');
  });
});

describe('admin console: DETACH / ATTACH, PAUSE / RESUME', () => {
  it('DETACH NODE 1 takes node1 out of rotation; ATTACH NODE 1 brings it back', async () => {
    const c = await adminClient(proxy);
    try {
      await c.query('DETACH NODE 1');
      try {
        const pn = await c.query<{ node_id: string; status: string }>('SHOW POOL_NODES');
        expect(pn.rows.find((r) => r.node_id === '1')!.status).toBe('down');
        const nodes = await c.query<{ node_id: string; detached: string }>('SHOW NODES');
        expect(nodes.rows.find((r) => r.node_id === '1')!.detached).toBe('true');
        const ports = await readPorts(proxy, 20);
        expect(tally(ports, String)).toEqual({ [portOf(2)]: 20 });
        // Still detached after several health checks (the checker does not bring it back by itself).
        await healthChecks(proxy, 3);
        expect((await c.query<{ node_id: string; status: string }>('SHOW POOL_NODES')).rows.find((r) => r.node_id === '1')!.status).toBe('down');
        expect(tally(await readPorts(proxy, 10), String)).toEqual({ [portOf(2)]: 10 });
      } finally {
        await c.query('ATTACH NODE 1');
      }
      const attachedAt = Date.now();
      await eventually(async () => (await c.query<{ node_id: string; status: string }>('SHOW POOL_NODES')).rows.find((r) => r.node_id === '1')!.status === 'up', 5_000, 50);
      expect(Date.now() - attachedAt).toBeLessThan(5_000);
      expect((await c.query<{ node_id: string; detached: string }>('SHOW NODES')).rows.find((r) => r.node_id === '1')!.detached).toBe('false');
      const ports = await readPorts(proxy, 30);
      expect(ports.filter((p) => p === portOf(1)).length, JSON.stringify(tally(ports, String))).toBeGreaterThan(0);
      expect(ports.filter((p) => p === portOf(0))).toHaveLength(0);
    } finally {
      await c.end();
    }
  });

  it('PAUSE holds a new statement of another client while an open transaction finishes; RESUME releases it', async () => {
    const table = `adm_pause_${process.pid}`;
    await withProxyClient(proxy, info, (c) => c.query(`CREATE TABLE ${table} (id int)`));
    const appB = `pause-b-${process.pid}`;
    const a = proxyClient(proxy, info);
    const b = proxyClient(proxy, info, info.users.app, { application_name: appB });
    a.on('error', () => undefined);
    b.on('error', () => undefined);
    await a.connect();
    await b.connect();
    const admin = await adminClient(proxy);
    let resumed = false;
    try {
      await b.query('SELECT 1');
      await a.query('BEGIN');
      await a.query(`INSERT INTO ${table} VALUES (1)`);
      await admin.query('PAUSE');
      let settled = false;
      const held = b.query<{ n: number }>('SELECT 42 AS n');
      void held.then(
        () => (settled = true),
        () => (settled = true),
      );
      const stateOfB = async (): Promise<string | undefined> =>
        (await admin.query<{ application_name: string; state: string }>('SHOW CLIENTS')).rows.find((r) => r.application_name === appB)?.state;
      // The proxy has the statement and holds it.
      let state: string | undefined;
      await eventually(async () => (state = await stateOfB()) !== 'idle', 5_000, 20);
      expect(state).toBe('waiting');
      expect(settled, 'a new statement ran while paused').toBe(false);
      // The transaction already open goes on to its end.
      await withDeadline(a.query(`INSERT INTO ${table} VALUES (2)`), 5_000, 'INSERT in the open transaction while paused');
      await withDeadline(a.query('COMMIT'), 5_000, 'COMMIT while paused');
      // Its end does not let the held statement go.
      expect(await stateOfB(), 'the held statement ran before RESUME').toBe('waiting');
      expect(settled, 'the held statement ran before RESUME').toBe(false);
      await admin.query('RESUME');
      resumed = true;
      const r = await withDeadline(held, 5_000, 'the held statement after RESUME');
      expect(r.rows).toEqual([{ n: 42 }]);
      await a.query('BEGIN');
      const rows = await a.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
      await a.query('COMMIT');
      expect(rows.rows[0]!.n).toBe(2);
      // Nothing else is held.
      expect((await withDeadline(b.query<{ n: number }>('SELECT 7 AS n'), 5_000, 'after RESUME')).rows).toEqual([{ n: 7 }]);
    } finally {
      if (!resumed) await admin.query('RESUME').catch(() => undefined);
      await endAll([a, b, admin]);
      await withProxyClient(proxy, info, (c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    }
  });
});

describe('HTTP: /metrics, /health, /ready', () => {
  it('/metrics parses as Prometheus text with the expected metrics, and counters move with queries', async () => {
    const first = await httpGet(metrics.port, '/metrics');
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const a = parseProm(first.body);
    for (const name of [
      'pgproxy_client_connections', 'pgproxy_client_connections_by_state', 'pgproxy_clients_accepted_total', 'pgproxy_backend_connections',
      'pgproxy_pool_waiting_clients', 'pgproxy_queries_total', 'pgproxy_reads_total', 'pgproxy_writes_total', 'pgproxy_node_sent_bytes_total',
      'pgproxy_node_received_bytes_total', 'pgproxy_routed_total', 'pgproxy_client_errors_total', 'pgproxy_statements_not_understood_total',
      'pgproxy_query_duration_seconds', 'pgproxy_pool_wait_seconds', 'pgproxy_node_up', 'pgproxy_node_primary', 'pgproxy_node_role',
      'pgproxy_node_replication_lag_bytes', 'pgproxy_node_replication_lag_seconds', 'pgproxy_node_detached', 'pgproxy_health_check_duration_seconds',
      'pgproxy_node_errors_total', 'pgproxy_process_cpu_user_seconds_total', 'pgproxy_process_resident_memory_bytes', 'pgproxy_nodejs_eventloop_lag_seconds',
    ]) {
      expect(a.types.has(name), `metric ${name}`).toBe(true);
      expect(a.helps.get(name), `HELP of ${name}`).toBeTruthy();
    }
    expect(a.types.get('pgproxy_query_duration_seconds')).toBe('histogram');
    expect(sampleValue(a.samples, 'pgproxy_node_up', { node: 'node0' })).toBe(1);
    expect(sampleValue(a.samples, 'pgproxy_node_primary', { node: 'node0' })).toBe(1);
    expect(sampleValue(a.samples, 'pgproxy_node_role', { node: 'node1', role: 'standby' })).toBe(1);
    expect(sampleValue(a.samples, 'pgproxy_query_duration_seconds_bucket', { node: 'node1', le: '+Inf' })).toBe(sampleValue(a.samples, 'pgproxy_query_duration_seconds_count', { node: 'node1' }));
    expect(sampleValue(a.samples, 'pgproxy_clients_accepted_total')).toBeGreaterThan(0);
    for (const node of ['node0', 'node1', 'node2']) {
      expect(sampleValue(a.samples, 'pgproxy_health_check_duration_seconds', { node }), `check duration of ${node}`).toBeGreaterThan(0);
      expect(sampleValue(a.samples, 'pgproxy_node_errors_total', { node })).toBeGreaterThanOrEqual(0);
      expect(sampleValue(a.samples, 'pgproxy_node_detached', { node })).toBe(0);
    }
    for (const node of ['node1', 'node2']) {
      expect(sampleValue(a.samples, 'pgproxy_node_replication_lag_bytes', { node })).toBeGreaterThanOrEqual(0);
      expect(sampleValue(a.samples, 'pgproxy_node_replication_lag_seconds', { node })).toBeGreaterThanOrEqual(0);
    }
    // The reads of beforeAll left standby connections in the pools.
    const standbyConns = ['node1', 'node2'].reduce(
      (acc, node) => acc + sampleValue(a.samples, 'pgproxy_backend_connections', { node, state: 'idle' })! + sampleValue(a.samples, 'pgproxy_backend_connections', { node, state: 'active' })!,
      0,
    );
    expect(standbyConns).toBeGreaterThanOrEqual(1);
    expect(sampleValue(a.samples, 'pgproxy_client_connections_by_state', { state: 'idle' })).toBeGreaterThanOrEqual(0);

    const ports = await readPorts(proxy, 20);
    await withProxyClient(proxy, info, async (c) => {
      await c.query('SELECT no_such_column_here FROM pg_class').catch(() => undefined); // a 42xxx error
    });
    const b = parseProm((await httpGet(metrics.port, '/metrics')).body);
    for (const [i, node] of [[1, 'node1'], [2, 'node2']] as const) {
      const served = ports.filter((p) => p === portOf(i)).length;
      if (served === 0) continue;
      const q0 = sampleValue(a.samples, 'pgproxy_queries_total', { node })!;
      const q1 = sampleValue(b.samples, 'pgproxy_queries_total', { node })!;
      expect(q1 - q0, `queries on ${node}`).toBeGreaterThanOrEqual(served);
      expect(sampleValue(b.samples, 'pgproxy_query_duration_seconds_count', { node })! - sampleValue(a.samples, 'pgproxy_query_duration_seconds_count', { node })!).toBeGreaterThanOrEqual(served);
      expect(sampleValue(b.samples, 'pgproxy_node_received_bytes_total', { node })!).toBeGreaterThan(sampleValue(a.samples, 'pgproxy_node_received_bytes_total', { node })!);
    }
    expect(ports.filter((p) => p !== portOf(0)).length).toBe(20);
    expect(sampleValue(b.samples, 'pgproxy_clients_accepted_total')! - sampleValue(a.samples, 'pgproxy_clients_accepted_total')!).toBeGreaterThanOrEqual(21);
    expect(sampleValue(b.samples, 'pgproxy_client_errors_total', { class: '42' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(b.samples, 'pgproxy_routed_total', { reason: 'read' })! - (sampleValue(a.samples, 'pgproxy_routed_total', { reason: 'read' }) ?? 0)).toBeGreaterThanOrEqual(20);
  });

  it('/health is 200 ok; unknown paths 404; other methods 405', async () => {
    const h = await httpGet(metrics.port, '/health');
    expect(h).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await httpGet(metrics.port, '/health?x=1')).status).toBe(200);
    expect((await httpGet(metrics.port, '/nope')).status).toBe(404);
    expect((await httpGet(metrics.port, '/metrics', 'POST')).status).toBe(405);
    const head = await httpGet(metrics.port, '/metrics', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('/ready is 200 with a primary, 503 while the primary is detached, 200 again after ATTACH NODE 0', async () => {
    expect(await httpGet(metrics.port, '/ready')).toMatchObject({ status: 200 });
    const c = await adminClient(proxy);
    try {
      await c.query('DETACH NODE 0');
      try {
        const r = await httpGet(metrics.port, '/ready');
        expect(r.status).toBe(503);
        expect(r.body).toMatch(/no primary/);
        // Liveness is not readiness: the process still serves.
        expect((await httpGet(metrics.port, '/health')).status).toBe(200);
        const m = parseProm((await httpGet(metrics.port, '/metrics')).body);
        expect(sampleValue(m.samples, 'pgproxy_node_detached', { node: 'node0' })).toBe(1);
        expect(sampleValue(m.samples, 'pgproxy_node_up', { node: 'node0' })).toBe(0);
      } finally {
        await c.query('ATTACH NODE 0');
      }
      await eventually(async () => (await httpGet(metrics.port, '/ready')).status === 200, 5_000, 100);
      // Writes work again.
      await withProxyClient(proxy, info, (w) => w.query('SELECT txid_current()'));
    } finally {
      await c.end();
    }
  });

  it('/ready is 503 once shutdown has begun (markStopping), /health stays 200; close() ends keep-alive connections', async () => {
    const second = await startMetricsServer(proxy.context, '127.0.0.1', 0);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const get = (p: string): Promise<number> =>
        new Promise((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: second.port, path: p, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          }).on('error', reject);
        });
      expect(await get('/ready')).toBe(200);
      second.markStopping();
      expect(await get('/ready')).toBe(503);
      expect(await get('/health')).toBe(200);
      // A kept-alive idle socket does not hold close() up.
      await withDeadline(second.close(), 3_000, 'metrics server close with a keep-alive client');
      await expect(get('/health')).rejects.toThrow();
    } finally {
      agent.destroy();
      await second.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------ RELOAD and SHUTDOWN

/** The shared cluster's pgproxy.yaml for these tests (see helpers/config-file.ts). */
function yamlFor(cluster: ClusterInfo, opts: { weights: [number, number, number]; extraRoutingLine?: string; breakSyntax?: boolean }): { text: string; lineOf: (needle: string) => number } {
  return clusterYaml(cluster, { ...opts, tail: ['admin:', '  users: [app]'], logLevel: 'silent' });
}

describe('admin console: RELOAD from a configuration file, and SHUTDOWN', () => {
  let dir: string;
  let file: string;
  let fp: RunningProxy;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-admin-reload-'));
    file = path.join(dir, 'pgproxy.yaml');
    writeFileSync(file, yamlFor(info, { weights: [0, 1, 1] }).text);
    fp = await startProxy(loadConfigFile(file), pino({ level: process.env.PGPROXY_TEST_LOG ?? 'silent' }), { configFile: file });
  });

  afterAll(async () => {
    await fp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('RELOAD with weights 0/0/1 during a read loop: reads before it spread over node1 and node2, after it only node2', async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, async () => {
      const c = proxyClient(fp, info);
      c.on('error', () => undefined);
      await c.connect();
      return c;
    }));
    const records: { start: number; end: number; port: number }[] = [];
    let stop = false;
    let reloadedAt = 0;
    const readsAfterReload = (): number => records.filter((r) => reloadedAt > 0 && r.start > reloadedAt).length;
    const loops = clients.map(async (c) => {
      for (let i = 0; i < 2_000 && !stop; i++) {
        const start = Date.now();
        const r = await withDeadline(c.query<{ port: number }>('SELECT inet_server_port() AS port'), 10_000, 'read during reload');
        records.push({ start, end: Date.now(), port: r.rows[0]!.port });
        await sleep(5);
      }
    });
    try {
      // Enough reads before the reload that their spread over node1 and node2 is not down to chance.
      await eventually(() => records.length >= 200, 30_000, 20, '200 reads before the reload');
      writeFileSync(file, yamlFor(info, { weights: [0, 0, 1] }).text);
      const admin = await adminClient(fp);
      try {
        const r = await admin.query('RELOAD');
        expect(r.command).toBe('RELOAD');
        reloadedAt = Date.now();
        const nodes = await admin.query<{ name: string; lb_weight: string }>('SHOW NODES');
        expect(nodes.rows.map((n) => Number(n.lb_weight))).toEqual([0, 0, 1]);
      } finally {
        await admin.end();
      }
      await eventually(() => readsAfterReload() >= 100, 30_000, 20, '100 reads after the reload');
    } finally {
      stop = true;
      await Promise.all(loops);
      await endAll(clients);
    }
    const before = records.filter((r) => r.end < reloadedAt - 50);
    const after = records.filter((r) => r.start > reloadedAt);
    expect(before.length).toBeGreaterThan(20);
    expect(after.length).toBeGreaterThan(20);
    const b = tally(before, (r) => String(r.port));
    expect(b[portOf(1)] ?? 0, JSON.stringify(b)).toBeGreaterThan(before.length * 0.2);
    expect(b[portOf(2)] ?? 0, JSON.stringify(b)).toBeGreaterThan(before.length * 0.2);
    expect(b[portOf(0)]).toBeUndefined();
    expect(tally(after, (r) => String(r.port))).toEqual({ [portOf(2)]: after.length });
    // New sessions too.
    expect(tally(await readPorts(fp, 10), String)).toEqual({ [portOf(2)]: 10 });
  });

  it('RELOAD of a bad file (unknown key, YAML syntax error) fails naming the line and key; the old config stays', async () => {
    const admin = await adminClient(fp);
    try {
      // Would move reads to node1 if it were applied.
      const unknown = yamlFor(info, { weights: [0, 1, 0], extraRoutingLine: 'load_balancing_mode: statement' });
      writeFileSync(file, unknown.text);
      const e1 = await admin.query('RELOAD').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(e1).not.toBeNull();
      expect(e1!.code).toBe('F0000');
      expect(e1!.message).toContain(`${file}:${unknown.lineOf('load_balancing_mode')}: routing.load_balancing_mode`);
      expect(e1!.message).toMatch(/current configuration stays/);

      const broken = yamlFor(info, { weights: [0, 1, 0], breakSyntax: true });
      writeFileSync(file, broken.text);
      const e2 = await admin.query('RELOAD').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(e2).not.toBeNull();
      expect(e2!.message).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: `));
      const line = Number(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):`).exec(e2!.message)![1]);
      expect(line).toBeGreaterThanOrEqual(broken.lineOf('database: [postgres'));
      expect(line).toBeLessThanOrEqual(broken.lineOf('database: [postgres') + 1);

      // The console still works and the previous weights (0/0/1) still rule the reads.
      const nodes = await admin.query<{ lb_weight: string }>('SHOW NODES');
      expect(nodes.rows.map((n) => Number(n.lb_weight))).toEqual([0, 0, 1]);
      expect(tally(await readPorts(fp, 15), String)).toEqual({ [portOf(2)]: 15 });
      await withProxyClient(fp, info, async (c) => {
        const ports = new Set<number>();
        for (let i = 0; i < 10; i++) ports.add((await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port);
        expect([...ports]).toEqual([portOf(2)]);
      });
    } finally {
      await admin.end();
    }
  });

  it('RELOAD on a proxy started without a file is an error', async () => {
    const c = await adminClient(proxy);
    try {
      const e = await c.query('RELOAD').then(
        () => null,
        (err: unknown) => seenError(err),
      );
      expect(e?.code).toBe('F0000');
      expect(e?.message).toMatch(/without --config|no configuration file/);
      expect((await c.query('SHOW HELP')).rows.length).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
  });

  it('SHUTDOWN stops the proxy: proxy.stopped resolves, clients are closed with 57P01, no new connections', async () => {
    const idle = proxyClient(fp, info);
    const errors: ReturnType<typeof seenError>[] = [];
    idle.on('error', (e) => errors.push(seenError(e)));
    await idle.connect();
    await idle.query('SELECT 1');
    const admin = await adminClient(fp);
    const r = await admin.query('SHUTDOWN');
    expect(r.command).toBe('SHUTDOWN');
    await withDeadline(fp.stopped, 10_000, 'proxy.stopped after SHUTDOWN');
    await eventually(() => errors.length > 0, 5_000, 50);
    expect(errors[0]!.code).toBe('57P01');
    const late = proxyClient(fp, info);
    late.on('error', () => undefined);
    await expect(late.connect()).rejects.toThrow();
    await endAll([idle, admin, late]);
  });
});
