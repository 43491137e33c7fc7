// Two nodes claiming to be primary (a standby promoted while the old primary still runs: split brain):
// writes are refused with a clear error until it resolves, reads go on, and the error is logged every period.
// Also documents what asynchronous replication can lose at a failover (synchronous replication loses nothing:
// see fault-primary-failover.test.ts).
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import { proxyConfigForCluster } from '../../src/devcluster/proxy-config.js';
import { startProxy, type RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { eventually, withProxyClient } from './helpers/proxy.js';

let cluster: DevCluster;
let proxy: RunningProxy;
const lines: { level: number; msg: string }[] = [];

beforeAll(async () => {
  cluster = await throwawayCluster();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { level: number; msg: string });
      done();
    },
  });
  const config = proxyConfigForCluster(cluster.info, { listenPort: 0, overrides: { health_check: { period_ms: 300, timeout_ms: 1000 } } });
  proxy = await startProxy(config, pino({ level: 'info' }, sink));
  await withProxyClient(proxy, cluster.info, (c) => c.query('CREATE TABLE tp (id int)'));
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await cluster?.down({ purge: true });
});

it('refuses writes while two nodes claim to be primary, logs it every period, and follows the survivor', async () => {
  await cluster.promote(1);
  await eventually(() => proxy.context.topology.primaryCount() === 2);
  await withProxyClient(proxy, cluster.info, async (c) => {
    await expect(c.query('INSERT INTO tp VALUES (1)')).rejects.toMatchObject({ code: '57P03', message: expect.stringMatching(/more than one node claims to be primary/) });
    // Reads still work (node2 still streams from node0 or has stopped: either way a node answers).
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
  });
  const logged = (): number => lines.filter((l) => l.level === 50 && /more than one node claims to be primary/.test(l.msg)).length;
  const before = logged();
  // Logged again at the next checks.
  await eventually(() => logged() >= before + 2, 10_000, 20, 'the split brain logged at two more checks');
  // The operator stops the old primary: writes go to the promoted node.
  await cluster.stopNode(0, 'immediate');
  await eventually(() => proxy.context.topology.primary()?.name === 'node1');
  await withProxyClient(proxy, cluster.info, async (c) => {
    await c.query('INSERT INTO tp VALUES (2)');
    const port = (await c.query<{ p: number }>('/*NO LOAD BALANCE*/ SELECT inet_server_port() AS p')).rows[0]!.p;
    expect(port).toBe(cluster.info.nodes[1]!.port);
  });
});

it('documents the asynchronous-replication loss window: a commit acknowledged through pgproxy can be missing on a promoted async standby', async () => {
  // With asynchronous replication a COMMIT is acknowledged once it is durable on the primary alone; a standby
  // promoted before receiving it does not have it. pgproxy acknowledges only what the backend acknowledged, so
  // the window is PostgreSQL's own (the standby's receive lag at the moment of failure). Operators who cannot
  // lose commits set synchronous_standby_names: fault-primary-failover.test.ts shows nothing is lost then.
  const c2 = await throwawayCluster();
  const p2 = await startProxy(proxyConfigForCluster(c2.info, { listenPort: 0, overrides: { health_check: { period_ms: 300 } } }), pino({ level: 'silent' }));
  try {
    await c2.query(0, 'CREATE TABLE lossy (id int)');
    await c2.waitForReplay();
    // node1 stops receiving WAL (as if its network to the primary were cut).
    await c2.query(1, "ALTER SYSTEM SET primary_conninfo = ''");
    await c2.query(1, 'SELECT pg_reload_conf()');
    await eventually(async () => (await c2.query<{ n: number }>(1, 'SELECT count(*)::int AS n FROM pg_stat_wal_receiver')).at(0)!.n === 0);
    const acked = await withProxyClient(p2, c2.info, async (c) => (await c.query('INSERT INTO lossy VALUES (42) RETURNING id')).rows);
    expect(acked).toEqual([{ id: 42 }]);
    await c2.killNode(0, 'SIGKILL');
    await c2.promote(1);
    const rows = await c2.query<{ n: number }>(1, 'SELECT count(*)::int AS n FROM lossy WHERE id = 42');
    expect(rows[0]!.n).toBe(0); // acknowledged, and lost with the old primary
  } finally {
    await p2.close();
    await c2.down({ purge: true });
  }
});
