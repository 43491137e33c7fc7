// The dev cluster itself: what every other integration test relies on, on either provider (local binaries, or
// containers with PGPROXY_CLUSTER=docker).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import { connectNode, sharedCluster, sharedClusterHandle, throwawayCluster } from './helpers/cluster.js';

describe('shared cluster', () => {
  const info = sharedCluster();
  let c: DevCluster;

  beforeAll(async () => {
    c = await sharedClusterHandle();
  });

  it('has one primary and two standbys', async () => {
    expect(info.nodes.map((n) => n.name)).toEqual(['node0', 'node1', 'node2']);
    const rec = await Promise.all(info.nodes.map(async (_, i) => (await c.query<{ r: boolean }>(i, 'SELECT pg_is_in_recovery() AS r'))[0]?.r));
    expect(rec).toEqual([false, true, true]);
    const st = await c.status();
    expect(st.map((s) => [s.name, s.up, s.inRecovery])).toEqual([
      ['node0', true, false],
      ['node1', true, true],
      ['node2', true, true],
    ]);
    for (const s of st) expect(s.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  });

  it('replicates a row written on the primary to both standbys', async () => {
    const table = `devcluster_t_${process.pid}_${Date.now()}`;
    const primary = await connectNode(info, 0);
    try {
      await primary.query(`CREATE TABLE ${table} (id int primary key, v text)`);
      await primary.query(`INSERT INTO ${table} VALUES (1, 'hello')`);
      await c.waitForReplay(10_000);
      for (const i of [1, 2]) {
        const rows = await c.query<{ v: string }>(i, `SELECT v FROM ${table} WHERE id = 1`, [], info.users.app);
        expect(rows).toEqual([{ v: 'hello' }]);
      }
      // The SCRAM app role can use tables the md5 app role created.
      const viaScram = await c.query<{ n: number }>(1, `SELECT count(*)::int AS n FROM ${table}`, [], info.users.scram);
      expect(viaScram).toEqual([{ n: 1 }]);
    } finally {
      await primary.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await primary.end();
    }
  });

  it('stores the app password as md5, requires md5 for it, and rejects a wrong password', async () => {
    const [pw] = await c.query<{ md5: boolean; scram: boolean }>(
      0,
      `SELECT (SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = $1) AS md5,
              (SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = $2) AS scram`,
      [info.users.app.name, info.users.scram.name],
    );
    expect(pw).toEqual({ md5: true, scram: true });
    const hba = await c.query<{ auth_method: string }>(
      0,
      `SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND $1 = ANY(user_name) ORDER BY line_number LIMIT 1`,
      [info.users.app.name],
    );
    expect(hba).toEqual([{ auth_method: 'md5' }]);

    for (const i of [0, 1, 2]) {
      const ok = await c.query<{ u: string }>(i, 'SELECT current_user AS u', [], info.users.app);
      expect(ok).toEqual([{ u: 'app' }]);
    }
    const err = await c.query(0, 'SELECT 1', [], { name: info.users.app.name, password: 'wrong' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '28P01' });
  });

  it('has pg_stat_statements usable on every node', async () => {
    for (const i of [0, 1, 2]) {
      for (const db of ['app', 'postgres']) {
        const rows = await c.query<{ n: number }>(i, 'SELECT count(*)::int AS n FROM pg_stat_statements', [], info.users.superuser, db);
        expect(rows[0]?.n).toBeGreaterThan(0);
      }
      // pg_monitor (pg_read_all_stats) sees other users' query texts.
      const seen = await c.query<{ other: number }>(
        i,
        `SELECT count(*)::int AS other FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
          WHERE r.rolname <> current_user AND s.query <> '<insufficient privilege>'`,
        [],
        info.users.monitor,
      );
      expect(seen[0]?.other).toBeGreaterThan(0);
    }
  });

  it('lets the monitor role read pg_stat_replication, one row per standby', async () => {
    const rows = await c.query<{ application_name: string; state: string; sent_lsn: string | null }>(
      0,
      'SELECT application_name, state, sent_lsn::text FROM pg_stat_replication ORDER BY application_name',
      [],
      info.users.monitor,
    );
    expect(rows.map((r) => [r.application_name, r.state])).toEqual([
      ['node1', 'streaming'],
      ['node2', 'streaming'],
    ]);
    // Without pg_read_all_stats these columns would be NULL.
    for (const r of rows) expect(r.sent_lsn).not.toBeNull();
  });
});

describe('throwaway cluster (fault injection)', () => {
  let c: DevCluster;

  beforeAll(async () => {
    c = await throwawayCluster({ standbys: 2 });
  });
  afterAll(async () => {
    await c?.down({ purge: true });
  });

  const streaming = async () =>
    (await c.query<{ application_name: string }>(0, `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1`)).map(
      (r) => r.application_name,
    );

  it('stops and restarts a standby, which streams again', async () => {
    await c.stopNode(2);
    const st = await c.status();
    expect(st.map((s) => s.up)).toEqual([true, true, false]);
    expect(st[2]).toMatchObject({ name: 'node2', up: false, inRecovery: null, lsn: null, pid: null });

    await c.query(0, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)');
    await c.startNode(2);
    await expect.poll(streaming, { timeout: 15_000, interval: 100 }).toEqual(['node1', 'node2']);
    await c.waitForReplay(15_000);
    expect(await c.query(2, 'SELECT id FROM t')).toEqual([{ id: 1 }]);
  });

  it('survives a SIGKILLed standby postmaster and restarts it', async () => {
    await c.killNode(2);
    await expect.poll(async () => (await c.status())[2]?.up, { timeout: 10_000, interval: 100 }).toBe(false);
    await c.startNode(2);
    await expect.poll(streaming, { timeout: 15_000, interval: 100 }).toEqual(['node1', 'node2']);
  });

  it('stops and restarts the primary, which keeps its data; its standbys stream again', async () => {
    await c.stopNode(0);
    expect((await c.status()).map((s) => s.up)).toEqual([false, true, true]);
    await c.startNode(0);
    expect(await c.query(0, 'SELECT id FROM t')).toEqual([{ id: 1 }]);
    await expect.poll(streaming, { timeout: 15_000, interval: 100 }).toEqual(['node1', 'node2']);
  });

  it('suspends a node so its sessions hang, and resumes it', async () => {
    const client = await connectNode(c.info, 1);
    try {
      await c.suspendNode(1);
      const hung = await Promise.race([
        client.query('SELECT 1').then(() => 'answered'),
        new Promise((r) => setTimeout(() => r('hung'), 500)),
      ]);
      expect(hung).toBe('hung');
      expect((await c.status())[1]?.up).toBe(false);
      await c.resumeNode(1);
      expect((await client.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    } finally {
      await c.resumeNode(1);
      await client.end();
    }
  });

  it('promotes node1 out of recovery', async () => {
    await c.promote(1);
    expect(await c.query(1, 'SELECT pg_is_in_recovery() AS r')).toEqual([{ r: false }]);
    expect((await c.status()).map((s) => s.inRecovery)).toEqual([false, false, true]);
  });
});
