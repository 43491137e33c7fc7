// Replication lag and read-your-writes, on a throwaway cluster whose standbys are made to lag.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { eventually, startTestProxy, withProxyClient } from './helpers/proxy.js';

let cluster: DevCluster;

beforeAll(async () => {
  cluster = await throwawayCluster();
  await cluster.query(0, 'CREATE TABLE lag_fill (id serial, pad text) WITH (autovacuum_enabled = off)');
  await cluster.query(0, 'CREATE TABLE ryw (id int primary key, who int) WITH (autovacuum_enabled = off)');
  // The lag tests need a primary that writes no WAL unless the test writes. Reads write WAL too in a fresh
  // cluster: the first reader of a catalog page (the proxy's catalog query, the health checks) sets its hint
  // bits, and with wal_log_hints that logs a full page image, tens of kB that put both standbys over
  // max_lag_bytes for a moment. VACUUM ANALYZE sets them all now (and leaves autovacuum nothing to do); the
  // test's own tables are never autovacuumed.
  for (const db of [cluster.info.database, 'postgres']) await cluster.query(0, 'VACUUM ANALYZE', [], cluster.info.users.superuser, db);
  await cluster.waitForReplay();
}, 180_000);

afterAll(async () => {
  await cluster?.down({ purge: true });
});

async function readPorts(proxy: RunningProxy, sessions: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < sessions; i++) {
    seen.add(await withProxyClient(proxy, cluster.info, async (c) => (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p));
  }
  return seen;
}

describe('replication lag', () => {
  it('a standby behind by more than max_lag_bytes takes no reads until it catches up; SHOW POOL_NODES shows the delay', async () => {
    const proxy = await startTestProxy(cluster.info, { routing: { max_lag_bytes: 4096 } });
    const [, n1, n2] = cluster.info.nodes;
    try {
      // Precondition: both standbys caught up, as the health checker sees them.
      await eventually(() => proxy.context.topology.nodes[1]!.lagBytes === 0 && proxy.context.topology.nodes[2]!.lagBytes === 0, 20_000, 50);
      expect(await readPorts(proxy, 20)).toEqual(new Set([n1!.port, n2!.port]));
      await cluster.query(1, 'SELECT pg_wal_replay_pause()');
      await cluster.query(0, `INSERT INTO lag_fill (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)`);
      // The health checker has seen node1 behind and node2 caught up on that insert (in the same round).
      const nodes = proxy.context.topology.nodes;
      await eventually(() => (nodes[1]!.lagBytes ?? 0) > 4096 && nodes[2]!.lagBytes === 0, 20_000, 50, 'node1 behind, node2 caught up');
      expect(await readPorts(proxy, 20)).toEqual(new Set([n2!.port]));
      const delay = await withProxyClient(proxy, cluster.info, async (c) => (await c.query('SHOW POOL_NODES')).rows[1].replication_delay);
      expect(Number(delay)).toBeGreaterThan(4096);
      await cluster.query(1, 'SELECT pg_wal_replay_resume()');
      await eventually(() => proxy.context.topology.nodes[1]!.lagBytes === 0);
      await eventually(async () => (await readPorts(proxy, 10)).has(n1!.port));
    } finally {
      await cluster.query(1, 'SELECT pg_wal_replay_resume()').catch(() => {});
      await proxy.close();
    }
  });

  it('max_lag_ms: an idle primary does not make caught-up standbys look stale; a paused one is excluded', async () => {
    const proxy = await startTestProxy(cluster.info, { routing: { max_lag_ms: 400 } });
    const [, n1, n2] = cluster.info.nodes;
    try {
      await cluster.waitForReplay();
      // Nothing written for a while: the last replayed transaction is older than the limit, but the standbys are
      // caught up (as the health checker sees them).
      const nodes = proxy.context.topology.nodes;
      const caughtUpButOld = (i: number): boolean => nodes[i]!.lagMs === 0 && (nodes[i]!.replayAgeMs ?? 0) > 400;
      await eventually(() => caughtUpButOld(1) && caughtUpButOld(2), 20_000, 50, 'both standbys caught up, their last replayed transaction over 400 ms old');
      expect(await readPorts(proxy, 20)).toEqual(new Set([n1!.port, n2!.port]));
      await cluster.query(2, 'SELECT pg_wal_replay_pause()');
      await cluster.query(0, `INSERT INTO lag_fill (pad) VALUES ('one more')`);
      await eventually(() => (nodes[2]!.lagMs ?? 0) > 400 && nodes[1]!.lagMs === 0, 20_000, 50, 'node2 behind, node1 caught up');
      expect(await readPorts(proxy, 20)).toEqual(new Set([n1!.port]));
    } finally {
      await cluster.query(2, 'SELECT pg_wal_replay_resume()').catch(() => {});
      await proxy.close();
    }
  });
});

describe('read-your-writes', () => {
  const writers = 4;
  const perWriter = 500;

  async function writeThenRead(proxy: RunningProxy, base: number): Promise<{ stale: number; standbyReads: number }> {
    let stale = 0;
    let standbyReads = 0;
    const primaryPort = cluster.info.nodes[0]!.port;
    await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        withProxyClient(proxy, cluster.info, async (c) => {
          for (let i = 0; i < perWriter; i++) {
            const id = base + w * perWriter + i;
            await c.query('INSERT INTO ryw VALUES ($1, $2)', [id, w]);
            const r = await c.query<{ n: number; p: number }>('SELECT count(*)::int AS n, inet_server_port() AS p FROM ryw WHERE id = $1', [id]);
            if (r.rows[0]!.n !== 1) stale++;
            if (r.rows[0]!.p !== primaryPort) standbyReads++;
          }
        }),
      ),
    );
    return { stale, standbyReads };
  }

  it('with standbys applying WAL late, a session always reads its own writes (the default); with read_your_writes off it would not', async () => {
    for (const i of [1, 2]) {
      await cluster.query(i, `ALTER SYSTEM SET recovery_min_apply_delay = '300ms'`);
      await cluster.query(i, 'SELECT pg_reload_conf()');
    }
    // pg_reload_conf() only signals: wait until new sessions see the delay.
    await eventually(async () => {
      for (const i of [1, 2]) if ((await cluster.query<{ d: string }>(i, `SELECT current_setting('recovery_min_apply_delay') AS d`))[0]!.d !== '300ms') return false;
      return true;
    }, 10_000, 50);
    try {
      // Control: plain balancing reads from lagging standbys and sees stale data (so the check below can fail).
      const plain = await startTestProxy(cluster.info, { routing: { read_your_writes: 'off', load_balance: 'statement' } });
      try {
        const control = await writeThenRead(plain, 0);
        expect(control.stale).toBeGreaterThan(0);
      } finally {
        await plain.close();
      }
      const ryw = await startTestProxy(cluster.info, { routing: { read_your_writes: 'session', load_balance: 'statement' } });
      try {
        const result = await writeThenRead(ryw, 1_000_000);
        expect(result.stale).toBe(0);
        // Once a standby has replayed the session's last write (and the health checker has seen it), the session's
        // reads go back to the standbys, and see that write there.
        await withProxyClient(ryw, cluster.info, async (c) => {
          await c.query('INSERT INTO ryw VALUES (2000000, 0)');
          let last = { n: -1, p: 0 };
          await eventually(async () => {
            last = (await c.query<{ n: number; p: number }>('SELECT count(*)::int AS n, inet_server_port() AS p FROM ryw WHERE id = 2000000')).rows[0]!;
            expect(last.n).toBe(1);
            return last.p !== cluster.info.nodes[0]!.port;
          }, 20_000, 100).catch(() => undefined);
          expect(last.n).toBe(1);
          expect(cluster.info.nodes.slice(1).map((n) => n.port), 'the session reads on a standby again').toContain(last.p);
        });
      } finally {
        await ryw.close();
      }
    } finally {
      for (const i of [1, 2]) {
        await cluster.query(i, 'ALTER SYSTEM RESET recovery_min_apply_delay');
        await cluster.query(i, 'SELECT pg_reload_conf()');
      }
    }
  }, 120_000);
});
