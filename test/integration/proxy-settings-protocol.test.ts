// pgproxy's own settings (pgproxy.*) in the extended protocol and in queries with other statements: the messages
// pgproxy answers with (compared with PostgreSQL's for one of its own settings, sent to the primary directly),
// errors and Sync, pipelines and batches mixing them with statements that run on nodes (where those ran is what
// the servers say), and the refusal of a simple Query mixing them. proxy-settings.test.ts has the SET / SHOW forms.
import { describe, expect, it } from 'vitest';
import { connectNode, sharedCluster } from './helpers/cluster.js';
import { pbdes, replyLines, showValue, useAppProxy } from './helpers/exchange.js';
import { type Msg, pbe, serialize } from './helpers/proto-client.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
const standbyPorts = info.nodes.slice(1).map((n) => n.port);
const T = `pxp_${process.pid}`;
const app = useAppProxy(info, [`CREATE TABLE ${T} (id int primary key, v text)`]);
const { connectProxy, connectPrimary, exchange } = app;
const lines = (msgs: readonly Msg[]): string[] => replyLines(msgs);

const show = showValue;

describe('the extended protocol', () => {

  it('SET pgproxy.x gets ParseComplete, BindComplete, NoData, CommandComplete SET, ReadyForQuery, like a SET on PostgreSQL', async () => {
    const c = await connectProxy();
    const direct = await connectPrimary();
    try {
      c.send(pbdes('SET pgproxy.route = primary'));
      const got = lines(await c.readUntilReady());
      direct.send(pbdes(`SET work_mem = '2MB'`));
      expect(got).toEqual(lines(await direct.readUntilReady()));
      expect(got).toEqual(['1', '2', 'n', 'C SET', 'Z I']);
      expect(await show(c, 'pgproxy.route')).toBe('primary');
      // Describe of the statement: no parameters, no data.
      c.send(serialize.parse({ name: 'px_set', text: 'SET pgproxy.route = auto' }), serialize.describe({ type: 'S', name: 'px_set' }), serialize.sync());
      direct.send(serialize.parse({ name: 'pg_set', text: `SET work_mem = '3MB'` }), serialize.describe({ type: 'S', name: 'pg_set' }), serialize.sync());
      expect(lines(await c.readUntilReady())).toEqual(lines(await direct.readUntilReady()));
      // Executed later by name, twice.
      for (let i = 0; i < 2; i++) {
        c.send(serialize.bind({ statement: 'px_set', portal: '', values: [] }), serialize.execute({ portal: '', rows: 0 }), serialize.sync());
        expect(lines(await c.readUntilReady())).toEqual(['2', 'C SET', 'Z I']);
      }
      expect(await show(c, 'pgproxy.route')).toBe('auto');
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('SHOW pgproxy.x answers with a row description on Describe and the row on Execute', async () => {
    const c = await connectProxy();
    const direct = await connectPrimary();
    try {
      c.send(pbdes('SHOW pgproxy.route'));
      direct.send(pbdes('SHOW work_mem'));
      const got = await c.readUntilReady();
      expect(lines(got).map((l) => (l.startsWith('D') ? 'D' : l))).toEqual(lines(await direct.readUntilReady()).map((l) => (l.startsWith('D') ? 'D' : l)));
      expect(lines(got)).toEqual(['1', '2', 'T', 'D ["auto"]', 'C SHOW', 'Z I']);
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('SHOW of an unknown pgproxy.* name fails at Parse, as SHOW of an unknown name does on PostgreSQL', async () => {
    const c = await connectProxy();
    const direct = await connectPrimary();
    try {
      for (const client of [c, direct]) client.send(pbdes('SHOW pgproxy.nope'));
      const got = lines(await c.readUntilReady());
      expect(got).toEqual(lines(await direct.readUntilReady()));
      expect(got).toEqual(['E ERROR 42704', 'Z I']);
    } finally {
      await c.end();
      await direct.end();
    }
  });

  it('an error at Execute skips the rest of the batch to Sync; a pipeline of pgproxy.* and other statements keeps its order', async () => {
    const c = await connectProxy();
    try {
      c.send(
        Buffer.concat([
          serialize.parse({ name: '', text: 'SET pgproxy.nope = 1' }),
          serialize.bind({ statement: '', portal: '', values: [] }),
          serialize.execute({ portal: '', rows: 0 }),
          serialize.parse({ name: '', text: 'SELECT 1' }),
          serialize.bind({ statement: '', portal: '', values: [] }),
          serialize.execute({ portal: '', rows: 0 }),
          serialize.sync(),
        ]),
      );
      expect(lines(await c.readUntilReady())).toEqual(['1', '2', 'E ERROR 42704', 'Z I']);
      // Several units in one write: each answered in turn, wherever it runs.
      c.send(
        Buffer.concat([
          pbdes(`SELECT inet_server_port()`),
          pbdes('SET pgproxy.route = primary'),
          pbdes(`SELECT inet_server_port()`),
          pbdes('SHOW pgproxy.route'),
          pbdes('RESET pgproxy.route'),
          pbdes(`SELECT inet_server_port()`),
        ]),
      );
      const got = lines(await c.readReady(6));
      const ports = got.filter((l) => l.startsWith('D [')).map((l) => JSON.parse(l.slice(2)) as string[]);
      expect(got.map((l) => (l.startsWith('D') ? 'D' : l))).toEqual([
        ...['1', '2', 'T', 'D', 'C SELECT 1', 'Z I'],
        ...['1', '2', 'n', 'C SET', 'Z I'],
        ...['1', '2', 'T', 'D', 'C SELECT 1', 'Z I'],
        ...['1', '2', 'T', 'D', 'C SHOW', 'Z I'],
        ...['1', '2', 'n', 'C RESET', 'Z I'],
        ...['1', '2', 'T', 'D', 'C SELECT 1', 'Z I'],
      ]);
      expect(standbyPorts).toContain(Number(ports[0]![0]));
      expect(Number(ports[1]![0])).toBe(primaryPort);
      expect(ports[2]).toEqual(['primary']);
      expect(standbyPorts).toContain(Number(ports[3]![0]));
    } finally {
      await c.end();
    }
  });
});

describe('pgproxy.* statements inside an extended batch', () => {
  it('a batch mixing them with other statements (one Sync) runs each in order, on the node the route says', async () => {
    const c = await connectProxy();
    try {
      c.send(
        Buffer.concat([
          pbe('SET pgproxy.route = primary'),
          pbe('SELECT inet_server_port()'),
          pbe('SHOW pgproxy.route'),
          pbe(`INSERT INTO ${T} VALUES (300, 'in batch')`),
          pbe('RESET pgproxy.route'),
          pbe('SELECT inet_server_port()'),
          serialize.sync(),
        ]),
      );
      const got = lines(await c.readUntilReady());
      expect(got.map((l) => (l.startsWith('D') ? 'D' : l))).toEqual([
        ...['1', '2', 'C SET'],
        ...['1', '2', 'D', 'C SELECT 1'],
        ...['1', '2', 'D', 'C SHOW'],
        ...['1', '2', 'C INSERT 0 1'],
        ...['1', '2', 'C RESET'],
        ...['1', '2', 'D', 'C SELECT 1'],
        'Z I',
      ]);
      const values = got.filter((l) => l.startsWith('D')).map((l) => (JSON.parse(l.slice(2)) as string[])[0]);
      expect(values.slice(0, 2)).toEqual([String(primaryPort), 'primary']);
      expect(standbyPorts.map(String)).toContain(values[2]);
    } finally {
      await c.end();
    }
    const direct = await connectNode(info, 0);
    try {
      expect((await direct.query(`SELECT v FROM ${T} WHERE id = 300`)).rows).toEqual([{ v: 'in batch' }]);
    } finally {
      await direct.end();
    }
  });
});

describe('statements mixing pgproxy.* with others', () => {
  it('a simple Query mixing them is refused with 0A000 and runs nothing; one of pgproxy.* statements only runs them all', async () => {
    const c = await connectProxy();
    try {
      for (const sql of [`SET pgproxy.route = primary; INSERT INTO ${T} VALUES (100, 'mixed')`, `INSERT INTO ${T} VALUES (100, 'mixed'); SHOW pgproxy.route`, 'SET work_mem = 1024; RESET pgproxy.route']) {
        expect(await exchange(c, sql), sql).toEqual(['E ERROR 0A000', 'Z I']);
      }
      expect(await show(c, 'pgproxy.route')).toBe('auto');
      expect(await show(c, 'work_mem')).not.toBe('1MB');
      const direct = await connectNode(info, 0);
      try {
        expect((await direct.query(`SELECT count(*)::int AS n FROM ${T} WHERE id = 100`)).rows[0].n).toBe(0);
      } finally {
        await direct.end();
      }
      expect(await exchange(c, 'SET pgproxy.route = primary; SET pgproxy.max_lag_ms = 10; SHOW pgproxy.route')).toEqual(['C SET', 'C SET', 'T', 'D ["primary"]', 'C SHOW', 'Z I']);
      // The first failing statement ends the query, as in PostgreSQL.
      expect(await exchange(c, 'SET pgproxy.route = auto; SET pgproxy.nope = 1; SET pgproxy.max_lag_ms = 20')).toEqual(['C SET', 'E ERROR 42704', 'Z I']);
      expect(await show(c, 'pgproxy.max_lag_ms')).toBe('10');
    } finally {
      await c.end();
    }
  });
});
