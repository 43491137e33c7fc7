// Malformed protocol input in every state (startup, authentication md5 and SCRAM, idle, inside an extended
// batch, in COPY IN), from a seeded generator, over many connections at once for a bounded time, while a
// well-behaved client keeps querying. The proxy must stay up, never disturb the good client, end every bad
// connection with a proper ErrorResponse or a clean close (none left open), keep its heap near its baseline,
// and leak no backend connection. Set FUZZ_SEED to replay a run; FUZZ_SECONDS to run longer.
//
// Memory: the proxy runs in-process (so its pools and sessions can be inspected), and its heap is measured
// with process.memoryUsage().heapUsed after forced full collections. `global.gc` is not exposed in vitest
// workers, so it is obtained the documented V8 way: set --expose-gc at run time, then take `gc` from a new
// context. The worker's heap also holds vitest and this test, which is why only the growth is asserted, with a
// margin far below what one leaked session per bad connection would cost over thousands of connections.
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proxyConfigForCluster } from '../../src/devcluster/proxy-config.js';
import { makeScramVerifier } from '../../src/wire/auth/scram.js';
import { startProxy, type RunningProxy } from '../../src/server.js';
import { connectNode, sharedCluster } from './helpers/cluster.js';
import { allGenerators, type FuzzCase, type FuzzState, nextCase, prng, startupPacket } from './helpers/fuzz-cases.js';
import { eventually, proxyClient, sleep } from './helpers/proxy.js';
import { errorFields, frame, type Msg, ProtoClient, serialize } from './helpers/proto-client.js';

const info = sharedCluster();
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed1);
const FUZZ_MS = Number(process.env.FUZZ_SECONDS ?? 20) * 1000;
const CONCURRENCY = 16;
const MIN_MESSAGES = 3_000;
/** A connection the proxy must close by itself gets this long to do it. */
const SELF_CLOSE_MS = 5_000;
/** After the client closes its side, the proxy gets this long to close too. */
const AFTER_FIN_MS = 5_000;
const COPY_TABLE = `fuzz_copy_${process.pid}`;
const GOOD_TABLE = `fuzz_good_${process.pid}`;
const SCRAM_USER = 'fuzz_scram';

let proxy: RunningProxy;
/** Log records at level error or above (pgproxy logs unexpected exceptions there: "session failed"...). */
const errorLogs: string[] = [];

const gc = ((): (() => void) => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

beforeAll(async () => {
  const c = await connectNode(info, 0);
  try {
    await c.query(`CREATE TABLE ${COPY_TABLE} (v text)`);
    await c.query(`CREATE TABLE ${GOOD_TABLE} (id int)`);
  } finally {
    await c.end();
  }
  const config = proxyConfigForCluster(info, {
    listenPort: 0,
    overrides: {
      health_check: { period_ms: 300, timeout_ms: 1000, retry_delay_ms: 200 },
      // A user whose secret is a SCRAM verifier: clients must authenticate with SCRAM (never completed here).
      // No lockout of the fuzzing address after its thousands of failed logins (the good client must still log in).
      auth: { users: [info.users.app, info.users.scram, { name: SCRAM_USER, password: makeScramVerifier('fuzz-secret') }], max_failures_per_minute: 0 },
    },
  });
  const level = process.env.PGPROXY_TEST_LOG ?? 'warn';
  const log = pino(
    { level },
    {
      write(line: string) {
        if (process.env.PGPROXY_TEST_LOG) process.stdout.write(line);
        const rec = JSON.parse(line) as { level: number };
        if (rec.level >= 50 && errorLogs.length < 50) errorLogs.push(line.trim());
      },
    },
  );
  proxy = await startProxy(config, log);
});

afterAll(async () => {
  await proxy?.close();
});

// ------------------------------------------------------------------------------------------------ helpers

const ctx = { user: info.users.app.name, database: info.database };

function connectOpts(port: number, host: string, user = info.users.app) {
  return { host, port, user: user.name, password: user.password, database: info.database, timeoutMs: 5_000 };
}

/** Brings a fresh connection to `state`. */
async function reach(state: FuzzState, port = proxy.port, host = proxy.host): Promise<ProtoClient> {
  switch (state) {
    case 'startup':
      return ProtoClient.open(host, port);
    case 'auth':
    case 'auth-scram': {
      const c = await ProtoClient.open(host, port);
      const user = state === 'auth' ? info.users.app.name : SCRAM_USER;
      c.send(serialize.startup({ user, database: info.database }));
      const m = await c.read(5_000);
      const want = state === 'auth' ? 5 : 10;
      if (m.type !== 'R' || m.body.readInt32BE(0) !== want) {
        c.destroy();
        throw new Error(`expected authentication request ${want}, got ${m.type}`);
      }
      return c;
    }
    case 'idle':
      return ProtoClient.connect(connectOpts(port, host));
    case 'batch': {
      const c = await ProtoClient.connect(connectOpts(port, host));
      c.send(serialize.parse({ text: 'SELECT 1 AS one' }), serialize.bind({}));
      return c;
    }
    case 'copy': {
      const c = await ProtoClient.connect(connectOpts(port, host));
      c.send(serialize.query(`COPY ${COPY_TABLE} FROM STDIN`));
      const msgs = await c.readUntil((m) => m.type === 'G' || m.type === 'Z', 5_000).catch((err: Error) => {
        c.destroy();
        throw new Error(`COPY FROM STDIN got no CopyInResponse: ${err.message}`);
      });
      if (msgs[msgs.length - 1]!.type !== 'G') {
        c.destroy();
        throw new Error(`COPY FROM STDIN failed: ${msgs.map((m) => m.type).join('')}`);
      }
      return c;
    }
  }
}

interface Outcome {
  codes: string[];
  /** Closed by the peer without the client closing its side. */
  closedByPeer: boolean;
  /** Closed once the client had closed its side (or never). */
  closedAfterFin: boolean;
  firstTypes: string;
}

/** Sends `junk` and watches what happens: replies, and who closes. */
async function exchange(c: ProtoClient, junk: Buffer, selfCloseMs: number, then?: Buffer): Promise<Outcome> {
  c.send(junk);
  let early: Msg[] = [];
  if (then) {
    early = await c.readUntil((m) => m.type === 'E' || m.type === 'Z', 1_000).catch(() => []);
    if (!c.closed) c.send(then);
  }
  const closedByPeer = await c.waitClosed(selfCloseMs);
  let closedAfterFin = closedByPeer;
  if (!closedByPeer) {
    c.socket.end();
    closedAfterFin = await c.waitClosed(AFTER_FIN_MS);
  }
  let msgs: Msg[] = [];
  try {
    msgs = await c.drain(1);
  } catch (err) {
    msgs = [{ type: '?', body: Buffer.from((err as Error).message) }];
  }
  c.destroy();
  msgs = [...early, ...msgs];
  return {
    codes: msgs.filter((m) => m.type === 'E').map((m) => errorFields(m.body).C ?? '(none)'),
    closedByPeer,
    closedAfterFin,
    firstTypes: msgs.map((m) => m.type).join('').slice(0, 12),
  };
}

/** Server-side TCP sockets of the proxy's port that are not listening and not in TIME_WAIT (kernel-only). */
function proxySockets(): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const localPort = parseInt(f[1]!.split(':')[1]!, 16);
      const state = f[3]!;
      if (localPort === proxy.port && state !== '0A' && state !== '06') n++;
    }
  }
  return n;
}

function activeBackends(): number {
  return proxy.context.pools.all().reduce((n, p) => n + p.activeCount, 0);
}

function idleBackendsOn(node: number): number {
  return proxy.context.pools.all().filter((p) => p.node.id === node).reduce((n, p) => n + p.idleCount, 0);
}

async function appBackendPids(node: number): Promise<number[]> {
  const c = await connectNode(info, node, info.users.superuser, 'postgres');
  try {
    const r = await c.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend'`, [info.users.app.name]);
    return r.rows.map((row) => row.pid);
  } finally {
    await c.end();
  }
}

function heapAfterGc(): number {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed;
}

const PROPER_CODE = /^(?!XX)[0-9A-Z]{5}$/;

// ------------------------------------------------------------------------------------------------ tests

describe('fuzz: malformed input in every protocol state', () => {
  it(`thousands of bad messages (seed ${SEED}) never disturb a good client, and every bad connection ends properly`, async () => {
    const pidsBefore = await Promise.all(info.nodes.map((_, i) => appBackendPids(i)));

    // The good client: reads, writes and transactions in a loop for the whole run.
    const good = proxyClient(proxy, info, info.users.app, { query_timeout: 5_000 });
    await good.connect();
    let stop = false;
    const goodErrors: string[] = [];
    let goodQueries = 0;
    let goodMaxMs = 0;
    const goodLoop = (async () => {
      for (let i = 0; !stop; i++) {
        const t0 = Date.now();
        try {
          switch (i % 4) {
            case 0:
              expect((await good.query<{ n: number }>('SELECT $1::int AS n', [i])).rows[0]!.n).toBe(i);
              break;
            case 1:
              await good.query(`INSERT INTO ${GOOD_TABLE} VALUES ($1)`, [i]);
              break;
            case 2:
              await good.query('BEGIN');
              await good.query(`SELECT count(*) FROM ${GOOD_TABLE}`);
              await good.query('COMMIT');
              break;
            default:
              expect((await good.query<{ x: string }>({ name: 'good_stmt', text: 'SELECT $1::text AS x', values: [`v${i}`] })).rows[0]!.x).toBe(`v${i}`);
          }
          goodQueries++;
        } catch (err) {
          goodErrors.push(`${i}: ${(err as Error).message}`);
          if (goodErrors.length > 5) break;
        }
        goodMaxMs = Math.max(goodMaxMs, Date.now() - t0);
        await sleep(5);
      }
    })();

    // Short-lived good clients too: each takes backend connections from the pools that the bad clients used.
    const freshErrors: string[] = [];
    let freshClients = 0;
    const freshLoop = (async () => {
      for (let i = 0; !stop; i++) {
        const c = proxyClient(proxy, info, info.users.app, { query_timeout: 5_000 });
        try {
          await c.connect();
          expect((await c.query<{ n: number }>('SELECT $1::int AS n', [i])).rows[0]!.n).toBe(i);
          await c.query(`INSERT INTO ${GOOD_TABLE} VALUES ($1)`, [-i]);
          freshClients++;
        } catch (err) {
          if (freshErrors.length < 10) freshErrors.push(`fresh client ${i}: ${(err as Error).message}`);
        } finally {
          await c.end().catch(() => undefined);
        }
        await sleep(200);
      }
    })();

    // Warm up (JIT, pools, catalog) before the heap baseline.
    const warm = prng(SEED ^ 0xabcdef);
    for (let i = 0; i < 40; i++) {
      const fc = nextCase(warm, ctx);
      const c = await reach(fc.state).catch(() => null);
      if (c) await exchange(c, fc.junk, fc.selfClosing ? SELF_CLOSE_MS : 200, fc.then);
    }
    // The warm-up's connections gone (only the good client's and, now and then, a fresh one's remain).
    await eventually(() => proxySockets() <= 2 && proxy.context.registry.size <= 2, 10_000, 20).catch(() => undefined);
    const heapBefore = heapAfterGc();

    const stats = { connections: 0, messages: 0, errorReplies: 0, byPeer: 0, afterFin: 0 };
    const perGen = new Map<string, number>();
    const codes = new Map<string, number>();
    const failures: string[] = [];
    const fail = (fc: FuzzCase, what: string): void => {
      if (failures.length < 40) failures.push(`[${fc.state}] ${fc.gen}: ${what} (junk ${fc.junk.subarray(0, 24).toString('hex')}${fc.junk.length > 24 ? '…' : ''})`);
    };
    // FUZZ_MS, extended (up to twice that) on a slow machine until enough messages have been sent.
    const started = Date.now();
    const goOn = (): boolean => {
      const elapsed = Date.now() - started;
      return elapsed < FUZZ_MS || (elapsed < 2 * FUZZ_MS && stats.messages < MIN_MESSAGES);
    };
    const workers = Array.from({ length: CONCURRENCY }, async (_, w) => {
      const rng = prng(SEED + w * 7919);
      while (goOn()) {
        const fc = nextCase(rng, ctx);
        perGen.set(`${fc.state}: ${fc.gen}`, (perGen.get(`${fc.state}: ${fc.gen}`) ?? 0) + 1);
        let c: ProtoClient;
        try {
          c = await reach(fc.state);
        } catch (err) {
          fail(fc, `could not reach the state: ${(err as Error).message}`);
          await sleep(100);
          continue;
        }
        stats.connections++;
        stats.messages += fc.messages;
        const o = await exchange(c, fc.junk, fc.selfClosing ? SELF_CLOSE_MS : 200, fc.then);
        for (const code of o.codes) {
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (!PROPER_CODE.test(code)) fail(fc, `improper SQLSTATE ${code}`);
        }
        if (o.codes.length > 0) stats.errorReplies++;
        if (o.firstTypes.includes('?')) fail(fc, 'a reply that could not be framed');
        if (o.closedByPeer) stats.byPeer++;
        else if (o.closedAfterFin) stats.afterFin++;
        if (fc.selfClosing && !o.closedByPeer) fail(fc, `not closed by the proxy within ${SELF_CLOSE_MS} ms (replies: ${o.firstTypes || 'none'})`);
        if (!o.closedAfterFin) fail(fc, `still open ${AFTER_FIN_MS} ms after the client closed its side (replies: ${o.firstTypes || 'none'})`);
      }
    });
    await Promise.all(workers);
    stop = true;
    await goodLoop;
    await freshLoop;
    const goodStillWorks = (await good.query('SELECT 42 AS x')).rows[0] as { x: number };
    await good.end();

    // Nothing left: sessions, sockets, leased backends.
    let left = '';
    await eventually(() => {
      left = `sessions=${proxy.context.registry.size} sockets=${proxySockets()} active backends=${activeBackends()}`;
      return left === 'sessions=0 sockets=0 active backends=0';
    }, 10_000).catch(() => undefined);
    // The backends the nodes see: only the pools' idle connections remain (beyond those there before).
    let backends = '';
    await eventually(async () => {
      const now = await Promise.all(info.nodes.map((_, i) => appBackendPids(i)));
      const extra = now.map((pids, i) => pids.filter((p) => !pidsBefore[i]!.includes(p)).length);
      backends = extra.map((n, i) => `node${i}: ${n} backends, ${idleBackendsOn(i)} idle in pools`).join('; ');
      return extra.every((n, i) => n === idleBackendsOn(i));
    }, 10_000).catch(() => undefined);
    const heapAfter = heapAfterGc();

    const report = {
      seed: SEED,
      ...stats,
      goodQueries,
      goodMaxMs,
      freshClients,
      heapBeforeMB: +(heapBefore / 2 ** 20).toFixed(1),
      heapAfterMB: +(heapAfter / 2 ** 20).toFixed(1),
      sqlstates: Object.fromEntries([...codes].sort()),
      generatorsNeverRun: allGenerators().filter((g) => !perGen.has(g)),
      failures: failures.length,
    };
    console.log(`fuzz report: ${JSON.stringify(report)}`);
    for (const f of [...failures.slice(0, 10), ...goodErrors, ...freshErrors]) console.log(`fuzz failure: ${f}`);

    expect(stats.messages).toBeGreaterThanOrEqual(MIN_MESSAGES);
    expect(goodErrors).toEqual([]);
    expect(freshErrors).toEqual([]);
    expect(goodMaxMs).toBeLessThan(3_000);
    expect(goodStillWorks).toEqual({ x: 42 });
    expect(failures).toEqual([]);
    expect(errorLogs).toEqual([]);
    expect(left).toBe('sessions=0 sockets=0 active backends=0');
    expect(backends).toBe(info.nodes.map((_, i) => `node${i}: ${idleBackendsOn(i)} backends, ${idleBackendsOn(i)} idle in pools`).join('; '));
    expect(heapAfter - heapBefore).toBeLessThan(16 * 2 ** 20);
    // The proxy is still up for new clients.
    const after = proxyClient(proxy, info);
    await after.connect();
    expect((await after.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await after.end();
  }, 120_000);
});

describe('bad input that PostgreSQL rejects is rejected by pgproxy the same way', () => {
  interface Seen {
    codes: string[];
    closed: boolean;
  }

  async function outcome(state: FuzzState, junk: Buffer, port: number, host: string): Promise<Seen> {
    const c = await reach(state, port, host);
    const o = await exchange(c, junk, SELF_CLOSE_MS);
    return { codes: o.codes, closed: o.closedByPeer };
  }

  const primary = info.nodes[0]!;
  const lengthOnly = (len: number, rest: number[] = []): Buffer => {
    const b = Buffer.alloc(4 + rest.length);
    b.writeInt32BE(len, 0);
    Buffer.from(rest).copy(b, 4);
    return b;
  };
  /** A protocol 3.0 startup packet with exactly this body after the version (no terminator added). */
  const rawStartup = (body: string): Buffer => {
    const b = Buffer.from(body);
    return Buffer.concat([lengthOnly(8 + b.length, [0, 3, 0, 0]), b]);
  };
  const version = (major: number, minor: number): Buffer => lengthOnly(8, [major >> 8, major & 255, minor >> 8, minor & 255]);
  const cases: [string, FuzzState, Buffer][] = [
    ['startup packet of length 4', 'startup', lengthOnly(4)],
    ['startup packet of length 20000', 'startup', lengthOnly(20_000, [0, 3, 0, 0])],
    ['protocol 2.0', 'startup', version(2, 0)],
    ['protocol 4.0', 'startup', version(4, 0)],
    ['request code 1234.5681', 'startup', version(1234, 5681)],
    ['no user', 'startup', startupPacket({ database: info.database })],
    ['a parameter without value', 'startup', rawStartup(`user\0${info.users.app.name}\0database`)],
    ['no final terminator', 'startup', startupPacket({ user: info.users.app.name, database: info.database }, 196608, false)],
    ['SSLRequest and a startup packet in one write', 'startup', Buffer.concat([version(1234, 5679), startupPacket({ user: info.users.app.name })])],
    ['a password message longer than 65535 bytes', 'auth', Buffer.concat([frame('p', Buffer.alloc(0)).subarray(0, 1), lengthOnly(100_004, [0x6d, 0x64, 0x35])])],
    ['a message type other than password during authentication', 'auth', frame('Q', 'SELECT 1\0')],
    ['a Query longer than 1 GB after login', 'idle', Buffer.concat([Buffer.from('Q'), lengthOnly(0x40000100, [0x53])])],
    ['an unknown message type after login', 'idle', frame('~', 'junk')],
  ];

  for (const [name, state, junk] of cases) {
    it(name, async () => {
      const direct = await outcome(state, junk, primary.port, primary.host);
      const viaProxy = await outcome(state, junk, proxy.port, proxy.host);
      // PostgreSQL closes these connections; so must pgproxy, with the same SQLSTATE whenever PostgreSQL sends one.
      expect(direct.closed).toBe(true);
      expect({ closed: viaProxy.closed, codes: direct.codes.length > 0 ? viaProxy.codes : direct.codes }).toEqual({ closed: true, codes: direct.codes });
    });
  }
});
