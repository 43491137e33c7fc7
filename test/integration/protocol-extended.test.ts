// The extended query protocol and the asynchronous parts of the protocol (notifications, notices, parameter
// status, cancellation) through pgproxy, driven message by message with a raw client. Where PostgreSQL decides
// the answer, the same bytes are sent to the primary directly and the replies are compared: pgproxy must be
// transparent (same message types in the same order, same contents), whichever node it picked.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { connectNode, sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { waitUntilRunning } from './helpers/load.js';
import { eventually, proxyClient, run, settled, sleep, startTestProxy } from './helpers/proxy.js';
import {
  be,
  errorCodes,
  errorFields,
  lastReady,
  type Msg,
  parameterStatus,
  parameterTypes,
  pbe,
  ProtoClient,
  readyStatus,
  rowDescription,
  rows,
  serialize,
  tags,
  types,
} from './helpers/proto-client.js';

const info = sharedCluster();
const primaryPort = info.nodes[0]!.port;
const standbyPorts = info.nodes.slice(1).map((n) => n.port);
const T = `px_ext_${process.pid}`;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
  const c = await connectNode(info, 0);
  try {
    await c.query(`CREATE TABLE ${T}_rows (id int primary key, v text)`);
    await c.query(`INSERT INTO ${T}_rows SELECT g, 'v' || g FROM generate_series(1, 5) g`);
    await c.query(`CREATE TABLE ${T}_w (id int)`);
  } finally {
    await c.end();
  }
  await (await sharedClusterHandle()).waitForReplay();
});

afterAll(async () => {
  if (proxy && !(await closesWithin(proxy, 15_000))) throw new Error(`proxy.close() did not finish within 15 s (sessions left: ${proxy.context.registry.size})`);
});

function connectProto(port: number, host = '127.0.0.1', params?: Record<string, string>): Promise<ProtoClient> {
  return ProtoClient.connect({ host, port, user: info.users.app.name, password: info.users.app.password, database: info.database, ...(params ? { params } : {}) });
}

function viaProxy(p: RunningProxy = proxy, params?: Record<string, string>): Promise<ProtoClient> {
  return connectProto(p.port, p.host, params);
}

function direct(params?: Record<string, string>): Promise<ProtoClient> {
  return connectProto(primaryPort, info.nodes[0]!.host, params);
}

/** Runs the same exchange through the proxy and directly on the primary. */
async function onBoth<R>(fn: (c: ProtoClient, where: 'proxy' | 'direct') => Promise<R>): Promise<{ proxy: R; direct: R }> {
  const out: Partial<{ proxy: R; direct: R }> = {};
  for (const where of ['proxy', 'direct'] as const) {
    const c = where === 'proxy' ? await viaProxy() : await direct();
    try {
      out[where] = await fn(c, where);
    } finally {
      await c.end();
    }
  }
  return out as { proxy: R; direct: R };
}

function notificationPayload(body: Buffer): string {
  const z = body.indexOf(0, 4);
  return body.toString('utf8', z + 1, body.indexOf(0, z + 1));
}

/** What an error says, without what differs between servers (file, line, routine). */
function errorSummary(msgs: readonly Msg[]): { S?: string; C?: string; M?: string }[] {
  return msgs.filter((m) => m.type === 'E').map((m) => {
    const f = errorFields(m.body);
    return { S: f.S, C: f.C, M: f.M };
  });
}

async function onPrimaryExec(sql: string): Promise<void> {
  const c = await connectNode(info, 0);
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** proxy.close() within `ms` (false when it hangs). */
async function closesWithin(p: RunningProxy, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([p.close().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return closed;
}

async function primaryScalar(sql: string): Promise<string> {
  const c = await connectNode(info, 0);
  try {
    const r = await c.query<{ x: string }>(`SELECT (${sql})::text AS x`);
    return r.rows[0]!.x;
  } finally {
    await c.end();
  }
}

const SYNC = serialize.sync();

describe('extended query protocol', () => {
  it('50 Parse/Bind/Execute pipelined before one Sync: replies in order, one ReadyForQuery, on a standby', async () => {
    const batch = Buffer.concat([...Array.from({ length: 50 }, (_, i) => pbe('SELECT $1::int AS n, inet_server_port() AS port', [String(i)])), SYNC]);
    const r = await onBoth(async (c) => {
      c.send(batch);
      const msgs = await c.readUntilReady(15_000);
      expect(await c.drain(300)).toEqual([]);
      return msgs;
    });
    for (const msgs of [r.proxy, r.direct]) {
      expect(types(msgs)).toBe('12DC'.repeat(50) + 'Z');
      expect(rows(msgs).map((row) => Number(row[0]))).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(lastReady(msgs)).toBe('I');
    }
    const ports = new Set(rows(r.proxy).map((row) => Number(row[1])));
    expect(ports.size).toBe(1);
    expect(standbyPorts).toContain([...ports][0]);
  });

  it('a pipeline mixing reads and writes: replies in order, one ReadyForQuery, every write done', async () => {
    const table = `${T}_mix`;
    await onPrimaryExec(`CREATE TABLE ${table} (id int)`);
    const parts: Buffer[] = [];
    for (let i = 0; i < 50; i++) parts.push(i % 2 === 0 ? pbe(`SELECT $1::int AS n`, [String(i)]) : pbe(`INSERT INTO ${table} VALUES ($1)`, [String(i)]));
    parts.push(SYNC);
    const c = await viaProxy();
    try {
      c.send(Buffer.concat(parts));
      const msgs = await c.readUntilReady(15_000);
      expect(types(msgs)).toBe('12DC12C'.repeat(25) + 'Z');
      expect(rows(msgs).map((row) => Number(row[0]))).toEqual(Array.from({ length: 25 }, (_, i) => 2 * i));
      expect(tags(msgs)).toEqual(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 'SELECT 1' : 'INSERT 0 1')));
      expect(await c.drain(300)).toEqual([]);
    } finally {
      await c.end();
    }
    expect(await primaryScalar(`SELECT count(*) FROM ${table}`)).toBe('25');
  });

  it('Flush without Sync: the replies arrive, no ReadyForQuery until the Sync', async () => {
    const r = await onBoth(async (c) => {
      c.send(pbe('SELECT 41 + $1::int AS x', ['1']), serialize.flush());
      const replies = await c.readUntil((m) => m.type === 'C', 5_000);
      const silence = await c.drain(500);
      c.send(SYNC);
      const ready = await c.readUntilReady();
      return { replies, silence, ready };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.replies)).toBe('12DC');
      expect(rows(x.replies)).toEqual([['42']]);
      expect(x.silence).toEqual([]);
      expect(types(x.ready)).toBe('Z');
      expect(readyStatus(x.ready[0]!)).toBe('I');
    }
  });

  it('Describe of a statement (ParameterDescription + RowDescription) and of a portal, as PostgreSQL answers them', async () => {
    const r = await onBoth(async (c) => {
      c.send(
        serialize.parse({ name: 'd1', text: `SELECT id, v, $1::int + 1 AS next, $2::text AS label FROM ${T}_rows WHERE id = $1` }),
        serialize.describe({ type: 'S', name: 'd1' }),
        serialize.parse({ name: 'd2', text: `INSERT INTO ${T}_w VALUES ($1)` }),
        serialize.describe({ type: 'S', name: 'd2' }),
        SYNC,
      );
      const stmt = await c.readUntilReady();
      c.send(serialize.bind({ statement: 'd1', portal: 'p1', values: ['3', 'three'] }), serialize.describe({ type: 'P', name: 'p1' }), serialize.execute({ portal: 'p1' }), SYNC);
      const portal = await c.readUntilReady();
      return { stmt, portal };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.stmt)).toBe('1tT1tnZ');
      expect(types(x.portal)).toBe('2TDCZ');
    }
    const t = (msgs: Msg[], type: string, i = 0): Buffer => msgs.filter((m) => m.type === type)[i]!.body;
    expect(parameterTypes(t(r.proxy.stmt, 't'))).toEqual([23, 25]);
    expect(rowDescription(t(r.proxy.stmt, 'T')).map((f) => f.name)).toEqual(['id', 'v', 'next', 'label']);
    // Same bytes as from the primary (table OIDs and attribute numbers are the same on physical standbys).
    expect(t(r.proxy.stmt, 't')).toEqual(t(r.direct.stmt, 't'));
    expect(t(r.proxy.stmt, 'T')).toEqual(t(r.direct.stmt, 'T'));
    expect(t(r.proxy.stmt, 't', 1)).toEqual(t(r.direct.stmt, 't', 1));
    expect(t(r.proxy.portal, 'T')).toEqual(t(r.direct.portal, 'T'));
    expect(rows(r.proxy.portal)).toEqual([['3', 'v3', '4', 'three']]);
  });

  it('Execute with maxRows=2 on a 5-row result in a transaction: PortalSuspended twice, then CommandComplete', async () => {
    const r = await onBoth(async (c) => {
      const begin = await c.query('BEGIN');
      c.send(
        serialize.parse({ text: `SELECT id, inet_server_port() AS port FROM ${T}_rows ORDER BY id` }),
        serialize.bind({ portal: 'cur' }),
        serialize.execute({ portal: 'cur', rows: 2 }),
        serialize.execute({ portal: 'cur', rows: 2 }),
        serialize.execute({ portal: 'cur', rows: 2 }),
        SYNC,
      );
      const msgs = await c.readUntilReady();
      const commit = await c.query('COMMIT');
      return { begin, msgs, commit };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.begin)).toBe('CZ');
      expect(types(x.msgs)).toBe('12DDsDDsDCZ');
      expect(lastReady(x.msgs)).toBe('T');
      expect(rows(x.msgs).map((row) => row[0])).toEqual(['1', '2', '3', '4', '5']);
      expect(tags(x.msgs)).toEqual(['SELECT 1']);
      expect(lastReady(x.commit)).toBe('I');
    }
    // Inside the transaction, on the primary.
    expect(new Set(rows(r.proxy.msgs).map((row) => Number(row[1])))).toEqual(new Set([primaryPort]));
  });

  it('portal suspension outside a transaction, within one batch on a standby', async () => {
    const r = await onBoth(async (c) => {
      c.send(
        serialize.parse({ text: `SELECT g FROM generate_series(1, 5) g` }),
        serialize.bind({}),
        serialize.execute({ rows: 2 }),
        serialize.execute({ rows: 2 }),
        serialize.execute({ rows: 2 }),
        SYNC,
      );
      return c.readUntilReady();
    });
    expect(types(r.proxy)).toBe(types(r.direct));
    expect(types(r.proxy)).toBe('12DDsDDsDCZ');
    expect(rows(r.proxy)).toEqual(rows(r.direct));
  });

  it('a named portal survives Sync inside a transaction and is fetched on in later batches', async () => {
    const r = await onBoth(async (c) => {
      const out: string[] = [];
      await c.query('BEGIN');
      c.send(serialize.parse({ text: `SELECT id FROM ${T}_rows ORDER BY id` }), serialize.bind({ portal: 'keep' }), serialize.execute({ portal: 'keep', rows: 2 }), SYNC);
      let msgs = await c.readUntilReady();
      out.push(`${types(msgs)}:${rows(msgs).join(',')}`);
      for (let i = 0; i < 2; i++) {
        c.send(serialize.execute({ portal: 'keep', rows: 2 }), SYNC);
        msgs = await c.readUntilReady();
        out.push(`${types(msgs)}:${rows(msgs).join(',')}`);
      }
      out.push(types(await c.query('COMMIT')));
      return out;
    });
    expect(r.direct).toEqual(['12DDsZ:1,2', 'DDsZ:3,4', 'DCZ:5', 'CZ']);
    expect(r.proxy).toEqual(r.direct);
  });

  it('Flush-driven batches (no Sync until the end) that move from a standby to the primary get their replies at once', async () => {
    // How asyncpg and pipelining clients work: each step is flushed and its replies awaited before the next.
    const table = `${T}_flush`;
    await onPrimaryExec(`CREATE TABLE ${table} (id int)`);
    const r = await onBoth(async (c, where) => {
      const out: string[] = [];
      c.send(pbe('SELECT 1 AS a'), serialize.flush());
      out.push(types(await c.readUntil((m) => m.type === 'C', 5_000)));
      c.send(pbe(`INSERT INTO ${table} VALUES ($1)`, [where === 'proxy' ? '1' : '2']), serialize.flush());
      out.push(types(await c.readUntil((m) => m.type === 'C' || m.type === 'E', 5_000)));
      c.send(pbe('SELECT 3 AS c'), serialize.flush());
      out.push(types(await c.readUntil((m) => m.type === 'C' || m.type === 'E', 5_000)));
      c.send(SYNC);
      out.push(types(await c.readUntilReady()));
      return out;
    });
    expect(r.direct).toEqual(['12DC', '12C', '12DC', 'Z']);
    expect(r.proxy).toEqual(r.direct);
    expect(await primaryScalar(`SELECT string_agg(id::text, ',' ORDER BY id) FROM ${table}`)).toBe('1,2');
  });

  it('an error mid-pipeline: what follows up to Sync produces nothing, ReadyForQuery I, session usable', async () => {
    const r = await onBoth(async (c) => {
      c.send(pbe('SELECT 1 AS a'), pbe(`SELECT 1/(id - $1::int) AS b FROM ${T}_rows WHERE id = 1`, ['1']), pbe('SELECT 2 AS c'), serialize.describe({ type: 'S', name: '' }), SYNC);
      const msgs = await c.readUntilReady();
      const silence = await c.drain(300);
      const after = await c.query('SELECT 3 AS d');
      return { msgs, silence, after };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.msgs)).toBe('12DC12EZ');
      expect(lastReady(x.msgs)).toBe('I');
      expect(x.silence).toEqual([]);
      expect(types(x.after)).toBe('TDCZ');
      expect(rows(x.after)).toEqual([['3']]);
    }
    expect(errorSummary(r.proxy.msgs)).toEqual(errorSummary(r.direct.msgs));
    expect(errorCodes(r.proxy.msgs)).toEqual(['22012']);
  });

  it('an error mid-pipeline inside a transaction: ReadyForQuery E, then 25P02 until ROLLBACK', async () => {
    const r = await onBoth(async (c) => {
      const begin = await c.query('BEGIN');
      c.send(pbe('SELECT 1 AS a'), pbe(`SELECT 1/(id - $1::int) AS b FROM ${T}_rows WHERE id = 1`, ['1']), pbe('SELECT 2 AS c'), SYNC);
      const msgs = await c.readUntilReady();
      const next = await c.query('SELECT 4');
      const rollback = await c.query('ROLLBACK');
      const after = await c.query('SELECT 5');
      return { begin, msgs, next, rollback, after };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.msgs)).toBe('12DC12EZ');
      expect(lastReady(x.msgs)).toBe('E');
      expect(errorCodes(x.next)).toEqual(['25P02']);
      expect(lastReady(x.next)).toBe('E');
      expect(tags(x.rollback)).toEqual(['ROLLBACK']);
      expect(lastReady(x.rollback)).toBe('I');
      expect(rows(x.after)).toEqual([['5']]);
    }
    expect(errorSummary(r.proxy.next)).toEqual(errorSummary(r.direct.next));
  });

  it('an error in a read of a batch skips the write that follows it, as PostgreSQL does', async () => {
    const table = `${T}_skip`;
    await onPrimaryExec(`CREATE TABLE ${table} (who text)`);
    const r = await onBoth(async (c, where) => {
      c.send(pbe(`SELECT 1/(id - $1::int) AS boom FROM ${T}_rows WHERE id = 1`, ['1']), pbe(`INSERT INTO ${table} VALUES ($1)`, [where]), SYNC);
      const msgs = await c.readUntilReady();
      const silence = await c.drain(300);
      return { msgs, silence };
    });
    expect(types(r.direct.msgs)).toBe('12EZ');
    // PostgreSQL skipped the INSERT after the error; so must pgproxy (it may not run it on the primary).
    expect.soft(await primaryScalar(`SELECT coalesce(string_agg(who, ','), '') FROM ${table}`)).toBe('');
    expect(types(r.proxy.msgs)).toBe(types(r.direct.msgs));
    expect(r.proxy.silence).toEqual([]);
  });

  it('a write followed by a failing statement in one batch is rolled back (the batch is one implicit transaction)', async () => {
    const table = `${T}_implicit`;
    await onPrimaryExec(`CREATE TABLE ${table} (who text)`);
    const r = await onBoth(async (c, where) => {
      c.send(pbe(`INSERT INTO ${table} VALUES ($1)`, [where]), pbe(`SELECT 1/(id - $1::int) AS boom FROM ${T}_rows WHERE id = 1`, ['1']), SYNC);
      return c.readUntilReady();
    });
    expect(types(r.proxy)).toBe('12C12EZ');
    expect(types(r.proxy)).toBe(types(r.direct));
    expect(await primaryScalar(`SELECT count(*) FROM ${table}`)).toBe('0');
  });

  it('the unnamed statement is reused after Sync: Parse once, then Bind/Execute/Sync twice more', async () => {
    const r = await onBoth(async (c) => {
      c.send(serialize.parse({ text: 'SELECT $1::int * 10 AS x, inet_server_port() AS port' }), be('', ['1']), SYNC);
      const first = await c.readUntilReady();
      c.send(be('', ['2']), SYNC);
      const second = await c.readUntilReady();
      c.send(be('', ['3']), SYNC);
      const third = await c.readUntilReady();
      return [first, second, third];
    });
    expect(r.proxy.map(types)).toEqual(['12DCZ', '2DCZ', '2DCZ']);
    expect(r.proxy.map(types)).toEqual(r.direct.map(types));
    expect(r.proxy.map((m) => rows(m)[0]![0])).toEqual(['10', '20', '30']);
  });

  it('the unnamed statement Parsed on a standby is re-prepared when a transaction moves the session to the primary', async () => {
    const c = await viaProxy();
    try {
      c.send(serialize.parse({ text: 'SELECT $1::int + 1 AS x, inet_server_port() AS port' }), be('', ['1']), SYNC);
      const first = await c.readUntilReady();
      expect(standbyPorts).toContain(Number(rows(first)[0]![1]));
      expect(lastReady(await c.query('BEGIN'))).toBe('T');
      c.send(be('', ['2']), SYNC);
      const inTx = await c.readUntilReady();
      expect(types(inTx)).toBe('2DCZ');
      expect(rows(inTx)).toEqual([['3', String(primaryPort)]]);
      expect(lastReady(await c.query('COMMIT'))).toBe('I');
    } finally {
      await c.end();
    }
  });

  it('a named statement Parsed while reads go to a standby is re-prepared on the primary inside BEGIN, transparently', async () => {
    const c = await viaProxy();
    try {
      c.send(serialize.parse({ name: 'where', text: 'SELECT inet_server_port() AS port, $1::text AS tag' }), SYNC);
      expect(types(await c.readUntilReady())).toBe('1Z');
      c.send(be('where', ['read']), SYNC);
      const read = await c.readUntilReady();
      expect(types(read)).toBe('2DCZ');
      expect(standbyPorts).toContain(Number(rows(read)[0]![0]));

      expect(lastReady(await c.query('BEGIN'))).toBe('T');
      c.send(serialize.describe({ type: 'S', name: 'where' }), be('where', ['tx']), SYNC);
      const inTx = await c.readUntilReady();
      // The client sees no ParseComplete for pgproxy's own Parse on the primary.
      expect(types(inTx)).toBe('tT2DCZ');
      expect(rows(inTx)).toEqual([[String(primaryPort), 'tx']]);
      expect(lastReady(inTx)).toBe('T');
      expect(lastReady(await c.query('COMMIT'))).toBe('I');

      // And still usable on the standby afterwards.
      c.send(be('where', ['again']), SYNC);
      const again = await c.readUntilReady();
      expect(types(again)).toBe('2DCZ');
      expect(rows(again)[0]![1]).toBe('again');
    } finally {
      await c.end();
    }
  });

  it('Close of a statement, then a new Parse of the same name with other SQL (also after it was used on two nodes)', async () => {
    const r = await onBoth(async (c) => {
      const out: string[] = [];
      const step = async (...frames: Buffer[]): Promise<Msg[]> => {
        c.send(...frames, SYNC);
        const msgs = await c.readUntilReady();
        out.push(types(msgs) + ':' + rows(msgs).map((row) => row[0]).join(',') + ':' + errorCodes(msgs).join(','));
        return msgs;
      };
      await step(serialize.parse({ name: 's1', text: 'SELECT 1 AS v' }), be('s1'));
      await step(serialize.close({ type: 'S', name: 's1' }));
      await step(be('s1')); // closed: 26000
      await step(serialize.parse({ name: 's1', text: 'SELECT 2 AS v' }), be('s1'));
      // Use it inside a transaction too (the primary, through the proxy), then close and redefine it.
      await c.query('BEGIN');
      await step(be('s1'));
      await c.query('COMMIT');
      await step(serialize.close({ type: 'S', name: 's1' }));
      await step(serialize.parse({ name: 's1', text: 'SELECT 3 AS v' }), be('s1'));
      await c.query('BEGIN');
      await step(be('s1'));
      await c.query('COMMIT');
      // Closing a name that does not exist is not an error.
      await step(serialize.close({ type: 'S', name: 'never-prepared' }));
      return out;
    });
    expect(r.direct).toEqual(['12DCZ:1:', '3Z::', 'EZ::26000', '12DCZ:2:', '2DCZ:2:', '3Z::', '12DCZ:3:', '2DCZ:3:', '3Z::']);
    expect(r.proxy).toEqual(r.direct);
  });

  it('RESET ALL keeps prepared statements (only DISCARD ALL drops them): asyncpg\'s pool reset, then the statement again', async () => {
    const r = await onBoth(async (c) => {
      const out: string[] = [];
      const note = (msgs: Msg[]): void => void out.push(`${types(msgs)}:${rows(msgs).map((row) => row[0]).join(',')}:${errorCodes(msgs).join(',')}`);
      c.send(serialize.parse({ name: 'keep', text: 'SELECT 11 AS v' }), SYNC);
      note(await c.readUntilReady());
      c.send(be('keep'), SYNC);
      note(await c.readUntilReady());
      // What asyncpg's pool sends when a connection is released (pg_advisory_unlock_all sends it to the primary).
      note(await c.query('SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;'));
      c.send(be('keep'), SYNC);
      note(await c.readUntilReady());
      note(await c.query('DISCARD ALL'));
      c.send(be('keep'), SYNC);
      note(await c.readUntilReady());
      return out;
    });
    expect(r.direct).toEqual(['1Z::', '2DCZ:11:', 'TDCCCCZ::', '2DCZ:11:', 'CZ::', 'EZ::26000']);
    expect(r.proxy).toEqual(r.direct);
  });

  it('pipelined Query messages (read, write, read, ...) sent without waiting are answered in order', async () => {
    const table = `${T}_pq`;
    await onPrimaryExec(`CREATE TABLE ${table} (id int)`);
    const c = await viaProxy();
    try {
      c.send(
        serialize.query('SELECT 1 AS a, inet_server_port() AS port'),
        serialize.query(`INSERT INTO ${table} VALUES (1) RETURNING inet_server_port() AS port`),
        serialize.query('SELECT 3 AS c, inet_server_port() AS port'),
      );
      const msgs = await c.readReady(3, 10_000);
      expect(types(msgs)).toBe('TDCZTDCZTDCZ');
      const got = rows(msgs);
      expect(got[0]![0]).toBe('1');
      expect(standbyPorts).toContain(Number(got[0]![1]));
      expect(got[1]).toEqual([String(primaryPort)]);
      expect(got[2]![0]).toBe('3');
      expect(standbyPorts).toContain(Number(got[2]![1]));
      expect(tags(msgs)).toEqual(['SELECT 1', 'INSERT 0 1', 'SELECT 1']);

      // A longer chain: 40 Queries alternating between the nodes, all in one write.
      const frames: Buffer[] = [];
      for (let i = 0; i < 40; i++) frames.push(serialize.query(i % 2 === 0 ? `SELECT ${i} AS n` : `INSERT INTO ${table} VALUES (${i}) RETURNING id AS n`));
      c.send(Buffer.concat(frames));
      const chain = await c.readReady(40, 20_000);
      expect(rows(chain).map((row) => Number(row[0]))).toEqual(Array.from({ length: 40 }, (_, i) => i));
      expect(await c.drain(300)).toEqual([]);
    } finally {
      await c.end();
    }
    expect(await primaryScalar(`SELECT count(*) FROM ${table}`)).toBe('21');
  });
});

describe('the FunctionCall protocol', () => {
  it('psql \\lo_import / \\lo_export (libpq fast-path calls) round-trip a 1 MB file through the proxy', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-lo-'));
    try {
      const src = path.join(dir, 'in.bin');
      const dst = path.join(dir, 'out.bin');
      const data = randomBytes(1 << 20);
      writeFileSync(src, data);
      const conn = `host=${proxy.host} port=${proxy.port} user=${info.users.app.name} dbname=${info.database}`;
      const env = { PGPASSWORD: info.users.app.password };
      const imp = await run('psql', [conn, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\lo_import ${src}`, '-c', '\\echo oid :LASTOID'], env, 30_000);
      expect(imp.stderr).toBe('');
      const oid = /oid (\d+)/.exec(imp.stdout)?.[1];
      expect(oid).toBeDefined();
      const exp = await run('psql', [conn, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\lo_export ${oid} ${dst}`, '-c', `\\lo_unlink ${oid}`], env, 30_000);
      expect(exp.stderr).toBe('');
      expect(exp.code).toBe(0);
      expect(readFileSync(dst).equals(data)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a client that leaves in the middle of a batch', () => {
  // Each case has its own proxy where one standby takes the reads and each pool holds one connection, so the
  // next client gets the very backend connection the first one left (and a failure here cannot leak into the
  // next case).
  let p1: RunningProxy | null = null;
  beforeEach(async () => {
    p1 = await startTestProxy(info, {
      backends: info.nodes.map((n, i) => ({ name: n.name, host: n.host, port: n.port, weight: i === 1 ? 1 : 0 })),
      pool: { max_per_node: 1, acquire_timeout_ms: 5_000 },
    });
  });
  afterEach(async () => {
    await p1?.close();
    p1 = null;
  });

  async function nextClientQuery(sql: string): Promise<Record<string, unknown>> {
    const c = proxyClient(p1!, info, info.users.app, { query_timeout: 5_000 });
    await c.connect();
    try {
      return (await c.query(sql)).rows[0] as Record<string, unknown>;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  it('after an error (its backend now skipping to Sync) does not leave that backend to the next client', async () => {
    const a = await viaProxy(p1!);
    try {
      a.send(pbe(`SELECT 1/(id - $1::int) AS boom FROM ${T}_rows WHERE id = 1`, ['1']), serialize.flush());
      expect(types(await a.readUntil((m) => m.type === 'E'))).toBe('12E');
    } finally {
      await a.end();
    }
    // Once the proxy has taken that backend back (reset, or closed)...
    await eventually(() => settled(p1!), 10_000, 10, 'the first client gone and its backend given back');
    // PostgreSQL ignores everything but Sync on that backend now; the next client must not get it as it is.
    const row = await nextClientQuery('SELECT 7 AS x, inet_server_port() AS port');
    expect(row).toEqual({ x: 7, port: info.nodes[1]!.port });
  });

  it('with an open portal (implicit transaction) does not leave that transaction to the next client', async () => {
    const a = await viaProxy(p1!);
    try {
      a.send(pbe('SELECT 1 AS one'), serialize.flush());
      expect(types(await a.readUntil((m) => m.type === 'C'))).toBe('12DC');
      await sleep(1_100); // the abandoned transaction's now() is then over a second old
    } finally {
      await a.end();
    }
    await eventually(() => settled(p1!), 10_000, 10, 'the first client gone and its backend given back');
    // A fresh statement in a fresh transaction: now() is this statement's start, not the abandoned batch's.
    const row = await nextClientQuery(`SELECT statement_timestamp() - now() < interval '1 second' AS fresh, inet_server_port() AS port`);
    expect(row).toEqual({ fresh: true, port: info.nodes[1]!.port });
  });
});

describe('asynchronous messages', () => {
  it('LISTEN through the proxy receives NOTIFY sent through the proxy and directly on the primary', async () => {
    const listener = proxyClient(proxy, info);
    const sender = proxyClient(proxy, info);
    const directSender = await connectNode(info, 0);
    await listener.connect();
    await sender.connect();
    try {
      const got: { channel: string; payload: string | undefined }[] = [];
      listener.on('notification', (n) => got.push({ channel: n.channel, payload: n.payload }));
      await listener.query(`LISTEN ${T}_chan`);
      await sender.query(`NOTIFY ${T}_chan, 'via proxy'`);
      await eventually(() => got.length >= 1, 5_000, 50);
      await directSender.query(`SELECT pg_notify('${T}_chan', 'direct')`);
      await eventually(() => got.length >= 2, 5_000, 50);
      // The listening session keeps working, and still receives after other statements.
      expect((await listener.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
      await sender.query(`NOTIFY ${T}_chan, 'third'`);
      await eventually(() => got.length >= 3, 5_000, 50);
      expect(got).toEqual([
        { channel: `${T}_chan`, payload: 'via proxy' },
        { channel: `${T}_chan`, payload: 'direct' },
        { channel: `${T}_chan`, payload: 'third' },
      ]);
    } finally {
      await listener.end();
      await sender.end();
      await directSender.end();
    }
  });

  it("a session's own NOTIFY arrives with the pid of its BackendKeyData, as from PostgreSQL (so clients can skip their own)", async () => {
    const r = await onBoth(async (c) => {
      await c.query(`LISTEN ${T}_self`);
      const msgs = await c.query(`NOTIFY ${T}_self, 'me'`);
      const n = msgs.find((m) => m.type === 'A');
      return n ? { samePid: n.body.readInt32BE(0) === c.pid, payload: notificationPayload(n.body) } : null;
    });
    expect(r.direct).toEqual({ samePid: true, payload: 'me' });
    expect(r.proxy).toEqual(r.direct);
  });

  it('NoticeResponse passes through (RAISE NOTICE in DO)', async () => {
    const c = proxyClient(proxy, info);
    await c.connect();
    try {
      const notices: { message: string; severity: string | undefined }[] = [];
      c.on('notice', (n) => notices.push({ message: String(n.message), severity: n.severity }));
      await c.query(`DO $$ BEGIN RAISE NOTICE 'hello'; END $$`);
      await c.query('SELECT 1');
      expect(notices).toEqual([{ message: 'hello', severity: 'NOTICE' }]);
    } finally {
      await c.end();
    }
    // The same bytes as from PostgreSQL.
    const r = await onBoth(async (c2) => c2.query(`DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$`));
    expect(types(r.proxy)).toBe('NCZ');
    expect(types(r.proxy)).toBe(types(r.direct));
    const f = (msgs: Msg[]): Record<string, string> => {
      const { S, V, C, M, W } = errorFields(msgs[0]!.body);
      return { S: S!, V: V!, C: C!, M: M!, W: W! };
    };
    expect(f(r.proxy)).toEqual(f(r.direct));
  });

  it('SET application_name produces a ParameterStatus, as from PostgreSQL, and no extra ones later', async () => {
    const r = await onBoth(async (c) => {
      const set = await c.query(`SET application_name = 'x_${process.pid}'`);
      // Reads (a standby through the proxy), a write (the primary) and a read again: the setting follows the
      // session to each backend, but the client is told once.
      const read = await c.query('SHOW application_name');
      const write = await c.query(`INSERT INTO ${T}_w VALUES (1)`);
      const read2 = await c.query(`SELECT current_setting('application_name') AS a`);
      return { set, read, write, read2 };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.set)).toBe('CSZ');
      expect(parameterStatus(x.set.find((m) => m.type === 'S')!.body)).toEqual(['application_name', `x_${process.pid}`]);
      expect(types(x.read)).toBe('TDCZ');
      expect(rows(x.read)).toEqual([[`x_${process.pid}`]]);
      expect(types(x.write)).toBe('CZ');
      expect(types(x.read2)).toBe('TDCZ');
      expect(rows(x.read2)).toEqual([[`x_${process.pid}`]]);
    }
  });

  it('the application_name given at startup is reported at startup and applied on every backend', async () => {
    const c = await viaProxy(proxy, { application_name: 'from-startup' });
    try {
      expect(c.params.get('application_name')).toBe('from-startup');
      const read = await c.query('SELECT current_setting($$application_name$$) AS a, inet_server_port() AS port');
      expect(rows(read)[0]![0]).toBe('from-startup');
      expect(types(read)).toBe('TDCZ');
      const write = await c.query(`INSERT INTO ${T}_w VALUES (2) RETURNING current_setting('application_name') AS a`);
      expect(rows(write)).toEqual([['from-startup']]);
      expect(types(write)).toBe('TDCZ');
    } finally {
      await c.end();
    }
  });
});

describe('CancelRequest', () => {
  function sendCancel(pid: number, secret: number, port = proxy.port): Promise<{ closedBy: 'peer' | 'timeout'; bytes: number }> {
    return new Promise((resolve) => {
      let bytes = 0;
      const s = net.connect({ host: proxy.host, port }, () => s.write(serialize.cancel(pid, secret)));
      s.on('data', (d: Buffer) => (bytes += d.length));
      s.on('error', () => undefined);
      const timer = setTimeout(() => {
        s.destroy();
        resolve({ closedBy: 'timeout', bytes });
      }, 5_000);
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ closedBy: 'peer', bytes });
      });
    });
  }

  it('cancels a pg_sleep(30) on a standby with the key the proxy gave; the session stays usable', async () => {
    const c = proxyClient(proxy, info);
    await c.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      expect(key.processID).toBeGreaterThan(0);
      // Warm up: the session has its standby connection.
      const port = (await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port;
      expect(standbyPorts).toContain(port);
      const started = Date.now();
      const sleeping = c.query('SELECT pg_sleep(30)').then(
        () => null,
        (err: Error & { code?: string }) => err,
      );
      await waitUntilRunning(info, 'SELECT pg_sleep(30)');
      const sent = await sendCancel(key.processID, key.secretKey);
      expect(sent).toEqual({ closedBy: 'peer', bytes: 0 });
      const err = await sleeping;
      expect(err).not.toBeNull();
      expect(err!.code).toBe('57014');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('the BackendKeyData the client gets is the proxy\'s, not any backend\'s', async () => {
    const c = proxyClient(proxy, info);
    await c.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      const backendPid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      expect(backendPid).not.toBe(key.processID);
      await c.query('BEGIN');
      const primaryPid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await c.query('COMMIT');
      expect(primaryPid).not.toBe(key.processID);
      for (let i = 0; i < info.nodes.length; i++) {
        const n = await connectNode(info, i, info.users.superuser);
        try {
          const r = await n.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [key.processID]);
          expect(r.rowCount).toBe(0);
        } finally {
          await n.end();
        }
      }
    } finally {
      await c.end();
    }
  });

  it('a cancel with an unknown key, or the wrong secret, just closes and harms nobody', async () => {
    const c = proxyClient(proxy, info);
    await c.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      await c.query('SELECT 1');
      // A statement that runs until the test lets it finish: it waits for an advisory lock the test holds.
      const holder = await connectNode(info, 0);
      const LOCK = `SELECT true AS done FROM pg_advisory_xact_lock(${process.pid})`;
      let sleeping: Promise<pg.QueryResult<{ done: boolean }>> | null = null;
      try {
        await holder.query('SELECT pg_advisory_lock($1)', [process.pid]);
        sleeping = c.query<{ done: boolean }>(LOCK);
        sleeping.catch(() => undefined);
        await waitUntilRunning(info, LOCK);
        expect(await sendCancel(key.processID ^ 0x5a5a, key.secretKey)).toEqual({ closedBy: 'peer', bytes: 0 });
        expect(await sendCancel(key.processID, key.secretKey ^ 1)).toEqual({ closedBy: 'peer', bytes: 0 });
        expect(await sendCancel(0, 0)).toEqual({ closedBy: 'peer', bytes: 0 });
        await waitUntilRunning(info, LOCK); // still waiting: not cancelled
      } finally {
        await holder.query('SELECT pg_advisory_unlock($1)', [process.pid]).catch(() => undefined);
        await holder.end();
      }
      expect((await sleeping).rows).toEqual([{ done: true }]);
      expect((await c.query('SELECT 2 AS x')).rows).toEqual([{ x: 2 }]);
    } finally {
      await c.end();
    }
  });

  it('a cancel while the session is idle does nothing to its next statement', async () => {
    const c = proxyClient(proxy, info);
    await c.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      await c.query('SELECT 1');
      // The proxy closed the cancel connection: it has dealt with the request. A cancel wrongly passed on would
      // reach the statement below while it runs.
      expect(await sendCancel(key.processID, key.secretKey)).toEqual({ closedBy: 'peer', bytes: 0 });
      expect((await c.query<{ x: boolean }>('SELECT true AS x FROM pg_sleep(0.3)')).rows).toEqual([{ x: true }]);
    } finally {
      await c.end();
    }
  });
});

describe('a session waiting on one backend before it can use another', () => {
  // A read runs on a standby (pg_sleep) and a write is pipelined behind it: the session holds the write (and
  // stops reading from the client) until the standby answers. Meanwhile the client goes away, or the proxy is
  // shut down.
  const SLEEP_S = 3;
  const blocked = (table: string): Buffer[] => [serialize.query(`SELECT pg_sleep(${SLEEP_S})`), serialize.query(`INSERT INTO ${table} VALUES (1)`)];

  for (const how of ['Terminate and FIN', 'socket destroyed'] as const) {
    it(`the client goes away (${how}): its session ends and its backends are released once the statement is done`, async () => {
      const table = `${T}_gone_${how.length}`;
      await onPrimaryExec(`CREATE TABLE ${table} (id int)`);
      const p = await startTestProxy(info);
      let c: ProtoClient | null = null;
      try {
        c = await viaProxy(p);
        c.send(...blocked(table));
        await waitUntilRunning(info, `SELECT pg_sleep(${SLEEP_S})`);
        if (how === 'socket destroyed') c.destroy();
        else c.socket.end(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
        const active = (): number => p.context.pools.all().reduce((n, pool) => n + pool.activeCount, 0);
        let state = '';
        await eventually(() => {
          state = `sessions=${p.context.registry.size} active backends=${active()} client closed=${c!.closed}`;
          return p.context.registry.size === 0 && active() === 0 && c!.closed;
        }, SLEEP_S * 1000 + 7_000).catch(() => undefined);
        expect.soft(state).toBe('sessions=0 active backends=0 client closed=true');
      } finally {
        c?.destroy();
        expect(await closesWithin(p, 10_000), 'proxy.close() finishes within 10 s').toBe(true);
      }
    });
  }

  it('proxy.close() while the session waits: finishes promptly and closes the client', async () => {
    const table = `${T}_shut`;
    await onPrimaryExec(`CREATE TABLE ${table} (id int)`);
    const p = await startTestProxy(info);
    const c = await viaProxy(p);
    try {
      c.send(serialize.query(`SELECT pg_sleep(30)`), serialize.query(`INSERT INTO ${table} VALUES (1)`));
      await waitUntilRunning(info, 'SELECT pg_sleep(30)');
      const t0 = Date.now();
      expect(await closesWithin(p, 10_000), 'proxy.close() finishes within 10 s').toBe(true);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(await c.waitClosed(2_000)).toBe(true);
    } finally {
      c.destroy();
    }
  });
});
