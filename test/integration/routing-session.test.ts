// Routing that depends on session and transaction state, through the real proxy and shared cluster:
// read-only and serializable transactions, session settings replayed on every backend the session uses,
// objects that pin a session to the primary, redirect rules, statement-level balancing, prepared statements.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { proxyClient, startTestProxy, statementCalls, withProxyClient } from './helpers/proxy.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
const standbyPorts = [info.nodes[1]!.port, info.nodes[2]!.port];
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info, {
    routing: { redirect: [{ application_name: 'reporting-.*', to: 'primary' }, { application_name: 'pin-node2', to: 2 }] },
  });
  await withProxyClient(proxy, info, async (c) => {
    await c.query('CREATE SCHEMA IF NOT EXISTS rs_schema');
    await c.query('CREATE TABLE IF NOT EXISTS rs_schema.rs_only_here (v text)');
    await c.query(`INSERT INTO rs_schema.rs_only_here VALUES ('found in rs_schema')`);
  });
  await (await sharedClusterHandle()).waitForReplay();
});

afterAll(async () => {
  await proxy?.close();
});

async function port(c: pg.Client, sql = 'SELECT inet_server_port() AS p'): Promise<number> {
  return (await c.query<{ p: number }>(sql)).rows[0]!.p;
}

describe('transactions', () => {
  it('a READ ONLY transaction runs wholly on one standby; a plain one on the primary', async () => {
    await withProxyClient(proxy, info, async (c) => {
      await c.query('BEGIN READ ONLY');
      const first = await port(c);
      expect(standbyPorts).toContain(first);
      for (let i = 0; i < 5; i++) expect(await port(c)).toBe(first);
      await c.query('COMMIT');
      await c.query('start transaction isolation level read committed, read only');
      expect(standbyPorts).toContain(await port(c));
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      expect(await port(c)).toBe(primaryPort);
      await c.query('COMMIT');
    });
  });

  it('default_transaction_read_only (SET, or SET SESSION CHARACTERISTICS) sends plain BEGIN to a standby', async () => {
    await withProxyClient(proxy, info, async (c) => {
      await c.query('SET default_transaction_read_only = on');
      await c.query('BEGIN');
      expect(standbyPorts).toContain(await port(c));
      await c.query('COMMIT');
      await c.query('RESET default_transaction_read_only');
      await c.query('BEGIN');
      expect(await port(c)).toBe(primaryPort);
      await c.query('COMMIT');
      await c.query('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY');
      await c.query('BEGIN');
      expect(standbyPorts).toContain(await port(c));
      await c.query('COMMIT');
    });
  });

  it('SERIALIZABLE, per transaction or as the session default, means the primary', async () => {
    await withProxyClient(proxy, info, async (c) => {
      await c.query('BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY');
      expect(await port(c)).toBe(primaryPort);
      await c.query('COMMIT');
      await c.query(`SET default_transaction_isolation = 'serializable'`);
      expect(await port(c)).toBe(primaryPort);
      await c.query('RESET default_transaction_isolation');
      expect(standbyPorts).toContain(await port(c));
    });
  });
});

describe('session state', () => {
  it('SET search_path is replayed on the standby and the primary the session uses', async () => {
    await withProxyClient(proxy, info, async (c) => {
      await c.query('SET search_path TO rs_schema, public');
      const onStandby = await c.query<{ v: string; p: number }>('SELECT v, inet_server_port() AS p FROM rs_only_here');
      expect(onStandby.rows[0]!.v).toBe('found in rs_schema');
      expect(standbyPorts).toContain(onStandby.rows[0]!.p);
      const onPrimary = await c.query<{ v: string; p: number }>('/*NO LOAD BALANCE*/ SELECT v, inet_server_port() AS p FROM rs_only_here');
      expect(onPrimary.rows[0]).toEqual({ v: 'found in rs_schema', p: primaryPort });
    });
  });

  it('settings made in a transaction count only after COMMIT; ROLLBACK and SET LOCAL leave no trace', async () => {
    await withProxyClient(proxy, info, async (c) => {
      const setting = async (sql: string): Promise<string> => (await c.query<{ s: string }>(sql)).rows[0]!.s;
      await c.query('BEGIN');
      await c.query(`SET application_name = 'rolled-back'`);
      await c.query('ROLLBACK');
      expect(await setting(`SELECT current_setting('application_name') AS s`)).not.toBe('rolled-back');
      await c.query('BEGIN');
      await c.query(`SET LOCAL application_name = 'local-only'`);
      await c.query('COMMIT');
      expect(await setting(`SELECT current_setting('application_name') AS s`)).not.toBe('local-only');
      await c.query('BEGIN');
      await c.query(`SET application_name = 'committed'`);
      await c.query('COMMIT');
      // The transaction ran on the primary; the standby that serves reads gets it replayed.
      expect(await setting(`SELECT current_setting('application_name') AS s`)).toBe('committed');
      expect(await setting(`/*NO LOAD BALANCE*/ SELECT current_setting('application_name') AS s`)).toBe('committed');
    });
  });

  it('set_config(..., false) is a session setting too', async () => {
    await withProxyClient(proxy, info, async (c) => {
      await c.query(`SELECT set_config('statement_timeout', '12345', false)`);
      expect((await c.query(`SELECT current_setting('statement_timeout') AS s`)).rows[0].s).toBe('12345ms');
      expect((await c.query(`/*NO LOAD BALANCE*/ SELECT current_setting('statement_timeout') AS s`)).rows[0].s).toBe('12345ms');
    });
  });

  it('startup parameters apply on every backend the session uses', async () => {
    const c = proxyClient(proxy, info, info.users.app, { application_name: 'startup-app', options: '-c statement_timeout=4321' });
    await c.connect();
    try {
      const standby = (await c.query(`SELECT current_setting('application_name') AS a, current_setting('statement_timeout') AS t`)).rows[0];
      const primary = (await c.query(`/*NO LOAD BALANCE*/ SELECT current_setting('application_name') AS a, current_setting('statement_timeout') AS t`)).rows[0];
      expect(standby).toEqual({ a: 'startup-app', t: '4321ms' });
      expect(primary).toEqual({ a: 'startup-app', t: '4321ms' });
    } finally {
      await c.end();
    }
  });
});

describe('objects that live in one backend session', () => {
  it('a temporary table pins the session to the primary, and reads of it work', async () => {
    await withProxyClient(proxy, info, async (c) => {
      expect(standbyPorts).toContain(await port(c));
      await c.query('CREATE TEMP TABLE rs_tmp (id int)');
      await c.query('INSERT INTO rs_tmp VALUES (1), (2)');
      const r = await c.query<{ n: string; p: number }>('SELECT count(*) AS n, inet_server_port() AS p FROM rs_tmp');
      expect(r.rows[0]).toEqual({ n: '2', p: primaryPort });
      expect(await port(c)).toBe(primaryPort);
    });
  });

  it('an advisory lock and LISTEN pin the session to the primary too', async () => {
    await withProxyClient(proxy, info, async (c) => {
      await c.query('SELECT pg_advisory_lock(4242)');
      expect(await port(c)).toBe(primaryPort);
    });
    await withProxyClient(proxy, info, async (c) => {
      await c.query('LISTEN rs_channel');
      expect(await port(c)).toBe(primaryPort);
    });
  });

  it('SQL-level PREPARE and EXECUTE run on the same node', async () => {
    await withProxyClient(proxy, info, async (c) => {
      await c.query('PREPARE rs_p AS SELECT inet_server_port() AS p');
      expect((await c.query('EXECUTE rs_p')).rows[0].p).toBe(primaryPort);
      await c.query('DEALLOCATE rs_p');
    });
  });
});

describe('balancing', () => {
  it('redirect rules send a matching application_name to the primary or to a given node', async () => {
    const reporting = proxyClient(proxy, info, info.users.app, { application_name: 'reporting-nightly' });
    await reporting.connect();
    try {
      for (let i = 0; i < 3; i++) expect(await port(reporting)).toBe(primaryPort);
    } finally {
      await reporting.end();
    }
    for (let i = 0; i < 5; i++) {
      const pinned = proxyClient(proxy, info, info.users.app, { application_name: 'pin-node2' });
      await pinned.connect();
      try {
        expect(await port(pinned)).toBe(info.nodes[2]!.port);
      } finally {
        await pinned.end();
      }
    }
  });

  it('load_balance: statement spreads one session over both standbys', async () => {
    const p2 = await startTestProxy(info, { routing: { load_balance: 'statement' } });
    try {
      await withProxyClient(p2, info, async (c) => {
        const seen = new Set<number>();
        for (let i = 0; i < 60; i++) seen.add(await port(c));
        expect([...seen].sort()).toEqual([...standbyPorts].sort());
      });
    } finally {
      await p2.close();
    }
  });

  it('a named prepared SELECT used on a standby, then inside a write transaction on the primary, then closed', async () => {
    const table = `rs_prep_${process.pid}`;
    await withProxyClient(proxy, info, async (c) => {
      await c.query(`CREATE TABLE ${table} (id int)`);
      await (await sharedClusterHandle()).waitForReplay();
      const q = { name: 'rs_where', text: `SELECT inet_server_port() AS p, count(*)::int AS n FROM ${table}` };
      const r1 = (await c.query(q)).rows[0];
      expect(standbyPorts).toContain(r1.p);
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} VALUES (1)`);
      const r2 = (await c.query(q)).rows[0];
      expect(r2).toEqual({ p: primaryPort, n: 1 });
      await c.query('COMMIT');
    });
    // The statement text ran once on a standby and once on the primary, as the servers saw it.
    expect(await statementCalls(info, 0, `count(*)::int AS n FROM ${table}`)).toBe(1);
    expect((await statementCalls(info, 1, `count(*)::int AS n FROM ${table}`)) + (await statementCalls(info, 2, `count(*)::int AS n FROM ${table}`))).toBe(1);
  });
});

describe('routing.transactions: split', () => {
  it('reads of a transaction run on the load-balance node until its first write; then everything runs on the primary', async () => {
    const table = `rs_split_${process.pid}`;
    await withProxyClient(proxy, info, (c) => c.query(`CREATE TABLE ${table} (id int)`));
    await (await sharedClusterHandle()).waitForReplay();
    const p2 = await startTestProxy(info, { routing: { transactions: 'split' } });
    try {
      await withProxyClient(p2, info, async (c) => {
        await c.query('BEGIN');
        const first = await port(c);
        expect(standbyPorts).toContain(first);
        expect(await port(c)).toBe(first);
        await c.query('SAVEPOINT sp1');
        await c.query(`INSERT INTO ${table} VALUES (1)`);
        expect(await port(c)).toBe(primaryPort);
        await c.query('ROLLBACK TO SAVEPOINT sp1');
        await c.query(`INSERT INTO ${table} VALUES (2)`);
        expect((await c.query(`SELECT array_agg(id) AS ids FROM ${table}`)).rows[0].ids).toEqual([2]);
        await c.query('COMMIT');
        // The transaction committed on the primary.
        expect((await c.query(`/*NO LOAD BALANCE*/ SELECT array_agg(id) AS ids FROM ${table}`)).rows[0].ids).toEqual([2]);
        // A transaction that only reads stays on the standby to its end.
        await c.query('BEGIN');
        expect(standbyPorts).toContain(await port(c));
        await c.query('COMMIT');
        // REPEATABLE READ keeps one snapshot: the primary from the start.
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        expect(await port(c)).toBe(primaryPort);
        await c.query('COMMIT');
      });
    } finally {
      await p2.close();
    }
  });
});
