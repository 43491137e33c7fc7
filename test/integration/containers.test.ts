// The container provider's own promises, on runs whose clusters are containers (PGPROXY_CLUSTER=docker; CI's
// container pass): `pgproxy demo --docker` serves reads from the standbys and Ctrl-C leaves no container; a crashed
// owner's containers are removed by the next start while a live owner's stay; a missing image fails clearly and is
// never pulled. The cluster itself (roles, replication, faults) is devcluster.test.ts's, on either provider.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLog } from '../../src/devcluster/cluster-base.js';
import { type ClusterInfo, openCluster, startCluster } from '../../src/devcluster/cluster.js';
import { Engine } from '../../src/devcluster/containers/engine.js';
import { CLUSTER_LABEL, removeAbandoned } from '../../src/devcluster/containers/owner.js';
import { findFreePorts } from '../../src/devcluster/ports.js';
import { clusterProvider, sharedCluster } from './helpers/cluster.js';
import { eventually, run, statementCalls } from './helpers/proxy.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-containers-'));
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await (await openCluster(dir).catch(() => null))?.down({ purge: true }).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
});

interface Recorded {
  clusterId: string;
  info: ClusterInfo;
}

function recorded(dir: string): Recorded {
  return JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as Recorded;
}

async function containersOf(clusterId: string): Promise<string[]> {
  const engine = await Engine.connect('host');
  return (await engine.listLabelled(`${CLUSTER_LABEL}=${clusterId}`)).map((c) => c.Id);
}

/** A `node dist/src/cli/main.js demo --docker` child, until it printed how to connect. */
async function startDemo(dir: string, port: number) {
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'demo', '--docker', '--port', String(port), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await eventually(() => out.includes('Connect with:') || child.exitCode !== null, 120_000, 200, 'the demo to be ready');
  expect(child.exitCode, `demo exited early:\n${out}\n${err}`).toBeNull();
  return { child, exited, out: () => out };
}

describe.runIf(clusterProvider() === 'docker')('container provider', () => {
  it('pgproxy demo --docker sends reads to the standbys, and Ctrl-C removes every container it started', async () => {
    const [port] = await findFreePorts(1);
    const dir = path.join(tmp, 'demo');
    dirs.push(dir);
    const demo = await startDemo(dir, port!);
    try {
      expect(demo.out()).toMatch(/Cluster: containers \(/);
      const { clusterId, info } = recorded(dir);
      expect(await containersOf(clusterId)).toHaveLength(3);

      const nodes = await run('psql', [`host=127.0.0.1 port=${port} user=app dbname=app`, '-XAtF,', '-c', 'SHOW POOL_NODES'], { PGPASSWORD: 'app-secret' });
      expect(nodes.code, nodes.stderr).toBe(0);
      expect(nodes.stdout.trim().split('\n')).toHaveLength(3);

      // Where the reads ran, as the servers saw it.
      const marker = `containers_demo_${Date.now()}`;
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: 'app-secret', database: 'app' });
      await client.connect();
      try {
        for (let k = 0; k < 20; k++) await client.query(`SELECT $1::int AS ${marker}`, [k]);
      } finally {
        await client.end();
      }
      const calls = await Promise.all(info.nodes.map((_, i) => statementCalls(info, i, marker)));
      expect(calls[0]).toBe(0);
      expect(calls[1]! + calls[2]!).toBe(20);

      demo.child.kill('SIGINT');
      expect(await demo.exited).toBe(0);
      expect(await containersOf(clusterId)).toEqual([]);
    } finally {
      if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
    }
  }, 180_000);

  it("removes a crashed owner's containers at the next start, and never a live owner's", async () => {
    const dir = path.join(tmp, 'crashed');
    dirs.push(dir);
    // A process that builds a cluster (primary only) and would live on: then it crashes.
    const script = `import('${path.resolve('dist/src/devcluster/cluster.js')}').then(async (m) => {
      await m.startCluster({ provider: 'docker', dir: ${JSON.stringify(dir)}, standbys: 0, basePort: 0, pull: false });
      console.log('ready');
      setInterval(() => undefined, 1000);
    }, (e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    try {
      await eventually(() => out.includes('ready') || child.exitCode !== null, 60_000, 100, 'the child cluster');
      expect(out.trim()).toBe('ready');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const crashed = recorded(dir).clusterId;
    const live = recorded(sharedCluster().dir).clusterId;
    expect(await containersOf(crashed)).toHaveLength(1);

    const removed = await removeAbandoned(await Engine.connect('host'), silentLog);
    expect(removed).toBeGreaterThanOrEqual(1);
    expect(await containersOf(crashed)).toEqual([]);
    // The shared cluster's owner (this run's main process) is alive: its containers stay.
    expect(await containersOf(live)).toHaveLength(3);
  }, 120_000);

  it('fails with a clear message when the image is absent, without pulling it', async () => {
    const dir = path.join(tmp, 'no-image');
    const err = await startCluster({ provider: 'docker', dir, image: 'localhost/pgproxy-no-such-image:0', standbys: 0, basePort: 0, pull: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/localhost\/pgproxy-no-such-image:0 is not present, and pulling is off/);
    const engine = await Engine.connect('host');
    expect(await engine.client.image.exists(engine.tc.ImageName.fromString('localhost/pgproxy-no-such-image:0'))).toBe(false);
  });
});
