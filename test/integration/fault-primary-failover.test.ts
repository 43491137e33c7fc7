// The primary killed under a mixed load (issue 4). While there is no primary, writes fail with 57P03 "no primary
// available" (08006 for those in flight) and reads keep working on the standbys; once a standby is promoted
// (by pg_ctl, or by pgproxy itself with failover.auto_promote) writes resume, and with a synchronous standby
// no acknowledged write is lost. Throwaway clusters: their primaries are killed here.
import { afterAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { clientLoop, connectWatched, endAll, recordTopology, seenError, tally, withDeadline, type OpRecord, type WatchedClient } from './helpers/load.js';
import { eventually, sleep, startTestProxy, withProxyClient } from './helpers/proxy.js';

// timeout_ms: a killed node refuses connections at once; a healthy one answers in milliseconds even when loaded.
const FAST_HEALTH = { period_ms: 300, timeout_ms: 1000, max_retries: 0 };
const clusters: DevCluster[] = [];
const proxies: RunningProxy[] = [];

afterAll(async () => {
  for (const p of proxies) await p.close().catch(() => undefined);
  for (const c of clusters) await c.down({ purge: true }).catch(() => undefined);
});

interface PoolNodesRow {
  node_id: string;
  port: string;
  status: string;
  role: string;
  replication_state: string;
  replication_sync_state: string;
}

describe('primary killed, synchronous standby promoted with pg_ctl', () => {
  it('writes get 57P03 while there is no primary, reads go on; writes resume after promotion; no acknowledged write is lost', async () => {
    const cluster = await throwawayCluster({ synchronousStandby: true });
    clusters.push(cluster);
    const info = cluster.info;
    await cluster.query(0, 'CREATE TABLE acked (id bigint PRIMARY KEY, writer int NOT NULL)');
    await cluster.waitForReplay();
    const proxy = await startTestProxy(info, { health_check: FAST_HEALTH });
    proxies.push(proxy);
    const changes = recordTopology(proxy);
    const [, n1, n2] = info.nodes;

    const WRITERS = 4;
    const READERS = 6;
    const acked: number[] = [];
    const writers: WatchedClient[] = await Promise.all(Array.from({ length: WRITERS }, () => connectWatched(proxy, info)));
    const readers: WatchedClient[] = await Promise.all(Array.from({ length: READERS }, () => connectWatched(proxy, info)));
    /** A session that writes before the kill and reads its write during the outage. */
    const ownWriter = await connectWatched(proxy, info);
    let stopped = false;
    const stop = (): boolean => stopped;
    let killAt = 0;
    let noPrimaryAt = 0;
    let promotedAt = 0;
    /** When the proxy's topology had a primary again (node1): the outage as clients see it ends there. */
    let primaryBackAt = 0;
    const liveWrites: OpRecord[] = [];
    const liveReads: OpRecord[] = [];
    /** Whether each of `count` clients (ids from `first`) has `n` records matching `ok` that started after `t`. */
    const each = (records: OpRecord[], first: number, count: number, n: number, t: number, ok: (r: OpRecord) => boolean): boolean =>
      Array.from({ length: count }, (_, k) => first + k).every((id) => records.filter((r) => r.client === id && r.start > t && ok(r)).length >= n);
    try {
      const writeLoops = writers.map((w, id) =>
        clientLoop(
          id,
          w.client,
          async (c, seq) => {
            const wanted = (id + 1) * 1_000_000 + seq;
            const r = await c.query<{ id: string }>('INSERT INTO acked (id, writer) VALUES ($1, $2) RETURNING id', [wanted, id]);
            acked.push(Number(r.rows[0]!.id));
            return wanted;
          },
          { stop, maxOps: 20_000, statementTimeoutMs: 15_000, pauseMs: 5, onRecord: (r) => liveWrites.push(r) },
        ),
      );
      const readLoops = readers.map((w, id) =>
        clientLoop(100 + id, w.client, async (c) => (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p, {
          stop,
          maxOps: 20_000,
          statementTimeoutMs: 15_000,
          pauseMs: 5,
          onRecord: (r) => liveReads.push(r),
        }),
      );
      // Every writer has written and every reader read before the kill.
      await eventually(() => each(liveWrites, 0, WRITERS, 5, 0, (r) => r.ok) && each(liveReads, 100, READERS, 5, 0, (r) => r.ok), 20_000, 20, 'load before the kill');
      await ownWriter.client.query('INSERT INTO acked (id, writer) VALUES (-1, -1)');
      await cluster.waitForReplay();
      killAt = Date.now();
      await cluster.killNode(0, 'SIGKILL');
      await eventually(() => proxy.context.topology.primary() === null, 10_000, 50);
      noPrimaryAt = Date.now();
      // Its writes' position was never fetched (read_your_writes session fetches it at the first read after them),
      // and the primary is gone: a standby serves the read, and it sees the write.
      const own = await withDeadline(ownWriter.client.query<{ n: number; p: number }>('SELECT count(*)::int AS n, inet_server_port() AS p FROM acked WHERE id = -1'), 15_000, 'own read during the outage').then(
        (r) => ({ seen: r.rows[0]!.n, onStandby: r.rows[0]!.p === n1!.port || r.rows[0]!.p === n2!.port }),
        (e: unknown) => seenError(e),
      );
      expect.soft(own, 'a session reads its own write while there is no primary').toEqual({ seen: 1, onStandby: true });
      // The load runs on without a primary: every writer is refused and every reader served a few times.
      await eventually(
        () => each(liveWrites, 0, WRITERS, 3, noPrimaryAt, (r) => !r.ok) && each(liveReads, 100, READERS, 3, noPrimaryAt, (r) => r.ok),
        15_000,
        20,
      ).catch(() => undefined); // the assertions below say what was missing
      await cluster.promote(1);
      promotedAt = Date.now();
      // Writes resume within a generous bound once node1 is the primary: every writer writes again.
      await eventually(() => proxy.context.topology.primary()?.id === 1, 15_000, 50);
      primaryBackAt = changes.find((c) => c.node === 'node1' && c.to === 'up primary')?.at ?? Date.now();
      await eventually(() => each(liveWrites, 0, WRITERS, 3, promotedAt, (r) => r.ok), 15_000, 20).catch(() => undefined);
      stopped = true;
      const writes: OpRecord[] = (await Promise.all(writeLoops)).flat();
      const reads: OpRecord[] = (await Promise.all(readLoops)).flat();

      const writeFailures = writes.filter((r) => !r.ok);
      const readFailures = reads.filter((r) => !r.ok);
      const unsolicited = [...writers, ...readers].flatMap((w) => w.unsolicited);
      console.log(
        `primary failover: ${writes.length} writes (${acked.length} acknowledged), failures ${JSON.stringify(tally(writeFailures, (r) => `${r.error?.code ?? '-'} ${r.error?.message}`))}; ` +
          `${reads.length} reads, failures ${JSON.stringify(tally(readFailures, (r) => `${r.error?.code ?? '-'} ${r.error?.message}`))}; ` +
          `unsolicited client errors ${JSON.stringify(tally(unsolicited, (e) => `${e.code ?? '-'} ${e.message}`))}; ` +
          `node0 down ${(changes.find((c) => c.node === 'node0' && c.to === 'down')?.at ?? 0) - killAt} ms after the kill`,
      );
      // Independent checks, all reported (soft): a failed one does not hide the others.
      expect.soft([...writes, ...reads].filter((r) => r.hang)).toEqual([]);
      // Nothing reaches a client outside its own statements (an ErrorResponse while idle breaks drivers).
      expect.soft(unsolicited).toEqual([]);
      // Writes: 57P03 "no primary available" while there is none, 08006 for those in flight at the kill.
      expect
        .soft(writeFailures.filter((f) => !(f.error?.code === '57P03' && /no primary available/.test(f.error.message)) && f.error?.code !== '08006').map((f) => f.error))
        .toEqual([]);
      const duringOutage = writes.filter((r) => r.start > noPrimaryAt && r.end < primaryBackAt);
      expect.soft(duringOutage.length).toBeGreaterThan(0);
      expect.soft(tally(duringOutage, (r) => (r.ok ? 'ok' : `${r.error?.code ?? '-'} ${r.error?.message}`))).toEqual({ '57P03 no primary available': duringOutage.length });
      // Every writer's session survived: it wrote again after the promotion.
      for (let id = 0; id < WRITERS; id++) {
        expect.soft(writes.some((r) => r.client === id && r.ok && r.start > promotedAt), `writer ${id} wrote after the promotion`).toBe(true);
      }
      // Reads kept working throughout (on the standbys while there was no primary).
      expect.soft(readFailures.map((r) => r.error)).toEqual([]);
      const outageReads = reads.filter((r) => r.start > noPrimaryAt && r.end < primaryBackAt);
      expect.soft(outageReads.length).toBeGreaterThan(0);
      expect.soft(outageReads.every((r) => r.value === n1!.port || r.value === n2!.port)).toBe(true);

      // Every acknowledged write is on the new primary.
      const present = new Set((await cluster.query<{ id: string }>(1, 'SELECT id FROM acked')).map((r) => Number(r.id)));
      const lost = acked.filter((id) => !present.has(id));
      expect.soft(lost).toEqual([]);
      expect.soft(acked.length).toBeGreaterThan(0);
    } finally {
      stopped = true;
      await endAll([...writers, ...readers, ownWriter].map((w) => w.client));
    }

    // node2 still follows the dead node0: it does not stream from the new primary and takes no reads.
    await eventually(() => proxy.context.topology.nodes[2]!.following === false, 15_000);
    const rows = await withProxyClient(proxy, info, async (c) => (await c.query<PoolNodesRow>('SHOW POOL_NODES')).rows);
    console.log(`SHOW POOL_NODES after the promotion of node1:\n${rows.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(rows.map((r) => [r.node_id, r.status, r.role])).toEqual([
      ['0', 'down', expect.any(String)],
      ['1', 'up', 'primary'],
      ['2', 'up', 'standby'],
    ]);
    expect(rows[2]!.replication_state).not.toBe('streaming');
    expect(rows[2]!.replication_state).not.toBe('');
    const ports = new Set<number>();
    for (let i = 0; i < 30; i++) {
      ports.add(await withProxyClient(proxy, info, async (c) => (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p));
    }
    // Reads all go to node1 (the new primary, the only node that can serve them).
    expect(ports).toEqual(new Set([n1!.port]));
  });
});

describe('failover.auto_promote', () => {
  it('pgproxy promotes the most advanced standby itself and writes resume', async () => {
    const cluster = await throwawayCluster();
    clusters.push(cluster);
    const info = cluster.info;
    await cluster.query(0, 'CREATE TABLE auto_rows (id int PRIMARY KEY)');
    await cluster.query(0, 'INSERT INTO auto_rows SELECT generate_series(1, 100)');
    await cluster.waitForReplay();
    // node1 stops streaming: node2 receives more WAL than node1 and is the one to promote.
    await cluster.query(1, `ALTER SYSTEM SET primary_conninfo = ''`);
    await cluster.query(1, 'SELECT pg_reload_conf()');
    await eventually(async () => (await cluster.query(0, `SELECT 1 FROM pg_stat_replication WHERE application_name = 'node1'`)).length === 0, 15_000);
    await cluster.query(0, 'INSERT INTO auto_rows SELECT generate_series(101, 200)');
    await cluster.waitForReplay();

    const su = info.users.superuser;
    const proxy = await startTestProxy(info, { health_check: FAST_HEALTH, failover: { auto_promote: true, after_ms: 1000, user: su.name, password: su.password } });
    proxies.push(proxy);
    // A client connected before the kill, idle through the failover.
    const w = await connectWatched(proxy, info);
    try {
      await w.client.query('INSERT INTO auto_rows VALUES (201)');
      const killAt = Date.now();
      await cluster.killNode(0, 'SIGKILL');
      // Writes resume within a generous bound: a new session tries one write until it goes through.
      const errors: string[] = [];
      let resumedAt = 0;
      for (let i = 0; i < 300 && Date.now() - killAt < 30_000; i++) {
        const attempt = await connectWatched(proxy, info).catch((err: unknown) => seenError(err));
        if (!('client' in attempt)) {
          errors.push(`connect: ${attempt.code ?? '-'} ${attempt.message}`);
          await sleep(100);
          continue;
        }
        try {
          await withDeadline(attempt.client.query('INSERT INTO auto_rows VALUES ($1)', [1000 + i]), 10_000, 'write during failover');
          resumedAt = Date.now();
          break;
        } catch (err) {
          const e = seenError(err);
          errors.push(`${e.code ?? '-'} ${e.message}`);
          await sleep(100);
        } finally {
          await endAll([attempt.client]);
        }
      }
      console.log(`auto_promote: writes resumed ${resumedAt > 0 ? resumedAt - killAt : 'never'} ms after the kill; errors meanwhile ${JSON.stringify(tally(errors, (e) => e))}`);
      expect(resumedAt, `writes resumed; errors: ${JSON.stringify(tally(errors, (e) => e))}`).toBeGreaterThan(0);
      expect(resumedAt - killAt).toBeLessThan(20_000);
      expect(errors.filter((e) => !e.startsWith('57P03') && !e.startsWith('08006'))).toEqual([]);
      // The most advanced standby (node2) was promoted; node1 was left alone.
      expect(proxy.context.topology.primary()?.name).toBe('node2');
      expect((await cluster.query<{ r: boolean }>(2, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
      expect((await cluster.query<{ r: boolean }>(1, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
      const n = (await cluster.query<{ n: number }>(2, 'SELECT count(*)::int AS n FROM auto_rows WHERE id <= 201'))[0]!.n;
      expect(n).toBe(201);
      // The client that was connected all along survives the failover: it writes on the new primary.
      const survivor = await withDeadline(w.client.query('INSERT INTO auto_rows VALUES (202) RETURNING inet_server_port() AS p'), 10_000, 'write of the long-lived client').then(
        (r) => ({ port: (r.rows[0] as { p: number }).p }),
        (err: unknown) => seenError(err),
      );
      expect({ survivor, unsolicited: w.unsolicited }).toEqual({ survivor: { port: info.nodes[2]!.port }, unsolicited: [] });
    } finally {
      await endAll([w.client]);
    }
  });
});
