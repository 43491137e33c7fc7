// Staleness bounds (SET pgproxy.max_lag_ms, the max_lag_ms hint; 0 = fully replayed), how they combine with
// read-your-writes and the configured limits, and prefer_lower_delay, on the shared cluster with replay paused on
// one standby (node1) while the primary writes: node1's measured lag grows, node2 keeps up. Where each read ran is
// proven by the server that answered (inet_server_port()). Reads are balanced per statement, so that a node a
// bound must skip would otherwise get some of 40 reads (each of them half the time, by weight).
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { eventually, proxyClient, startTestProxy } from './helpers/proxy.js';

const info = sharedCluster();
const [primary, node1, node2] = info.nodes.map((n) => n.port) as [number, number, number];
const T = `stl_${process.pid}`;
/** The bound the tests use, and how far behind node1 is made to be before they read. */
const BOUND_MS = 1000;
let cluster: DevCluster;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  cluster = await sharedClusterHandle();
  await cluster.query(0, `CREATE TABLE ${T} (id serial primary key, v text)`);
  await cluster.query(0, `GRANT ALL ON ${T}, ${T}_id_seq TO ${info.users.app.name}`);
  await cluster.waitForReplay();
});

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  for (const i of [1, 2]) await cluster.query(i, 'SELECT pg_wal_replay_resume()');
  await cluster.waitForReplay();
});

async function proxyWith(routing: Record<string, unknown>): Promise<RunningProxy> {
  const proxy = await startTestProxy(info, { routing: { load_balance: 'statement', ...routing } });
  cleanup.push(() => proxy.close());
  await eventually(() => proxy.context.topology.nodes.slice(1).every((n) => n.up && n.role === 'standby' && n.following === true && n.lagBytes !== null), 20_000, 50, 'standbys up');
  return proxy;
}

async function client(proxy: RunningProxy): Promise<pg.Client> {
  const c = proxyClient(proxy, info);
  await c.connect();
  cleanup.push(() => c.end());
  return c;
}

/** Replay paused on node1, a write on the primary, and node1 seen (by `proxy`'s health checks) more than BOUND_MS behind. */
async function node1Behind(proxy: RunningProxy): Promise<void> {
  await cluster.query(1, 'SELECT pg_wal_replay_pause()');
  await cluster.query(0, `INSERT INTO ${T} (v) VALUES ('behind')`);
  const n1 = proxy.context.topology.nodes[1]!;
  await eventually(() => (n1.lagBytes ?? 0) > 0 && (n1.lagMs ?? 0) > 2 * BOUND_MS, 30_000, 50, `node1 over ${2 * BOUND_MS} ms behind`);
}

/** The ports of the servers that answered `n` reads. */
async function ports(c: pg.Client, n: number, sql = 'SELECT inet_server_port() AS p'): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) seen.add((await c.query<{ p: number }>(sql)).rows[0]!.p);
  return seen;
}

describe('pgproxy.max_lag_ms and the max_lag_ms hint', () => {
  it('a standby over the bound is skipped and one under it is used; the hint holds for its statement only', async () => {
    const proxy = await proxyWith({ read_your_writes: 'off', read_your_writes_wait_ms: 10_000 });
    const c = await client(proxy);
    await node1Behind(proxy);
    // Without a bound, both standbys serve reads (so the checks below can fail).
    expect(await ports(c, 40)).toEqual(new Set([node1, node2]));
    await c.query(`SET pgproxy.max_lag_ms = ${BOUND_MS}`);
    expect(await ports(c, 20)).toEqual(new Set([node2]));
    // A bound larger than node1's lag lets it serve again.
    await c.query('SET pgproxy.max_lag_ms = 3600000');
    expect(await ports(c, 40)).toEqual(new Set([node1, node2]));
    await c.query('RESET pgproxy.max_lag_ms');
    expect(await ports(c, 20, `/* pgproxy: max_lag_ms=${BOUND_MS} */ SELECT inet_server_port() AS p`)).toEqual(new Set([node2]));
    expect(await ports(c, 40)).toEqual(new Set([node1, node2]));
    // The hint wins over the session's bound for its statement.
    await c.query(`SET pgproxy.max_lag_ms = ${BOUND_MS}`);
    expect(await ports(c, 40, '/* pgproxy: max_lag_ms=3600000 */ SELECT inet_server_port() AS p')).toEqual(new Set([node1, node2]));
  });

  it('max_lag_ms = 0 means fully replayed: a caught-up standby serves, a paused one never; with both behind, the primary', async () => {
    const proxy = await proxyWith({ read_your_writes: 'off', read_your_writes_wait_ms: 10_000 });
    const c = await client(proxy);
    await node1Behind(proxy);
    await c.query('SET pgproxy.max_lag_ms = 0');
    expect(await ports(c, 20)).toEqual(new Set([node2]));
    // Both behind: the read waits for one to catch up, and runs there once it has.
    await cluster.query(2, 'SELECT pg_wal_replay_pause()');
    await cluster.query(0, `INSERT INTO ${T} (v) VALUES ('both behind')`);
    const read = c.query<{ p: number; n: number }>(`SELECT inet_server_port() AS p, count(*)::int AS n FROM ${T} WHERE v = 'both behind'`);
    await eventually(() => proxy.context.replay.waiting > 0, 20_000, 5, 'the read waits for a standby');
    await cluster.query(2, 'SELECT pg_wal_replay_resume()');
    expect((await read).rows[0]).toEqual({ p: node2, n: 1 });
    // With the default wait (a few ms), a read that no standby can serve fully replayed goes to the primary.
    const quick = await proxyWith({ read_your_writes: 'off' });
    const q = await client(quick);
    await cluster.query(2, 'SELECT pg_wal_replay_pause()');
    await cluster.query(0, `INSERT INTO ${T} (v) VALUES ('both behind again')`);
    await q.query('SET pgproxy.max_lag_ms = 0');
    expect((await q.query(`SELECT inet_server_port() AS p, count(*)::int AS n FROM ${T} WHERE v = 'both behind again'`)).rows[0]).toEqual({ p: primary, n: 1 });
  });
});

describe('bounds with read-your-writes and the configured limits', () => {
  it('the stricter rule wins: a loose bound does not let a read see a standby that has not replayed the session’s write', async () => {
    const proxy = await proxyWith({ read_your_writes: 'session', read_your_writes_wait_ms: 10_000 });
    const c = await client(proxy);
    await node1Behind(proxy);
    await c.query('SET pgproxy.max_lag_ms = 3600000');
    expect(await ports(c, 40)).toEqual(new Set([node1, node2]));
    // node1 is within the bound, but has not replayed this write: only node2 (once it has) serves the reads.
    const id = (await c.query<{ id: number }>(`INSERT INTO ${T} (v) VALUES ('mine') RETURNING id`)).rows[0]!.id;
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const r = (await c.query<{ p: number; n: number }>(`SELECT inet_server_port() AS p, count(*)::int AS n FROM ${T} WHERE id = $1`, [id])).rows[0]!;
      expect(r.n).toBe(1);
      seen.add(r.p);
    }
    expect(seen).toEqual(new Set([node2]));
  });

  it('a session cannot loosen the configured routing.max_lag_ms', async () => {
    const proxy = await proxyWith({ read_your_writes: 'off', max_lag_ms: BOUND_MS, read_your_writes_wait_ms: 10_000 });
    const c = await client(proxy);
    await node1Behind(proxy);
    expect(await ports(c, 20)).toEqual(new Set([node2]));
    await c.query('SET pgproxy.max_lag_ms = 3600000');
    expect(await ports(c, 20)).toEqual(new Set([node2]));
    expect(await ports(c, 20, '/* pgproxy: max_lag_ms=3600000 */ SELECT inet_server_port() AS p')).toEqual(new Set([node2]));
  });

  it('prefer_lower_delay: reads go to the least-lagged standby', async () => {
    const proxy = await proxyWith({ read_your_writes: 'off', prefer_lower_delay: true });
    const c = await client(proxy);
    await node1Behind(proxy);
    // node2 keeps up (as the health checker sees it) while node1 stays behind: every read on node2.
    const n2 = proxy.context.topology.nodes[2]!;
    await eventually(() => n2.lagBytes === 0, 20_000, 20, 'node2 caught up');
    expect(await ports(c, 20)).toEqual(new Set([node2]));
  });
});
