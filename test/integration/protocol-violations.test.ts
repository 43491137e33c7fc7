// Every kind of bad client input, sent byte for byte to PostgreSQL (the shared cluster's primary) and to pgproxy,
// side by side: both must give the same class of answer (FATAL and close, ERROR and carry on, or close without a
// word), the same SQLSTATE, and leave the connection in the same state (closed, or open with the same transaction
// status and still answering). docs/protocol-violations.md is this table in words.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { startTestProxy } from './helpers/proxy.js';
import { errorFields, frame, type Msg, ProtoClient, readyStatus, rows, serialize } from './helpers/proto-client.js';

const info = sharedCluster();
const app = info.users.app;
/** How long a server gets to answer, or to close, before the exchange counts as a hang (a failure). */
const ANSWER_MS = 8_000;

let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
});

afterAll(async () => {
  await proxy?.close();
});

interface Endpoint {
  host: string;
  port: number;
}

/** The answer to one bad input, in the terms that are compared. */
type Answer =
  | { kind: 'silent close' }
  | { kind: 'FATAL'; code: string; message: string }
  /** A FATAL in the version-2 protocol's format ('E', text, NUL), for a client that asked for version 2. */
  | { kind: 'FATAL (protocol 2 format)'; message: string }
  /** ERROR(s), then ReadyForQuery with `status`; the session still answers a query afterwards. */
  | { kind: 'ERROR'; codes: string[]; status: string; message: string }
  /** No error: ReadyForQuery with `status` (the input was ignored or served), the session still answers. */
  | { kind: 'ready'; status: string };

type Phase = 'startup' | 'auth' | 'session';

interface Case {
  name: string;
  phase: Phase;
  /** Sent first (session phase), answers read up to ReadyForQuery: e.g. BEGIN. */
  before?: string;
  bytes: Buffer;
  /** The answer PostgreSQL gives (checked against the server too, so the table states facts). */
  expected: Answer['kind'];
  code?: string;
}

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
/** An untyped startup-phase packet: length, then `body` (protocol code and the rest). */
const untyped = (body: Buffer): Buffer => Buffer.concat([int32(body.length + 4), body]);
const cstr = (s: string): Buffer => Buffer.from(s + '\0', 'utf8');
/** Only a message's header: its type and a length word (the body never comes). */
const header = (type: string | number, length: number): Buffer => {
  const b = Buffer.alloc(5);
  b[0] = typeof type === 'string' ? type.charCodeAt(0) : type;
  b.writeInt32BE(length, 1);
  return b;
};
const SYNC = serialize.sync();
const SSL_REQUEST = untyped(int32(80877103));
const startupFor = (protocol: number, params: Record<string, string>): Buffer =>
  untyped(Buffer.concat([int32(protocol), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]));

const CASES: Case[] = [
  // ---- before login (postmaster.c ProcessStartupPacket)
  { name: 'startup length below 8', phase: 'startup', bytes: int32(3), expected: 'silent close' },
  { name: 'startup length over 10,004', phase: 'startup', bytes: Buffer.concat([int32(20_000), int32(196608)]), expected: 'silent close' },
  { name: 'Terminate before the startup packet', phase: 'startup', bytes: frame('X'), expected: 'silent close' },
  { name: 'CancelRequest of the wrong length', phase: 'startup', bytes: untyped(Buffer.concat([int32(80877102), int32(1)])), expected: 'silent close' },
  { name: 'unknown protocol version 4.0', phase: 'startup', bytes: startupFor(4 << 16, { user: app.name }), expected: 'FATAL', code: '0A000' },
  { name: 'unknown request code 1234.5681', phase: 'startup', bytes: untyped(int32((1234 << 16) | 5681)), expected: 'FATAL', code: '0A000' },
  { name: 'protocol version 2.0', phase: 'startup', bytes: startupFor(2 << 16, { user: app.name }), expected: 'FATAL (protocol 2 format)' },
  {
    name: 'startup packet without its terminating NUL',
    phase: 'startup',
    bytes: untyped(Buffer.concat([int32(196608), cstr('user'), cstr(app.name)])),
    expected: 'FATAL',
    code: '08P01',
  },
  { name: 'startup packet without a user', phase: 'startup', bytes: startupFor(196608, { database: info.database }), expected: 'FATAL', code: '28000' },
  { name: 'SSLRequest twice', phase: 'startup', bytes: Buffer.concat([SSL_REQUEST]), expected: 'FATAL', code: '0A000' },
  { name: 'data after SSLRequest, before its answer', phase: 'startup', bytes: Buffer.concat([SSL_REQUEST, startupFor(196608, { user: app.name })]), expected: 'FATAL', code: '08P01' },
  // ---- during authentication (auth.c recv_password_packet)
  { name: 'a Query instead of the password', phase: 'auth', bytes: serialize.query('SELECT 1'), expected: 'FATAL', code: '08P01' },
  { name: 'password message over 65,535 bytes', phase: 'auth', bytes: header('p', 70_000), expected: 'silent close' },
  // ---- logged in (postgres.c SocketBackend, PostgresMain; pqcomm.c pq_getmessage)
  { name: 'unknown message type', phase: 'session', bytes: frame('y'), expected: 'FATAL', code: '08P01' },
  { name: 'SSLRequest after startup', phase: 'session', bytes: SSL_REQUEST, expected: 'FATAL', code: '08P01' },
  { name: 'length word below 4', phase: 'session', bytes: header('Q', 2), expected: 'silent close' },
  { name: 'Sync over 10,000 bytes', phase: 'session', bytes: header('S', 20_000), expected: 'silent close' },
  { name: 'Describe over 10,000 bytes', phase: 'session', bytes: header('D', 10_005), expected: 'silent close' },
  { name: 'Close with an unknown subtype', phase: 'session', bytes: Buffer.concat([frame('C', Buffer.concat([Buffer.from('X'), cstr('s1')])), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'Describe with an unknown subtype', phase: 'session', bytes: Buffer.concat([frame('D', Buffer.concat([Buffer.from('Q'), cstr('')])), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'Describe with an empty body', phase: 'session', bytes: Buffer.concat([frame('D'), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'Close with an unterminated name', phase: 'session', bytes: Buffer.concat([frame('C', Buffer.from('Sname')), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'Describe with bytes after its name', phase: 'session', bytes: Buffer.concat([frame('D', Buffer.concat([Buffer.from('S'), cstr(''), Buffer.from('xx')])), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'Execute with its row count cut short', phase: 'session', bytes: Buffer.concat([frame('E', Buffer.concat([cstr(''), Buffer.from([0, 0])])), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'Flush with a body', phase: 'session', bytes: Buffer.concat([frame('H', 'x'), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'Sync with a body', phase: 'session', bytes: frame('S', 'x'), expected: 'ERROR', code: '08P01' },
  { name: 'Query with an unterminated string', phase: 'session', bytes: frame('Q', 'SELECT 1'), expected: 'ERROR', code: '08P01' },
  { name: 'Bind to a statement that does not exist', phase: 'session', bytes: Buffer.concat([serialize.bind({ statement: 'no_such_statement' }), serialize.execute({}), SYNC]), expected: 'ERROR', code: '26000' },
  { name: 'bad Close inside a transaction', phase: 'session', before: 'BEGIN', bytes: Buffer.concat([frame('C', Buffer.concat([Buffer.from('X'), cstr('s1')])), SYNC]), expected: 'ERROR', code: '08P01' },
  { name: 'unterminated Query inside a transaction', phase: 'session', before: 'BEGIN', bytes: frame('Q', 'SELECT 1'), expected: 'ERROR', code: '08P01' },
  { name: 'CopyData outside COPY (ignored)', phase: 'session', bytes: Buffer.concat([frame('d', 'stray'), SYNC]), expected: 'ready' },
  { name: 'data after Terminate (never read)', phase: 'session', bytes: Buffer.concat([frame('X'), serialize.query('SELECT 1')]), expected: 'silent close' },
];

/** Every byte the server sends until it closes; a hang (still open after ANSWER_MS) fails the test. */
async function untilClosed(c: ProtoClient): Promise<Buffer> {
  const closed = await c.waitClosed(ANSWER_MS);
  const bytes = c.buffered > 0 ? await c.readRaw(c.buffered) : Buffer.alloc(0);
  if (!closed) {
    c.destroy();
    throw new Error(`still open after ${ANSWER_MS} ms (received ${bytes.length} bytes)`);
  }
  return bytes;
}

/** The answer in bytes a server sent before closing (an SSL refusal byte 'N' first is skipped). */
function closingAnswer(bytes: Buffer): Answer {
  let b = bytes;
  if (b[0] === 0x4e && (b.length === 1 || b[1] === 0x45)) b = b.subarray(1);
  if (b.length === 0) return { kind: 'silent close' };
  if (b[0] !== 0x45) throw new Error(`unexpected bytes before close: ${JSON.stringify(b.subarray(0, 40).toString('latin1'))}`);
  const len = b.length >= 5 ? b.readInt32BE(1) : -1;
  if (len === b.length - 1) {
    const f = errorFields(b.subarray(5));
    if (f.S !== 'FATAL') throw new Error(`an ${f.S} before close: ${f.M}`);
    return { kind: 'FATAL', code: f.C ?? '', message: f.M ?? '' };
  }
  const text = b.subarray(1).toString('utf8').replace(/\0$/, '');
  if (!text.startsWith('FATAL:')) throw new Error(`unexpected bytes before close: ${JSON.stringify(text)}`);
  return { kind: 'FATAL (protocol 2 format)', message: text.trim() };
}

async function exchange(to: Endpoint, c: Case): Promise<Answer> {
  if (c.phase === 'startup') {
    const client = await ProtoClient.open(to.host, to.port);
    if (c.name === 'SSLRequest twice') {
      client.send(SSL_REQUEST);
      expect((await client.readRaw(1)).toString()).toBe('N');
    }
    client.send(c.bytes);
    return closingAnswer(await untilClosed(client));
  }
  if (c.phase === 'auth') {
    const client = await ProtoClient.open(to.host, to.port);
    client.send(serialize.startup({ user: app.name, database: info.database }));
    const request = await client.read(ANSWER_MS);
    expect(request.type, 'an authentication request').toBe('R');
    client.send(c.bytes);
    return closingAnswer(await untilClosed(client));
  }
  const client = await ProtoClient.connect({ host: to.host, port: to.port, user: app.name, password: app.password, database: info.database });
  try {
    if (c.before !== undefined) expect(readyStatus((await client.query(c.before)).at(-1)!)).toBe('T');
    client.send(c.bytes);
    const msgs: Msg[] = [];
    for (;;) {
      let m: Msg;
      try {
        m = await client.read(ANSWER_MS);
      } catch (err) {
        if (!client.closed) throw err;
        break;
      }
      msgs.push(m);
      if (m.type === 'Z') break;
    }
    if (client.closed) {
      if (msgs.length === 0) return { kind: 'silent close' };
      const f = errorFields(msgs[0]!.body);
      expect(msgs[0]!.type).toBe('E');
      expect(f.S).toBe('FATAL');
      return { kind: 'FATAL', code: f.C ?? '', message: f.M ?? '' };
    }
    const status = readyStatus(msgs.at(-1)!);
    // The session still works, in the same state.
    const after = await client.query('SELECT 42');
    if (status === 'E') expect(errorFields(after.find((m) => m.type === 'E')!.body).C).toBe('25P02');
    else expect(rows(after)).toEqual([['42']]);
    if (status !== 'I') await client.query('ROLLBACK');
    const errors = msgs.filter((m) => m.type === 'E').map((m) => errorFields(m.body));
    if (errors.length === 0) return { kind: 'ready', status };
    return { kind: 'ERROR', codes: errors.map((e) => e.C ?? ''), status, message: errors[0]!.M ?? '' };
  } finally {
    client.destroy();
  }
}

/** What is compared: the class, the SQLSTATE(s) and the state afterwards, not the text. */
function comparable(a: Answer): unknown {
  switch (a.kind) {
    case 'FATAL':
      return { kind: a.kind, code: a.code };
    case 'ERROR':
      return { kind: a.kind, codes: a.codes, status: a.status };
    case 'FATAL (protocol 2 format)':
      return { kind: a.kind };
    default:
      return a;
  }
}

describe('protocol violations: pgproxy answers as PostgreSQL does', () => {
  const primary = (): Endpoint => ({ host: info.nodes[0]!.host, port: info.nodes[0]!.port });
  const viaProxy = (): Endpoint => ({ host: proxy.host, port: proxy.port });

  for (const c of CASES) {
    it(c.name, async () => {
      const pgAnswer = await exchange(primary(), c);
      const proxyAnswer = await exchange(viaProxy(), c);
      expect(pgAnswer.kind, 'PostgreSQL itself (the table states what it does)').toBe(c.expected);
      if (c.code !== undefined) expect(comparable(pgAnswer)).toMatchObject(c.expected === 'ERROR' ? { codes: [c.code] } : { code: c.code });
      expect(comparable(proxyAnswer), `pgproxy vs PostgreSQL (${JSON.stringify(pgAnswer)} / ${JSON.stringify(proxyAnswer)})`).toEqual(comparable(pgAnswer));
    });
  }
});

describe("pgproxy's own limits keep a clear error", () => {
  let small: RunningProxy;
  beforeAll(async () => {
    small = await startTestProxy(info, { listen: { max_message_bytes: 4096 } });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('a message over listen.max_message_bytes gets FATAL 54000 naming the setting (PostgreSQL, at 1 GB, runs it)', async () => {
    const sql = `SELECT length('${'x'.repeat(8_000)}')`;
    const direct = await ProtoClient.connect({ host: info.nodes[0]!.host, port: info.nodes[0]!.port, user: app.name, password: app.password, database: info.database });
    try {
      expect(rows(await direct.query(sql))).toEqual([['8000']]);
    } finally {
      direct.destroy();
    }
    const client = await ProtoClient.connect({ host: small.host, port: small.port, user: app.name, password: app.password, database: info.database });
    client.send(serialize.query(sql));
    const answer = closingAnswer(await untilClosed(client));
    expect(answer).toMatchObject({ kind: 'FATAL', code: '54000' });
    expect((answer as { message: string }).message).toMatch(/listen\.max_message_bytes \(4096\)/);
  });
});
