// A standby killed with SIGKILL under load (issue 4): clients survive it. Only the statements in flight there
// fail, with ERROR 08006; their sessions stay usable; reads move to the other standby; the node takes reads
// again once restarted. A transaction on the killed standby stays aborted (25P02) until ROLLBACK.
// Throwaway cluster: nodes are killed and restarted here.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { clientLoop, connectWatched, endAll, recordTopology, seenError, tally, waitUntilRunning, withDeadline, type OpRecord, type WatchedClient } from './helpers/load.js';
import { eventually, startTestProxy } from './helpers/proxy.js';

let cluster: DevCluster;
let proxy: RunningProxy;

// timeout_ms: a killed node refuses connections at once; a healthy one answers in milliseconds even when loaded.
const FAST_HEALTH = { health_check: { period_ms: 300, timeout_ms: 1000, max_retries: 0 } };

beforeAll(async () => {
  cluster = await throwawayCluster();
  proxy = await startTestProxy(cluster.info, { ...FAST_HEALTH, routing: { load_balance: 'statement' } });
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await cluster?.down({ purge: true });
});

const CLIENTS = 20;
/** A read that takes a few milliseconds on a standby (all immutable/stable functions: it is load balanced). */
const READ = 'SELECT inet_server_port() AS p, (SELECT count(*) FROM generate_series(1, 20000)) AS n';

async function readPort(c: pg.Client): Promise<number> {
  return (await c.query<{ p: number }>(READ)).rows[0]!.p;
}

/** Ports that `reads` statements of one client (statement-level balancing) ran on. */
async function portsOfReads(reads: number): Promise<Set<number>> {
  const w = await connectWatched(proxy, cluster.info);
  try {
    const seen = new Set<number>();
    for (let i = 0; i < reads; i++) seen.add(await readPort(w.client));
    return seen;
  } finally {
    await endAll([w.client]);
  }
}

describe('standby killed (SIGKILL) under load', () => {
  it('clients keep working; only statements in flight fail, with 08006; sessions stay usable; the node comes back', async () => {
    const [, n1, n2] = cluster.info.nodes;
    const changes = recordTopology(proxy);
    // Both standbys serve reads before the kill.
    expect(await portsOfReads(30)).toEqual(new Set([n1!.port, n2!.port]));

    const clients: WatchedClient[] = await Promise.all(Array.from({ length: CLIENTS }, () => connectWatched(proxy, cluster.info)));
    let killAt = 0;
    let stop = false;
    const live: OpRecord[] = [];
    /** Whether every client has made `n` successful reads that started after `t` (and, with `ports`, on those). */
    const everyClientRead = (n: number, t: number, ports?: number[]): boolean =>
      clients.every((_, id) => live.filter((r) => r.client === id && r.ok && r.start > t).length >= n) &&
      (ports === undefined || ports.every((p) => live.some((r) => r.ok && r.start > t && r.value === p)));
    try {
      const loops = clients.map((w, id) =>
        clientLoop(id, w.client, readPort, { stop: () => stop, maxOps: 5_000, statementTimeoutMs: 15_000, onRecord: (r) => live.push(r) }),
      );
      // The load runs on both standbys before the kill.
      await eventually(() => everyClientRead(5, 0, [n1!.port, n2!.port]), 20_000, 20, 'load on both standbys');
      killAt = Date.now();
      await cluster.killNode(1, 'SIGKILL');
      await eventually(() => proxy.context.topology.nodes[1]!.up === false, 10_000, 50);
      const downAt = changes.find((c) => c.node === 'node1' && c.to === 'down')?.at ?? Date.now();
      // Keep the load running well past the kill: until every client has read several times since node1 was
      // marked down (bounded: the assertions below say which client did not).
      await eventually(() => everyClientRead(10, downAt), 20_000, 20).catch(() => undefined);
      stop = true;
      const records: OpRecord[] = (await Promise.all(loops)).flat();

      const failures = records.filter((r) => !r.ok);
      const unsolicited = clients.flatMap((w, id) => w.unsolicited.map((e) => ({ client: id, ...e })));
      console.log(
        `standby kill: ${records.length} statements, ${failures.length} failed ${JSON.stringify(tally(failures, (r) => r.error?.code ?? `no SQLSTATE: ${r.error?.message}`))}, ` +
          `${unsolicited.length} unsolicited client errors ${JSON.stringify(tally(unsolicited, (e) => `${e.code ?? '-'} ${e.message}`))}, node1 marked down ${downAt - killAt} ms after the kill`,
      );
      // Independent checks, all reported (soft): a failed one does not hide the others.
      // No client hangs.
      expect.soft(records.filter((r) => r.hang)).toEqual([]);
      // Nothing reached a client outside its own statements (an ErrorResponse while idle breaks drivers:
      // node-postgres, for one, marks the client "not queryable" for good).
      expect.soft(unsolicited).toEqual([]);
      // The only failures are ERROR 08006 naming the node, at most the statements in flight (one per client).
      expect.soft(tally(failures, (f) => `${f.error?.severity} ${f.error?.code} ${/node1/.test(f.error?.message ?? '') ? 'names node1' : f.error?.message}`)).toEqual(
        failures.length === 0 ? {} : { 'ERROR 08006 names node1': failures.length },
      );
      expect.soft(failures.length).toBeLessThanOrEqual(CLIENTS);
      // Every failing client's session stays usable (its next statement succeeds), and every client keeps
      // succeeding after the kill.
      const notRecovered: string[] = [];
      const stalled: number[] = [];
      for (let id = 0; id < CLIENTS; id++) {
        const mine = records.filter((r) => r.client === id);
        const firstFailure = mine.find((r) => !r.ok);
        if (firstFailure) {
          const next = mine.find((r) => r.seq === firstFailure.seq + 1);
          if (!next?.ok) notRecovered.push(`client ${id}: ${JSON.stringify(firstFailure.error)} then ${next ? JSON.stringify(next.error) : 'nothing'}`);
        }
        if (!mine.some((r) => r.ok && r.start > killAt)) stalled.push(id);
      }
      expect.soft(notRecovered).toEqual([]);
      expect.soft(stalled, 'clients with no success after the kill').toEqual([]);
      // Once node1 is marked down, reads go to node2 only.
      const afterDown = records.filter((r) => r.ok && r.start > downAt);
      expect.soft(afterDown.length).toBeGreaterThan(0);
      expect.soft(new Set(afterDown.map((r) => r.value))).toEqual(new Set([n2!.port]));
      // Every client can still query.
      const lastReads = await Promise.all(clients.map((w) => withDeadline(readPort(w.client), 10_000, 'read after the load').catch((e: unknown) => seenError(e))));
      expect.soft(lastReads).toEqual(clients.map(() => n2!.port));
    } finally {
      stop = true;
      await endAll(clients.map((w) => w.client));
      await cluster.startNode(1);
    }
    // node1 is marked up again and takes reads again.
    await eventually(() => proxy.context.topology.nodes[1]!.up === true, 20_000);
    await eventually(async () => (await portsOfReads(20)).has(n1!.port), 20_000);
  });

  /** A READ ONLY transaction of `w`, on the standby it runs on: returns that node's index. */
  async function standbyTransaction(w: WatchedClient): Promise<number> {
    await w.client.query('BEGIN READ ONLY');
    const port = await readPort(w.client);
    const i = cluster.info.nodes.findIndex((n) => n.port === port);
    expect(i === 1 || i === 2, `READ ONLY transaction on a standby (port ${port})`).toBe(true);
    return i;
  }

  async function expectAbortedUntilRollback(w: WatchedClient, killed: number): Promise<void> {
    for (let k = 0; k < 2; k++) {
      const err = await withDeadline(w.client.query('SELECT 1'), 10_000, 'statement in the aborted transaction').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(err?.code, `statement ${k + 1} after the loss: ${JSON.stringify(err)}`).toBe('25P02');
    }
    await withDeadline(w.client.query('ROLLBACK'), 10_000, 'ROLLBACK');
    const port = await withDeadline(readPort(w.client), 10_000, 'read after ROLLBACK');
    expect(port).not.toBe(cluster.info.nodes[killed]!.port);
    expect(w.unsolicited).toEqual([]);
  }

  it('a statement running in a transaction on the killed standby gets 08006, then 25P02 until ROLLBACK, then works', async () => {
    await eventually(() => proxy.context.topology.nodes.every((n) => n.up), 20_000);
    const w = await connectWatched(proxy, cluster.info);
    let killed = -1;
    try {
      const node = await standbyTransaction(w);
      // pg_sleep in a READ ONLY transaction runs on that standby.
      const started = Date.now();
      const sleeping = w.client.query('SELECT pg_sleep(5)');
      sleeping.catch(() => undefined);
      expect(await waitUntilRunning(cluster.info, 'SELECT pg_sleep(5)'), 'the node running the pg_sleep').toBe(node);
      killed = node;
      await cluster.killNode(node, 'SIGKILL');
      const err = await withDeadline(sleeping, 10_000, 'pg_sleep on the killed standby').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(err?.code, JSON.stringify(err)).toBe('08006');
      expect(err?.message).toMatch(new RegExp(cluster.info.nodes[node]!.name));
      expect(Date.now() - started).toBeLessThan(4_500); // it failed: it did not just finish its 5 s sleep
      await expectAbortedUntilRollback(w, node);
    } finally {
      await endAll([w.client]);
      if (killed >= 0) await cluster.startNode(killed);
    }
    await eventually(() => proxy.context.topology.nodes.every((n) => n.up), 20_000);
  });

  it('a client idle inside a transaction on the killed standby gets 08006 at its next statement, then 25P02 until ROLLBACK', async () => {
    await eventually(() => proxy.context.topology.nodes.every((n) => n.up), 20_000);
    const w = await connectWatched(proxy, cluster.info);
    let killed = -1;
    try {
      const node = await standbyTransaction(w);
      killed = node;
      await cluster.killNode(node, 'SIGKILL');
      // The proxy marks the node down (and drops the session's link to it) at once: no need to wait for more.
      await eventually(() => proxy.context.topology.nodes[node]!.up === false, 10_000, 50);
      const err = await withDeadline(w.client.query('SELECT 1'), 10_000, 'first statement after the loss').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(err?.code, JSON.stringify({ err, unsolicited: w.unsolicited })).toBe('08006');
      await expectAbortedUntilRollback(w, node);
    } finally {
      await endAll([w.client]);
      if (killed >= 0) await cluster.startNode(killed);
    }
    await eventually(() => proxy.context.topology.nodes.every((n) => n.up), 20_000);
  });
});
