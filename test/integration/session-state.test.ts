// Session state and pooled backend connections, through the real proxy and the shared cluster (issue "Session core"):
// 1. what one client changes (startup parameters, options, SET, set_config) must be invisible to the clients that
//    later get the same pooled backend connection, on the read path (standbys) and on the primary, in both pool modes;
// 2. whether a statement discards the prepared statements is a fact about the statement, not about its text: a SET
//    whose value reads 'discard all' keeps them, while real DISCARD ALL and RESET ALL behave as on PostgreSQL itself.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { connectNode, sharedCluster } from './helpers/cluster.js';
import { seenError, withDeadline } from './helpers/load.js';
import { proxyClient, startTestProxy } from './helpers/proxy.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
const standbyPorts = [info.nodes[1]!.port, info.nodes[2]!.port];
const WRITES_TABLE = 'public.ss_writes';
type PoolMode = 'session' | 'transaction';
const POOL_MODES: readonly PoolMode[] = ['session', 'transaction'];

const proxies: RunningProxy[] = [];
/** A fresh proxy (empty pools), reads on the standbys (weights 0/1/1), at most 2 backend connections per node. */
async function freshProxy(mode: PoolMode): Promise<RunningProxy> {
  const p = await startTestProxy(info, { pool: { mode, max_per_node: 2 } });
  proxies.push(p);
  return p;
}
async function closeProxy(p: RunningProxy): Promise<void> {
  const i = proxies.indexOf(p);
  if (i >= 0) proxies.splice(i, 1);
  await withDeadline(p.close(), 10_000, 'proxy close');
}

interface Settings {
  statement_timeout: string;
  application_name: string;
  search_path: string;
  work_mem: string;
  datestyle: string;
  timezone: string;
}
interface Observed extends Settings {
  pid: number;
  port: number;
}

/** Every setting a leaky client changes, plus the backend that answered. */
const SETTINGS_COLUMNS = [
  `current_setting('statement_timeout') AS statement_timeout`,
  `current_setting('application_name') AS application_name`,
  `current_setting('search_path') AS search_path`,
  `current_setting('work_mem') AS work_mem`,
  `current_setting('DateStyle') AS datestyle`,
  `current_setting('TimeZone') AS timezone`,
  `pg_backend_pid() AS pid`,
  `inet_server_port() AS port`,
].join(', ');

/** Settings a fresh backend connection has from the server, per node port. */
const defaults = new Map<number, Settings>();

beforeAll(async () => {
  const primary = await connectNode(info, 0);
  try {
    await primary.query(`CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (v text)`);
  } finally {
    await primary.end();
  }
  for (let i = 0; i < info.nodes.length; i++) {
    const c = await connectNode(info, i);
    try {
      const { pid: _pid, port, ...settings } = (await c.query<Observed>(`SELECT ${SETTINGS_COLUMNS}`)).rows[0]!;
      defaults.set(port, settings);
    } finally {
      await c.end();
    }
  }
});

afterAll(async () => {
  for (const p of proxies.splice(0)) await withDeadline(p.close(), 10_000, 'proxy close').catch(() => undefined);
});

// ------------------------------------------------------------------------------------------------ defect 1

/** One way for a client to change its session state, and what it must then see itself. */
interface StateChange {
  name: string;
  connect: Partial<pg.ClientConfig>;
  /** SQL run by the leaky client before it reads its settings (inside the transaction on the 'transaction' path). */
  sql: string[];
  expectOwn: Partial<Settings>;
}

const CHANGES: readonly StateChange[] = [
  {
    name: 'startup parameters statement_timeout and application_name',
    connect: { statement_timeout: 123, application_name: 'leaky' },
    sql: [],
    expectOwn: { statement_timeout: '123ms', application_name: 'leaky' },
  },
  {
    name: 'options -c search_path -c work_mem',
    connect: { options: '-c search_path=pg_catalog -c work_mem=5MB' },
    sql: [],
    expectOwn: { search_path: 'pg_catalog', work_mem: '5MB' },
  },
  {
    name: 'options -c DateStyle -c TimeZone',
    connect: { options: '-c DateStyle=SQL,DMY -c TimeZone=Pacific/Chatham' },
    sql: [],
    expectOwn: { datestyle: 'SQL, DMY', timezone: 'Pacific/Chatham' },
  },
  {
    name: 'SQL SET work_mem, search_path, application_name, statement_timeout',
    connect: {},
    sql: [`SET work_mem = '6MB'`, 'SET search_path TO pg_catalog, public', `SET application_name = 'leaky-sql'`, 'SET statement_timeout = 4567'],
    expectOwn: { work_mem: '6MB', search_path: 'pg_catalog, public', application_name: 'leaky-sql', statement_timeout: '4567ms' },
  },
  {
    name: `SELECT set_config('work_mem', '7MB', false)`,
    connect: {},
    sql: [`SELECT set_config('work_mem', '7MB', false)`],
    expectOwn: { work_mem: '7MB' },
  },
];

/**
 * Where the leaky client's session runs: 'read' only reads (standbys), 'transaction' reads inside an explicit
 * transaction (the primary), 'write' reads through an INSERT ... RETURNING (the primary).
 */
type LeakPath = 'read' | 'transaction' | 'write';
const PATHS: readonly LeakPath[] = ['read', 'transaction', 'write'];

const LEAKY_CLIENTS = 6;
const PLAIN_CLIENTS = 12;

/** The leaky client's session: its change, then one read of its settings on the node `path` leads to. */
async function leakySession(proxy: RunningProxy, change: StateChange, path: LeakPath): Promise<Observed> {
  const c = proxyClient(proxy, info, info.users.app, change.connect);
  await c.connect();
  try {
    if (path === 'transaction') await c.query('BEGIN');
    for (const sql of change.sql) await c.query(sql);
    let seen: Observed;
    if (path === 'write') seen = (await c.query<Observed>(`INSERT INTO ${WRITES_TABLE} (v) VALUES ('leaky') RETURNING ${SETTINGS_COLUMNS}`)).rows[0]!;
    else seen = (await c.query<Observed>(`SELECT ${SETTINGS_COLUMNS}`)).rows[0]!;
    if (path === 'transaction') await c.query('COMMIT');
    return seen;
  } finally {
    await c.end();
  }
}

/** A plain client's session: its settings on the read path (a standby), then inside a transaction (the primary). */
async function plainSession(proxy: RunningProxy): Promise<{ standby: Observed; primary: Observed }> {
  const c = proxyClient(proxy, info);
  await c.connect();
  try {
    const standby = (await c.query<Observed>(`SELECT ${SETTINGS_COLUMNS}`)).rows[0]!;
    await c.query('BEGIN');
    const primary = (await c.query<Observed>(`SELECT ${SETTINGS_COLUMNS}`)).rows[0]!;
    await c.query('COMMIT');
    return { standby, primary };
  } finally {
    await c.end();
  }
}

/** The settings of `o` that differ from a fresh connection to the same node. */
function differences(o: Observed): Partial<Settings> {
  const fresh = defaults.get(o.port);
  if (!fresh) throw new Error(`no defaults for port ${o.port}`);
  const out: Partial<Settings> = {};
  for (const k of Object.keys(fresh) as (keyof Settings)[]) if (o[k] !== fresh[k]) out[k] = o[k];
  return out;
}

const backendKey = (o: Observed): string => `${o.port}/${o.pid}`;

describe('defect 1: a pooled backend connection comes back as a new one would be', () => {
  for (const mode of POOL_MODES) {
    for (const path of PATHS) {
      for (const change of CHANGES) {
        it(`pool.mode ${mode}, ${path} path: ${change.name}`, async () => {
          // The change is visible at all: each value differs from the server's default on every node.
          for (const [k, v] of Object.entries(change.expectOwn)) for (const d of defaults.values()) expect(d[k as keyof Settings]).not.toBe(v);
          const proxy = await freshProxy(mode);
          const leakyBackends = new Set<string>();
          for (let i = 0; i < LEAKY_CLIENTS; i++) {
            const own = await leakySession(proxy, change, path);
            // The setting works for the client that made it, on the node the path leads to.
            expect(own, `leaky client ${i}`).toMatchObject(change.expectOwn);
            if (path === 'read') expect(standbyPorts).toContain(own.port);
            else expect(own.port).toBe(primaryPort);
            leakyBackends.add(backendKey(own));
          }

          const leaks: { client: number; node: 'standby' | 'primary'; backend: string; leaked: Partial<Settings> }[] = [];
          const reused = new Set<string>();
          for (let i = 0; i < PLAIN_CLIENTS; i++) {
            const seen = await plainSession(proxy);
            expect(standbyPorts).toContain(seen.standby.port);
            expect(seen.primary.port).toBe(primaryPort);
            for (const node of ['standby', 'primary'] as const) {
              const o = seen[node];
              if (leakyBackends.has(backendKey(o))) reused.add(backendKey(o));
              const leaked = differences(o);
              if (Object.keys(leaked).length > 0) leaks.push({ client: i, node, backend: backendKey(o), leaked });
            }
          }
          await closeProxy(proxy);

          // The plain clients did get backend connections the leaky clients had used (else this proves nothing).
          expect(reused.size, `backends of leaky clients: ${[...leakyBackends].join(', ')}`).toBeGreaterThan(0);
          expect(leaks).toEqual([]);
        });
      }
    }
  }
});

// ------------------------------------------------------------------------------------------------ defect 2

const S1 = 'SELECT $1::int + 1 AS v, inet_server_port() AS port';

/** What one step of a sequence gave: its rows or command tag, or the SQLSTATE it failed with. */
type Step = { ok: true; v?: number; tag?: string } | { ok: false; code: string | undefined };

/** Runs a step, recording the port of the backend that ran s1 (for the proxy: standby first, then primary). */
async function step(p: Promise<pg.QueryResult>, ports: number[]): Promise<Step> {
  try {
    const r = await withDeadline(p, 15_000, 'statement');
    if (r.rows.length > 0 && 'v' in r.rows[0]) {
      ports.push(Number(r.rows[0].port));
      return { ok: true, v: Number(r.rows[0].v) };
    }
    return { ok: true, tag: r.command };
  } catch (err) {
    return { ok: false, code: seenError(err).code };
  }
}

/**
 * Named prepared statement s1 run once, then `between`, then s1 run again by name (node-postgres sends only Bind
 * and Execute the second time): `inTransaction` runs it inside BEGIN after an INSERT (on the primary).
 */
async function preparedSequence(c: pg.Client, between: string, inTransaction: boolean): Promise<{ steps: Step[]; ports: number[] }> {
  const ports: number[] = [];
  const steps: Step[] = [];
  steps.push(await step(c.query({ name: 's1', text: S1, values: [1] }), ports));
  steps.push(await step(c.query(between), ports));
  if (inTransaction) {
    steps.push(await step(c.query('BEGIN'), ports));
    steps.push(await step(c.query(`INSERT INTO ${WRITES_TABLE} (v) VALUES ('prepared')`), ports));
  }
  steps.push(await step(c.query({ name: 's1', text: S1, values: [2] }), ports));
  if (inTransaction) steps.push(await step(c.query('COMMIT'), ports));
  return { steps, ports };
}

async function directSequence(between: string, inTransaction: boolean): Promise<Step[]> {
  const c = await connectNode(info, 0);
  try {
    return (await preparedSequence(c, between, inTransaction)).steps;
  } finally {
    await c.end();
  }
}

async function proxySequence(mode: PoolMode, between: string, inTransaction: boolean): Promise<{ steps: Step[]; ports: number[] }> {
  const proxy = await freshProxy(mode);
  try {
    const c = proxyClient(proxy, info);
    await c.connect();
    try {
      return await preparedSequence(c, between, inTransaction);
    } finally {
      await c.end();
    }
  } finally {
    await closeProxy(proxy);
  }
}

/** The steps of a sequence in which s1 runs both times; `tag` is the command tag of the statement in between. */
const succeeds = (inTransaction: boolean, tag: string): Step[] =>
  inTransaction
    ? [{ ok: true, v: 2 }, { ok: true, tag }, { ok: true, tag: 'BEGIN' }, { ok: true, tag: 'INSERT' }, { ok: true, v: 3 }, { ok: true, tag: 'COMMIT' }]
    : [{ ok: true, v: 2 }, { ok: true, tag }, { ok: true, v: 3 }];

describe('defect 2: only a real DISCARD ALL drops the prepared statements', () => {
  const PLAIN = { sql: `SET application_name = 'plain'`, tag: 'SET' };
  /** Session settings whose text contains 'discard all' but that discard nothing. */
  const LOOKALIKES = [
    { sql: `SET application_name = 'discard all'`, tag: 'SET' },
    { sql: `SELECT set_config('application_name', 'discard all', false)`, tag: 'SELECT' },
  ];

  for (const mode of POOL_MODES) {
    for (const inTransaction of [true, false]) {
      const where = inTransaction ? 'then BEGIN, INSERT and s1 on the primary' : 'then s1 again on the read path';
      /** s1 ran first on a standby, and (when it ran again) inside the transaction on the primary. */
      const expectPorts = (ports: number[]): void => {
        expect(standbyPorts).toContain(ports[0]);
        if (inTransaction && ports.length > 1) expect(ports[1]).toBe(primaryPort);
      };

      it(`pool.mode ${mode}: control: ${PLAIN.sql}, ${where}: s1 still runs`, async () => {
        const got = await proxySequence(mode, PLAIN.sql, inTransaction);
        expect(got.steps).toEqual(succeeds(inTransaction, PLAIN.tag));
        expectPorts(got.ports);
        expect(got.steps).toEqual(await directSequence(PLAIN.sql, inTransaction));
      });

      for (const lookalike of LOOKALIKES) {
        it(`pool.mode ${mode}: ${lookalike.sql}, ${where}: s1 still runs, as after 'plain'`, async () => {
          const plain = await proxySequence(mode, PLAIN.sql, inTransaction);
          const got = await proxySequence(mode, lookalike.sql, inTransaction);
          expect(got.steps).toEqual(succeeds(inTransaction, lookalike.tag));
          expectPorts(got.ports);
          // Exactly like the 'plain' case, step by step (apart from the tag of the statement in between).
          expect(got.steps.filter((_, i) => i !== 1)).toEqual(plain.steps.filter((_, i) => i !== 1));
          expect(got.steps).toEqual(await directSequence(lookalike.sql, inTransaction));
        });
      }

      it(`pool.mode ${mode}: a real DISCARD ALL, ${where}: the same result as PostgreSQL (26000)`, async () => {
        const direct = await directSequence('DISCARD ALL', inTransaction);
        // What PostgreSQL itself does: node-postgres sends only Bind for s1, and the server no longer has it.
        expect(direct.find((s) => !s.ok)).toEqual({ ok: false, code: '26000' });
        const got = await proxySequence(mode, 'DISCARD ALL', inTransaction);
        expect(got.steps).toEqual(direct);
        expectPorts(got.ports);
      });

      it(`pool.mode ${mode}: RESET ALL, ${where}: s1 still runs, as on PostgreSQL`, async () => {
        const direct = await directSequence('RESET ALL', inTransaction);
        expect(direct).toEqual(succeeds(inTransaction, 'RESET'));
        const got = await proxySequence(mode, 'RESET ALL', inTransaction);
        expect(got.steps).toEqual(direct);
        expectPorts(got.ports);
      });
    }
  }
});
