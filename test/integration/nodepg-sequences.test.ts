// Message sequences of node-postgres' own test suites (scripts/node-postgres-suites.ts) that went wrong through
// pgproxy, sent with the raw protocol client to the primary directly and through pgproxy, configured as the sample
// pgproxy.yaml is (weights 0/1/1, read_your_writes: session). PostgreSQL's answer is the expected one.
//
// - pg-copy-streams' COPY FROM STDIN (node-postgres gh-issues/699): a Query whose COPY may write, then CopyData
//   and CopyDone.
// - pg-cursor / pg-query-stream: Parse, Bind of a named portal, Describe, Flush right after the login (a client
//   whose connect() was not awaited), then Execute with a row limit and Flush, batch after batch, then Close and
//   Sync ("client options uses custom types", "Async iterator can read with delays", "pauses").
// - A client that ends its connection while the replies to its last messages are on their way (pg's
//   Client.end() with a query in flight): the next client of that pooled backend connection must be answered.
// - A client ending its own backend with pg_terminate_backend(pg_backend_pid()) (query-error-handling tests):
//   other clients' writes must go on working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { startChildProxy } from './helpers/proto-child.js';
import { startTestProxy } from './helpers/proxy.js';
import { errorCodes, lastReady, type Msg, ProtoClient, rows, serialize, tags, types } from './helpers/proto-client.js';

const info = sharedCluster();
const primary = info.nodes[0]!;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info, { routing: { read_your_writes: 'session' } });
});

afterAll(async () => {
  await proxy?.close();
});

type Where = 'direct' | 'pgproxy';

function connect(where: Where, through: RunningProxy = proxy): Promise<ProtoClient> {
  const at = where === 'direct' ? { host: primary.host, port: primary.port } : { host: through.host, port: through.port };
  return ProtoClient.connect({ ...at, user: info.users.app.name, password: info.users.app.password, database: info.database });
}

/** Runs `fn` on a new connection to each endpoint; the connection is closed afterwards. */
async function onBoth<R>(fn: (c: ProtoClient, where: Where) => Promise<R>): Promise<Record<Where, R>> {
  const out: Partial<Record<Where, R>> = {};
  for (const where of ['direct', 'pgproxy'] as const) {
    const c = await connect(where);
    try {
      out[where] = await fn(c, where);
    } finally {
      if (c.closed) c.destroy();
      else await c.end();
    }
  }
  return out as Record<Where, R>;
}

/** The replies to a whole exchange as comparable facts: message types, command tags, errors, last status. */
function summary(msgs: readonly Msg[]): { types: string; tags: string[]; errors: string[]; status: string } {
  return { types: types(msgs), tags: tags(msgs), errors: errorCodes(msgs), status: lastReady(msgs) };
}

describe('COPY FROM STDIN (pg-copy-streams, node-postgres gh-issues/699)', () => {
  it('a COPY FROM STDIN that may write, with its rows and CopyDone, answers as PostgreSQL does', async () => {
    const r = await onBoth(async (c) => {
      const created = await c.query('CREATE TEMP TABLE employee (id integer, fname varchar(400), lname varchar(400))');
      c.send(serialize.query('COPY employee FROM STDIN'));
      const start = await c.read();
      if (start.type !== 'G') return { created: summary(created), copy: summary([start, ...(await c.collectReady(1, 5_000))]), count: null };
      for (let i = 1; i <= 5; i++) c.send(serialize.copyData(Buffer.from(`1\ttest${i}\tuser${i}\n`)));
      c.send(serialize.copyDone());
      const copy = [start, ...(await c.collectReady(1, 5_000))];
      const count = c.closed ? null : (rows(await c.query('SELECT count(*) FROM employee'))[0]?.[0] ?? null);
      return { created: summary(created), copy: summary(copy), count };
    });
    expect(r.direct).toEqual({ created: { types: 'CZ', tags: ['CREATE TABLE'], errors: [], status: 'I' }, copy: { types: 'GCZ', tags: ['COPY 5'], errors: [], status: 'I' }, count: '5' });
    expect(r.pgproxy).toEqual(r.direct);
  });
});

describe('cursors opened with Flush (pg-cursor, pg-query-stream)', () => {
  interface CursorRun {
    opened: string;
    /** Per Execute: the message types of its answer ('D...s' while rows remain, 'D...C' at the end). */
    batches: string[];
    values: string[];
    closed: string;
  }

  /**
   * What pg-cursor sends: Parse, Bind of portal C_1, Describe of the portal, Flush (pipelined right after the
   * login); then Execute(C_1, batch) + Flush until CommandComplete, pausing `pauseMs` between batches; then Close
   * of the portal and Sync. Every read has a 5 s limit: a message pgproxy holds fails the test, never hangs it.
   */
  async function cursor(c: ProtoClient, sql: string, batch: number, pauseMs: number): Promise<CursorRun> {
    c.send(serialize.parse({ text: sql }), serialize.bind({ portal: 'C_1' }), serialize.describe({ type: 'P', name: 'C_1' }), serialize.flush());
    const opened = types(await c.readUntil((m) => m.type === 'T' || m.type === 'n' || m.type === 'E'));
    const run: CursorRun = { opened, batches: [], values: [], closed: '' };
    for (;;) {
      c.send(serialize.execute({ portal: 'C_1', rows: batch }), serialize.flush());
      const answer = await c.readUntil((m) => m.type === 's' || m.type === 'C' || m.type === 'E');
      run.batches.push(types(answer));
      run.values.push(...rows(answer).map((r) => r[0] ?? 'NULL'));
      if (answer.at(-1)!.type !== 's') break;
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    c.send(serialize.close({ type: 'P', name: 'C_1' }), serialize.sync());
    run.closed = types(await c.readUntilReady());
    return run;
  }

  it('"uses custom types from client config": one batch of 100 on a connection used at once after login', async () => {
    const r = await onBoth((c) => cursor(c, 'SELECT * FROM generate_series(0, 10) num', 100, 0));
    expect(r.direct).toEqual({ opened: '12T', batches: ['DDDDDDDDDDDC'], values: Array.from({ length: 11 }, (_, i) => String(i)), closed: '3Z' });
    expect(r.pgproxy).toEqual(r.direct);
  });

  it('"Async iterator can read with delays": 201 batches of one row, 1 ms apart', async () => {
    const r = await onBoth((c) => cursor(c, 'SELECT * FROM generate_series(0, 200) num', 1, 1));
    expect(r.direct.batches).toHaveLength(202);
    expect(r.direct.batches.slice(0, 201).every((b) => b === 'Ds')).toBe(true);
    expect(r.direct.batches[201]).toBe('C');
    expect(r.pgproxy).toEqual(r.direct);
  });

  it('"pauses": batches of two rows with a parameter', async () => {
    const r = await onBoth(async (c) => {
      c.send(serialize.parse({ text: 'SELECT * FROM generate_series(0, $1) num' }), serialize.bind({ portal: 'C_1', values: ['200'] }), serialize.describe({ type: 'P', name: 'C_1' }), serialize.flush());
      const opened = types(await c.readUntil((m) => m.type === 'T' || m.type === 'E'));
      let batches = 0;
      let values = 0;
      for (;;) {
        c.send(serialize.execute({ portal: 'C_1', rows: 2 }), serialize.flush());
        const answer = await c.readUntil((m) => m.type === 's' || m.type === 'C' || m.type === 'E');
        batches++;
        values += rows(answer).length;
        if (answer.at(-1)!.type !== 's') break;
      }
      c.send(serialize.close({ type: 'P', name: 'C_1' }), serialize.sync());
      return { opened, batches, values, closed: types(await c.readUntilReady()) };
    });
    expect(r.direct).toEqual({ opened: '12T', batches: 101, values: 201, closed: '3Z' });
    expect(r.pgproxy).toEqual(r.direct);
  });
});

describe('a client that leaves while its last replies arrive (pg Client.end() with a query in flight)', () => {
  // pg-query-stream's "close", "early close" and "Async iterator ... break" tests end their client while the
  // replies to the cursor's Close and Sync are on their way; the next client of that pooled backend connection
  // hung through pgproxy ("uses custom types from client config", "error receives error on stream", ...): its
  // messages reached PostgreSQL, whose answers were never read. Here: a read and the end of the socket at once,
  // then another client's read (weights 0/1/1: on the same standby's pool half the time). It does not happen
  // on every round: the replies must arrive after the client's end and before its socket's 'close', so the
  // sequence is repeated, with a bound on each answer. pgproxy runs in a process of its own (dist/, as npm test
  // builds it), as deployed: in this process its event loop would also run the clients and hide the window.
  it('the next client of the same node is answered every time', async () => {
    const child = await startChildProxy(info, { routing: { read_your_writes: 'session' } });
    try {
      for (const where of ['direct', 'pgproxy'] as const) {
        const at = where === 'direct' ? { host: primary.host, port: primary.port } : { host: child.host, port: child.port };
        const login = { ...at, user: info.users.app.name, password: info.users.app.password, database: info.database };
        for (let round = 0; round < 300; round++) {
          const leaving = await ProtoClient.connect(login);
          leaving.send(serialize.query('SELECT 1'));
          leaving.socket.end();
          const next = await ProtoClient.connect(login);
          try {
            next.send(serialize.query('SELECT 1'));
            const answer = await next.collectReady(1, 5_000);
            expect({ where, round, ...summary(answer) }).toEqual({ where, round, types: 'TDCZ', tags: ['SELECT 1'], errors: [], status: 'I' });
          } finally {
            next.destroy();
            leaving.destroy();
          }
        }
      }
    } finally {
      await child.stop();
    }
  });
});

describe('a client that ends its own backend (query-error-handling tests)', () => {
  it("other clients' writes go on working", async () => {
    // A proxy of its own, without health checks after the first: what the kill does to the topology stays.
    const own = await startTestProxy(info, { routing: { read_your_writes: 'session' }, health_check: { period_ms: 600_000 } });
    try {
      for (const where of ['direct', 'pgproxy'] as const) {
        const other = await connect(where, own);
        const killer = await connect(where, own);
        try {
          killer.send(serialize.query('SELECT pg_terminate_backend(pg_backend_pid())'));
          const answer = await killer.collectReady(1, 5_000);
          expect(errorCodes(answer), `${where}: the killer's statement fails`).toHaveLength(1);
          const write = await other.query('CREATE TEMP TABLE after_kill (id int)');
          expect({ where, ...summary(write) }).toEqual({ where, types: 'CZ', tags: ['CREATE TABLE'], errors: [], status: 'I' });
        } finally {
          killer.destroy();
          await other.end();
        }
      }
    } finally {
      await own.close();
    }
  });
});
