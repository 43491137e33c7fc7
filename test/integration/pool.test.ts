// Pools against the real shared cluster (issue 4): queueing and 53300 when full, the client limit, no leaked
// backend connections, transaction pooling with settings and prepared statements, idle timeouts, the per-user
// limit, fail_on_backend_error, and min_idle. Nothing here stops or promotes a node, so the shared cluster is fine.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/load.js';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { backendsOf, connectWatched, destroySocket, endAll, mapLimit, poolCounts, poolOf, recordTopology, seenError, tally, withDeadline, type SeenError, type WatchedClient } from './helpers/load.js';
import { eventually, healthChecks, proxyClient, settled, sleep, startTestProxy } from './helpers/proxy.js';

const info = sharedCluster();
const [n0, n1] = info.nodes;
/** Reads go to node1 only (weights 0/1/0): which pool a read uses is then known. */
const READS_ON_NODE1: ConfigInput['backends'] = info.nodes.map((n, i) => ({ name: n.name, host: n.host, port: n.port, weight: i === 1 ? 1 : 0 }));

const proxies: RunningProxy[] = [];
async function proxyWith(overrides: ConfigInput): Promise<RunningProxy> {
  const p = await startTestProxy(info, overrides);
  proxies.push(p);
  return p;
}
async function closeProxy(p: RunningProxy): Promise<void> {
  const i = proxies.indexOf(p);
  if (i >= 0) proxies.splice(i, 1);
  await withDeadline(p.close(), 10_000, 'proxy close');
}

afterAll(async () => {
  for (const p of proxies.splice(0)) await withDeadline(p.close(), 10_000, 'proxy close').catch(() => undefined);
});

/** `n` clients connected one after the other (so that only the first login of a fresh proxy learns the server's parameters). */
async function connectSequentially(proxy: RunningProxy, n: number): Promise<WatchedClient[]> {
  const out: WatchedClient[] = [];
  for (let i = 0; i < n; i++) out.push(await withDeadline(connectWatched(proxy, info), 15_000, `connect ${i}`));
  return out;
}

/** The error `p` rejects with, or null when it succeeds; bounded (a hang fails the test). */
async function outcome(p: Promise<unknown>, ms = 15_000, what = 'statement'): Promise<SeenError | null> {
  return withDeadline(p, ms, what).then(
    () => null,
    (e: unknown) => seenError(e),
  );
}

async function port(c: pg.Client): Promise<number> {
  return (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;
}

/** Resolves with the first 'error' event of `c` (an unsolicited ErrorResponse, e.g. a FATAL), or null after `ms`. */
function nextClientError(c: pg.Client, ms: number): Promise<SeenError | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    c.once('error', (err) => {
      clearTimeout(t);
      resolve(seenError(err));
    });
  });
}

function ended(c: pg.Client, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    c.once('end', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** The clock of node `i` (the test compares backend_start values with it). */
async function backendsTime(i: number): Promise<Date> {
  const n = info.nodes[i]!;
  const c = new pg.Client({ host: n.host, port: n.port, user: info.users.superuser.name, password: info.users.superuser.password, database: info.database });
  await c.connect();
  try {
    return (await c.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now;
  } finally {
    await c.end();
  }
}

async function primaryQuery<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ host: n0!.host, port: n0!.port, user: info.users.superuser.name, password: info.users.superuser.password, database: info.database });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

describe('(a) pool exhaustion in session mode', () => {
  const overrides: ConfigInput = { backends: READS_ON_NODE1, pool: { max_per_node: 2, acquire_timeout_ms: 1500 } };

  it('clients beyond max_per_node queue and are served in order as others finish', async () => {
    const proxy = await proxyWith(overrides);
    const clients = await connectSequentially(proxy, 5);
    try {
      const [h1, h2, ...waiting] = clients;
      for (const h of [h1!, h2!]) {
        await h.client.query('BEGIN READ ONLY; SELECT 1');
        expect(await port(h.client)).toBe(n1!.port);
      }
      const node1 = poolOf(proxy, 1, info.users.app.name)!;
      expect({ active: node1.activeCount, waiting: node1.waitingCount }).toEqual({ active: 2, waiting: 0 });
      // Queue in a known order (0, 1, 2): each waiter asks only once the one before it waits in the pool.
      const served: number[] = [];
      const failed: string[] = [];
      const waited: number[] = [];
      for (const [k, w] of waiting.entries()) {
        const started = Date.now();
        void withDeadline(w.client.query('BEGIN READ ONLY; SELECT 1'), 10_000, `waiter ${k} BEGIN`).then(
          () => {
            served.push(k);
            waited.push(Date.now() - started);
          },
          (e: unknown) => failed.push(`waiter ${k}: ${seenError(e).code ?? '-'} ${seenError(e).message}`),
        );
        await eventually(() => node1.waitingCount === k + 1, 10_000, 5, `waiter ${k} queued`);
      }
      expect({ served, failed }).toEqual({ served: [], failed: [] });
      // Each connection given back serves exactly the longest waiting client.
      const leaves = async (w: WatchedClient): Promise<void> => {
        await w.client.query('COMMIT');
        await w.client.end();
      };
      const nextServed = async (expected: number[]): Promise<void> => {
        await eventually(() => served.length >= expected.length || failed.length > 0, 10_000, 5, `waiter ${expected[expected.length - 1]} served`);
        expect({ served, failed }).toEqual({ served: expected, failed: [] });
        expect(node1.waitingCount).toBe(waiting.length - expected.length);
        expect(await port(waiting[expected[expected.length - 1]!]!.client)).toBe(n1!.port);
      };
      await leaves(h1!);
      await nextServed([0]);
      await leaves(h2!);
      await nextServed([0, 1]);
      await leaves(waiting[0]!);
      await nextServed([0, 1, 2]);
      for (const w of waiting.slice(1)) await leaves(w);
      for (const ms of waited) expect(ms).toBeLessThan(10_000);
      expect(clients.flatMap((w) => w.unsolicited)).toEqual([]);
    } finally {
      await endAll(clients.map((w) => w.client));
      await closeProxy(proxy);
    }
  });

  it('a client that finds no free connection within acquire_timeout_ms gets ERROR 53300 and stays usable; none hangs', async () => {
    const proxy = await proxyWith(overrides);
    const clients = await connectSequentially(proxy, 5);
    try {
      const [h1, h2, ...waiting] = clients;
      for (const h of [h1!, h2!]) {
        await h.client.query('BEGIN READ ONLY; SELECT 1');
        expect(await port(h.client)).toBe(n1!.port);
      }
      const results = await Promise.all(
        waiting.map(async (w) => {
          const started = Date.now();
          const err = await outcome(w.client.query('BEGIN READ ONLY; SELECT 1'), 10_000, 'BEGIN in a full pool');
          return { err, ms: Date.now() - started };
        }),
      );
      for (const r of results) {
        expect({ code: r.err?.code, severity: r.err?.severity }).toEqual({ code: '53300', severity: 'ERROR' });
        expect(r.ms).toBeGreaterThanOrEqual(1_000); // it did wait for a connection
        expect(r.ms).toBeLessThan(10_000);
      }
      // Usable afterwards: once the holders have left (their connections back in the pool), the same sessions run transactions.
      for (const h of [h1!, h2!]) {
        await h.client.query('COMMIT');
        await h.client.end();
      }
      await eventually(() => poolCounts(proxy, 1, info.users.app.name).active === 0, 10_000, 10, 'the holders\u2019 connections returned');
      // (Session pooling: each keeps its connection until it leaves, so they take turns.)
      for (const w of waiting) {
        await withDeadline(w.client.query('BEGIN READ ONLY; SELECT 1'), 10_000, 'BEGIN after 53300');
        expect(await port(w.client)).toBe(n1!.port);
        await w.client.query('COMMIT');
        await w.client.end();
      }
      expect(clients.flatMap((w) => w.unsolicited)).toEqual([]);
    } finally {
      await endAll(clients.map((w) => w.client));
      await closeProxy(proxy);
    }
  });
});

describe('(a) logins', () => {
  it('five clients logging in at once to a fresh proxy with max_per_node: 2 all get in, and idle clients hold no backend connection', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, pool: { max_per_node: 2, acquire_timeout_ms: 1500 } });
    const attempts = await Promise.all(
      Array.from({ length: 5 }, () =>
        withDeadline(connectWatched(proxy, info), 15_000, 'connect').then(
          (w) => ({ w, err: null }),
          (e: unknown) => ({ w: null, err: seenError(e) }),
        ),
      ),
    );
    try {
      expect(attempts.map((a) => a.err)).toEqual([null, null, null, null, null]);
      const leased = proxy.context.pools.all().map((p) => ({ node: p.node.name, active: p.activeCount }));
      expect(leased.filter((p) => p.active > 0), 'backend connections leased by clients that ran nothing').toEqual([]);
    } finally {
      await endAll(attempts.flatMap((a) => (a.w ? [a.w.client] : [])));
      await closeProxy(proxy);
    }
  });
});

describe('(b) listen.max_clients', () => {
  it('the client beyond max_clients gets FATAL 53300; a place freed is usable again; the proxy still closes', async () => {
    const proxy = await proxyWith({ listen: { max_clients: 3 } });
    const clients: pg.Client[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = proxyClient(proxy, info);
        c.on('error', () => undefined);
        await c.connect();
        clients.push(c);
      }
      const fourth = proxyClient(proxy, info);
      fourth.on('error', () => undefined);
      const err = await outcome(fourth.connect(), 10_000, 'connect of the 4th client');
      expect({ code: err?.code, severity: err?.severity }).toEqual({ code: '53300', severity: 'FATAL' });
      for (const c of clients) expect(await withDeadline(port(c), 10_000, 'read of an admitted client')).toBeGreaterThan(0);
      await withDeadline(clients.shift()!.end(), 10_000, 'end of an admitted client');
      await eventually(async () => {
        const c = proxyClient(proxy, info);
        c.on('error', () => undefined);
        const e = await outcome(c.connect(), 10_000, 'connect after a place was freed');
        if (e === null) clients.push(c);
        return e === null;
      }, 10_000);
    } finally {
      await endAll(clients);
      // Also: closing the proxy must not hang on the refused client's socket.
      await closeProxy(proxy);
    }
  });
});

describe('(c) no leaked backend connections', () => {
  it('after 1,000 clients (every 10th destroying its socket mid-query), each node has exactly the pool’s idle connections', async () => {
    // The app_scram user: its backends are this test's alone, so pg_stat_activity counts are exact.
    const user = info.users.scram;
    const nodes = info.nodes.map((_, i) => i);
    await eventually(async () => (await Promise.all(nodes.map((i) => backendsOf(info, i, user.name)))).every((n) => n === 0), 15_000);
    await primaryQuery('DROP TABLE IF EXISTS pool_leak_probe');
    await primaryQuery('CREATE TABLE pool_leak_probe (i int)');
    await primaryQuery(`GRANT ALL ON pool_leak_probe TO ${user.name}`);
    const proxy = await proxyWith({});
    try {
      const failures: string[] = [];
      await mapLimit(
        Array.from({ length: 1_000 }, (_, i) => i),
        50,
        async (i) => {
          const appName = `leak-${i}`;
          const c = proxyClient(proxy, info, user, { application_name: appName });
          c.on('error', () => undefined);
          try {
            await withDeadline(c.connect(), 15_000, `client ${i} connect`);
            if (i % 10 === 9) {
              // A client that dies in the middle of a statement: once its session has the statement on a backend.
              const q = c.query('SELECT pg_sleep(1)');
              q.catch(() => undefined);
              await eventually(() => [...proxy.context.sessions].some((s) => s.describe().applicationName === appName && s.describe().state === 'active'), 15_000, 5, `client ${i} mid-statement`);
              destroySocket(c);
              return;
            }
            // Half read (a standby), half write (the primary; that connection then needs a reset).
            await withDeadline<unknown>(i % 2 === 0 ? port(c) : c.query('INSERT INTO pool_leak_probe VALUES ($1)', [i]), 15_000, `client ${i} query`);
            await withDeadline(c.end(), 15_000, `client ${i} end`);
          } catch (err) {
            failures.push(`${i}: ${seenError(err).code ?? '-'} ${seenError(err).message}`);
            destroySocket(c);
          }
        },
      );
      expect(failures).toEqual([]);
      // Once the last sessions have ended (bounded), every backend of the user on each node is an idle pooled connection.
      const snapshot = async (): Promise<{ node: number; backends: number; idle: number; active: number }[]> =>
        Promise.all(nodes.map(async (i) => ({ node: i, backends: await backendsOf(info, i, user.name), ...poolCounts(proxy, i, user.name) })));
      let last = await snapshot();
      await eventually(
        async () => {
          last = await snapshot();
          return proxy.context.registry.size === 0 && last.every((s) => s.backends === s.idle && s.active === 0);
        },
        15_000,
        100,
      ).catch(() => undefined); // the assertions below say what is left
      console.log(`leak check after 1,000 clients: ${JSON.stringify(last)}`);
      expect(last.map((s) => ({ node: s.node, backends: s.backends, active: s.active }))).toEqual(last.map((s) => ({ node: s.node, backends: s.idle, active: 0 })));
      // And the proxy itself holds no session any more.
      expect(proxy.context.registry.size).toBe(0);
    } finally {
      await closeProxy(proxy);
      await primaryQuery('DROP TABLE IF EXISTS pool_leak_probe');
    }
    // Closing the proxy closes its idle connections.
    await eventually(async () => (await Promise.all(nodes.map((i) => backendsOf(info, i, user.name)))).every((n) => n === 0), 10_000);
  });
});

describe('(d) pool.mode: transaction', () => {
  it('SET settings and named prepared statements keep working while one connection moves between two clients', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, pool: { mode: 'transaction', max_per_node: 1, acquire_timeout_ms: 5_000 } });
    const a = await connectWatched(proxy, info);
    const b = await connectWatched(proxy, info);
    try {
      await a.client.query(`SET application_name = 'txmode_a'`);
      await a.client.query('SET search_path = txmode_a_schema, public');
      await b.client.query(`SET application_name = 'txmode_b'`);
      // The same statement name, different SQL, in each client.
      const stmtA = (i: number) => ({
        name: 'who',
        text: `SELECT $1::int AS i, 'A' AS who, current_setting('application_name') AS app, current_setting('search_path') AS sp, pg_backend_pid() AS pid, inet_server_port() AS p`,
        values: [i],
      });
      const stmtB = (i: number) => ({
        name: 'who',
        text: `SELECT $1::int AS i, 'B' AS who, current_setting('application_name') AS app, pg_backend_pid() AS pid, inet_server_port() AS p`,
        values: [i],
      });
      const pidsA = new Set<number>();
      const pidsB = new Set<number>();
      const primaryPidsA = new Set<number>();
      const primaryPidsB = new Set<number>();
      for (let i = 0; i < 40; i++) {
        const ra = (await withDeadline(a.client.query(stmtA(i)), 10_000, `A prepared ${i}`)).rows[0];
        expect(ra).toMatchObject({ i, who: 'A', app: 'txmode_a', sp: 'txmode_a_schema, public', p: n1!.port });
        pidsA.add(ra.pid);
        const rb = (await withDeadline(b.client.query(stmtB(i)), 10_000, `B prepared ${i}`)).rows[0];
        expect(rb).toMatchObject({ i, who: 'B', app: 'txmode_b', p: n1!.port });
        pidsB.add(rb.pid);
        // A transaction on the primary, each client in turn.
        for (const [w, app, pids] of [
          [a, 'txmode_a', primaryPidsA],
          [b, 'txmode_b', primaryPidsB],
        ] as const) {
          await w.client.query('BEGIN; SELECT 1');
          const r = (await w.client.query<{ app: string; pid: number; p: number }>(`SELECT current_setting('application_name') AS app, pg_backend_pid() AS pid, inet_server_port() AS p`)).rows[0]!;
          await w.client.query('COMMIT');
          expect(r).toMatchObject({ app, p: n0!.port });
          pids.add(r.pid);
        }
      }
      // The connections really moved between the two clients.
      expect([...pidsA].some((p) => pidsB.has(p))).toBe(true);
      expect([...primaryPidsA].some((p) => primaryPidsB.has(p))).toBe(true);
      expect([...a.unsolicited, ...b.unsolicited]).toEqual([]);
    } finally {
      await endAll([a.client, b.client]);
      await closeProxy(proxy);
    }
  });

  it('a client that created a TEMP table keeps seeing it (pinned) while other clients use the pool', async () => {
    const proxy = await proxyWith({ pool: { mode: 'transaction', max_per_node: 2, acquire_timeout_ms: 5_000 } });
    const owner = await connectWatched(proxy, info);
    const others = await Promise.all([connectWatched(proxy, info), connectWatched(proxy, info)]);
    try {
      await owner.client.query('CREATE TEMP TABLE pool_tmp (x int)');
      const ownerPid = (await owner.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      for (let i = 1; i <= 15; i++) {
        await owner.client.query('INSERT INTO pool_tmp VALUES ($1)', [i]);
        for (const o of others) {
          await withDeadline(o.client.query('BEGIN; SELECT 1'), 10_000, 'other BEGIN');
          await o.client.query('SELECT pg_backend_pid()');
          await o.client.query('COMMIT');
          expect(await withDeadline(port(o.client), 10_000, 'other read')).toBeGreaterThan(0);
        }
        const r = (await withDeadline(owner.client.query<{ n: number; pid: number }>('SELECT count(*)::int AS n, pg_backend_pid() AS pid FROM pool_tmp'), 10_000, 'owner read')).rows[0]!;
        expect(r).toEqual({ n: i, pid: ownerPid });
      }
      expect([...owner.unsolicited, ...others.flatMap((o) => o.unsolicited)]).toEqual([]);
    } finally {
      await endAll([owner.client, ...others.map((o) => o.client)]);
      await closeProxy(proxy);
    }
  });

  it('with max_per_node: 2, ten clients running transactions all make progress', async () => {
    const table = 'pool_tx_progress';
    await primaryQuery(`DROP TABLE IF EXISTS ${table}`);
    await primaryQuery(`CREATE TABLE ${table} (client int, i int)`);
    await primaryQuery(`GRANT ALL ON ${table} TO ${info.users.app.name}`);
    const proxy = await proxyWith({ pool: { mode: 'transaction', max_per_node: 2, acquire_timeout_ms: 10_000 } });
    const clients = await connectSequentially(proxy, 10);
    try {
      const ROUNDS = 20;
      const errors: string[] = [];
      await withDeadline(
        Promise.all(
          clients.map(async (w, id) => {
            for (let i = 0; i < ROUNDS; i++) {
              try {
                await w.client.query('BEGIN; SELECT 1');
                await w.client.query(`INSERT INTO ${table} VALUES ($1, $2)`, [id, i]);
                await w.client.query('COMMIT');
                await port(w.client);
              } catch (err) {
                errors.push(`client ${id} round ${i}: ${seenError(err).code ?? '-'} ${seenError(err).message}`);
                await w.client.query('ROLLBACK').catch(() => undefined);
              }
            }
          }),
        ),
        60_000,
        'ten clients',
      );
      expect(errors).toEqual([]);
      const rows = await primaryQuery<{ client: number; n: number }>(`SELECT client, count(*)::int AS n FROM ${table} GROUP BY client ORDER BY client`);
      expect(rows).toEqual(Array.from({ length: 10 }, (_, id) => ({ client: id, n: ROUNDS })));
      // Never more backend connections than allowed.
      for (const p of proxy.context.pools.all()) expect(p.idleCount + p.activeCount).toBeLessThanOrEqual(2);
    } finally {
      await endAll(clients.map((w) => w.client));
      await closeProxy(proxy);
      await primaryQuery(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('with max_per_node: 1, a client that logged in first and only reads does not keep the primary connection from others', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, pool: { mode: 'transaction', max_per_node: 1, acquire_timeout_ms: 2_000 } });
    const reader = await connectWatched(proxy, info);
    const writer = await connectWatched(proxy, info);
    try {
      expect(await port(reader.client)).toBe(n1!.port);
      const err = await outcome(
        (async () => {
          await writer.client.query('BEGIN; SELECT 1');
          await writer.client.query('SELECT 1');
          await writer.client.query('COMMIT');
        })(),
        10_000,
        'transaction of the second client',
      );
      expect(err).toBeNull();
      expect(await port(reader.client)).toBe(n1!.port);
    } finally {
      await endAll([reader.client, writer.client]);
      await closeProxy(proxy);
    }
  });
});

describe('(e) idle timeouts', () => {
  let table: string;
  beforeAll(async () => {
    table = 'pool_idle_tx';
    await primaryQuery(`CREATE TABLE IF NOT EXISTS ${table} (v text)`);
    await primaryQuery(`GRANT ALL ON ${table} TO ${info.users.app.name}`);
  });
  afterAll(async () => {
    await primaryQuery(`DROP TABLE IF EXISTS ${table}`);
  });

  // The timeouts are 4x the 250 ms pauses of the busy clients, so that a loaded machine does not stretch a pause past them.
  it('idle_in_transaction_timeout_ms closes a client idle in a transaction with 25P03 and rolls the transaction back', async () => {
    const proxy = await proxyWith({ listen: { idle_in_transaction_timeout_ms: 1_000 } });
    const c = proxyClient(proxy, info);
    c.on('error', () => undefined);
    const marker = `uncommitted-${Date.now()}`;
    try {
      const firstError = nextClientError(c, 6_000);
      const gone = ended(c, 8_000);
      await c.connect();
      await c.query('BEGIN; SELECT 1');
      await c.query(`INSERT INTO ${table} VALUES ($1)`, [marker]);
      const err = await firstError;
      expect({ code: err?.code, severity: err?.severity }).toEqual({ code: '25P03', severity: 'FATAL' });
      expect(await gone).toBe(true);
      // The transaction was rolled back: its insert is not there, and no backend stays idle in a transaction.
      await eventually(async () => (await backendsOf(info, 0, info.users.app.name, `state LIKE 'idle in transaction%'`)) === 0, 5_000);
      expect(await primaryQuery(`SELECT v FROM ${table} WHERE v = $1`, [marker])).toEqual([]);
      // A client that keeps working inside its transaction (for longer than the timeout) is left alone.
      const busy = await connectWatched(proxy, info);
      try {
        await busy.client.query('BEGIN; SELECT 1');
        for (let i = 0; i < 10; i++) {
          await busy.client.query('SELECT 1');
          await sleep(250);
        }
        await busy.client.query('COMMIT');
        expect(busy.unsolicited).toEqual([]);
      } finally {
        await endAll([busy.client]);
      }
    } finally {
      await endAll([c]);
      await closeProxy(proxy);
    }
  });

  it('client_idle_timeout_ms closes an idle client with 57P05; an active one stays', async () => {
    const proxy = await proxyWith({ listen: { client_idle_timeout_ms: 1_000 } });
    const idle = proxyClient(proxy, info);
    idle.on('error', () => undefined);
    const active = await connectWatched(proxy, info);
    try {
      const firstError = nextClientError(idle, 6_000);
      const gone = ended(idle, 8_000);
      await idle.connect();
      await idle.query('SELECT 1');
      // The active client works on until the idle one has been closed (and for longer than the timeout).
      const activeSince = Date.now();
      let idleDone = false; // closed, or given up on by ended()
      void gone.then(() => (idleDone = true));
      while (!idleDone || Date.now() - activeSince < 2_000) {
        await active.client.query('SELECT 1');
        await sleep(250);
      }
      const err = await firstError;
      expect({ code: err?.code, severity: err?.severity }).toEqual({ code: '57P05', severity: 'FATAL' });
      expect(await gone).toBe(true);
      expect(active.unsolicited).toEqual([]);
      expect(await port(active.client)).toBeGreaterThan(0);
    } finally {
      await endAll([idle, active.client]);
      await closeProxy(proxy);
    }
  });
});

describe('(f) limits.max_connections_per_user: 1', () => {
  const overrides: ConfigInput = { limits: { max_connections_per_user: 1 }, pool: { acquire_timeout_ms: 1500 } };

  it('a second client needing a backend waits, then gets 53300 after acquire_timeout_ms; it is usable afterwards', async () => {
    const proxy = await proxyWith(overrides);
    const first = await connectWatched(proxy, info);
    const second = await connectWatched(proxy, info);
    try {
      await first.client.query('BEGIN; SELECT 1');
      await first.client.query('SELECT 1');
      const started = Date.now();
      const err = await outcome(second.client.query('BEGIN; SELECT 1'), 10_000, 'BEGIN over the user limit');
      const waited = Date.now() - started;
      expect({ code: err?.code, severity: err?.severity }).toEqual({ code: '53300', severity: 'ERROR' });
      expect(waited).toBeGreaterThanOrEqual(1_000);
      expect(waited).toBeLessThan(10_000);
      await first.client.query('COMMIT');
      await first.client.end();
      expect(await outcome(second.client.query('BEGIN; SELECT 1'), 10_000)).toBeNull();
      expect(await outcome(second.client.query('COMMIT'), 10_000)).toBeNull();
      expect([...first.unsolicited, ...second.unsolicited]).toEqual([]);
    } finally {
      await endAll([first.client, second.client]);
      await closeProxy(proxy);
    }
  });

  it('a second client waiting over the user limit is served when the first leaves', async () => {
    const proxy = await proxyWith(overrides);
    const first = await connectWatched(proxy, info);
    const second = await connectWatched(proxy, info);
    try {
      await first.client.query('BEGIN; SELECT 1');
      await first.client.query('SELECT 1');
      const waiting = outcome(second.client.query('BEGIN; SELECT 1'), 10_000, 'BEGIN waiting for the user limit');
      await eventually(() => poolOf(proxy, 0, info.users.app.name)?.waitingCount === 1, 10_000, 5, 'the second client waiting');
      await first.client.query('COMMIT');
      await first.client.end();
      expect(await waiting).toBeNull();
      expect(await outcome(second.client.query('COMMIT'), 10_000)).toBeNull();
    } finally {
      await endAll([first.client, second.client]);
      await closeProxy(proxy);
    }
  });

  it('one client at a time can read and write: the user’s idle connection on one node does not block it on another', async () => {
    const proxy = await proxyWith(overrides);
    try {
      // One client at a time: each has left (its session gone, its connection idle in the pool) before the next comes.
      const left = (what: string): Promise<void> => eventually(() => settled(proxy), 10_000, 10, what);
      // The first client of the proxy reads (on a standby), then leaves.
      const reader = await connectWatched(proxy, info);
      const readErr = await outcome(port(reader.client), 10_000, 'read of the only client');
      await endAll([reader.client]);
      await left('the reader left');
      // The next one writes (on the primary), then leaves; then one more reads.
      const writer = await connectWatched(proxy, info);
      const writeErr = await outcome(writer.client.query('BEGIN; SELECT 1').then(() => writer.client.query('COMMIT')), 10_000, 'transaction of the next client');
      await endAll([writer.client]);
      await left('the writer left');
      const reader2 = await connectWatched(proxy, info);
      const readErr2 = await outcome(port(reader2.client), 10_000, 'read of the third client');
      await endAll([reader2.client]);
      const pools = proxy.context.pools.all().map((p) => ({ node: p.node.name, idle: p.idleCount, active: p.activeCount }));
      expect({ readErr, writeErr, readErr2 }, `pools: ${JSON.stringify(pools)}`).toEqual({ readErr: null, writeErr: null, readErr2: null });
    } finally {
      await closeProxy(proxy);
    }
  });
});

describe('(g) health_check.fail_on_backend_error', () => {
  const health = { period_ms: 300, timeout_ms: 1000, retry_delay_ms: 200 };

  /** A client whose read ran on node1; returns its backend pid there. */
  async function backendOnNode1(w: WatchedClient): Promise<number> {
    const r = (await w.client.query<{ pid: number; p: number }>('SELECT pg_backend_pid() AS pid, inet_server_port() AS p')).rows[0]!;
    expect(r.p).toBe(n1!.port);
    return r.pid;
  }

  /** Terminates the backend and waits until it has exited (pg_terminate_backend with a timeout). */
  async function terminateOnNode1(pid: number): Promise<void> {
    const c = new pg.Client({ host: n1!.host, port: n1!.port, user: info.users.superuser.name, password: info.users.superuser.password, database: info.database });
    await c.connect();
    try {
      const r = await c.query<{ ok: boolean }>('SELECT pg_terminate_backend($1, 10000) AS ok', [pid]);
      expect(r.rows[0]!.ok).toBe(true);
    } finally {
      await c.end();
    }
  }

  /** The proxy has seen the backend go: no session holds a connection to node1 any more. */
  async function backendLossSeen(proxy: RunningProxy): Promise<void> {
    await eventually(() => [...proxy.context.sessions].every((s) => !s.describe().servers.some((b) => b.node === 'node1')), 10_000, 10, 'the lost backend dropped by its session');
  }

  it('true (default): a terminated backend gets its node checked at once on a new connection; it answers, so it stays up', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, health_check: health });
    const changes = recordTopology(proxy);
    const w = await connectWatched(proxy, info);
    try {
      const confirmedBefore = proxy.health.confirmations;
      const pid = await backendOnNode1(w);
      await terminateOnNode1(pid);
      await backendLossSeen(proxy);
      await eventually(() => proxy.health.confirmations > confirmedBefore, 5_000, 20, 'the check that confirms the failure');
      await healthChecks(proxy, 2);
      expect(changes).toEqual([]);
      expect(proxy.context.topology.nodes[1]!.up).toBe(true);
    } finally {
      await endAll([w.client]);
      await closeProxy(proxy);
    }
  });

  it('false: a terminated backend leaves its node up', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, health_check: { ...health, fail_on_backend_error: false } });
    const changes = recordTopology(proxy);
    const w = await connectWatched(proxy, info);
    try {
      const pid = await backendOnNode1(w);
      await terminateOnNode1(pid);
      await backendLossSeen(proxy);
      await healthChecks(proxy, 3); // and the checks after it
      expect(changes).toEqual([]);
      expect(proxy.context.topology.nodes[1]!.up).toBe(true);
    } finally {
      await endAll([w.client]);
      await closeProxy(proxy);
    }
  });

  it('the session whose idle backend was terminated keeps working, with no error pushed to it', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, health_check: { ...health, fail_on_backend_error: false } });
    const w = await connectWatched(proxy, info);
    try {
      const pid = await backendOnNode1(w);
      await terminateOnNode1(pid);
      await backendLossSeen(proxy);
      const r = await outcome(backendOnNode1(w), 10_000, 'read after the termination');
      expect({ error: r, unsolicited: w.unsolicited }).toEqual({ error: null, unsolicited: [] });
    } finally {
      await endAll([w.client]);
      await closeProxy(proxy);
    }
  });
});

describe('(h) pool.min_idle', () => {
  it('after one session used a node, its pool holds min_idle idle connections within a few seconds', async () => {
    // This proxy's backends are those started after it (other proxies' may still be closing).
    const since = (await backendsTime(1)).toISOString();
    const ours = `backend_start >= '${since}'`;
    const proxy = await proxyWith({ backends: READS_ON_NODE1, pool: { min_idle: 2 } });
    try {
      const w = await connectWatched(proxy, info);
      expect(await port(w.client)).toBe(n1!.port);
      await endAll([w.client]);
      await eventually(() => poolCounts(proxy, 1, info.users.app.name).idle >= 2, 5_000, 50).catch(() => undefined);
      expect(poolCounts(proxy, 1, info.users.app.name), 'node1 pool of app within 5 s').toEqual({ idle: 2, active: 0 });
      // And no more than that, over the pool sweeps (one a second) that follow.
      await sleep(1_500);
      expect(poolCounts(proxy, 1, info.users.app.name)).toEqual({ idle: 2, active: 0 });
      await eventually(async () => (await backendsOf(info, 1, info.users.app.name, ours)) === 2, 5_000).catch(() => undefined);
      expect(await backendsOf(info, 1, info.users.app.name, ours), 'backends of this proxy on node1').toBe(2);
      console.log(`min_idle pools: ${JSON.stringify(tally(proxy.context.pools.all(), (p) => `${p.node.name} idle=${p.idleCount} active=${p.activeCount}`))}`);
    } finally {
      await closeProxy(proxy);
    }
  });
});

describe('(i) connections given back where a waiter can use them', () => {
  it('a session waiting under limits.max_connections_per_user gets the slot of the same user\'s connection that goes idle in another pool', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, limits: { max_connections_per_user: 1 }, pool: { acquire_timeout_ms: 10_000 } });
    try {
      const a = await connectWatched(proxy, info);
      const b = await connectWatched(proxy, info);
      await a.client.query('SELECT 1'); // A's session holds the user's one connection (node1)
      const waiting = withDeadline(b.client.query('BEGIN; SELECT 1'), 15_000, 'BEGIN').then(
        () => null,
        (e: unknown) => seenError(e),
      );
      await eventually(() => poolOf(proxy, 0, info.users.app.name)?.waitingCount === 1, 10_000, 20, 'B waits for a node0 connection');
      await a.client.end(); // A's connection goes idle in node1's pool
      expect(await waiting).toBeNull();
      await b.client.query('COMMIT');
      await endAll([b.client]);
    } finally {
      await closeProxy(proxy);
    }
  });

  it('a session waiting under limits.max_connections_per_node gets the slot of a connection that goes idle in another pool on that node, once that backend has exited', async () => {
    // Reads on node0 too, so that A's plain read leaves a connection that goes back to its pool as it is (no reset).
    const readsOnNode0 = info.nodes.map((n, i) => ({ name: n.name, host: n.host, port: n.port, weight: i === 0 ? 1 : 0 }));
    const proxy = await proxyWith({ backends: readsOnNode0, limits: { max_connections_per_node: 1 }, pool: { acquire_timeout_ms: 15_000 } });
    const appA = `node-cap-a-${process.pid}`;
    const a = await connectWatched(proxy, info, { application_name: appA });
    const b = await connectWatched(proxy, info, {}, info.users.scram);
    let stopped = 0;
    try {
      // A (user app) holds node0's one connection; B (app_scram) waits for a connection there.
      await a.client.query('SELECT 1');
      const [{ pid: aPid }] = await primaryQuery<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [appA]);
      await b.client.query('BEGIN');
      const waiting = withDeadline(b.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'), 20_000, 'B in its transaction').then(
        (r) => ({ pid: r.rows[0]!.pid, err: null }),
        (e: unknown) => ({ pid: 0, err: seenError(e) }),
      );
      const bWaiting = (): number | undefined => poolOf(proxy, 0, info.users.scram.name)?.waitingCount;
      await eventually(() => bWaiting() === 1, 10_000, 20, 'B waits for a node0 connection');
      // A's backend cannot exit while it is stopped: its slot on the node stays taken, and B must wait for it.
      process.kill(aPid!, 'SIGSTOP');
      stopped = aPid!;
      await a.client.end(); // A's connection goes idle in app's pool, where no one waits, and is closed for B
      const appPool = poolOf(proxy, 0, info.users.app.name)!;
      await eventually(() => appPool.idleCount === 0 && appPool.activeCount === 0 && [...appPool.connections()].length === 0, 10_000, 20, 'A\u2019s connection closing');
      await healthChecks(proxy, 2);
      expect({ waiting: bWaiting(), counted: proxy.context.pools.connectionsToNode(0) }).toEqual({ waiting: 1, counted: 1 });
      process.kill(aPid!, 'SIGCONT');
      stopped = 0;
      const served = await waiting;
      expect(served.err).toBeNull();
      expect(served.pid).not.toBe(aPid);
      expect(await primaryQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [aPid])).toEqual([{ n: 0 }]);
      await b.client.query('COMMIT');
    } finally {
      if (stopped !== 0) process.kill(stopped, 'SIGCONT');
      await endAll([a.client, b.client]);
      await closeProxy(proxy);
    }
  });

  it('a session that finds no slot under limits.max_connections_per_node within acquire_timeout_ms gets 53300 naming the limit', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, limits: { max_connections_per_node: 1 }, pool: { acquire_timeout_ms: 1_000 } });
    const a = await connectWatched(proxy, info);
    const b = await connectWatched(proxy, info, {}, info.users.scram);
    try {
      await a.client.query('BEGIN; SELECT 1');
      const err = await outcome(b.client.query('BEGIN; SELECT 1'), 10_000, 'BEGIN over the node limit');
      expect({ code: err?.code, severity: err?.severity }).toEqual({ code: '53300', severity: 'ERROR' });
      expect(err!.message).toMatch(/no connection to node0 free within 1000 ms \(limits\.max_connections_per_node \(1\) reached; pool\.acquire_timeout_ms\)/);
      await a.client.query('COMMIT');
    } finally {
      await endAll([a.client, b.client]);
      await closeProxy(proxy);
    }
  });

  it('pool.acquire_timeout_ms: 0 waits as long as it takes: a session still waits after several health checks, and is served when a connection is free', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, pool: { max_per_node: 1, acquire_timeout_ms: 0 } });
    const a = await connectWatched(proxy, info);
    const b = await connectWatched(proxy, info);
    try {
      await a.client.query('BEGIN; SELECT 1');
      const outcomeOfB: { value: SeenError | 'ok' | null } = { value: null };
      const waiting = b.client.query('BEGIN; SELECT 1').then(
        () => void (outcomeOfB.value = 'ok'),
        (e: unknown) => void (outcomeOfB.value = seenError(e)),
      );
      await eventually(() => poolOf(proxy, 0, info.users.app.name)?.waitingCount === 1, 10_000, 20, 'B waits');
      await healthChecks(proxy, 4);
      expect({ outcome: outcomeOfB.value, waiting: poolOf(proxy, 0, info.users.app.name)?.waitingCount }).toEqual({ outcome: null, waiting: 1 });
      await a.client.query('COMMIT');
      await a.client.end();
      await withDeadline(waiting, 10_000, 'B served');
      expect(outcomeOfB.value).toBe('ok');
      await b.client.query('COMMIT');
    } finally {
      await endAll([a.client, b.client]);
      await closeProxy(proxy);
    }
  });

  it('a leased backend that dies is no longer counted by its pool: the next client gets a connection', async () => {
    const proxy = await proxyWith({ backends: READS_ON_NODE1, pool: { max_per_node: 1, acquire_timeout_ms: 5_000 }, health_check: { fail_on_backend_error: false } });
    try {
      const w = await connectWatched(proxy, info);
      const pid = (await w.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const su = new pg.Client({ host: n1!.host, port: n1!.port, user: info.users.superuser.name, password: info.users.superuser.password, database: info.database });
      await su.connect();
      await su.query('SELECT pg_terminate_backend($1, 5000)', [pid]);
      await su.end();
      await eventually(() => [...proxy.context.sessions].every((s) => s.describe().servers.length === 0), 10_000, 20, 'the session drops its dead link');
      expect(poolCounts(proxy, 1, info.users.app.name)).toEqual({ idle: 0, active: 0 });
      await w.client.end();
      const next = await connectWatched(proxy, info);
      await withDeadline(next.client.query('SELECT 1'), 10_000, 'next read');
      await endAll([next.client]);
    } finally {
      await closeProxy(proxy);
    }
  });
});
