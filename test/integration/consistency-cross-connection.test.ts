// Reads that must see acknowledged writes, with standby replay paused on the shared cluster (so a read that is
// sent to a standby too early is stale for as long as the test wants): read_your_writes database (any client's
// writes, across connections), session (the connection's own), off; LSN tokens carried from one pgproxy
// instance to another (SET pgproxy.min_lsn, the min_lsn hint); COPY then count on one connection with the
// default configuration. Where a read ran is proven by the servers (inet_server_port(), pg_stat_statements);
// each "sees it" assertion has a control that reads stale under the same conditions, so that the check can fail.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { eventually, proxyClient, run, startTestProxy, statementCalls } from './helpers/proxy.js';
import { commandTag, dataRow, ProtoClient, readyStatus, serialize } from './helpers/proto-client.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
const standbyPorts = info.nodes.slice(1).map((n) => n.port);
const T = `ccx_${process.pid}`;
const PYTHON = '/usr/bin/python3';
let cluster: DevCluster;
/** Everything a test started, stopped after it (also when it fails). */
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  cluster = await sharedClusterHandle();
  const tables = ['db', 'db_fn', 'db_loop', 'session', 'session_lazy', 'off', 'token', 'token_wait', 'copy_simple', 'copy_ext', 'copy_off', 'copy_asyncpg'];
  for (const t of tables) await cluster.query(0, `CREATE TABLE ${T}_${t} (id int primary key, v text)`);
  await cluster.query(0, `CREATE FUNCTION ${T}_put(i int, t text) RETURNS int LANGUAGE sql AS $$ INSERT INTO ${T}_db_fn VALUES (i, t) RETURNING id $$`);
  await cluster.query(0, `GRANT ALL ON ${tables.map((t) => `${T}_${t}`).join(', ')} TO ${info.users.app.name}`);
  await cluster.waitForReplay();
});

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  await resumeReplay();
  await cluster.waitForReplay();
});

afterAll(async () => {
  await resumeReplay().catch(() => undefined);
});

async function pauseReplay(): Promise<void> {
  for (const i of [1, 2]) await cluster.query(i, 'SELECT pg_wal_replay_pause()');
}

async function resumeReplay(): Promise<void> {
  for (const i of [1, 2]) await cluster.query(i, 'SELECT pg_wal_replay_resume()');
}

async function proxyWith(routing: Record<string, unknown>): Promise<RunningProxy> {
  const proxy = await startTestProxy(info, { routing });
  cleanup.push(() => proxy.close());
  // Both standbys up, streaming, and measured by the health checker (they take reads).
  await eventually(() => proxy.context.topology.nodes.slice(1).every((n) => n.up && n.role === 'standby' && n.following === true && n.lagBytes !== null), 20_000, 50, 'standbys up');
  return proxy;
}

async function client(proxy: RunningProxy, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = proxyClient(proxy, info, info.users.app, extra);
  await c.connect();
  cleanup.push(() => c.end());
  return c;
}

/** Reads row `id` of `table`: whether it was there, and the port of the server that answered. */
async function readRow(c: pg.Client, table: string, id: number, prefix = ''): Promise<{ seen: boolean; port: number }> {
  const r = await c.query<{ n: number; p: number }>(`${prefix}SELECT count(*)::int AS n, inet_server_port() AS p FROM ${T}_${table} WHERE id = $1`, [id]);
  return { seen: r.rows[0]!.n === 1, port: r.rows[0]!.p };
}

describe('read_your_writes: database (across connections)', () => {
  it('a read on another connection waits for a standby to replay the write, and runs there once it has (proven on the servers)', async () => {
    const proxy = await proxyWith({ read_your_writes: 'database', read_your_writes_wait_ms: 30_000 });
    const a = await client(proxy);
    const b = await client(proxy);
    const notices: string[] = [];
    b.on('notice', (n) => notices.push(n.message ?? ''));
    await b.query('SET pgproxy.explain = on');
    await readRow(b, 'db', 0); // b's link and the catalog facts are in place before replay stops
    const waitsBefore = proxy.context.stats.replayWaits.standby;
    await pauseReplay();
    await a.query(`INSERT INTO ${T}_db VALUES (1, 'written on a')`);
    // The standbys have not replayed it: the read waits (pgproxy polls their positions) ...
    const read = b.query<{ v: string; p: number }>(`SELECT v, inet_server_port() AS p FROM ${T}_db WHERE id = 1`);
    await eventually(() => proxy.context.replay.waiting > 0, 20_000, 5, 'the read waits for a standby');
    // ... until replay resumes: then a standby serves it.
    await resumeReplay();
    const r = await read;
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]!.v).toBe('written on a');
    expect(standbyPorts).toContain(r.rows[0]!.p);
    const marker = `SELECT v, inet_server_port() AS p FROM ${T}_db WHERE`;
    expect(await statementCalls(info, 0, marker)).toBe(0);
    expect((await statementCalls(info, 1, marker)) + (await statementCalls(info, 2, marker))).toBe(1);
    // pgproxy recorded the wait, and explained it to b.
    expect(proxy.context.stats.replayWaits.standby).toBe(waitsBefore + 1);
    const node = info.nodes.find((n) => n.port === r.rows[0]!.p)!.name;
    expect(notices.some((t) => new RegExp(`^pgproxy: ${node} \\(standby\\): waited \\d+ ms for ${node} to replay [0-9A-F]+/[0-9A-F]+`).test(t)), notices.join('\n')).toBe(true);
  });

  it('with replay paused, every read on another connection sees the write just acknowledged (0 stale); writes through a function, a transaction, the extended protocol', async () => {
    const proxy = await proxyWith({ read_your_writes: 'database' });
    const a = await client(proxy);
    const b = await client(proxy);
    await readRow(b, 'db_loop', 0);
    await pauseReplay();
    let stale = 0;
    for (let id = 1; id <= 20; id++) {
      switch (id % 4) {
        case 0:
          await a.query(`INSERT INTO ${T}_db_loop VALUES (${id}, 'simple')`);
          break;
        case 1:
          await a.query(`INSERT INTO ${T}_db_loop VALUES ($1, 'extended')`, [id]);
          break;
        case 2:
          await a.query('BEGIN');
          await a.query(`INSERT INTO ${T}_db_loop VALUES ($1, 'in a transaction')`, [id]);
          await a.query('COMMIT');
          break;
        default:
          await a.query(`WITH w AS (INSERT INTO ${T}_db_loop VALUES ($1, 'cte') RETURNING id) SELECT id FROM w`, [id]);
      }
      if (!(await readRow(b, 'db_loop', id)).seen) stale++;
    }
    expect(stale).toBe(0);
    // A write through a (volatile) function: its unit ran on the primary and cannot be proved read-only.
    expect((await a.query(`SELECT ${T}_put(1, 'through a function') AS id`)).rows).toEqual([{ id: 1 }]);
    expect(await readRow(b, 'db_fn', 1)).toEqual({ seen: true, port: primaryPort });
    // Control: the same read with read_your_writes off goes to a paused standby and misses the row.
    const off = await proxyWith({ read_your_writes: 'off' });
    const c = await client(off);
    const control = await readRow(c, 'db_fn', 1);
    expect(standbyPorts).toContain(control.port);
    expect(control.seen).toBe(false);
  });

  it('session: a connection reads its own write; off: not even that (replay paused)', async () => {
    const session = await proxyWith({ read_your_writes: 'session' });
    const a = await client(session);
    const b = await client(session);
    await readRow(b, 'session', 0);
    await pauseReplay();
    await a.query(`INSERT INTO ${T}_session VALUES (1, 'a')`);
    expect(await readRow(a, 'session', 1)).toEqual({ seen: true, port: primaryPort });
    // b is another connection: session mode promises it nothing (it may read stale), whatever it reads.
    await readRow(b, 'session', 1);
    const off = await proxyWith({ read_your_writes: 'off' });
    const c = await client(off);
    await c.query(`INSERT INTO ${T}_off VALUES (1, 'c')`);
    const own = await readRow(c, 'off', 1);
    expect(standbyPorts).toContain(own.port);
    expect(own.seen).toBe(false);
  });
});

describe('read_your_writes: session (the position is fetched by the first read after writes)', () => {
  it('writes alone fetch nothing; a read after them, pipelined right behind them or not, sees them; once replayed, a standby serves it', async () => {
    const proxy = await proxyWith({ read_your_writes: 'session' });
    const c = await ProtoClient.connect({ host: proxy.host, port: proxy.port, user: info.users.app.name, password: info.users.app.password, database: info.database });
    cleanup.push(() => c.end());
    const fetches = (): number => proxy.context.replay.insertLsnFetches;
    const count = (id: number) => `SELECT count(*)::int, inet_server_port() FROM ${T}_session_lazy WHERE id = ${id}`;
    const rowsOf = (msgs: Awaited<ReturnType<ProtoClient['readUntilReady']>>) => msgs.filter((m) => m.type === 'D').map((m) => dataRow(m.body).map(Number));
    await c.query(count(0)); // the session's standby link is in place before replay stops
    await pauseReplay();
    const before = fetches();
    for (let id = 1; id <= 3; id++) await c.query(`INSERT INTO ${T}_session_lazy VALUES (${id}, 'simple')`);
    expect(fetches()).toBe(before);
    // A simple-protocol INSERT and the read of its row, sent together: the read waits for the INSERT's reply.
    c.send(Buffer.concat([serialize.query(`INSERT INTO ${T}_session_lazy VALUES (4, 'pipelined')`), serialize.query(count(4))]));
    await c.readUntilReady(10_000);
    expect(rowsOf(await c.readUntilReady(10_000))).toEqual([[1, primaryPort]]);
    // The same in the extended protocol: two units in one write.
    const unit = (sql: string) => [serialize.parse({ name: '', text: sql }), serialize.bind({ statement: '', portal: '', values: [] }), serialize.execute({ portal: '', rows: 0 }), serialize.sync()];
    c.send(Buffer.concat([...unit(`INSERT INTO ${T}_session_lazy VALUES (5, 'extended')`), ...unit(count(5))]));
    await c.readUntilReady(10_000);
    expect(rowsOf(await c.readUntilReady(10_000))).toEqual([[1, primaryPort]]);
    expect(fetches()).toBe(before + 2);
    // Once the standbys replay the writes, the session's reads go to a standby again.
    await resumeReplay();
    await cluster.waitForReplay();
    await eventually(async () => standbyPorts.includes(rowsOf(await c.query(count(3)))[0]![1]!), 20_000, 50, 'a standby serves the read');
    expect(rowsOf(await c.query(count(5)))[0]![0]).toBe(1);
  });
});

describe('LSN tokens across pgproxy instances', () => {
  it('a token from SHOW pgproxy.last_commit_lsn on one instance, SET pgproxy.min_lsn or a min_lsn hint on another: the read sees the write', async () => {
    const writer = await proxyWith({});
    const reader = await proxyWith({});
    const a = await client(writer);
    const b = await client(reader);
    await readRow(b, 'token', 0);
    await pauseReplay();
    await a.query(`INSERT INTO ${T}_token VALUES (1, 'tokened')`);
    const token = (await a.query<{ 'pgproxy.last_commit_lsn': string }>('SHOW pgproxy.last_commit_lsn')).rows[0]!['pgproxy.last_commit_lsn'];
    expect(token).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    // Without the token the other instance reads a standby that has not replayed the write.
    const without = await readRow(b, 'token', 1);
    expect(standbyPorts).toContain(without.port);
    expect(without.seen).toBe(false);
    // With it (no standby has replayed it: after the wait, the primary).
    await b.query(`SET pgproxy.min_lsn = '${token}'`);
    expect(await readRow(b, 'token', 1)).toEqual({ seen: true, port: primaryPort });
    await b.query('RESET pgproxy.min_lsn');
    expect((await readRow(b, 'token', 1)).seen).toBe(false);
    // The hint holds for its statement only.
    expect(await readRow(b, 'token', 1, `/* pgproxy: min_lsn=${token} */ `)).toEqual({ seen: true, port: primaryPort });
    expect((await readRow(b, 'token', 1)).seen).toBe(false);
    // A token ahead of every node (commits lost in a failover, or made up) is served by the primary's position.
    await b.query(`SET pgproxy.min_lsn = 'FFFFFFFF/0'`);
    expect(await readRow(b, 'token', 1)).toEqual({ seen: true, port: primaryPort });
  });

  it('a read with a token waits for a standby to replay it and runs there once it has', async () => {
    const writer = await proxyWith({ read_your_writes: 'off' });
    const reader = await proxyWith({ read_your_writes_wait_ms: 30_000 });
    const a = await client(writer);
    const b = await client(reader);
    await readRow(b, 'token_wait', 0);
    await pauseReplay();
    await a.query(`INSERT INTO ${T}_token_wait VALUES (1, 'tokened')`);
    // With read_your_writes off the token is fetched when asked for.
    const token = (await a.query<{ t: string }>('SHOW pgproxy.last_commit_lsn')).rows[0]!;
    const lsn = Object.values(token)[0] as string;
    expect(lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const read = readRow(b, 'token_wait', 1, `/* pgproxy: min_lsn=${lsn} */ `);
    await eventually(() => reader.context.replay.waiting > 0, 20_000, 5, 'the read waits for a standby');
    await resumeReplay();
    const r = await read;
    expect(r.seen).toBe(true);
    expect(standbyPorts).toContain(r.port);
  });
});

describe('COPY, then count, on one connection (the default configuration: session)', () => {
  /** Rows as COPY text. */
  const copyRows = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => serialize.copyData(Buffer.from(`${i + 1}\trow ${i + 1}\n`)));

  async function countOn(c: ProtoClient, table: string): Promise<{ n: number; port: number }> {
    const msgs = await c.query(`SELECT count(*), inet_server_port() FROM ${T}_${table}`);
    const [n, p] = dataRow(msgs.find((m) => m.type === 'D')!.body);
    return { n: Number(n), port: Number(p) };
  }

  async function connectRaw(proxy: RunningProxy): Promise<ProtoClient> {
    const c = await ProtoClient.connect({ host: proxy.host, port: proxy.port, user: info.users.app.name, password: info.users.app.password, database: info.database });
    cleanup.push(() => c.end());
    return c;
  }

  it('COPY FROM STDIN in a simple Query and in the extended protocol: the count that follows sees every row', async () => {
    const proxy = await proxyWith({});
    expect(proxy.context.config.routing.read_your_writes).toBe('session');
    const c = await connectRaw(proxy);
    await countOn(c, 'copy_simple');
    await pauseReplay();
    c.send(serialize.query(`COPY ${T}_copy_simple (id, v) FROM STDIN`));
    expect((await c.read()).type).toBe('G');
    c.send(...copyRows(100), serialize.copyDone());
    const done = await c.readUntilReady();
    expect(done.filter((m) => m.type === 'C').map((m) => commandTag(m.body))).toEqual(['COPY 100']);
    expect(await countOn(c, 'copy_simple')).toEqual({ n: 100, port: primaryPort });
    c.send(
      serialize.parse({ name: '', text: `COPY ${T}_copy_ext (id, v) FROM STDIN` }),
      serialize.bind({ statement: '', portal: '', values: [] }),
      serialize.execute({ portal: '', rows: 0 }),
      ...copyRows(50),
      serialize.copyDone(),
      serialize.sync(),
    );
    const ext = await c.readUntilReady();
    expect(ext.filter((m) => m.type === 'C').map((m) => commandTag(m.body))).toEqual(['COPY 50']);
    expect(readyStatus(ext.at(-1)!)).toBe('I');
    expect(await countOn(c, 'copy_ext')).toEqual({ n: 50, port: primaryPort });
    // Control: with read_your_writes off, the count runs on a paused standby and sees none of the rows.
    const off = await proxyWith({ read_your_writes: 'off' });
    const o = await connectRaw(off);
    o.send(serialize.query(`COPY ${T}_copy_off (id, v) FROM STDIN`), ...copyRows(10), serialize.copyDone());
    expect((await o.readUntilReady()).filter((m) => m.type === 'C').map((m) => commandTag(m.body))).toEqual(['COPY 10']);
    const stale = await countOn(o, 'copy_off');
    expect(standbyPorts).toContain(stale.port);
    expect(stale.n).toBe(0);
  });

  it('asyncpg: copy_records_to_table, then SELECT count(*), sees every row', async () => {
    const proxy = await proxyWith({});
    await pauseReplay();
    const script = [
      'import asyncio, os, asyncpg',
      'async def main():',
      "    c = await asyncpg.connect(host=os.environ['PGHOST'], port=int(os.environ['PGPORT']), user=os.environ['PGUSER'], password=os.environ['PGPASSWORD'], database=os.environ['PGDATABASE'])",
      "    await c.copy_records_to_table(os.environ['TABLE'], records=[(i, f'row {i}') for i in range(1, 501)], columns=['id', 'v'])",
      "    n = await c.fetchval(f\"SELECT count(*) FROM {os.environ['TABLE']}\")",
      "    p = await c.fetchval('SELECT inet_server_port()')",
      "    print(f'{n} {p}')",
      '    await c.close()',
      'asyncio.run(main())',
    ].join('\n');
    const r = await run(PYTHON, ['-c', script], {
      PGHOST: proxy.host,
      PGPORT: String(proxy.port),
      PGUSER: info.users.app.name,
      PGPASSWORD: info.users.app.password,
      PGDATABASE: info.database,
      TABLE: `${T}_copy_asyncpg`,
    });
    expect(r.code, r.stderr).toBe(0);
    const [n] = r.stdout.trim().split(' ');
    expect(Number(n)).toBe(500);
  });
});
