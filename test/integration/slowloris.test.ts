// Slow clients that never finish logging in (slowloris) are closed at listen.auth_timeout_ms, while normal
// clients connect and query as usual meanwhile; a client that logs in within the limit is never cut off by it.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { startupPacket } from './helpers/fuzz-cases.js';
import { errorFields, ProtoClient, serialize } from './helpers/proto-client.js';
import { eventually, proxyClient, sleep, startTestProxy } from './helpers/proxy.js';
import { md5SaltedResponse } from '../../src/wire/auth/md5.js';

const info = sharedCluster();
const AUTH_TIMEOUT_MS = 3_000;
const SLOW_CLIENTS = 200;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info, { listen: { auth_timeout_ms: AUTH_TIMEOUT_MS } });
});

afterAll(async () => {
  await proxy?.close();
});

interface SlowResult {
  /** Milliseconds from connect to the proxy closing the connection (null: still open when we gave up). */
  closedAfterMs: number | null;
  bytesSent: number;
  /** What the proxy sent: nothing, or an ErrorResponse; never an authentication request. */
  replyTypes: string;
  codes: string[];
}

/** A client that sends its startup packet one byte per second and never finishes. */
function slowStartup(giveUpMs: number): Promise<SlowResult> {
  const packet = startupPacket({ user: info.users.app.name, database: info.database, application_name: 'slowloris-with-a-long-name' });
  return new Promise((resolve) => {
    const s = net.connect({ host: proxy.host, port: proxy.port });
    let connectedAt = 0;
    let sent = 0;
    let received = Buffer.alloc(0);
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearInterval(timer);
      clearTimeout(giveUp);
      s.destroy();
      const replyTypes: string[] = [];
      const codes: string[] = [];
      for (let o = 0; o + 5 <= received.length; ) {
        const len = received.readInt32BE(o + 1);
        replyTypes.push(String.fromCharCode(received[o]!));
        if (received[o] === 0x45 && o + 1 + len <= received.length) codes.push(errorFields(received.subarray(o + 5, o + 1 + len)).C ?? '');
        o += 1 + len;
      }
      resolve({ closedAfterMs: closed ? Date.now() - connectedAt : null, bytesSent: sent, replyTypes: replyTypes.join(''), codes });
    };
    const giveUp = setTimeout(() => finish(false), giveUpMs);
    s.on('connect', () => {
      connectedAt = Date.now();
      const sendOne = (): void => {
        if (sent < packet.length - 1) s.write(packet.subarray(sent, ++sent)); // never the last byte
      };
      sendOne();
      timer = setInterval(sendOne, 1_000);
    });
    s.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
  });
}

async function normalClient(): Promise<number> {
  const t0 = Date.now();
  const c = proxyClient(proxy, info, info.users.app, { connectionTimeoutMillis: 5_000, query_timeout: 5_000 });
  await c.connect();
  try {
    expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  } finally {
    await c.end();
  }
  return Date.now() - t0;
}

describe('slowloris', () => {
  it(`${SLOW_CLIENTS} clients trickling a startup packet at one byte a second are closed at the auth timeout; normal clients are served meanwhile`, async () => {
    // A client that logged in before, and keeps querying throughout.
    const steady = proxyClient(proxy, info);
    await steady.connect();

    const slow: Promise<SlowResult>[] = [];
    for (let i = 0; i < SLOW_CLIENTS; i++) {
      slow.push(slowStartup(AUTH_TIMEOUT_MS + 7_000));
      if (i % 20 === 19) await sleep(10);
    }
    let slowDone = false;
    const all = Promise.all(slow).finally(() => (slowDone = true));

    const latencies: number[] = [];
    const errors: string[] = [];
    let steadyQueries = 0;
    while (!slowDone) {
      try {
        latencies.push(await normalClient());
        const r = await steady.query<{ n: number }>('SELECT $1::int AS n', [steadyQueries]);
        expect(r.rows[0]!.n).toBe(steadyQueries);
        steadyQueries++;
      } catch (err) {
        errors.push((err as Error).message);
        if (errors.length > 5) break;
      }
      await sleep(100);
    }
    const results = await all;
    await steady.end();

    expect(errors).toEqual([]);
    expect(latencies.length).toBeGreaterThan(10);
    expect(Math.max(...latencies)).toBeLessThan(2_000);

    const notClosed = results.filter((r) => r.closedAfterMs === null).length;
    expect(notClosed, 'slow clients still open 7 s after the auth timeout').toBe(0);
    const times = results.map((r) => r.closedAfterMs!).sort((a, b) => a - b);
    // Closed at the timeout: not before it, and not long after it.
    expect(times[0]).toBeGreaterThanOrEqual(AUTH_TIMEOUT_MS - 100);
    expect(times[times.length - 1]).toBeLessThan(AUTH_TIMEOUT_MS + 2_000);
    // None got as far as an authentication request; any error sent has a proper SQLSTATE.
    for (const r of results) {
      expect(r.replyTypes).toMatch(/^E?$/);
      for (const code of r.codes) expect(code).toMatch(/^(?!XX)[0-9A-Z]{5}$/);
      expect(r.bytesSent).toBeGreaterThanOrEqual(3);
    }
    await eventually(() => proxy.context.registry.size === 0, 5_000);
  }, 60_000);

  it('clients that send a startup packet but never answer the password request are closed at the auth timeout too', async () => {
    const clients = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const c = await ProtoClient.open(proxy.host, proxy.port);
        const t0 = Date.now();
        c.send(serialize.startup({ user: info.users.app.name, database: info.database }));
        const r = await c.read(5_000);
        return { c, t0, auth: r.type === 'R' ? r.body.readInt32BE(0) : -1 };
      }),
    );
    expect(clients.every((x) => x.auth === 5)).toBe(true);
    const closedAfter = await Promise.all(clients.map(async ({ c, t0 }) => ((await c.waitClosed(AUTH_TIMEOUT_MS + 5_000)) ? Date.now() - t0 : null)));
    const replies = await Promise.all(clients.map(({ c }) => c.drain(1)));
    for (const { c } of clients) c.destroy();
    expect(closedAfter.filter((t) => t === null).length).toBe(0);
    for (const t of closedAfter) {
      expect(t!).toBeGreaterThanOrEqual(AUTH_TIMEOUT_MS - 100);
      expect(t!).toBeLessThan(AUTH_TIMEOUT_MS + 2_000);
    }
    for (const msgs of replies) {
      for (const m of msgs.filter((x) => x.type === 'E')) expect(errorFields(m.body).C).toMatch(/^(?!XX)[0-9A-Z]{5}$/);
    }
  }, 30_000);

  it('a client that logs in slowly but within the limit is not cut off afterwards', async () => {
    const c = await ProtoClient.open(proxy.host, proxy.port);
    try {
      const t0 = Date.now();
      const packet = serialize.startup({ user: info.users.app.name, database: info.database });
      // Half the packet, a pause, the rest; then the password after another pause: logged in at ~2/3 of the limit.
      c.send(packet.subarray(0, 10));
      await sleep(AUTH_TIMEOUT_MS / 3);
      c.send(packet.subarray(10));
      const req = await c.read(5_000);
      expect(req.type).toBe('R');
      expect(req.body.readInt32BE(0)).toBe(5);
      await sleep(AUTH_TIMEOUT_MS / 3);
      c.send(serialize.password(md5SaltedResponse(info.users.app.name, info.users.app.password, req.body.subarray(4, 8))));
      const login = await c.readUntilReady(5_000);
      expect(login[login.length - 1]!.type).toBe('Z');
      expect(Date.now() - t0).toBeLessThan(AUTH_TIMEOUT_MS);
      // Past the moment the limit would have struck (counted from the connection), idle and then busy: still connected.
      await sleep(t0 + AUTH_TIMEOUT_MS + 500 - Date.now());
      expect(c.closed).toBe(false);
      const r = await c.query('SELECT 5 AS x');
      expect(r.map((m) => m.type).join('')).toBe('TDCZ');
    } finally {
      await c.end();
    }
  }, 30_000);
});
