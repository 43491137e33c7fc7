// workers: 2 — the real CLI as a process tree (primary + 2 workers) on one port, in front of the shared cluster.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findFreePorts } from '../../src/devcluster/ports.js';
import { sharedCluster } from './helpers/cluster.js';
import { waitUntilRunning } from './helpers/load.js';
import { eventually, run } from './helpers/proxy.js';

const info = sharedCluster();
const app = info.users.app;
let dir: string;
let child: ChildProcess;
let port: number;
let metricsPort: number;
let exitCode: Promise<number | null>;

beforeAll(async () => {
  [port, metricsPort] = await findFreePorts(2);
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-workers-'));
  const file = path.join(dir, 'pgproxy.yaml');
  writeFileSync(
    file,
    [
      'workers: 2',
      `listen: { host: 127.0.0.1, port: ${port} }`,
      'backends:',
      ...info.nodes.map((n, i) => `  - { name: ${n.name}, host: ${n.host}, port: ${n.port}, weight: ${i === 0 ? 0 : 1} }`),
      `auth: { users: [ { name: ${app.name}, password: ${app.password} } ] }`,
      `admin: { users: [${app.name}] }`,
      `metrics: { port: ${metricsPort} }`,
      `health_check: { period_ms: 300, user: ${info.users.monitor.name}, password: ${info.users.monitor.password} }`,
      'log: { level: warn }',
    ].join('\n'),
  );
  child = spawn(process.execPath, ['dist/src/cli/main.js', 'start', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  exitCode = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  // Up: both workers have served a client (the pid the proxy gives names the worker). Until then, the
  // primary process hands connections to the workers that are already listening.
  const served = new Set<number>();
  await eventually(async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: app.name, password: app.password, database: info.database });
    try {
      await c.connect();
      await c.query('SELECT 1');
      served.add(workerOf(c));
    } catch {
      // not listening yet
    } finally {
      await c.end().catch(() => {});
    }
    return served.size === 2;
  }, 30_000, 50, 'both workers serving');
}, 60_000);

function workerOf(c: pg.Client): number {
  return Math.floor((c as unknown as { processID: number }).processID / 0x1000000);
}

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

it('serves clients from both workers and shows their figures together', async () => {
  const clients = await Promise.all(
    Array.from({ length: 6 }, async () => {
      const c = new pg.Client({ host: '127.0.0.1', port, user: app.name, password: app.password, database: info.database });
      await c.connect();
      await c.query('SELECT 1');
      return c;
    }),
  );
  try {
    // The proxy-issued pids name the worker that owns each session (top bits): both workers serve.
    const owners = new Set(clients.map(workerOf));
    expect([...owners].sort()).toEqual([1, 2]);
    // 6 clients plus the psql session itself, across both workers (once the sessions of the clients that
    // came before have ended in their workers).
    let listed: string[] = [];
    await eventually(async () => {
      const admin = await run('psql', [`host=127.0.0.1 port=${port} user=${app.name} dbname=pgproxy`, '-XAtc', 'SHOW CLIENTS'], { PGPASSWORD: app.password });
      listed = admin.code === 0 ? admin.stdout.trim().split('\n') : [`psql exit ${admin.code}: ${admin.stderr}`];
      return listed.length === 7;
    }, 10_000, 100).catch(() => undefined);
    expect(listed, listed.join('\n')).toHaveLength(7);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const reads = [...metrics.matchAll(/^pgproxy_reads_total\{node="node[12]"\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
    expect(reads).toBeGreaterThanOrEqual(6);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
});

it('a CancelRequest reaching the other worker is passed on to the session it names', async () => {
  // Connections alternate between the workers, so psql's cancel connection lands on the other one.
  // psql sends the cancel on Ctrl-C (SIGINT), once the statement runs.
  for (let i = 0; i < 4; i++) {
    const started = Date.now();
    const psql = spawn('psql', [`host=127.0.0.1 port=${port} user=${app.name} dbname=${info.database}`, '-Xc', 'SELECT pg_sleep(20)'], { env: { ...process.env, PGPASSWORD: app.password }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    psql.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => psql.on('close', (code) => resolve(code)));
    try {
      await waitUntilRunning(info, 'SELECT pg_sleep(20)');
      psql.kill('SIGINT');
      await exited;
    } finally {
      if (psql.exitCode === null) psql.kill('SIGKILL');
    }
    expect(stderr).toMatch(/canceling statement due to user request/);
    expect(Date.now() - started).toBeLessThan(10_000);
  }
});

it('SIGTERM stops the primary process and every worker, with exit code 0', async () => {
  child.kill('SIGTERM');
  expect(await exitCode).toBe(0);
});
