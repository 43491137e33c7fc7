// Routing from the primary's catalog: with both function lists empty, calls of VOLATILE functions (and of
// functions the catalog does not know yet) go to the primary, STABLE and IMMUTABLE ones may run on a standby;
// reads of unlogged tables go to the primary; read_only_functions alone lets only listed functions balance.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { eventually, startTestProxy, withProxyClient } from './helpers/proxy.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
  await withProxyClient(proxy, info, async (c) => {
    await c.query(`CREATE OR REPLACE FUNCTION cr_volatile() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1'`);
    await c.query(`CREATE OR REPLACE FUNCTION cr_stable() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1'`);
    await c.query(`CREATE OR REPLACE FUNCTION cr_immutable() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1'`);
    await c.query('CREATE TABLE IF NOT EXISTS cr_logged (id int)');
    await c.query('CREATE UNLOGGED TABLE IF NOT EXISTS cr_unlogged (id int)');
  });
  await (await sharedClusterHandle()).waitForReplay();
  // The DDL above invalidated the proxy's catalog facts; wait for the reload that knows all of it (it runs in
  // the background, and the tests below route on what it says).
  const catalog = proxy.context.catalog;
  await eventually(() => {
    const snap = catalog.get(info.database);
    return snap !== undefined && catalog.isUnlogged(snap, 'cr_unlogged') && ['cr_volatile', 'cr_stable', 'cr_immutable'].every((f) => catalog.isKnownFunction(snap, f));
  }, 10_000, 20, 'catalog facts with the new functions and table');
});

afterAll(async () => {
  await proxy?.close();
});

const where = async (c: pg.Client, expr: string): Promise<'primary' | 'standby'> =>
  (await c.query<{ p: number }>(`SELECT inet_server_port() AS p, ${expr}`)).rows[0]!.p === primaryPort ? 'primary' : 'standby';

describe('volatility from the catalog (both function lists empty)', () => {
  it('volatile built-ins and user functions go to the primary; stable and immutable ones are balanced', async () => {
    await withProxyClient(proxy, info, async (c) => {
      expect(await where(c, 'random()')).toBe('primary');
      expect(await where(c, 'clock_timestamp()')).toBe('primary');
      expect(await where(c, 'cr_volatile()')).toBe('primary');
      expect(await where(c, 'public.cr_volatile()')).toBe('primary');
      expect(await where(c, 'now(), upper(\'x\'), length(\'abc\')')).toBe('standby');
      expect(await where(c, 'cr_stable()')).toBe('standby');
      expect(await where(c, 'cr_immutable()')).toBe('standby');
      expect((await c.query<{ p: number }>('SELECT inet_server_port() AS p, count(*) FROM cr_logged')).rows[0]!.p).not.toBe(primaryPort);
    });
  });

  it('a function created after the catalog was read goes to the primary at once, and is balanced after the reload if it is stable', async () => {
    await withProxyClient(proxy, info, async (c) => {
      const name = `cr_new_${process.pid}`;
      await c.query(`CREATE FUNCTION ${name}() RETURNS int LANGUAGE sql STABLE AS 'SELECT 2'`);
      // Unknown to the cached snapshot (or just reloaded): never a standby that may not have it yet.
      expect(await where(c, `${name}()`)).toBe('primary');
      await (await sharedClusterHandle()).waitForReplay();
      await eventually(async () => (await where(c, `${name}()`)) === 'standby', 10_000);
    });
  });
});

describe('unlogged tables', () => {
  it('reads of an unlogged table go to the primary (a standby cannot read it)', async () => {
    await withProxyClient(proxy, info, async (c) => {
      const r = await c.query<{ p: number }>('SELECT inet_server_port() AS p, count(*) FROM cr_unlogged');
      expect(r.rows[0]!.p).toBe(primaryPort);
    });
  });
});

describe('read_only_functions alone', () => {
  it('only listed functions are balanced (pgpool read_only_function_list)', async () => {
    const p2 = await startTestProxy(info, { routing: { read_only_functions: ['inet_server_port', 'cr_stable'] } });
    try {
      await withProxyClient(p2, info, async (c) => {
        expect(await where(c, 'cr_stable()')).toBe('standby');
        expect(await where(c, 'cr_immutable()')).toBe('primary');
      });
    } finally {
      await p2.close();
    }
  });
});
