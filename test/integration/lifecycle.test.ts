// Configuration reloads that add and remove backends, the slow-statement log, and `pgproxy demo` end to end.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { openCluster } from '../../src/devcluster/cluster.js';
import { findFreePorts } from '../../src/devcluster/ports.js';
import { startProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { proxyConfigForCluster } from '../../src/devcluster/proxy-config.js';
import { eventually, run, withProxyClient } from './helpers/proxy.js';

const info = sharedCluster();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-lifecycle-'));

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function yaml(backends: { name: string; port: number; weight: number }[]): string {
  return [
    'listen: { host: 127.0.0.1, port: 0 }',
    'backends:',
    ...backends.map((b) => `  - { name: ${b.name}, host: 127.0.0.1, port: ${b.port}, weight: ${b.weight} }`),
    `auth: { users: [ { name: ${info.users.app.name}, password: ${info.users.app.password} } ] }`,
    `health_check: { period_ms: 300, user: ${info.users.monitor.name}, password: ${info.users.monitor.password} }`,
    'log: { level: silent }',
  ].join('\n');
}

async function readPorts(proxy: Awaited<ReturnType<typeof startProxy>>, sessions: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < sessions; i++) seen.add(await withProxyClient(proxy, info, async (c) => (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p));
  return seen;
}

describe('reload', () => {
  it('adds and removes backends without dropping clients; node ids stay stable', async () => {
    const [n0, n1, n2] = info.nodes;
    const file = path.join(tmp, 'reload.yaml');
    writeFileSync(file, yaml([{ name: 'node0', port: n0!.port, weight: 0 }, { name: 'node1', port: n1!.port, weight: 1 }]));
    const proxy = await startProxy(loadConfigFile(file), pino({ level: 'silent' }), { configFile: file });
    try {
      expect(await readPorts(proxy, 10)).toEqual(new Set([n1!.port]));
      await withProxyClient(proxy, info, async (held) => {
        writeFileSync(file, yaml([{ name: 'node0', port: n0!.port, weight: 0 }, { name: 'node1', port: n1!.port, weight: 1 }, { name: 'node2', port: n2!.port, weight: 1 }]));
        await proxy.reload();
        await eventually(async () => (await readPorts(proxy, 10)).has(n2!.port));
        writeFileSync(file, yaml([{ name: 'node0', port: n0!.port, weight: 0 }, { name: 'node2', port: n2!.port, weight: 1 }]));
        await proxy.reload();
        await eventually(async () => {
          const seen = await readPorts(proxy, 10);
          return seen.size === 1 && seen.has(n2!.port);
        });
        // The client connected before both reloads still works.
        expect((await held.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
      });
      const ids = proxy.context.topology.nodes.map((n) => [n.id, n.name, n.removed]);
      expect(ids).toEqual([[0, 'node0', false], [1, 'node1', true], [2, 'node2', false]]);
    } finally {
      await proxy.close();
    }
  });
});

describe('slow statements', () => {
  it('are logged with node and duration, SQL text truncated, never the parameters', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    // slow_ms far above what a SELECT 1 takes even on a loaded machine (its first use of a standby includes
    // opening that backend connection), and well below the pg_sleep.
    const p2 = await startProxy(proxyConfigForCluster(info, { listenPort: 0, overrides: { log: { slow_ms: 500 } } }), pino({ level: 'warn' }, sink));
    try {
      await withProxyClient(p2, info, async (c) => {
        await c.query('SELECT pg_sleep($1::float8), $2::text AS secret', ['0.6', 'do-not-log-me']);
        await c.query('SELECT 1');
      });
      const slow = lines.filter((l) => l.msg === 'slow statement');
      expect(slow).toHaveLength(1);
      // pg_sleep is VOLATILE: the catalog rule sends it to the primary.
      expect(slow[0]).toMatchObject({ node: 'node0', sql: 'SELECT pg_sleep($1::float8), $2::text AS secret' });
      expect(Number(slow[0]!.durationMs)).toBeGreaterThanOrEqual(600);
      expect(JSON.stringify(lines)).not.toContain('do-not-log-me');
    } finally {
      await p2.close();
    }
  });
});

describe('pgproxy demo', () => {
  it('starts a cluster and pgproxy, serves psql, and on Ctrl-C stops both, leaving no process behind', async () => {
    const [port] = await findFreePorts(1);
    const dir = path.join(tmp, 'demo-cluster');
    const child = spawn(process.execPath, ['dist/src/cli/main.js', 'demo', '--port', String(port), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.resume();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await eventually(() => out.includes('Connect with:'), 90_000, 200);
      expect(out).toMatch(new RegExp(`psql "host=127.0.0.1 port=${port} user=app dbname=app"`));
      const r = await run('psql', [`host=127.0.0.1 port=${port} user=app dbname=app`, '-XAtc', 'SHOW POOL_NODES'], { PGPASSWORD: 'app-secret' });
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(3);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      const cluster = await openCluster(dir);
      expect((await cluster!.status()).every((s) => !s.up)).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      const cluster = await openCluster(dir);
      await cluster?.down({ purge: true });
    }
  }, 120_000);
});
