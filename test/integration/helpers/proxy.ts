// Starting pgproxy in-process in front of a cluster, and clients that connect through it.
import { spawn } from 'node:child_process';
import pg from 'pg';
import pino from 'pino';
import type { ConfigInput } from '../../../src/config/load.js';
import type { ClusterInfo, ClusterUser } from '../../../src/devcluster/cluster.js';
import { proxyConfigForCluster } from '../../../src/devcluster/proxy-config.js';
import { startProxy, type RunningProxy } from '../../../src/server.js';

/** pgproxy on a free port in front of `info`, with fast health checks. Logs are silent unless PGPROXY_TEST_LOG is set. */
export async function startTestProxy(info: ClusterInfo, overrides: ConfigInput = {}): Promise<RunningProxy> {
  const config = proxyConfigForCluster(info, {
    listenPort: 0,
    overrides: { health_check: { period_ms: 300, timeout_ms: 1000, retry_delay_ms: 200 }, ...overrides },
  });
  const log = pino({ level: process.env.PGPROXY_TEST_LOG ?? 'silent' });
  return startProxy(config, log);
}

export function proxyClient(proxy: RunningProxy, info: ClusterInfo, user: ClusterUser = info.users.app, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: proxy.host, port: proxy.port, user: user.name, password: user.password, database: info.database, connectionTimeoutMillis: 10_000, ...extra });
}

export async function withProxyClient<T>(proxy: RunningProxy, info: ClusterInfo, fn: (c: pg.Client) => Promise<T>, user?: ClusterUser): Promise<T> {
  const c = proxyClient(proxy, info, user);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client program (psql, pgbench) with a time limit; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Sum of pg_stat_statements calls on node `i` for statements whose text contains `marker`. */
export async function statementCalls(info: ClusterInfo, i: number, marker: string): Promise<number> {
  const n = info.nodes[i]!;
  const c = new pg.Client({ host: n.host, port: n.port, user: info.users.superuser.name, password: info.users.superuser.password, database: info.database });
  await c.connect();
  try {
    const r = await c.query<{ calls: string | null }>(`SELECT sum(calls)::text AS calls FROM pg_stat_statements WHERE query LIKE $1`, [`%${marker}%`]);
    return Number(r.rows[0]?.calls ?? 0);
  } finally {
    await c.end();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns true or the time runs out (liveness bound, not a timing assertion). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 20_000, stepMs = 200, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}

/**
 * Resolves once the proxy's health checker has checked every node `checks` more times (each node's lastCheck
 * moved on that often), so that at least `checks - 1` whole rounds began after the call. For assertions that
 * something does NOT happen at a health check: they wait for the checks instead of for a guessed time.
 */
export async function healthChecks(proxy: RunningProxy, checks = 2, timeoutMs = 20_000): Promise<void> {
  const nodes = proxy.context.topology.nodes.filter((n) => !n.removed);
  for (let i = 0; i < checks; i++) {
    const before = nodes.map((n) => n.lastCheck?.getTime() ?? 0);
    await eventually(() => nodes.every((n, k) => (n.lastCheck?.getTime() ?? 0) > before[k]!), timeoutMs, 20, `health check ${i + 1} of ${checks}`);
  }
}

/** No client session left in the proxy, and no backend connection leased: everything a client did is settled. */
export function settled(proxy: RunningProxy): boolean {
  return proxy.context.registry.size === 0 && proxy.context.pools.all().every((p) => p.activeCount === 0);
}
