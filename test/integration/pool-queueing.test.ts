// More clients than backend connections (issue 12): they wait in line and are all served, none fails. Within one
// pool (pool.max_per_node), and across pools under limits.max_connections_per_node, where the slot a client gives
// back goes to the longest-waiting session of any pool on that node. Against the shared cluster, in a database of
// this file's own, so that pg_stat_activity counts only its connections.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/load.js';
import type { ClusterUser } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { endAll, gatedWriters, seenError, watchPeaksWith, withDeadline } from './helpers/load.js';
import { eventually, proxyClient, startTestProxy } from './helpers/proxy.js';

const info = sharedCluster();
const DB = `pool_queueing_${process.pid}`;
const { app, scram, superuser } = info.users;

function nodeClient(database: string): pg.Client {
  const n = info.nodes[0]!;
  const c = new pg.Client({ host: n.host, port: n.port, user: superuser.name, password: superuser.password, database, connectionTimeoutMillis: 10_000 });
  c.on('error', () => undefined);
  return c;
}

async function onPrimary(database: string, sql: string): Promise<pg.QueryResult> {
  const c = nodeClient(database);
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await onPrimary('postgres', `DROP DATABASE IF EXISTS ${DB}`);
  await onPrimary('postgres', `CREATE DATABASE ${DB}`);
  await onPrimary(DB, `CREATE TABLE q (client int NOT NULL, n int NOT NULL); GRANT ALL ON q TO ${app.name}, ${scram.name}`);
  await (await sharedClusterHandle()).waitForReplay();
});

afterAll(async () => {
  await onPrimary('postgres', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
});

/**
 * The most connections seen at once, sampled every few milliseconds until stop(): pgproxy's own count for node0
 * (every pool, opening and resetting included), and PostgreSQL's backends of the two users in this file's database
 * (pgproxy's catalog connection to the database logs in as the monitor role: not a pool's).
 */
function watchPeaks(proxy: RunningProxy): { stop(): Promise<{ proxy: number; node: number }> } {
  return watchPeaksWith(nodeClient('postgres'), { proxy: 0, node: 0 }, async (c, peaks) => {
    peaks.proxy = Math.max(peaks.proxy, proxy.context.pools.connectionsToNode(0));
    const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${DB}' AND usename IN ('${app.name}', '${scram.name}')`);
    peaks.node = Math.max(peaks.node, r.rows[0]!.n);
  });
}

async function connectAll(proxy: RunningProxy, users: ClusterUser[]): Promise<pg.Client[]> {
  return Promise.all(
    users.map(async (user) => {
      const c = proxyClient(proxy, info, user, { database: DB });
      c.on('error', () => undefined);
      await withDeadline(c.connect(), 15_000, 'connect');
      return c;
    }),
  );
}

/** Clients waiting in the pools of node0, and connections leased there. */
function onNode0(proxy: RunningProxy): { active: number; waiting: number } {
  let active = 0;
  let waiting = 0;
  for (const p of proxy.context.pools.all()) {
    if (p.node.id !== 0 || p.database !== DB) continue;
    active += p.activeCount;
    waiting += p.waitingCount;
  }
  return { active, waiting };
}

describe('more clients than connections', () => {
  it('ten clients on a pool of two (max_per_node: 2): eight wait in line, each is served as another leaves, none fails', async () => {
    // Everything else as shipped (pool.acquire_timeout_ms included): only the pool is small.
    const proxy = await startTestProxy(info, { pool: { max_per_node: 2 } });
    const peaks = watchPeaks(proxy);
    const clients = await connectAll(proxy, Array.from({ length: 10 }, () => app));
    try {
      // Session pooling: the first write takes a primary connection, kept until the client leaves.
      const { runs, open, holding } = gatedWriters(clients, 'q', 4);
      const outcomes = Promise.all(runs.map((r, i) => withDeadline(r, 60_000, `client ${i}`).then(() => 'ok', (e: unknown) => `${seenError(e).code ?? '-'} ${seenError(e).message}`)));
      await eventually(() => onNode0(proxy).waiting === 8 && holding() === 2, 20_000, 5, 'two clients inserted, eight waiting');
      expect(onNode0(proxy)).toEqual({ active: 2, waiting: 8 });
      open();
      expect(await outcomes).toEqual(Array.from({ length: 10 }, () => 'ok'));
      const rows = await onPrimary(DB, 'SELECT client, count(*)::int AS n FROM q GROUP BY client ORDER BY client');
      expect(rows.rows).toEqual(Array.from({ length: 10 }, (_, i) => ({ client: i, n: 5 })));
      expect(await peaks.stop()).toEqual({ proxy: 2, node: 2 });
    } finally {
      await peaks.stop();
      await endAll(clients);
      await proxy.close();
      await onPrimary(DB, 'TRUNCATE q');
    }
  });

  it('limits.max_connections_per_node: 1 across two pools (users app and app_scram): the slot goes to the longest-waiting session of either pool', async () => {
    const overrides: ConfigInput = { limits: { max_connections_per_node: 1 } };
    const proxy = await startTestProxy(info, overrides);
    const peaks = watchPeaks(proxy);
    // A (app) takes the slot, then B (app_scram) and C (app) queue in that order in their own pools.
    const [a, b, c] = await connectAll(proxy, [app, scram, app]);
    try {
      const served: string[] = [];
      const failed: string[] = [];
      const write = (client: pg.Client, name: string, i: number): Promise<void> =>
        client.query(`BEGIN; INSERT INTO q VALUES (${i}, 0)`).then(
          () => void served.push(name),
          (e: unknown) => void failed.push(`${name}: ${seenError(e).code ?? '-'} ${seenError(e).message}`),
        );
      await write(a!, 'A', 0);
      const bDone = write(b!, 'B', 1);
      await eventually(() => onNode0(proxy).waiting === 1, 10_000, 5, 'B waiting');
      const cDone = write(c!, 'C', 2);
      await eventually(() => onNode0(proxy).waiting === 2, 10_000, 5, 'C waiting');
      expect(served).toEqual(['A']);
      // A leaves: its connection goes back to app's pool, where C waits, but B has waited longer.
      await a!.query('COMMIT');
      await a!.end();
      await withDeadline(bDone, 20_000, 'B served');
      expect({ served, waiting: onNode0(proxy).waiting }).toEqual({ served: ['A', 'B'], waiting: 1 });
      await b!.query('COMMIT');
      await b!.end();
      await withDeadline(cDone, 20_000, 'C served');
      await c!.query('COMMIT');
      expect({ served, failed }).toEqual({ served: ['A', 'B', 'C'], failed: [] });
      expect(await peaks.stop()).toEqual({ proxy: 1, node: 1 });
    } finally {
      await peaks.stop();
      await endAll([a!, b!, c!]);
      await proxy.close();
      await onPrimary(DB, 'TRUNCATE q');
    }
  });
});
