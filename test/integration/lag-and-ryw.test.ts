// Replication lag and read-your-writes, on a throwaway cluster whose standbys are made to lag.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { eventually, startTestProxy, withProxyClient } from './helpers/proxy.js';

let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await throwawayCluster();
  await cluster.query(0, 'CREATE TABLE lag_fill (id serial, pad text)');
  await cluster.query(0, 'CREATE TABLE ryw (id int primary key, who int)');
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
      // Precondition: both standbys caught up (right after setup they may still be replaying).
      await eventually(() => proxy.context.topology.nodes[1]!.lagBytes === 0 && proxy.context.topology.nodes[2]!.lagBytes === 0);
      expect(await readPorts(proxy, 20)).toEqual(new Set([n1!.port, n2!.port]));
      await cluster.query(1, 'SELECT pg_wal_replay_pause()');
      await cluster.query(0, `INSERT INTO lag_fill (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)`);
      await eventually(() => (proxy.context.topology.nodes[1]!.lagBytes ?? 0) > 4096);
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
      // Nothing written for a while: the last replayed transaction is old, but the standbys are caught up.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await readPorts(proxy, 20)).toEqual(new Set([n1!.port, n2!.port]));
      await cluster.query(2, 'SELECT pg_wal_replay_pause()');
      await cluster.query(0, `INSERT INTO lag_fill (pad) VALUES ('one more')`);
      await eventually(() => (proxy.context.topology.nodes[2]!.lagMs ?? 0) > 400);
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

  it('with standbys applying WAL late, a session always reads its own writes; without the option it would not', async () => {
    for (const i of [1, 2]) {
      await cluster.query(i, `ALTER SYSTEM SET recovery_min_apply_delay = '300ms'`);
      await cluster.query(i, 'SELECT pg_reload_conf()');
    }
    try {
      // Control: plain balancing reads from lagging standbys and sees stale data (so the check below can fail).
      const plain = await startTestProxy(cluster.info, { routing: { load_balance: 'statement' } });
      try {
        const control = await writeThenRead(plain, 0);
        expect(control.stale).toBeGreaterThan(0);
      } finally {
        await plain.close();
      }
      const ryw = await startTestProxy(cluster.info, { routing: { read_your_writes: true, load_balance: 'statement' } });
      try {
        const result = await writeThenRead(ryw, 1_000_000);
        expect(result.stale).toBe(0);
        // Once a standby has replayed the session's last write, reads go back to the standbys.
        await cluster.waitForReplay();
        await eventually(async () => {
          return withProxyClient(ryw, cluster.info, async (c) => {
            await c.query('INSERT INTO ryw VALUES ($1, 0)', [2_000_000 + Math.floor(Math.random() * 1e6)]);
            await new Promise((r) => setTimeout(r, 1200));
            const p = (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;
            return p !== cluster.info.nodes[0]!.port;
          });
        }, 20_000);
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
