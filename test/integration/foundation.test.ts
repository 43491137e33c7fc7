// The first complete slice: clients through pgproxy against the real shared cluster (primary + 2 standbys,
// weights 0/1/1). Where a statement ran is observed on the servers themselves (pg_stat_statements).
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { proxyClient, run, startTestProxy, statementCalls, withProxyClient } from './helpers/proxy.js';

const info = sharedCluster();
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
});

afterAll(async () => {
  await proxy?.close();
});

function psqlArgs(extra = ''): string[] {
  return [`host=${proxy.host} port=${proxy.port} user=${info.users.app.name} dbname=${info.database} ${extra}`, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];
}

describe('routing through the proxy', () => {
  it('node-postgres: an INSERT runs on the primary only and its row is read back', async () => {
    const table = `f_ins_${process.pid}`;
    await withProxyClient(proxy, info, async (c) => {
      await c.query(`CREATE TABLE ${table} (id int primary key, v text)`);
      await c.query(`INSERT INTO ${table} VALUES ($1, $2)`, [1, 'one']);
      // Read back on the primary inside a transaction (standbys may not have replayed yet).
      await c.query('BEGIN');
      const r = await c.query(`SELECT v FROM ${table} WHERE id = 1`);
      await c.query('COMMIT');
      expect(r.rows).toEqual([{ v: 'one' }]);
    });
    expect(await statementCalls(info, 0, `INSERT INTO ${table}`)).toBe(1);
    expect(await statementCalls(info, 1, `INSERT INTO ${table}`)).toBe(0);
    expect(await statementCalls(info, 2, `INSERT INTO ${table}`)).toBe(0);
    const cluster = await sharedClusterHandle();
    await cluster.waitForReplay();
    const rows = await withProxyClient(proxy, info, (c) => c.query(`SELECT v FROM ${table}`));
    expect(rows.rows).toEqual([{ v: 'one' }]);
  });

  it('psql: INSERT then SELECT, the INSERT reached the primary only', async () => {
    const table = `f_psql_${process.pid}`;
    const env = { PGPASSWORD: info.users.app.password };
    const r1 = await run('psql', [...psqlArgs(), '-c', `CREATE TABLE ${table} (id int)`, '-c', `INSERT INTO ${table} VALUES (42)`], env);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    const cluster = await sharedClusterHandle();
    await cluster.waitForReplay();
    const r2 = await run('psql', [...psqlArgs(), '-c', `SELECT id FROM ${table}`], env);
    expect(r2.code).toBe(0);
    expect(r2.stdout.trim()).toBe('42');
    expect(await statementCalls(info, 0, `INSERT INTO ${table}`)).toBe(1);
    expect((await statementCalls(info, 1, `INSERT INTO ${table}`)) + (await statementCalls(info, 2, `INSERT INTO ${table}`))).toBe(0);
    // The SELECT ran on a standby, never on the primary (weight 0).
    expect(await statementCalls(info, 0, `SELECT id FROM ${table}`)).toBe(0);
    expect((await statementCalls(info, 1, `SELECT id FROM ${table}`)) + (await statementCalls(info, 2, `SELECT id FROM ${table}`))).toBe(1);
  });

  it('200 short sessions of SELECTs are served by the standbys only, each 35%..65%, and SHOW POOL_NODES agrees', async () => {
    const table = `f_dist_${process.pid}`;
    await withProxyClient(proxy, info, (c) => c.query(`CREATE TABLE ${table} AS SELECT 1 AS one`));
    await (await sharedClusterHandle()).waitForReplay();
    const before = await showPoolNodes();
    const byPort = new Map<number, number>();
    const sessions = 200;
    const concurrency = 10;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < sessions) {
          next++;
          const port = await withProxyClient(proxy, info, async (c) => {
            const r = await c.query<{ port: number }>(`SELECT inet_server_port() AS port FROM ${table}`);
            return r.rows[0]!.port;
          });
          byPort.set(port, (byPort.get(port) ?? 0) + 1);
        }
      }),
    );
    const [p0, p1, p2] = info.nodes.map((n) => n.port);
    expect(byPort.get(p0!) ?? 0).toBe(0);
    const s1 = byPort.get(p1!) ?? 0;
    const s2 = byPort.get(p2!) ?? 0;
    expect(s1 + s2).toBe(sessions);
    expect(s1 / sessions).toBeGreaterThanOrEqual(0.35);
    expect(s1 / sessions).toBeLessThanOrEqual(0.65);
    // The servers saw the same: each standby ran exactly the SELECTs the clients saw it answer.
    expect(await statementCalls(info, 0, `FROM ${table}`)).toBe(0);
    expect(await statementCalls(info, 1, `inet_server_port() AS port FROM ${table}`)).toBe(s1);
    expect(await statementCalls(info, 2, `inet_server_port() AS port FROM ${table}`)).toBe(s2);
    const after = await showPoolNodes();
    expect(after.map((r) => Number(r.select_cnt) - Number(before.find((b) => b.node_id === r.node_id)!.select_cnt))).toEqual([0, s1, s2]);
  });

  it('SHOW POOL_NODES has pgpool-II 4.3 columns in order, with roles and weights', async () => {
    const rows = await withProxyClient(proxy, info, async (c) => {
      const r = await c.query('SHOW POOL_NODES');
      expect(r.fields.map((f) => f.name)).toEqual([
        'node_id', 'hostname', 'port', 'status', 'pg_status', 'lb_weight', 'role', 'pg_role', 'select_cnt',
        'load_balance_node', 'replication_delay', 'replication_state', 'replication_sync_state', 'last_status_change',
      ]);
      return r.rows as Record<string, string>[];
    });
    expect(rows.map((r) => [r.node_id, r.port, r.status, r.role, r.lb_weight])).toEqual([
      ['0', String(info.nodes[0]!.port), 'up', 'primary', '0.000000'],
      ['1', String(info.nodes[1]!.port), 'up', 'standby', '0.500000'],
      ['2', String(info.nodes[2]!.port), 'up', 'standby', '0.500000'],
    ]);
    expect(rows[1]!.replication_state).toBe('streaming');
    expect(rows[1]!.replication_sync_state).toBe('async');
  });

  it('writes, DDL, locking reads, write functions and explicit transactions go to the primary', async () => {
    const table = `f_route_${process.pid}`;
    await withProxyClient(proxy, info, async (c) => {
      await c.query(`CREATE TABLE ${table} (id serial primary key, v int)`);
      await c.query(`INSERT INTO ${table} (v) VALUES (1)`);
      await (await sharedClusterHandle()).waitForReplay();
      const port = async (sql: string): Promise<number> => (await c.query<{ p: number }>(sql)).rows[0]!.p;
      const primary = info.nodes[0]!.port;
      expect(await port(`SELECT inet_server_port() AS p FROM ${table} FOR UPDATE`)).toBe(primary);
      expect(await port(`SELECT inet_server_port() AS p, nextval('${table}_id_seq')`)).toBe(primary);
      expect(await port(`WITH x AS (INSERT INTO ${table} (v) VALUES (2) RETURNING v) SELECT inet_server_port() AS p FROM x`)).toBe(primary);
      expect(await port(`/*NO LOAD BALANCE*/ SELECT inet_server_port() AS p`)).toBe(primary);
      expect(await port(`SELECT inet_server_port() AS p, txid_current()`)).toBe(primary);
      expect(await port(`SELECT inet_server_port() AS p, pg_advisory_unlock(42)`)).toBe(primary);
      await c.query('BEGIN');
      expect(await port('SELECT inet_server_port() AS p')).toBe(primary);
      await c.query('COMMIT');
      expect(await port('SELECT inet_server_port() AS p')).not.toBe(primary);
    });
  });

  it('write_functions send calls of listed functions to the primary', async () => {
    const p2 = await startTestProxy(info, { routing: { write_functions: ['audit_.*'] } });
    try {
      await withProxyClient(p2, info, async (c) => {
        await c.query(`CREATE OR REPLACE FUNCTION audit_touch() RETURNS int LANGUAGE sql AS 'SELECT inet_server_port()'`);
        await (await sharedClusterHandle()).waitForReplay();
        expect((await c.query('SELECT audit_touch() AS p')).rows[0].p).toBe(info.nodes[0]!.port);
        expect((await c.query('SELECT public.audit_touch() AS p')).rows[0].p).toBe(info.nodes[0]!.port);
      });
    } finally {
      await p2.close();
    }
  });
});

describe('authentication', () => {
  it('md5: the right password works; a wrong one and an unknown user get 28P01', async () => {
    await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]));
    const wrong = proxyClient(proxy, info, { name: info.users.app.name, password: 'not-the-password' });
    await expect(wrong.connect()).rejects.toMatchObject({ code: '28P01' });
    const unknown = proxyClient(proxy, info, { name: 'nobody', password: 'x' });
    await expect(unknown.connect()).rejects.toMatchObject({ code: '28P01' });
  });

  it('a user with a SCRAM password on the backend logs in and queries through the proxy', async () => {
    await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: info.users.scram.name }]), info.users.scram);
  });

  it('libpq with target_session_attrs=read-write accepts the proxy', async () => {
    // libpq rejects a server that reports in_hot_standby=on or default_transaction_read_only=on at startup.
    const r = await run('psql', [...psqlArgs('target_session_attrs=read-write'), '-c', 'SELECT 7'], { PGPASSWORD: info.users.app.password });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('7');
  });
});

describe('extended protocol', () => {
  it('node-postgres named prepared statements and parameters work across reads and writes', async () => {
    const table = `f_prep_${process.pid}`;
    await withProxyClient(proxy, info, async (c) => {
      await c.query(`CREATE TABLE ${table} (id int primary key, v text)`);
      for (let i = 0; i < 20; i++) await c.query({ name: 'ins', text: `INSERT INTO ${table} VALUES ($1, $2)`, values: [i, `v${i}`] });
      await (await sharedClusterHandle()).waitForReplay();
      for (let i = 0; i < 20; i++) {
        const r = await c.query({ name: 'sel', text: `SELECT v FROM ${table} WHERE id = $1`, values: [i] });
        expect(r.rows).toEqual([{ v: `v${i}` }]);
      }
      // The same named SELECT inside a write transaction runs on the primary, re-prepared there.
      await c.query('BEGIN');
      await c.query({ name: 'ins', text: `INSERT INTO ${table} VALUES ($1, $2)`, values: [100, 'tx'] });
      const r = await c.query({ name: 'sel', text: `SELECT v FROM ${table} WHERE id = $1`, values: [100] });
      expect(r.rows).toEqual([{ v: 'tx' }]);
      await c.query('COMMIT');
    });
  });

  it('pgbench -i, then -M simple, extended, prepared, the default script and -S finish with no failed transaction', async () => {
    const env = { PGPASSWORD: info.users.app.password };
    const conn = ['-h', proxy.host, '-p', String(proxy.port), '-U', info.users.app.name];
    const init = await run('pgbench', ['-i', '-s', '1', '-q', ...conn, info.database], env);
    expect(init.stderr).toMatch(/done in/);
    expect(init.code).toBe(0);
    // A fixed amount of work per run (not a fixed time): 4 clients x 250 transactions.
    for (const args of [['-M', 'simple'], ['-M', 'extended'], ['-M', 'prepared'], [], ['-S']]) {
      const r = await run('pgbench', ['-t', '250', '-c', '4', '-j', '2', ...args, ...conn, info.database], env, 60_000);
      expect(r.code, `pgbench ${args.join(' ')}: ${r.stderr}`).toBe(0);
      const processed = /number of transactions actually processed: (\d+)\/(\d+)/.exec(r.stdout);
      expect(processed?.slice(1), r.stdout).toEqual(['1000', '1000']);
      const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
      if (failed) expect(Number(failed[1])).toBe(0);
    }
  }, 120_000);

  it('COPY FROM STDIN and COPY TO STDOUT pass through', async () => {
    const table = `f_copy_${process.pid}`;
    const env = { PGPASSWORD: info.users.app.password };
    await run('psql', [...psqlArgs(), '-c', `CREATE TABLE ${table} (id int, v text)`], env);
    const copyIn = await run('bash', ['-c', `printf '1\\ta\\n2\\tb\\n' | psql "host=${proxy.host} port=${proxy.port} user=${info.users.app.name} dbname=${info.database}" -X -q -c "\\copy ${table} from stdin"`], env);
    expect(copyIn.stderr).toBe('');
    await (await sharedClusterHandle()).waitForReplay();
    const out = await run('psql', [...psqlArgs(), '-c', `COPY (SELECT * FROM ${table} ORDER BY id) TO STDOUT`], env);
    expect(out.stdout).toBe('1\ta\n2\tb\n');
  });
});

describe('bad input', () => {
  it('garbage bytes and a truncated startup packet close that connection cleanly; the next client works', async () => {
    for (const payload of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0, 0, 0, 40, 0, 3, 0, 0, 117, 115]), Buffer.from([0, 0, 0, 2])]) {
      const closed = await new Promise<boolean>((resolve) => {
        const s = net.connect(proxy.port, proxy.host, () => {
          s.write(payload);
          if (payload.length === 10) s.end(); // truncated: the client gives up half-way
        });
        s.on('data', () => {});
        s.on('error', () => {});
        s.on('close', () => resolve(true));
        setTimeout(() => resolve(false), 10_000);
      });
      expect(closed).toBe(true);
    }
    await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT 2 AS x')).rows).toEqual([{ x: 2 }]));
  });
});

async function showPoolNodes(): Promise<Record<string, string>[]> {
  return withProxyClient(proxy, info, async (c: pg.Client) => (await c.query('SHOW POOL_NODES')).rows as Record<string, string>[]);
}
