// The catalog cache against the real primary of the shared cluster (what PostgreSQL says is volatile or
// unlogged is tested against PostgreSQL), plus the cache's own bookkeeping with a fake source.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot, CatalogCache, type CatalogSource } from '../../src/router/catalog.js';
import { pgCatalogSource } from '../../src/pool/catalog-source.js';
import { connectNode, sharedCluster } from './helpers/cluster.js';

const info = sharedCluster();
const su = info.users.superuser;
const primary = info.nodes[0]!;
const schema = `rt_cat_${process.pid}`;
const source = pgCatalogSource(() => ({ host: primary.host, port: primary.port, user: su.name, password: su.password }), 10_000);
let admin: pg.Client;

beforeAll(async () => {
  admin = await connectNode(info, 0, su);
  await admin.query(`
    CREATE SCHEMA ${schema};
    CREATE FUNCTION ${schema}.vol_fn() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';
    CREATE FUNCTION ${schema}.imm_fn(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
    CREATE FUNCTION ${schema}.stable_fn() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1';
    -- Overloads: one volatile overload makes the name volatile.
    CREATE FUNCTION ${schema}.mixed_fn(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
    CREATE FUNCTION ${schema}.mixed_fn(text) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';
    CREATE FUNCTION ${schema}."CaseFn"() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';
    CREATE UNLOGGED TABLE ${schema}.ul (id int);
    CREATE TABLE ${schema}.logged (id int);
    CREATE TABLE ${schema}.parted (id int) PARTITION BY RANGE (id);
    CREATE TABLE ${schema}.parted_logged PARTITION OF ${schema}.parted FOR VALUES FROM (0) TO (10);
    CREATE UNLOGGED TABLE ${schema}.parted_ul PARTITION OF ${schema}.parted FOR VALUES FROM (10) TO (20);
    CREATE VIEW ${schema}.ul_view AS SELECT id FROM ${schema}.ul;
    CREATE VIEW ${schema}.ul_view2 AS SELECT id FROM ${schema}.ul_view;
    CREATE VIEW ${schema}.logged_view AS SELECT id FROM ${schema}.logged;
    CREATE MATERIALIZED VIEW ${schema}.ul_mat AS SELECT id FROM ${schema}.ul;
    CREATE UNLOGGED SEQUENCE ${schema}.ul_seq;
  `);
});

afterAll(async () => {
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await admin?.end();
});

describe('CatalogCache on the real primary', () => {
  it('knows which built-in and user functions are volatile, any overload counting', async () => {
    const cache = new CatalogCache(source);
    expect(cache.get(info.database)).toBeUndefined();
    const snap = await cache.load(info.database);
    expect(cache.get(info.database)).toBe(snap);
    const vol = (n: string) => cache.isVolatile(snap, n);
    for (const n of ['nextval', 'setval', 'random', 'clock_timestamp', 'pg_catalog.random', 'timeofday', 'pg_advisory_lock']) expect(vol(n), n).toBe(true);
    // now() is STABLE (fixed within a transaction); lower() is IMMUTABLE: both known, neither volatile.
    // txid_current() and pg_current_wal_lsn() are STABLE too, yet refuse to run on a standby: volatility alone
    // does not catch them, which is why router/functions.ts keeps its built-in never-on-standby list.
    for (const n of ['now', 'pg_catalog.now', 'lower', 'current_setting', 'length', 'txid_current', 'pg_current_xact_id']) {
      expect(vol(n), n).toBe(false);
      expect(cache.isKnownFunction(snap, n), n).toBe(true);
    }
    expect(vol(`${schema}.vol_fn`)).toBe(true);
    expect(vol('vol_fn')).toBe(true);
    expect(vol(`${schema}.imm_fn`)).toBe(false);
    expect(vol(`${schema}.stable_fn`)).toBe(false);
    expect(vol(`${schema}.mixed_fn`)).toBe(true);
    // Quoted "CaseFn" and unquoted casefn share one (conservative) answer.
    expect(vol(`${schema}.CaseFn`)).toBe(true);
    expect(vol('casefn')).toBe(true);
    expect(cache.isKnownFunction(snap, `${schema}.imm_fn`)).toBe(true);
    // Unknown names: not volatile, and told apart from stable ones by isKnownFunction.
    expect(vol('no_such_function_anywhere')).toBe(false);
    expect(cache.isKnownFunction(snap, 'no_such_function_anywhere')).toBe(false);
    // The wrong schema is not the right one.
    expect(vol('pg_catalog.vol_fn')).toBe(false);
    expect(snap.volatileFunctions.has('pg_catalog.nextval')).toBe(true);
    expect(snap.knownFunctions.has(`${schema}.stable_fn`)).toBe(true);
  });

  it('knows unlogged tables, sequences, and the partition parents and views that read them', async () => {
    const cache = new CatalogCache(source);
    const snap = await cache.load(info.database);
    const ul = (n: string) => cache.isUnlogged(snap, n);
    for (const n of ['ul', `${schema}.ul`, `${schema}.UL`, `${schema}.parted_ul`, `${schema}.parted`, `${schema}.ul_view`, `${schema}.ul_view2`, `${schema}.ul_seq`]) {
      expect(ul(n), n).toBe(true);
    }
    for (const n of [`${schema}.logged`, `${schema}.parted_logged`, `${schema}.logged_view`, `${schema}.ul_mat`, 'pg_class', 'pg_catalog.pg_class', 'no_such_table']) {
      expect(ul(n), n).toBe(false);
    }
  });

  it('after invalidate() the old snapshot is served while a reload runs, and the reload knows new functions', async () => {
    const cache = new CatalogCache(source);
    const before = await cache.load(info.database);
    await admin.query(`CREATE FUNCTION ${schema}.late_fn() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1'`);
    expect(cache.isKnownFunction(before, `${schema}.late_fn`)).toBe(false);
    cache.invalidate(info.database);
    // Still the old one, synchronously.
    expect(cache.get(info.database)).toBe(before);
    // load() joins the reload under way.
    const after = await cache.load(info.database);
    expect(after).not.toBe(before);
    expect(cache.get(info.database)).toBe(after);
    expect(cache.isVolatile(after, `${schema}.late_fn`)).toBe(true);
    expect(cache.isVolatile(after, 'late_fn')).toBe(true);
  });

  it('a database that does not exist rejects, and leaves nothing cached', async () => {
    const cache = new CatalogCache(source);
    await expect(cache.load('rt_no_such_database')).rejects.toMatchObject({ code: '3D000' });
    expect(cache.get('rt_no_such_database')).toBeUndefined();
  });

  it('no target node rejects; an unreachable node rejects within the timeout', async () => {
    await expect(new CatalogCache(pgCatalogSource(() => null)).load(info.database)).rejects.toThrow(/no node/);
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const dead = pgCatalogSource(() => ({ host: '127.0.0.1', port: 1, user: su.name, password: su.password }), 2_000);
    const t0 = Date.now();
    await expect(new CatalogCache(dead).load(info.database)).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});

describe('CatalogCache bookkeeping (fake source)', () => {
  function fakeSource(): CatalogSource & { calls: number; release: () => void; fail: Error | null; fns: string[] } {
    const s = {
      calls: 0,
      fail: null as Error | null,
      fns: ['f1'],
      pending: [] as (() => void)[],
      release() {
        for (const r of s.pending.splice(0)) r();
      },
      query(_db: string, _sql: string) {
        s.calls++;
        const fns = [...s.fns];
        const fail = s.fail;
        return new Promise<{ rows: Record<string, unknown>[] }>((resolve, reject) => {
          s.pending.push(() => (fail ? reject(fail) : resolve({ rows: fns.map((name) => ({ k: 'f', schema: 'public', name, volatile: true })) })));
        });
      },
    };
    return s;
  }
  const tick = () => new Promise((r) => setTimeout(r, 0));

  it('dedupes concurrent loads and serves a current snapshot without reloading', async () => {
    const src = fakeSource();
    const cache = new CatalogCache(src);
    const a = cache.load('db');
    const b = cache.load('db');
    expect(a).toBe(b);
    src.release();
    const snap = await a;
    expect(src.calls).toBe(1);
    expect(await cache.load('db')).toBe(snap);
    expect(src.calls).toBe(1);
  });

  it('reloads in the background once maxAgeMs has passed, serving the old snapshot meanwhile', async () => {
    const src = fakeSource();
    let now = 1_000;
    const cache = new CatalogCache(src, { maxAgeMs: 100, now: () => now });
    const p = cache.load('db');
    src.release();
    const first = await p;
    now += 50;
    expect(cache.get('db')).toBe(first);
    expect(src.calls).toBe(1);
    now += 60;
    src.fns = ['f1', 'f2'];
    expect(cache.get('db')).toBe(first); // starts the reload, still answers at once
    expect(cache.get('db')).toBe(first);
    expect(src.calls).toBe(2);
    src.release();
    await tick();
    const second = cache.get('db')!;
    expect(second).not.toBe(first);
    expect(second.isVolatile('public.f2')).toBe(true);
  });

  it('invalidate() during a load reloads again once it lands', async () => {
    const src = fakeSource();
    const cache = new CatalogCache(src);
    const p = cache.load('db');
    cache.invalidate('db');
    src.fns = ['f1', 'g'];
    src.release(); // the first load lands with the old list; a second load starts
    await p;
    expect(src.calls).toBe(2);
    src.release();
    const snap = await cache.load('db');
    expect(snap.isVolatile('g')).toBe(true);
    expect(src.calls).toBe(2);
  });

  it('a failed background reload keeps the old snapshot, reports the error and retries after retryMs', async () => {
    const src = fakeSource();
    let now = 0;
    const errors: string[] = [];
    const cache = new CatalogCache(src, { maxAgeMs: 10, retryMs: 1_000, now: () => now, onError: (db, err) => errors.push(`${db}: ${err.message}`) });
    const p = cache.load('db');
    src.release();
    const first = await p;
    now = 20;
    src.fail = new Error('boom');
    cache.get('db');
    src.release();
    await tick();
    expect(errors).toEqual(['db: boom']);
    expect(cache.get('db')).toBe(first);
    expect(src.calls).toBe(2); // within retryMs: no new attempt
    now = 1_100;
    src.fail = null;
    cache.get('db');
    expect(src.calls).toBe(3);
    src.release();
    await tick();
    expect(cache.get('db')).not.toBe(first);
  });

  it('buildSnapshot: bare and qualified names, lowercased; three-part names keep schema.name', () => {
    const snap = buildSnapshot(
      [
        { k: 'f', schema: 'S1', name: 'Fn', volatile: 't' },
        { k: 'f', schema: 's2', name: 'stable', volatile: false },
        { k: 'r', schema: 'public', name: 'U', volatile: null },
      ],
      5,
    );
    expect([...snap.volatileFunctions].sort()).toEqual(['fn', 's1.fn']);
    expect([...snap.knownFunctions].sort()).toEqual(['fn', 's1.fn', 's2.stable', 'stable']);
    expect(snap.isVolatile('app.S1.FN')).toBe(true);
    expect(snap.isUnlogged('public.u')).toBe(true);
    expect(snap.isUnlogged('u')).toBe(true);
    expect(snap.isUnlogged('other.u')).toBe(false);
    expect(snap.loadedAt).toBe(5);
  });
});
