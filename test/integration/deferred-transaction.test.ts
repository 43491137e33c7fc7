// The transaction's node follows its access mode: a BEGIN whose access mode is still undecided is answered by
// pgproxy and sent with the transaction's first statement, to the node that statement chooses. Every exchange
// runs twice, through pgproxy and on a direct connection to the primary, and the client must see the same
// messages, tags and transaction statuses (PostgreSQL is the oracle); where the transaction ran is proven by the
// servers themselves (inet_server_port(), rows on the primary).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { connectNode, sharedCluster } from './helpers/cluster.js';
import { connectApp, pbdes, replyLines, setUpOnPrimary } from './helpers/exchange.js';
import { startTestProxy, withProxyClient } from './helpers/proxy.js';
import { type Msg, ProtoClient, serialize } from './helpers/proto-client.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
const standbyPorts = info.nodes.slice(1).map((n) => n.port);
const T = `dtx_${process.pid}`;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
  await setUpOnPrimary(info, [`CREATE TABLE ${T} (id serial primary key, who text, port int)`]);
});

afterAll(async () => {
  await proxy?.close();
});

function connect(port: number): Promise<ProtoClient> {
  return connectApp(info, '127.0.0.1', port);
}

/** Replies as comparable lines, row values left out (they may differ by node). */
const lines = (msgs: readonly Msg[]): string[] => replyLines(msgs, { rows: false });

/** A step: a simple Query, or (`ext:` prefix) Parse / Bind / Describe / Execute / Sync of the statement. */
function frames(step: string): Buffer {
  if (!step.startsWith('ext:')) return serialize.query(step);
  return pbdes(step.slice(4));
}

/** Runs the steps one at a time: the replies of each, as lines. */
async function run(c: ProtoClient, steps: readonly string[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const step of steps) {
    c.send(frames(step));
    out.push(lines(await c.readUntilReady(10_000)));
  }
  return out;
}

/** The same steps through pgproxy and on the primary directly: what pgproxy's client saw. */
async function sameAsPostgres(steps: readonly string[]): Promise<string[][]> {
  const viaProxy = await connect(proxy.port);
  const direct = await connect(primaryPort);
  try {
    const got = await run(viaProxy, steps);
    const expected = await run(direct, steps);
    expect(got, steps.join(' | ')).toEqual(expected);
    return got;
  } finally {
    await viaProxy.end();
    await direct.end();
  }
}

const insert = (who: string): string => `INSERT INTO ${T} (who, port) VALUES ('${who}', inet_server_port())`;

describe('exchanges as PostgreSQL answers them', () => {
  const scenarios: [string, string[]][] = [
    ['empty transaction, COMMIT', ['BEGIN', 'COMMIT']],
    ['empty transaction, ROLLBACK', ['BEGIN', 'ROLLBACK']],
    ['START TRANSACTION / END', ['START TRANSACTION', 'END']],
    ['BEGIN / ABORT', ['BEGIN', 'ABORT']],
    ['COMMIT AND CHAIN of an empty transaction', ['BEGIN', 'COMMIT AND CHAIN', 'SELECT 1', 'ROLLBACK AND CHAIN', 'COMMIT']],
    ['BEGIN inside a transaction warns 25001', ['BEGIN', 'BEGIN', 'SELECT 1', 'BEGIN', 'COMMIT']],
    ['COMMIT and ROLLBACK outside a transaction warn 25P01', ['COMMIT', 'ROLLBACK']],
    ['an error fails the transaction; ROLLBACK ends it', ['BEGIN', 'SELECT 1/0', 'SELECT 1', 'ROLLBACK', 'SELECT 1']],
    ['an error as the first statement', ['BEGIN', 'SELECT 1/0', 'COMMIT']],
    ['an error after a write; COMMIT answers ROLLBACK', ['BEGIN', insert('err-after-write'), 'SELECT 1/0', 'COMMIT']],
    ['read-write after default read-only', ['SET default_transaction_read_only = on', 'BEGIN', 'SET TRANSACTION READ WRITE', insert('rw-after-ro'), 'COMMIT', 'RESET default_transaction_read_only']],
    ['default read-only refuses a write', ['SET default_transaction_read_only = on', 'BEGIN', insert('refused'), 'ROLLBACK', 'RESET default_transaction_read_only']],
    ['BEGIN READ ONLY refuses a write', ['BEGIN READ ONLY', insert('refused'), 'SELECT 1', 'ROLLBACK']],
    ['SET TRANSACTION READ ONLY first', ['BEGIN', 'SET TRANSACTION READ ONLY', 'SELECT 1', 'COMMIT']],
    ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE first', ['BEGIN', 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'SELECT 1', 'COMMIT']],
    ['SAVEPOINT first', ['BEGIN', 'SAVEPOINT a', 'SELECT 1', 'ROLLBACK TO SAVEPOINT a', 'RELEASE a', 'COMMIT']],
    ['SET TRANSACTION after a statement fails', ['BEGIN', 'SELECT 1', 'SET TRANSACTION READ WRITE', 'ROLLBACK']],
    // SHOW of an unknown pgproxy.* name fails on PostgreSQL as in pgproxy (which answers it itself).
    ['an error pgproxy answers fails the transaction pgproxy opened', ['BEGIN', 'SHOW pgproxy.nope', 'SELECT 1', 'COMMIT', 'SELECT 1']],
    ['an error pgproxy answers fails the transaction on a node', ['BEGIN', 'SELECT 1', 'SHOW pgproxy.nope', 'SELECT 1', 'COMMIT', 'SELECT 1']],
    ['an error pgproxy answers after a write: COMMIT rolls back', ['BEGIN', insert('rolled-back'), 'SHOW pgproxy.nope', 'COMMIT']],
    ['ROLLBACK after an error pgproxy answered', ['BEGIN READ ONLY', 'SHOW pgproxy.nope', 'SHOW pgproxy.nope', 'ROLLBACK', 'SHOW pgproxy.nope']],
    ['a session setting first, kept after COMMIT', ['BEGIN', `SET statement_timeout = '5min'`, 'COMMIT', 'SHOW statement_timeout', 'RESET statement_timeout']],
  ];

  for (const [name, steps] of scenarios) {
    it(`simple protocol: ${name}`, async () => {
      await sameAsPostgres(steps);
    });
  }

  for (const [name, steps] of scenarios) {
    it(`extended protocol: ${name}`, async () => {
      await sameAsPostgres(steps.map((s) => `ext:${s}`));
    });
  }

  it('a pipeline of queries in one write, with an error inside the transaction', async () => {
    const viaProxy = await connect(proxy.port);
    const direct = await connect(primaryPort);
    const steps = ['SET default_transaction_read_only = on', 'BEGIN', 'SET TRANSACTION READ WRITE', insert('pipelined'), 'SELECT 1/0', 'SELECT 1', 'ROLLBACK', 'BEGIN', 'COMMIT', 'RESET default_transaction_read_only'];
    try {
      const all = Buffer.concat(steps.map(frames));
      viaProxy.send(all);
      direct.send(all);
      expect(lines(await viaProxy.readReady(steps.length, 10_000))).toEqual(lines(await direct.readReady(steps.length, 10_000)));
    } finally {
      await viaProxy.end();
      await direct.end();
    }
  });

  it('BEGIN and its first statements in one extended batch', async () => {
    const viaProxy = await connect(proxy.port);
    const direct = await connect(primaryPort);
    const batch = (sql: string[]): Buffer =>
      Buffer.concat([
        ...sql.flatMap((s) => [serialize.parse({ name: '', text: s }), serialize.bind({ statement: '', portal: '', values: [] }), serialize.execute({ portal: '', rows: 0 })]),
        serialize.sync(),
      ]);
    try {
      for (const b of [batch(['BEGIN', 'SELECT 1', insert('in-batch')]), batch(['COMMIT']), batch(['BEGIN READ ONLY', 'SELECT 1']), batch(['SELECT 1/0', 'SELECT 1']), batch(['ROLLBACK'])]) {
        viaProxy.send(b);
        direct.send(b);
        expect(lines(await viaProxy.readUntilReady())).toEqual(lines(await direct.readUntilReady()));
      }
    } finally {
      await viaProxy.end();
      await direct.end();
    }
  });
});

describe('where the transaction runs', () => {
  it('SET default_transaction_read_only = on; BEGIN; SET TRANSACTION READ WRITE: the transaction runs on the primary (simple and extended)', async () => {
    for (const ext of [false, true]) {
      const who = `rw-primary-${ext ? 'ext' : 'simple'}`;
      const steps = ['SET default_transaction_read_only = on', 'BEGIN', 'SET TRANSACTION READ WRITE', insert(who), 'COMMIT'].map((s) => (ext ? `ext:${s}` : s));
      const c = await connect(proxy.port);
      try {
        expect((await run(c, steps)).map((l) => l.at(-2))).toEqual(['C SET', 'C BEGIN', 'C SET', 'C INSERT 0 1', 'C COMMIT']);
      } finally {
        await c.end();
      }
      const direct = await connectNode(info, 0);
      try {
        expect((await direct.query(`SELECT port FROM ${T} WHERE who = $1`, [who])).rows).toEqual([{ port: primaryPort }]);
      } finally {
        await direct.end();
      }
    }
  });

  it('BEGIN READ ONLY, SET TRANSACTION READ ONLY first, and the default read-only: the whole transaction on one standby', async () => {
    await withProxyClient(proxy, info, async (c) => {
      const port = async (): Promise<number> => (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;
      for (const begin of [['BEGIN READ ONLY'], ['BEGIN', 'SET TRANSACTION READ ONLY'], ['SET default_transaction_read_only = on', 'BEGIN']]) {
        for (const sql of begin) await c.query(sql);
        const first = await port();
        expect(standbyPorts, begin.join('; ')).toContain(first);
        expect(await port()).toBe(first);
        expect((await c.query<{ ro: string }>('SHOW transaction_read_only')).rows[0]).toEqual({ transaction_read_only: 'on' });
        await c.query('COMMIT');
      }
      await c.query('RESET default_transaction_read_only');
      // A plain BEGIN: its first statement decides (a write: the primary).
      await c.query('BEGIN');
      expect((await c.query<{ p: number }>(`${insert('plain-begin')} RETURNING port AS p`)).rows[0]!.p).toBe(primaryPort);
      expect(await port()).toBe(primaryPort);
      await c.query('COMMIT');
    });
  });
});
