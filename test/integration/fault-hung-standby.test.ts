// A standby that hangs (SIGSTOP) rather than refusing connections (issue 4): the health check times out and
// marks it down, clients stuck on it get 08006 instead of hanging, new reads go to the other standby, and the
// node takes reads again once it continues. Throwaway cluster: its node2 is suspended here.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { clientLoop, connectWatched, endAll, recordTopology, seenError, tally, withDeadline, type OpRecord, type WatchedClient } from './helpers/load.js';
import { eventually, startTestProxy } from './helpers/proxy.js';

let cluster: DevCluster;
let proxy: RunningProxy;

beforeAll(async () => {
  cluster = await throwawayCluster();
  // timeout_ms: a healthy node answers a check in milliseconds even on a loaded machine; a hung one never does.
  proxy = await startTestProxy(cluster.info, { health_check: { period_ms: 300, timeout_ms: 1000, max_retries: 0 }, routing: { load_balance: 'statement' } });
}, 180_000);

afterAll(async () => {
  await cluster?.resumeNode(2);
  await proxy?.close();
  await cluster?.down({ purge: true });
});

/** Well under the 30 s a client would wait on TCP keepalives or a driver timeout. */
const HANG_BOUND_MS = 10_000;

async function readPort(c: pg.Client): Promise<number> {
  return (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;
}

async function portsOfReads(reads: number): Promise<Set<number>> {
  const w = await connectWatched(proxy, cluster.info);
  try {
    const seen = new Set<number>();
    for (let i = 0; i < reads; i++) seen.add(await withDeadline(readPort(w.client), HANG_BOUND_MS, 'read'));
    return seen;
  } finally {
    await endAll([w.client]);
  }
}

describe('hung standby (SIGSTOP)', () => {
  it('is marked down by the health check; clients stuck on it get 08006 instead of hanging; reads move to node1; it comes back', async () => {
    const [, n1, n2] = cluster.info.nodes;
    const changes = recordTopology(proxy);
    expect(await portsOfReads(30)).toEqual(new Set([n1!.port, n2!.port]));

    const CLIENTS = 10;
    const clients: WatchedClient[] = await Promise.all(Array.from({ length: CLIENTS }, () => connectWatched(proxy, cluster.info)));
    let stop = false;
    let suspendAt = 0;
    let downAt = 0;
    const live: OpRecord[] = [];
    /** Whether every client has made `n` successful reads that started after `t` (and, with `ports`, on those). */
    const everyClientRead = (n: number, t: number, ports?: number[]): boolean =>
      clients.every((_, id) => live.filter((r) => r.client === id && r.ok && r.start > t).length >= n) &&
      (ports === undefined || ports.every((p) => live.some((r) => r.ok && r.start > t && r.value === p)));
    try {
      const loops = clients.map((w, id) =>
        clientLoop(id, w.client, readPort, { stop: () => stop, maxOps: 20_000, statementTimeoutMs: 25_000, pauseMs: 2, onRecord: (r) => live.push(r) }),
      );
      // The load runs on both standbys before node2 hangs.
      await eventually(() => everyClientRead(5, 0, [n1!.port, n2!.port]), 20_000, 20, 'load on both standbys');
      suspendAt = Date.now();
      await cluster.suspendNode(2);
      await eventually(() => proxy.context.topology.nodes[2]!.up === false, 15_000, 50);
      downAt = changes.find((c) => c.node === 'node2' && c.to === 'down')?.at ?? Date.now();
      // The load runs on until every client has read several times since node2 was marked down (bounded: the
      // assertions below say which client did not).
      await eventually(() => everyClientRead(10, downAt), 20_000, 20).catch(() => undefined);
      stop = true;
      const records: OpRecord[] = (await Promise.all(loops)).flat();
      const failures = records.filter((r) => !r.ok);
      const unsolicited = clients.flatMap((w) => w.unsolicited);
      const slowest = Math.max(...records.map((r) => r.end - r.start));
      console.log(
        `hung standby: ${records.length} statements, failures ${JSON.stringify(tally(failures, (r) => `${r.error?.code ?? '-'} ${r.error?.message}`))}, ` +
          `unsolicited ${JSON.stringify(tally(unsolicited, (e) => `${e.code ?? '-'} ${e.message}`))}, node2 marked down ${downAt - suspendAt} ms after SIGSTOP, slowest statement ${slowest} ms`,
      );
      // Nobody hangs: the slowest statement ends well under 30 s.
      expect(records.filter((r) => r.hang)).toEqual([]);
      expect(slowest).toBeLessThan(HANG_BOUND_MS);
      expect(unsolicited).toEqual([]);
      // Those stuck on node2 got 08006 naming it.
      expect(tally(failures, (r) => `${r.error?.severity} ${r.error?.code} ${/node2/.test(r.error?.message ?? '') ? 'names node2' : r.error?.message}`)).toEqual(
        failures.length === 0 ? {} : { 'ERROR 08006 names node2': failures.length },
      );
      expect(failures.length).toBeLessThanOrEqual(CLIENTS);
      for (let id = 0; id < CLIENTS; id++) {
        const mine = records.filter((r) => r.client === id);
        for (const f of mine.filter((r) => !r.ok)) {
          const next = mine.find((r) => r.seq === f.seq + 1);
          expect(next?.ok, `client ${id}: the statement after its 08006 succeeds (${JSON.stringify(next?.error)})`).toBe(true);
        }
        expect(mine.some((r) => r.ok && r.start > downAt), `client ${id} read after node2 was marked down`).toBe(true);
      }
      // New reads go to node1.
      const after = records.filter((r) => r.ok && r.start > downAt);
      expect(new Set(after.map((r) => r.value))).toEqual(new Set([n1!.port]));
    } finally {
      stop = true;
      await cluster.resumeNode(2);
      await endAll(clients.map((w) => w.client));
    }
    // node2 continues: it is marked up and takes reads again.
    await eventually(() => proxy.context.topology.nodes[2]!.up === true, 20_000);
    await eventually(async () => (await portsOfReads(20)).has(n2!.port), 20_000);
  });

  /**
   * A client in a READ ONLY transaction on a standby that is then suspended: `onHung` sends what meets the hung node
   * and checks its 08006; then the transaction stays aborted (25P02) until ROLLBACK, after which the client reads
   * elsewhere. The node continues at the end, and every node is up again.
   */
  async function onHungStandbyInTransaction(onHung: (w: WatchedClient, node: number) => Promise<void>): Promise<void> {
    await eventually(() => proxy.context.topology.nodes.every((n) => n.up), 20_000);
    const w = await connectWatched(proxy, cluster.info);
    let suspended = -1;
    try {
      await w.client.query('BEGIN READ ONLY');
      const port = await readPort(w.client);
      const node = cluster.info.nodes.findIndex((n) => n.port === port);
      expect(node === 1 || node === 2).toBe(true);
      suspended = node;
      await cluster.suspendNode(node);
      await onHung(w, node);
      for (let k = 0; k < 2; k++) {
        const e = await withDeadline(w.client.query('SELECT 1'), HANG_BOUND_MS, 'statement in the aborted transaction').then(
          () => null,
          (x: unknown) => seenError(x),
        );
        expect(e?.code, JSON.stringify(e)).toBe('25P02');
      }
      await withDeadline(w.client.query('ROLLBACK'), HANG_BOUND_MS, 'ROLLBACK');
      expect(await withDeadline(readPort(w.client), HANG_BOUND_MS, 'read after ROLLBACK')).not.toBe(port);
      expect(w.unsolicited).toEqual([]);
    } finally {
      if (suspended >= 0) await cluster.resumeNode(suspended);
      await endAll([w.client]);
    }
    await eventually(() => proxy.context.topology.nodes.every((n) => n.up), 20_000);
  }

  it('a statement of a transaction on the hung standby gets 08006 when the node is marked down, then 25P02 until ROLLBACK', async () => {
    await onHungStandbyInTransaction(async (w, node) => {
      const started = Date.now();
      const err = await withDeadline(w.client.query('SELECT 1'), 25_000, 'statement on the hung standby').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(err?.code, JSON.stringify(err)).toBe('08006');
      expect(err?.message).toMatch(new RegExp(cluster.info.nodes[node]!.name));
      expect(Date.now() - started).toBeLessThan(HANG_BOUND_MS);
    });
  });

  it('a statement larger than the hung standby takes in: 08006 when the node is marked down, and the session reads its client again', async () => {
    await onHungStandbyInTransaction(async (w) => {
      // More than the socket buffers hold: pgproxy stops reading the client until the backend's socket drains,
      // which a hung node's never does.
      const big = `SELECT length('${'x'.repeat(32 * 1024 * 1024)}')`;
      const err = await withDeadline(w.client.query(big), 25_000, 'large statement on the hung standby').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(err?.code, JSON.stringify(err)).toBe('08006');
    });
  });
});
