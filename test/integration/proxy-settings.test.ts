// pgproxy's own settings (pgproxy.*), through the real proxy and shared cluster: every SET / RESET / SHOW form,
// SET LOCAL and transactions, errors (42704, 22023, 55P02, 25P02), startup options, and the manual route override
// (proxy-settings-protocol.test.ts: the extended protocol and multi-statement queries). pgproxy answers all of these itself; the proof that
// nothing reached a backend is on the servers (pg_stat_statements, current_setting()). Where PostgreSQL decides
// the answer (SET LOCAL outside a transaction, SHOW of an unknown name, the extended-protocol message sequence),
// the same exchange with the primary directly is the oracle.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { connectNode, sharedCluster } from './helpers/cluster.js';
import { replyLines, showValue, useAppProxy } from './helpers/exchange.js';
import { proxyClient, withProxyClient } from './helpers/proxy.js';
import { dataRow, errorFields, type Msg, ProtoClient } from './helpers/proto-client.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
const standbyPorts = info.nodes.slice(1).map((n) => n.port);
const T = `pxs_${process.pid}`;
const app = useAppProxy(info, [`CREATE TABLE ${T} (id int primary key, v text)`]);
const { connectProxy, connectPrimary, exchange } = app;
const lines = (msgs: readonly Msg[]): string[] => replyLines(msgs);

const show = showValue;

async function port(c: ProtoClient, sql = 'SELECT inet_server_port()'): Promise<number> {
  const msgs = await c.query(sql);
  const d = msgs.find((m) => m.type === 'D');
  if (!d) throw new Error(`no row from ${sql}: ${JSON.stringify(lines(msgs))}`);
  return Number(dataRow(d.body)[0]);
}

/**
 * Calls of statements naming a pgproxy.* setting (SET, RESET, SHOW in any spelling) recorded on node `i`: utility
 * statements keep their text in pg_stat_statements (track_utility is on in the dev cluster).
 */
async function proxyStatementsOn(i: number): Promise<{ query: string; calls: string }[]> {
  const n = info.nodes[i]!;
  const c = new pg.Client({ host: n.host, port: n.port, user: info.users.superuser.name, password: info.users.superuser.password, database: info.database });
  await c.connect();
  try {
    const r = await c.query<{ query: string; calls: string }>(
      `SELECT query, calls::text FROM pg_stat_statements WHERE query ~* '^\\s*(SET|RESET|SHOW)\\M.*pgproxy' AND query !~* 'current_setting|set_config'`,
    );
    return r.rows;
  } finally {
    await c.end();
  }
}

describe('SET / RESET / SHOW pgproxy.*', () => {
  it('every spelling of SET is recognised, SHOW reports it, and none of it reaches a backend', async () => {
    const c = await connectProxy();
    try {
      expect(await show(c, 'pgproxy.route')).toBe('auto');
      const forms: [string, string][] = [
        ['SET pgproxy.route = primary', 'primary'],
        [`SET SESSION pgproxy.route TO 'standby'`, 'standby'],
        // PostgreSQL reads a quoted "pgproxy.route" as the same two-part name (a placeholder's name has a dot).
        ['SET "pgproxy.route" = auto', 'auto'],
        ['SET PGPROXY.ROUTE = PRIMARY', 'primary'],
        ['set pgproxy.route to default', 'auto'],
        [`SET "pgproxy"."route" = 'standby'`, 'standby'],
        ['SET pgproxy.route TO DEFAULT', 'auto'],
      ];
      for (const [sql, value] of forms) {
        expect(await exchange(c, sql), sql).toEqual(['C SET', 'Z I']);
        expect(await show(c, 'pgproxy.route'), sql).toBe(value);
        expect(await show(c, '"pgproxy.route"'), sql).toBe(value);
        expect(await show(c, 'PGPROXY.ROUTE'), sql).toBe(value);
      }
      expect(await exchange(c, 'SET pgproxy.max_lag_ms = 500')).toEqual(['C SET', 'Z I']);
      expect(await show(c, 'pgproxy.max_lag_ms')).toBe('500');
      expect(await exchange(c, `SET pgproxy.min_lsn = '0/1A2B3C'`)).toEqual(['C SET', 'Z I']);
      expect(await show(c, 'pgproxy.min_lsn')).toBe('0/1A2B3C');
      expect(await exchange(c, `SET pgproxy.min_lsn = ''`)).toEqual(['C SET', 'Z I']);
      expect(await show(c, 'pgproxy.min_lsn')).toBe('');
      expect(await exchange(c, 'SET pgproxy.explain TO on')).toEqual(['C SET', 'Z I']);
      expect(await show(c, 'pgproxy.explain')).toBe('on');
      expect(await exchange(c, 'SET pgproxy.explain = false')).toEqual(['C SET', 'Z I']);
      expect(await show(c, 'pgproxy.explain')).toBe('off');
      expect(await exchange(c, 'RESET pgproxy.max_lag_ms')).toEqual(['C RESET', 'Z I']);
      expect(await show(c, 'pgproxy.max_lag_ms')).toBe('');
      // The backends the session used never heard of any of it.
      for (const route of ['primary', 'auto']) {
        expect(await exchange(c, `SET pgproxy.route = ${route}`)).toEqual(['C SET', 'Z I']);
        const msgs = await c.query(`SELECT current_setting('pgproxy.route', true) AS v, inet_server_port() AS p`);
        const [v, p] = dataRow(msgs.find((m) => m.type === 'D')!.body);
        expect(v, `current_setting on the backend (port ${p})`).toBeNull();
        if (route === 'primary') expect(Number(p)).toBe(primaryPort);
        else expect(standbyPorts).toContain(Number(p));
      }
    } finally {
      await c.end();
    }
    for (let i = 0; i < info.nodes.length; i++) expect(await proxyStatementsOn(i), `node${i}`).toEqual([]);
  });

  it('SHOW of every pgproxy.* name, with their defaults; the read-only ones cannot be set', async () => {
    const c = await connectProxy();
    try {
      expect(await show(c, 'pgproxy.route')).toBe('auto');
      expect(await show(c, 'pgproxy.min_lsn')).toBe('');
      expect(await show(c, 'pgproxy.max_lag_ms')).toBe('');
      expect(await show(c, 'pgproxy.explain')).toBe('off');
      expect(await show(c, 'pgproxy.last_commit_lsn')).toBe('');
      expect(await show(c, 'pgproxy.last_route')).toBe('');
      // After a read and a write: where the last one went, and the commit position of the write.
      await port(c);
      expect(await show(c, 'pgproxy.last_route')).toMatch(/^node[12] \(standby\): read/);
      expect(await exchange(c, `INSERT INTO ${T} VALUES (1, 'one')`)).toEqual(['C INSERT 0 1', 'Z I']);
      expect(await show(c, 'pgproxy.last_route')).toBe('node0 (primary): write');
      expect(await show(c, 'pgproxy.last_commit_lsn')).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      for (const name of ['pgproxy.last_commit_lsn', 'pgproxy.last_route']) {
        expect(await exchange(c, `SET ${name} = '0/0'`)).toEqual(['E ERROR 55P02', 'Z I']);
        expect(await exchange(c, `RESET ${name}`)).toEqual(['E ERROR 55P02', 'Z I']);
      }
    } finally {
      await c.end();
    }
  });

  it('unknown names: 42704 for SET, RESET and SHOW (as PostgreSQL answers SHOW of an unknown name); bad values: 22023', async () => {
    const c = await connectProxy();
    const direct = await connectPrimary();
    try {
      expect(await exchange(c, 'SHOW pgproxy.nope')).toEqual(await exchange(direct, 'SHOW pgproxy.nope'));
      expect(await exchange(c, 'SHOW pgproxy.nope')).toEqual(['E ERROR 42704', 'Z I']);
      const err = (await c.query('SET pgproxy.nope = 1')).find((m) => m.type === 'E')!;
      expect(errorFields(err.body)).toMatchObject({ C: '42704', M: 'unrecognized configuration parameter "pgproxy.nope"' });
      expect(await exchange(c, 'RESET pgproxy.nope')).toEqual(['E ERROR 42704', 'Z I']);
      for (const sql of ['SET pgproxy.route = sideways', 'SET pgproxy.max_lag_ms = -1', 'SET pgproxy.max_lag_ms = soon', `SET pgproxy.min_lsn = 'not an lsn'`, 'SET pgproxy.explain = loudly']) {
        expect(await exchange(c, sql), sql).toEqual(['E ERROR 22023', 'Z I']);
      }
      expect(await show(c, 'pgproxy.route')).toBe('auto');
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('SET LOCAL lasts until the transaction ends; outside one it only warns, as PostgreSQL does', async () => {
    const c = await connectProxy();
    const direct = await connectPrimary();
    try {
      expect(await exchange(c, 'SET LOCAL pgproxy.route = primary')).toEqual(await exchange(direct, `SET LOCAL work_mem = '2MB'`));
      expect(await show(c, 'pgproxy.route')).toBe('auto');
      expect(await exchange(c, 'BEGIN')).toEqual(['C BEGIN', 'Z T']);
      expect(await exchange(c, 'SET LOCAL pgproxy.route = primary')).toEqual(['C SET', 'Z T']);
      expect(await show(c, 'pgproxy.route')).toBe('primary');
      expect(await port(c)).toBe(primaryPort);
      expect(await exchange(c, 'COMMIT')).toEqual(['C COMMIT', 'Z I']);
      expect(await show(c, 'pgproxy.route')).toBe('auto');
      expect(standbyPorts).toContain(await port(c));
      // A session SET inside the transaction outlives it; SET LOCAL over it is gone at the end.
      expect(await exchange(c, 'BEGIN')).toEqual(['C BEGIN', 'Z T']);
      expect(await exchange(c, 'SET pgproxy.max_lag_ms = 700')).toEqual(['C SET', 'Z T']);
      expect(await exchange(c, 'SET LOCAL pgproxy.max_lag_ms = 50')).toEqual(['C SET', 'Z T']);
      expect(await show(c, 'pgproxy.max_lag_ms')).toBe('50');
      expect(await exchange(c, 'COMMIT')).toEqual(['C COMMIT', 'Z I']);
      expect(await show(c, 'pgproxy.max_lag_ms')).toBe('700');
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('a rolled back transaction undoes its SETs, a committed one keeps them (also when the transaction ran on a node)', async () => {
    const c = await connectProxy();
    try {
      for (const runsSomething of [false, true]) {
        expect(await exchange(c, 'BEGIN')).toEqual(['C BEGIN', 'Z T']);
        if (runsSomething) await port(c);
        expect(await exchange(c, 'SET pgproxy.route = primary')).toEqual(['C SET', 'Z T']);
        expect(await show(c, 'pgproxy.route')).toBe('primary');
        expect(await exchange(c, 'ROLLBACK')).toEqual(['C ROLLBACK', 'Z I']);
        expect(await show(c, 'pgproxy.route'), `rolled back (ran something: ${runsSomething})`).toBe('auto');
        expect(await exchange(c, 'BEGIN')).toEqual(['C BEGIN', 'Z T']);
        if (runsSomething) await port(c);
        expect(await exchange(c, 'SET pgproxy.route = standby')).toEqual(['C SET', 'Z T']);
        expect(await exchange(c, 'COMMIT')).toEqual(['C COMMIT', 'Z I']);
        expect(await show(c, 'pgproxy.route'), `committed (ran something: ${runsSomething})`).toBe('standby');
        expect(await exchange(c, 'RESET pgproxy.route')).toEqual(['C RESET', 'Z I']);
      }
      // A transaction that fails and is ended with COMMIT rolls back (PostgreSQL answers ROLLBACK).
      expect(await exchange(c, 'BEGIN')).toEqual(['C BEGIN', 'Z T']);
      expect(await exchange(c, 'SET pgproxy.explain = on')).toEqual(['C SET', 'Z T']);
      expect(await exchange(c, 'SELECT 1/0')).toEqual(['N NOTICE 00000', 'E ERROR 22012', 'Z E']);
      // Still explained (the COMMIT is routed inside the transaction), then undone with it.
      expect(await exchange(c, 'COMMIT')).toEqual(['N NOTICE 00000', 'C ROLLBACK', 'Z I']);
      expect(await show(c, 'pgproxy.explain')).toBe('off');
    } finally {
      await c.end();
    }
  });

  it('RESET, RESET ALL and DISCARD ALL go back to the defaults, which -c pgproxy.x in the startup options sets', async () => {
    const c = await connectProxy({ options: '-c pgproxy.route=primary -c pgproxy.max_lag_ms=900' });
    try {
      expect(await show(c, 'pgproxy.route')).toBe('primary');
      expect(await show(c, 'pgproxy.max_lag_ms')).toBe('900');
      const setAll = async (): Promise<void> => {
        for (const sql of ['SET pgproxy.route = standby', 'SET pgproxy.max_lag_ms = 5', `SET pgproxy.min_lsn = '0/10'`, 'SET pgproxy.explain = on']) expect(await exchange(c, sql)).toEqual(['C SET', 'Z I']);
      };
      const defaults = async (what: string): Promise<void> => {
        expect(await show(c, 'pgproxy.route'), what).toBe('primary');
        expect(await show(c, 'pgproxy.max_lag_ms'), what).toBe('900');
        expect(await show(c, 'pgproxy.min_lsn'), what).toBe('');
        expect(await show(c, 'pgproxy.explain'), what).toBe('off');
      };
      await setAll();
      for (const name of ['route', 'max_lag_ms', 'min_lsn', 'explain']) expect(await exchange(c, `RESET pgproxy.${name}`)).toEqual(['C RESET', 'Z I']);
      await defaults('RESET of each');
      await setAll();
      expect(lines(await c.query('RESET ALL')).filter((l) => !l.startsWith('N'))).toEqual(['C RESET', 'Z I']);
      await defaults('RESET ALL');
      await setAll();
      expect(lines(await c.query('DISCARD ALL')).filter((l) => !l.startsWith('N'))).toEqual(['C DISCARD ALL', 'Z I']);
      await defaults('DISCARD ALL');
      // The startup default is honoured (reads on the primary) and never reached a backend.
      const msgs = await c.query(`SELECT current_setting('pgproxy.route', true), inet_server_port()`);
      expect(dataRow(msgs.find((m) => m.type === 'D')!.body)).toEqual([null, String(primaryPort)]);
    } finally {
      await c.end();
    }
  });

  it('inside a failed transaction: 25P02 for SET and SHOW of pgproxy.*, until ROLLBACK', async () => {
    const c = await connectProxy();
    const direct = await connectPrimary();
    try {
      for (const client of [c, direct]) {
        expect(await exchange(client, 'BEGIN')).toEqual(['C BEGIN', 'Z T']);
        expect(await exchange(client, 'SELECT 1/0')).toEqual(['E ERROR 22012', 'Z E']);
      }
      // What PostgreSQL answers for its own settings in a failed transaction, pgproxy answers for pgproxy.*.
      expect(await exchange(c, 'SET pgproxy.route = primary')).toEqual(await exchange(direct, `SET work_mem = '2MB'`));
      expect(await exchange(c, 'SHOW pgproxy.route')).toEqual(await exchange(direct, 'SHOW work_mem'));
      expect(await exchange(c, 'RESET pgproxy.route')).toEqual(['E ERROR 25P02', 'Z E']);
      for (const client of [c, direct]) expect(await exchange(client, 'ROLLBACK')).toEqual(['C ROLLBACK', 'Z I']);
      expect(await show(c, 'pgproxy.route')).toBe('auto');
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('an error of a pgproxy.* statement inside a transaction fails the transaction, as any error there does', async () => {
    const c = await connectProxy();
    try {
      for (const runsSomething of [false, true]) {
        expect(await exchange(c, 'BEGIN')).toEqual(['C BEGIN', 'Z T']);
        if (runsSomething) await port(c);
        expect(await exchange(c, 'SET pgproxy.nope = 1')).toEqual(['E ERROR 42704', 'Z E']);
        expect(await exchange(c, 'SELECT 1'), `ran something: ${runsSomething}`).toEqual(['E ERROR 25P02', 'Z E']);
        expect(await exchange(c, 'ROLLBACK')).toEqual(['C ROLLBACK', 'Z I']);
      }
    } finally {
      await c.end();
    }
  });
});

describe('startup options and the route override', () => {
  it('-c pgproxy.route=primary in the startup options is honoured and never sent to a backend (node-postgres)', async () => {
    const c = proxyClient(app.proxy, info, info.users.app, { options: '-c pgproxy.route=primary' });
    await c.connect();
    try {
      expect((await c.query('SHOW pgproxy.route')).rows).toEqual([{ 'pgproxy.route': 'primary' }]);
      const r = await c.query<{ v: string | null; p: number; opts: string | null }>(
        `SELECT current_setting('pgproxy.route', true) AS v, inet_server_port() AS p, (SELECT current_setting('application_name')) AS opts`,
      );
      expect(r.rows[0]!.v).toBeNull();
      expect(r.rows[0]!.p).toBe(primaryPort);
    } finally {
      await c.end();
    }
  });

  it('a bad pgproxy.* value in the startup options fails the login with its error', async () => {
    await expect(connectProxy({ options: '-c pgproxy.route=sideways' })).rejects.toThrow(/"S":"FATAL".*"C":"22023"/);
    await expect(connectProxy({ options: '-c pgproxy.nope=1' })).rejects.toThrow(/"S":"FATAL".*"C":"42704"/);
  });

  it('route = standby refuses a write (25006) and keeps reads on standbys; the route=standby hint does the same for one statement', async () => {
    await withProxyClient(app.proxy, info, async (c) => {
      await c.query('SET pgproxy.route = standby');
      for (let i = 0; i < 5; i++) expect(standbyPorts).toContain((await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p);
      await expect(c.query(`INSERT INTO ${T} VALUES (200, 'refused')`)).rejects.toMatchObject({ code: '25006' });
      await expect(c.query(`SELECT * FROM ${T} FOR UPDATE`)).rejects.toMatchObject({ code: '25006' });
      await c.query('SET pgproxy.route = auto');
      await expect(c.query(`/* pgproxy: route=standby */ INSERT INTO ${T} VALUES (201, 'refused')`)).rejects.toMatchObject({ code: '25006' });
      expect(standbyPorts).toContain((await c.query<{ p: number }>('/* pgproxy: route=standby */ SELECT inet_server_port() AS p')).rows[0]!.p);
      await c.query(`INSERT INTO ${T} VALUES (202, 'accepted')`);
    });
    const direct = await connectNode(info, 0);
    try {
      expect((await direct.query<{ id: number }>(`SELECT id FROM ${T} WHERE id BETWEEN 200 AND 299 ORDER BY id`)).rows.map((r) => r.id)).toEqual([202]);
    } finally {
      await direct.end();
    }
  });

  it('route = primary and the route=primary hint send reads to the primary; route = auto brings them back', async () => {
    await withProxyClient(app.proxy, info, async (c) => {
      const where = async (sql = 'SELECT inet_server_port() AS p'): Promise<number> => (await c.query<{ p: number }>(sql)).rows[0]!.p;
      expect(standbyPorts).toContain(await where());
      expect(await where('/* pgproxy: route=primary */ SELECT inet_server_port() AS p')).toBe(primaryPort);
      expect(await where('/*NO LOAD BALANCE*/ SELECT inet_server_port() AS p')).toBe(primaryPort);
      expect(standbyPorts).toContain(await where());
      await c.query('SET pgproxy.route = primary');
      for (let i = 0; i < 3; i++) expect(await where()).toBe(primaryPort);
      await c.query('SET pgproxy.route = auto');
      expect(standbyPorts).toContain(await where());
    });
  });
});
