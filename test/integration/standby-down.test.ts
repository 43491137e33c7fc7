// A standby stopped while pgproxy runs: new sessions keep working on the other standby; once the node is
// started again it takes reads again. Runs on a throwaway cluster so the shared one is never broken.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { eventually, startTestProxy, withProxyClient } from './helpers/proxy.js';

let cluster: DevCluster;
let proxy: RunningProxy;

beforeAll(async () => {
  cluster = await throwawayCluster();
  proxy = await startTestProxy(cluster.info);
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await cluster?.down({ purge: true });
});

async function readPorts(sessions: number): Promise<Map<number, number>> {
  const byPort = new Map<number, number>();
  for (let i = 0; i < sessions; i++) {
    const port = await withProxyClient(proxy, cluster.info, async (c) => (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p);
    byPort.set(port, (byPort.get(port) ?? 0) + 1);
  }
  return byPort;
}

it('reads move to the other standby while one is down, and come back after it restarts', async () => {
  const [, n1, n2] = cluster.info.nodes;
  await cluster.stopNode(2);
  await eventually(() => proxy.context.topology.nodes[2]!.up === false);
  const during = await readPorts(30);
  expect([...during.keys()]).toEqual([n1!.port]);
  // Writes are unaffected.
  await withProxyClient(proxy, cluster.info, (c) => c.query('CREATE TABLE IF NOT EXISTS sd (id int)'));

  await cluster.startNode(2);
  await eventually(() => proxy.context.topology.nodes[2]!.up === true);
  await eventually(async () => ((await readPorts(20)).get(n2!.port) ?? 0) > 0);
});
