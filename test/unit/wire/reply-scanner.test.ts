import { describe, expect, it } from 'vitest';
import {
  BIND_COMPLETE,
  CLOSE_COMPLETE,
  INT4_OID,
  NO_DATA,
  PARSE_COMPLETE,
  backendKeyData,
  commandComplete,
  errorResponse,
  parameterStatus,
  readyForQuery,
  resultSet,
  rowDescription,
  textColumn,
} from '../../../src/wire/backend.js';
import { captureSet, ReplyScanner, type ReplyHandler } from '../../../src/wire/reply-scanner.js';
import { prng } from '../../prng.js';
import { cut } from './chunks.js';

const Z = 0x5a;
const E = 0x45;
const S = 0x53;
const D = 0x44;
const PARSE_DONE = 0x31;


/** A DataRow with one column of `n` bytes (text format), filled from the PRNG. */
function dataRow(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(11 + n);
  b[0] = D;
  b.writeInt32BE(10 + n, 1);
  b.writeInt16BE(1, 5);
  b.writeInt32BE(n, 7);
  for (let i = 11; i < b.length; i++) b[i] = 0x20 + ((rand() * 95) | 0);
  return b;
}

function raw(type: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + body.length);
  b[0] = type;
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

interface Msg {
  type: number;
  /** Offsets of the whole message in the stream. */
  start: number;
  end: number;
  body: Buffer;
}

/** An independent (non-incremental) split of a whole stream, to check the scanner against. */
function messagesOf(stream: Buffer): Msg[] {
  const out: Msg[] = [];
  let i = 0;
  while (i < stream.length) {
    const len = stream.readInt32BE(i + 1);
    out.push({ type: stream[i]!, start: i, end: i + 1 + len, body: stream.subarray(i + 5, i + 1 + len) });
    i += 1 + len;
  }
  expect(i).toBe(stream.length);
  return out;
}

const I = 0x49;
const T = 0x54;
const Efail = 0x45;

/** A session's worth of replies: startup tail, simple and extended queries, an error, notices, big rows. */
function backendStream(bigRow: number, otherRow: number): Buffer {
  const rand = prng(42);
  const cols = [textColumn('id'), { name: 'n', typeOid: INT4_OID, typeSize: 4 }];
  return Buffer.concat([
    parameterStatus('application_name', 'psql'),
    parameterStatus('TimeZone', 'UTC'),
    backendKeyData(4242, 0x7fffffff),
    readyForQuery(I),
    // simple query
    resultSet(cols, [['a', '1'], [null, '2'], ['', null]], 'SELECT 3'),
    readyForQuery(I),
    // extended query: Parse/Bind/Describe/Execute/Sync
    PARSE_COMPLETE,
    BIND_COMPLETE,
    rowDescription([textColumn('payload')]),
    dataRow(rand, bigRow),
    dataRow(rand, 0),
    dataRow(rand, 1),
    commandComplete('SELECT 3'),
    readyForQuery(T),
    // error inside the transaction
    PARSE_COMPLETE,
    errorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "nope" does not exist', hint: 'check the name' }),
    readyForQuery(Efail),
    errorResponse({ severity: 'WARNING', code: '01000', message: 'there is no transaction in progress' }, true),
    commandComplete('ROLLBACK'),
    parameterStatus('is_superuser', 'off'),
    readyForQuery(I),
    PARSE_COMPLETE,
    NO_DATA,
    CLOSE_COMPLETE,
    raw(0x49, Buffer.alloc(0)), // EmptyQueryResponse
    dataRow(rand, otherRow),
    commandComplete('SELECT 1'),
    readyForQuery(I),
  ]);
}

interface Run {
  /** Number of bytes forwarded (each call is compared with the expected output as it happens). */
  forwardedLen: number;
  headers: [number, number][];
  delivered: { type: number; body: Buffer; forwardedBefore: number }[];
  /** Per chunk: the onForward calls it caused. */
  calls: { whole: boolean; length: number }[][];
  boundaryAfter: boolean[];
}

/**
 * Feeds `chunks` to a scanner whose handler forwards message `k` when `forward[k]`, recording every event.
 * Checks on the fly what must hold at each call: the bytes continue the `expected` output, `whole` is true
 * exactly when the bytes are the chunk itself, nothing empty is forwarded, headers arrive in stream order.
 */
function scan(chunks: Buffer[], msgs: Msg[], forward: boolean[], capture: Uint8Array, expected: Buffer): Run {
  let forwardedLen = 0;
  let chunk: Buffer = Buffer.alloc(0);
  let calls: { whole: boolean; length: number }[] = [];
  const run: Run = { forwardedLen: 0, headers: [], delivered: [], calls: [], boundaryAfter: [] };
  const handler: ReplyHandler = {
    onReplyHeader(type, bodyLength) {
      const k = run.headers.length;
      run.headers.push([type, bodyLength]);
      const m = msgs[k];
      if (m === undefined || m.type !== type || m.body.length !== bodyLength) {
        expect.fail(`header ${k}: got type ${type} length ${bodyLength}`);
      }
      return forward[k]!;
    },
    onReplyMessage(type, body) {
      run.delivered.push({ type, body: Buffer.from(body), forwardedBefore: forwardedLen });
    },
    onForward(bytes, whole) {
      if (bytes.length === 0) expect.fail('empty onForward');
      if (whole !== (bytes === chunk)) expect.fail(`whole=${whole} but bytes ${bytes === chunk ? 'are' : 'are not'} the chunk`);
      if (!bytes.equals(expected.subarray(forwardedLen, forwardedLen + bytes.length))) {
        expect.fail(`forwarded bytes at output offset ${forwardedLen} (${bytes.length} bytes) are not the expected ones`);
      }
      forwardedLen += bytes.length;
      calls.push({ whole, length: bytes.length });
    },
  };
  const scanner = new ReplyScanner(handler, capture);
  for (const c of chunks) {
    chunk = c;
    calls = [];
    scanner.feed(c);
    run.calls.push(calls);
    run.boundaryAfter.push(scanner.atBoundary);
  }
  run.forwardedLen = forwardedLen;
  return run;
}

/** Everything that must hold for any chunking of the stream. */
function check(stream: Buffer, msgs: Msg[], forward: boolean[], capture: Uint8Array, chunks: Buffer[], label: string): Run {
  // Forwarded bytes are the input minus exactly the swallowed messages.
  const expected = expectedOutput(stream, msgs, forward);
  const r = scan(chunks, msgs, forward, capture, expected);
  const fail = (what: string): never => expect.fail(`${label}: ${what}`);
  if (r.headers.length !== msgs.length) fail(`${r.headers.length} headers for ${msgs.length} messages`);
  if (r.forwardedLen !== expected.length) fail(`forwarded ${r.forwardedLen} bytes, expected ${expected.length}`);
  // Captured messages arrive whole, in order, once everything forwarded up to their end has been passed on
  // (and nothing after it yet).
  let prefix = 0;
  const want: { type: number; body: Buffer; forwardedBefore: number }[] = [];
  msgs.forEach((m, k) => {
    if (forward[k]) prefix += m.end - m.start;
    if (capture[m.type] === 1) want.push({ type: m.type, body: m.body, forwardedBefore: prefix });
  });
  if (r.delivered.length !== want.length) fail(`${r.delivered.length} captured messages, expected ${want.length}`);
  want.forEach((w, j) => {
    const d = r.delivered[j]!;
    if (d.type !== w.type || !d.body.equals(w.body)) fail(`captured message ${j} differs`);
    if (d.forwardedBefore !== w.forwardedBefore) {
      fail(`captured message ${j} (type ${w.type}) delivered after ${d.forwardedBefore} forwarded bytes, expected ${w.forwardedBefore}`);
    }
  });
  // atBoundary is true exactly when a chunk ends between messages.
  const ends = new Set(msgs.map((m) => m.end));
  ends.add(0);
  let at = 0;
  chunks.forEach((c, j) => {
    at += c.length;
    if (r.boundaryAfter[j] !== ends.has(at)) fail(`atBoundary ${r.boundaryAfter[j]} after chunk ${j} ending at ${at}`);
  });
  return r;
}

const outputs = new WeakMap<boolean[], Buffer>();
function expectedOutput(stream: Buffer, msgs: Msg[], forward: boolean[]): Buffer {
  let out = outputs.get(forward);
  if (out === undefined) {
    out = Buffer.concat(msgs.filter((_, k) => forward[k]).map((m) => stream.subarray(m.start, m.end)));
    outputs.set(forward, out);
  }
  return out;
}

function randomCuts(rand: () => number, length: number): number[] {
  const scales = [3, 8, 40, 1000, 20_000, 300_000];
  const offsets: number[] = [];
  let at = 0;
  for (;;) {
    at += 1 + Math.floor(rand() * scales[Math.floor(rand() * scales.length)]!);
    if (at >= length) return offsets;
    offsets.push(at);
  }
}

function oneBytePerChunk(data: Buffer): Buffer[] {
  return Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1));
}

/** Chunkings: every two-chunk split (or, for a big stream, every split near a message boundary), one byte per chunk, random. */
function chunkings(stream: Buffer, msgs: Msg[], everySplit: boolean, oneByte = true): [string, Buffer[]][] {
  const out: [string, Buffer[]][] = [['one chunk', [stream]]];
  const splits = new Set<number>();
  if (everySplit) for (let at = 0; at <= stream.length; at++) splits.add(at);
  else
    for (const m of msgs)
      for (let d = -12; d <= 12; d++) if (m.start + d >= 0 && m.start + d <= stream.length) splits.add(m.start + d);
  for (const at of splits) out.push([`split at ${at}`, cut(stream, [at])]);
  if (oneByte) out.push(['one byte per chunk', oneBytePerChunk(stream)]);
  for (let seed = 1; seed <= 40; seed++) out.push([`random seed ${seed}`, cut(stream, randomCuts(prng(seed), stream.length))]);
  return out;
}

const small = backendStream(300, 40);
const smallMsgs = messagesOf(small);
const big = backendStream(256 * 1024, 64 * 1024);
const bigMsgs = messagesOf(big);

interface Config {
  name: string;
  capture: Uint8Array;
  forward: (msgs: Msg[]) => boolean[];
  /** Also feed the 256 KiB stream one byte per chunk (slow; done for the configurations that differ most). */
  bigOneByte?: boolean;
}

const all = (msgs: Msg[]): boolean[] => msgs.map(() => true);
/** Swallows every ParseComplete and the second ReadyForQuery (as for messages pgproxy injected itself). */
const swallowParseAndSecondZ = (msgs: Msg[]): boolean[] => {
  let zs = 0;
  return msgs.map((m) => m.type !== PARSE_DONE && !(m.type === Z && ++zs === 2));
};
const configs: Config[] = [
  { name: 'forward all, capture nothing', capture: captureSet(), forward: all, bigOneByte: true },
  { name: 'forward all, capture Z and E', capture: captureSet(Z, E), forward: all },
  { name: "swallow '1' and the 2nd Z, capture Z and E", capture: captureSet(Z, E), forward: swallowParseAndSecondZ },
  {
    name: 'swallow DataRows, S and the first message, capture Z, E and S',
    capture: captureSet(Z, E, S),
    forward: (msgs) => msgs.map((m, k) => k !== 0 && m.type !== D && m.type !== S),
  },
  { name: 'swallow everything, capture Z and E', capture: captureSet(Z, E), forward: (msgs) => msgs.map(() => false) },
  {
    name: 'alternate forward and swallow, capture everything',
    capture: captureSet(...Array.from({ length: 256 }, (_, i) => i)),
    forward: (msgs) => msgs.map((_, k) => k % 2 === 0),
    bigOneByte: true,
  },
];

describe('ReplyScanner: forwarded and captured messages for every chunking', () => {
  for (const cfg of configs) {
    it(`${cfg.name} (short stream: every split)`, () => {
      const forward = cfg.forward(smallMsgs);
      for (const [label, chunks] of chunkings(small, smallMsgs, true)) check(small, smallMsgs, forward, cfg.capture, chunks, label);
    });
    it(`${cfg.name} (256 KiB DataRow: splits near each header)`, () => {
      const forward = cfg.forward(bigMsgs);
      for (const [label, chunks] of chunkings(big, bigMsgs, false, cfg.bigOneByte === true)) check(big, bigMsgs, forward, cfg.capture, chunks, label);
    });
  }

  it('the test streams hold what they are meant to', () => {
    expect(bigMsgs.some((m) => m.type === D && m.body.length > 256 * 1024)).toBe(true);
    expect(smallMsgs.map((m) => String.fromCharCode(m.type)).join('')).toBe('SSKZTDDDCZ12TDDDCZ1EZNCSZ1n3IDCZ');
    expect(swallowParseAndSecondZ(smallMsgs).filter((f) => !f).length).toBe(4);
  });
});

describe('ReplyScanner: zero copy', () => {
  /** Chunks that neither begin nor end inside a 5-byte header. */
  function headerSafe(chunks: Buffer[], msgs: Msg[]): boolean[] {
    const interior = new Uint8Array(msgs[msgs.length - 1]!.end + 1);
    for (const m of msgs) interior.fill(1, m.start + 1, m.start + 5);
    const inHeader = (o: number): boolean => interior[o] === 1;
    let at = 0;
    return chunks.map((c) => {
      const from = at;
      at += c.length;
      return c.length > 0 && !inHeader(from) && !inHeader(at);
    });
  }

  it('forwarding everything and capturing nothing, a chunk not cut inside a header is ONE whole onForward', () => {
    for (const [stream, msgs] of [
      [small, smallMsgs],
      [big, bigMsgs],
    ] as const) {
      const list = chunkings(stream, msgs, stream === small, stream === small);
      const forward = all(msgs);
      for (const [label, chunks] of list) {
        const r = check(stream, msgs, forward, captureSet(), chunks, label);
        const safe = headerSafe(chunks, msgs);
        r.calls.forEach((calls, j) => {
          if (safe[j] && !(calls.length === 1 && calls[0]!.whole)) {
            expect.fail(`${label}, chunk ${j}: ${calls.length} onForward calls (${calls.map((c) => c.whole).join(',')})`);
          }
          // Cut inside a header: at most the held-back header, then one view.
          if (calls.length > 2) expect.fail(`${label}, chunk ${j}: ${calls.length} onForward calls`);
        });
      }
    }
  });

  it('capturing Z and E, a chunk of whole replies ending in ReadyForQuery is ONE whole onForward', () => {
    // The common case: each read from the backend is a complete reply.
    const replies = [
      Buffer.concat([PARSE_COMPLETE, BIND_COMPLETE, resultSet([textColumn('a')], [['x'], ['y']], 'SELECT 2'), readyForQuery(I)]),
      Buffer.concat([resultSet([textColumn('a')], [], 'SELECT 0'), readyForQuery(T)]),
      Buffer.concat([commandComplete('BEGIN'), readyForQuery(T)]),
      readyForQuery(I),
    ];
    const stream = Buffer.concat(replies);
    const msgs = messagesOf(stream);
    const r = check(stream, msgs, all(msgs), captureSet(Z, E), replies, 'replies');
    r.calls.forEach((calls, j) => {
      expect(calls, `reply ${j}`).toEqual([{ whole: true, length: replies[j]!.length }]);
    });
    expect(r.delivered.map((d) => d.body[0])).toEqual([I, T, T, I]);
  });

  it('a chunk continuing a forwarded body and ending at a boundary is passed whole', () => {
    const rand = prng(3);
    const row = dataRow(rand, 10_000);
    const stream = Buffer.concat([row, readyForQuery(I)]);
    const msgs = messagesOf(stream);
    const r = check(stream, msgs, all(msgs), captureSet(Z), cut(stream, [100, 5000]), 'row');
    expect(r.calls.map((c) => c.map((x) => x.whole))).toEqual([[true], [true], [true]]);
  });

  it('a chunk holding a swallowed message is forwarded as views around it, not copied', () => {
    const stream = Buffer.concat([PARSE_COMPLETE, BIND_COMPLETE, PARSE_COMPLETE, commandComplete('SELECT 1'), readyForQuery(I)]);
    const msgs = messagesOf(stream);
    const forward = msgs.map((m, k) => k !== 2);
    const views: Buffer[] = [];
    const scanner = new ReplyScanner(
      {
        onReplyHeader: (() => {
          let k = 0;
          return () => forward[k++]!;
        })(),
        onReplyMessage: () => {},
        onForward: (bytes) => views.push(bytes),
      },
      captureSet(Z),
    );
    scanner.feed(stream);
    expect(views.length).toBe(2);
    for (const v of views) expect(v.buffer).toBe(stream.buffer);
    expect(Buffer.concat(views).equals(Buffer.concat([stream.subarray(0, 10), stream.subarray(15)]))).toBe(true);
  });
});

describe('ReplyScanner: captured messages', () => {
  it('logs events in order: forwarded bytes before each Z/E, reaction to Z sees the client stream up to date', () => {
    const err = errorResponse({ severity: 'ERROR', code: '57P01', message: 'terminating connection due to administrator command' });
    const stream = Buffer.concat([
      resultSet([textColumn('a')], [['1']], 'SELECT 1'),
      readyForQuery(I),
      PARSE_COMPLETE,
      err,
      readyForQuery(I),
    ]);
    const msgs = messagesOf(stream);
    for (let at = 0; at <= stream.length; at++) {
      const log: string[] = [];
      let sent = Buffer.alloc(0);
      const scanner = new ReplyScanner(
        {
          onReplyHeader: (type) => type !== PARSE_DONE,
          onReplyMessage: (type, body) => {
            log.push(`${String.fromCharCode(type)}:${body.toString('latin1')}@${sent.length}`);
          },
          onForward: (bytes) => {
            sent = Buffer.concat([sent, bytes]);
          },
        },
        captureSet(Z, E),
      );
      for (const c of cut(stream, [at])) scanner.feed(c);
      const zAt1 = msgs[3]!.end;
      const eAt = msgs[5]!.end - 5; // the swallowed ParseComplete is not sent
      const zAt2 = stream.length - 5;
      expect(log, `split at ${at}`).toEqual([`Z:I@${zAt1}`, `E:${msgs[5]!.body.toString('latin1')}@${eAt}`, `Z:I@${zAt2}`]);
      expect(sent.length).toBe(stream.length - 5);
    }
  });

  it('a swallowed captured message is still delivered', () => {
    const stream = Buffer.concat([commandComplete('SET'), readyForQuery(T), readyForQuery(I)]);
    const got: string[] = [];
    const fwd: Buffer[] = [];
    let zs = 0;
    const scanner = new ReplyScanner(
      {
        onReplyHeader: (type) => !(type === Z && zs++ === 0),
        onReplyMessage: (type, body) => got.push(String.fromCharCode(type, body[0]!)),
        onForward: (b) => fwd.push(Buffer.from(b)),
      },
      captureSet(Z),
    );
    for (const c of oneBytePerChunk(stream)) scanner.feed(c);
    expect(got).toEqual(['ZT', 'ZI']);
    expect(Buffer.concat(fwd).equals(Buffer.concat([commandComplete('SET'), readyForQuery(I)]))).toBe(true);
  });

  it('the captured body is valid during the call even when it was assembled across chunks', () => {
    const err = errorResponse({ severity: 'FATAL', code: '57P01', message: 'x'.repeat(1000), detail: 'd'.repeat(500) });
    const stream = Buffer.concat([err, err]);
    const bodies: Buffer[] = [];
    const scanner = new ReplyScanner(
      { onReplyHeader: () => true, onReplyMessage: (_t, body) => bodies.push(Buffer.from(body)), onForward: () => {} },
      captureSet(E),
    );
    for (const c of cut(stream, [3, 700, 1200, err.length + 2, err.length + 900])) scanner.feed(c);
    expect(bodies.length).toBe(2);
    for (const b of bodies) expect(b.equals(err.subarray(5))).toBe(true);
  });

  it('bodies over 1 MiB are forwarded but not captured (no message we inspect is that large)', () => {
    const limit = 1 << 20;
    const stream = Buffer.concat([raw(E, Buffer.alloc(limit, 0x61)), raw(E, Buffer.alloc(limit + 1, 0x62)), readyForQuery(I)]);
    const delivered: [number, number][] = [];
    let forwarded = 0;
    const scanner = new ReplyScanner(
      {
        onReplyHeader: () => true,
        onReplyMessage: (t, body) => delivered.push([t, body.length]),
        onForward: (b) => (forwarded += b.length),
      },
      captureSet(E, Z),
    );
    for (const c of cut(stream, [1000, limit + 3, limit + 100_000])) scanner.feed(c);
    expect(delivered).toEqual([
      [E, limit],
      [Z, 1],
    ]);
    expect(forwarded).toBe(stream.length);
  });
});

describe('ReplyScanner: invalid lengths', () => {
  it.each([3, 0, -1, -0x80000000])('length %i throws, whether the header is whole or split', (len) => {
    const bad = Buffer.alloc(5);
    bad[0] = D;
    bad.writeInt32BE(len, 1);
    const stream = Buffer.concat([readyForQuery(I), bad, Buffer.alloc(8)]);
    for (let at = 0; at <= stream.length; at++) {
      const scanner = new ReplyScanner({ onReplyHeader: () => true, onReplyMessage: () => {}, onForward: () => {} }, captureSet(Z));
      expect(() => {
        for (const c of cut(stream, [at])) scanner.feed(c);
      }, `split at ${at}`).toThrow(/invalid message length/);
    }
  });

  it('length 4 (empty body) is valid', () => {
    const scanner = new ReplyScanner({ onReplyHeader: () => true, onReplyMessage: () => {}, onForward: () => {} }, captureSet());
    expect(() => scanner.feed(Buffer.concat([PARSE_COMPLETE, NO_DATA]))).not.toThrow();
    expect(scanner.atBoundary).toBe(true);
  });
});
