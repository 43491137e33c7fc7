// Large values and long streams through pgproxy, with the proxy in a child process so that its own memory can
// be watched (VmRSS from /proc, sampled every 100 ms): a 100 MB bytea each way, and a 1 GB COPY out to a
// consumer that is slower than the backend, so that the proxy must apply backpressure instead of buffering.
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { type ChildProxy, sampleRss, startChildProxy } from './helpers/proto-child.js';
import { type Msg, ProtoClient, serialize, tags, types } from './helpers/proto-client.js';

const info = sharedCluster();
const MB = 1024 * 1024;
const T = `px_large_${process.pid}`;
// A fresh proxy process per test, so that each one's memory is measured from its own baseline.
let child: ChildProxy;

beforeEach(async () => {
  child = await startChildProxy(info);
});

afterEach(async () => {
  await child?.stop();
});

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

describe('large values and streams', () => {
  it('a 100 MB bytea parameter is stored intact and read back intact from the primary and from a standby', async () => {
    const data = randomBytes(100 * MB);
    const digest = sha256(data);
    const c = new pg.Client({ host: child.host, port: child.port, user: info.users.app.name, password: info.users.app.password, database: info.database, connectionTimeoutMillis: 10_000 });
    await c.connect();
    const rss = sampleRss(child.pid);
    const baseline = child.rss()!;
    try {
      await c.query(`CREATE TABLE ${T}_bytea (id int primary key, data bytea)`);
      const ins = await c.query<{ len: number; sha: string; port: number }>(
        `INSERT INTO ${T}_bytea VALUES (1, $1) RETURNING length(data) AS len, encode(sha256(data), 'hex') AS sha, inet_server_port() AS port`,
        [data],
      );
      expect(ins.rows).toEqual([{ len: 100 * MB, sha: digest, port: info.nodes[0]!.port }]);

      await c.query('BEGIN');
      const fromPrimary = await c.query<{ data: Buffer; port: number }>(`SELECT data, inet_server_port() AS port FROM ${T}_bytea WHERE id = 1`);
      await c.query('COMMIT');
      expect(fromPrimary.rows[0]!.port).toBe(info.nodes[0]!.port);
      expect(fromPrimary.rows[0]!.data.length).toBe(100 * MB);
      expect(sha256(fromPrimary.rows[0]!.data)).toBe(digest);
      fromPrimary.rows.length = 0;

      await (await sharedClusterHandle()).waitForReplay();
      const fromStandby = await c.query<{ data: Buffer; port: number }>(`SELECT data, inet_server_port() AS port FROM ${T}_bytea WHERE id = 1`);
      expect(info.nodes.slice(1).map((n) => n.port)).toContain(fromStandby.rows[0]!.port);
      expect(sha256(fromStandby.rows[0]!.data)).toBe(digest);
    } finally {
      const max = rss.stop();
      await c.end();
      console.log(`100 MB bytea: proxy RSS baseline ${(baseline / MB).toFixed(0)} MB, max ${(max / MB).toFixed(0)} MB`);
      // The Bind carrying the value is assembled once (pgproxy reads its statement name); results stream through.
      expect(max).toBeLessThan(baseline + 400 * MB);
    }
  }, 60_000);

  it('a 1 GB COPY TO STDOUT streams to a slow consumer: every byte arrives, proxy RSS stays under 300 MB', async () => {
    const c = await ProtoClient.connect({ host: child.host, port: child.port, user: info.users.app.name, password: info.users.app.password, database: info.database });
    const baseline = child.rss()!;
    const rss = sampleRss(child.pid);
    let bytes = 0;
    let copyMessages = 0;
    let sincePause = 0;
    let pauses = 0;
    const started = Date.now();
    try {
      const done = new Promise<Msg[]>((resolve) => {
        const others: Msg[] = [];
        c.onMessage = (m) => {
          if (m.type === 'd') {
            bytes += m.body.length;
            copyMessages++;
            sincePause += m.body.length;
            // Slower than the backend: stop reading for 250 ms after every 32 MB (at most ~128 MB/s).
            if (sincePause >= 32 * MB) {
              sincePause = 0;
              pauses++;
              c.socket.pause();
              setTimeout(() => c.socket.resume(), 250);
            }
            return;
          }
          others.push(m);
          if (m.type === 'Z') resolve(others);
        };
      });
      c.send(serialize.query(`COPY (SELECT repeat('x', 1000) FROM generate_series(1, 1000000)) TO STDOUT`));
      const others = await withTimeout(done, 50_000, '1 GB COPY');
      expect(types(others)).toBe('HcCZ');
      expect(tags(others)).toEqual(['COPY 1000000']);
      expect(copyMessages).toBe(1_000_000);
      expect(bytes).toBe(1_000_000 * 1001);
    } finally {
      const max = rss.stop();
      c.destroy();
      console.log(
        `1 GB COPY: ${(bytes / MB).toFixed(0)} MB in ${Date.now() - started} ms, ${pauses} pauses; proxy RSS baseline ${(baseline / MB).toFixed(0)} MB, max ${(max / MB).toFixed(0)} MB`,
      );
      expect(max).toBeLessThan(300 * MB);
      // Backpressure, not buffering: while the consumer is stalled the proxy stops reading from the backend.
      expect(max - baseline).toBeLessThan(100 * MB);
    }
  }, 60_000);
});
