// The shipped pool and limits defaults against a node that allows what PostgreSQL allows by default
// (max_connections = 100, superuser_reserved_connections = 3): the dev cluster runs 300 and would hide an oversized
// default. 150 clients of two users in two databases (four pools, 50 connections each allowed) all write at once:
// limits.max_connections_per_node keeps pgproxy's connections to the node at 80, the others wait in line, and
// every client is served; none fails, and the node never has more backends than it allows non-superusers.
// A throwaway single-node cluster: every connection pgproxy makes lands on that one node.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import type { ClusterUser, DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { endAll, gatedWriters, seenError, watchPeaksWith, withDeadline } from './helpers/load.js';
import { eventually, proxyClient, startTestProxy } from './helpers/proxy.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** pgproxy.yaml as shipped: its pool and limits sections are what this test runs with. */
const SHIPPED = loadConfigFile(path.join(ROOT, 'pgproxy.yaml'), {});
const CLIENTS = 150;
const DATABASES = ['app', 'app2'];

let cluster: DevCluster;
let proxy: RunningProxy | null = null;

beforeAll(async () => {
  cluster = await throwawayCluster({ standbys: 0 });
  await cluster.query(0, 'ALTER SYSTEM SET max_connections = 100', [], cluster.info.users.superuser, 'postgres');
  await cluster.query(0, 'ALTER SYSTEM RESET superuser_reserved_connections', [], cluster.info.users.superuser, 'postgres');
  await cluster.stopNode(0);
  await cluster.startNode(0);
  const { app, scram } = cluster.info.users;
  await cluster.query(0, `CREATE DATABASE app2 OWNER ${app.name}`, [], cluster.info.users.superuser, 'postgres');
  for (const db of DATABASES) {
    await cluster.query(0, `CREATE TABLE writes (client int NOT NULL, n int NOT NULL); GRANT ALL ON writes TO ${app.name}, ${scram.name}`, [], cluster.info.users.superuser, db);
  }
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await cluster?.down({ purge: true });
});

/** Samples until stop(): the most client backends the node had at once (this watcher excluded), and of the pools' two users. */
function watchNode(): { stop(): Promise<{ all: number; pools: number }> } {
  const { app, scram } = cluster.info.users;
  const watcher = new pg.Client(cluster.connectionConfig(0, cluster.info.users.superuser, 'postgres'));
  return watchPeaksWith(watcher, { all: 0, pools: 0 }, async (c, peaks) => {
    const r = await c.query<{ all: number; pools: number }>(
      `SELECT count(*)::int AS all, (count(*) FILTER (WHERE usename IN ($1, $2)))::int AS pools
         FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
      [app.name, scram.name],
    );
    peaks.all = Math.max(peaks.all, r.rows[0]!.all);
    peaks.pools = Math.max(peaks.pools, r.rows[0]!.pools);
  });
}

describe('limits.max_connections_per_node as shipped, on a node with max_connections = 100', () => {
  it('150 clients in four pools all write at once: 80 connections to the node, 70 clients wait, all are served, none fails', async () => {
    const settings = await cluster.query<{ name: string; setting: string }>(0, `SELECT name, setting FROM pg_settings WHERE name IN ('max_connections', 'superuser_reserved_connections') ORDER BY name`);
    expect(settings).toEqual([{ name: 'max_connections', setting: '100' }, { name: 'superuser_reserved_connections', setting: '3' }]);
    const allowed = 100 - 3;
    const cap = SHIPPED.limits.max_connections_per_node;
    // The test is about the defaults: they must leave room for pgproxy's own connections and for others.
    expect(cap).toBeGreaterThan(0);
    expect(cap).toBeLessThan(allowed);
    expect(SHIPPED.pool.max_per_node * 4).toBeGreaterThan(CLIENTS); // no pool limit keeps the total down: the node cap must

    proxy = await startTestProxy(cluster.info, { pool: SHIPPED.pool, limits: SHIPPED.limits });
    const p = proxy;
    const { app, scram } = cluster.info.users;
    const who = (i: number): { user: ClusterUser; database: string } => ({ user: i % 2 === 0 ? app : scram, database: DATABASES[Math.floor(i / 2) % 2]! });
    const node = watchNode();
    let peakProxy = 0;
    const sampler = setInterval(() => (peakProxy = Math.max(peakProxy, p.context.pools.connectionsToNode(0))), 2);
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const c = proxyClient(p, cluster.info, who(i).user, { database: who(i).database });
        c.on('error', () => undefined);
        await withDeadline(c.connect(), 60_000, `connect ${i}`);
        return c;
      }),
    );
    try {
      // Session pooling: the first write takes a connection to the node, kept until the client leaves.
      const { runs, open, holding } = gatedWriters(clients, 'writes', 3, (c) => c.query('SELECT count(*) FROM writes'));
      const failures: string[] = [];
      const outcomes = Promise.all(runs.map((r, i) => withDeadline(r, 120_000, `client ${i}`).catch((e: unknown) => void failures.push(`client ${i}: ${seenError(e).code ?? '-'} ${seenError(e).message}`))));
      const waiting = (): number => p.context.pools.all().reduce((n, pool) => n + pool.waitingCount, 0);
      await eventually(() => failures.length > 0 || (holding() === cap && waiting() === CLIENTS - cap), 60_000, 10, `${cap} clients holding a connection, ${CLIENTS - cap} waiting`);
      expect(failures).toEqual([]);
      expect(p.context.pools.all().filter((pool) => pool.activeCount + pool.idleCount > 0)).toHaveLength(4);
      expect(p.context.pools.connectionsToNode(0)).toBe(cap);
      open();
      await outcomes;
      expect(failures).toEqual([]);
      clearInterval(sampler);
      const peaks = await node.stop();
      console.log(`node with max_connections = 100: peak ${peaks.all} client backends (${peaks.pools} of the pools); pgproxy counted at most ${peakProxy}`);
      expect(peakProxy).toBe(cap);
      expect(peaks.pools).toBe(cap);
      expect(peaks.all).toBeLessThanOrEqual(allowed);
      // Every client's four rows, in its database.
      for (const db of DATABASES) {
        const mine = Array.from({ length: CLIENTS }, (_, i) => i).filter((i) => who(i).database === db).length;
        const rows = await cluster.query<{ clients: number; n: number }>(0, 'SELECT count(DISTINCT client)::int AS clients, count(*)::int AS n FROM writes', [], cluster.info.users.superuser, db);
        expect(rows).toEqual([{ clients: mine, n: mine * 4 }]);
      }
    } finally {
      clearInterval(sampler);
      await node.stop();
      await endAll(clients);
    }
  });
});
