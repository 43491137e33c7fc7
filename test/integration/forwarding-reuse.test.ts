// Backend bytes reach the client as views of the buffer a backend socket reads into, and that buffer is reused for
// the next read unless a view of it is still queued for a client that reads slowly (the mechanism itself is
// unit-tested in test/unit/pool/socket-reads.test.ts, where a queued write can be made to happen on demand). Here,
// end to end, every byte of many large, all-different rows is checked against what PostgreSQL computes, while
// clients stall again and again (backpressure pauses the backend) and several sessions share the event loop.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { type Msg, ProtoClient, serialize } from './helpers/proto-client.js';
import { startTestProxy } from './helpers/proxy.js';

const info = sharedCluster();
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
});

afterAll(async () => {
  await proxy?.close();
});

const ROWS = 6_000;
/** Each row: its number, and 64 md5 digests of it and its neighbours (2 KB of text no two rows share). */
const SQL = `SELECT i, (SELECT string_agg(md5((i * 64 + k)::text), '' ORDER BY k) FROM generate_series(0, 63) k) FROM generate_series(1, ${ROWS}) i`;

function expectedRow(i: number): string {
  let s = '';
  for (let k = 0; k < 64; k++) s += createHash('md5').update(String(i * 64 + k)).digest('hex');
  return s;
}

/** Decodes a DataRow of two text columns. */
function columns(body: Buffer): [string, string] {
  const a = body.readInt32BE(2);
  const first = body.toString('utf8', 6, 6 + a);
  const b = body.readInt32BE(6 + a);
  return [first, body.toString('utf8', 10 + a, 10 + a + b)];
}

/** Runs SQL on a client that stops reading for `stallMs` after every `stallEvery` bytes; checks every row. */
async function slowRead(client: ProtoClient, stallEvery: number, stallMs: number): Promise<{ rows: number; stalls: number; bad: string[] }> {
  let rows = 0;
  let stalls = 0;
  let since = 0;
  const bad: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    client.onMessage = (m: Msg) => {
      since += m.body.length + 5;
      if (since >= stallEvery) {
        since = 0;
        stalls++;
        client.socket.pause();
        setTimeout(() => client.socket.resume(), stallMs);
      }
      if (m.type === 'D') {
        rows++;
        const [n, text] = columns(m.body);
        if (n !== String(rows) || text !== expectedRow(rows)) {
          if (bad.length < 5) bad.push(`row ${rows}: got #${n} ${text.slice(0, 40)}...`);
        }
      } else if (m.type === 'E') reject(new Error(`error: ${m.body.toString('utf8')}`));
      else if (m.type === 'Z') resolve();
    };
  });
  client.send(serialize.query(SQL));
  await done;
  return { rows, stalls, bad };
}

describe('forwarding from a reused read buffer', () => {
  it('a client that stalls while large rows stream gets every byte exactly, in three sessions at once', async () => {
    const clients = await Promise.all(
      [0, 1, 2].map(() => ProtoClient.connect({ host: proxy.host, port: proxy.port, user: info.users.app.name, password: info.users.app.password, database: info.database })),
    );
    try {
      // Different stall patterns, so that queued views and new reads interleave differently in each session.
      const results = await Promise.all([slowRead(clients[0]!, 256 * 1024, 30), slowRead(clients[1]!, 1024 * 1024, 80), slowRead(clients[2]!, 64 * 1024, 5)]);
      for (const r of results) {
        expect(r.bad).toEqual([]);
        expect(r.rows).toBe(ROWS);
        expect(r.stalls).toBeGreaterThan(10);
      }
    } finally {
      for (const c of clients) c.destroy();
    }
  }, 120_000);
});
