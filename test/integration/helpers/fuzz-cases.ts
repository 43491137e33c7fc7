// Malformed protocol input for the fuzz test: a seeded generator of cases, each made of the protocol state to
// reach first and the bytes to send there. No randomness outside the seeded PRNG, so a failing seed replays.
import { frame, serialize } from './proto-client.js';
export { prng } from '../../prng.js';

/** Where the junk is sent. */
export type FuzzState = 'startup' | 'auth' | 'auth-scram' | 'idle' | 'batch' | 'copy';

export interface FuzzCase {
  /** Generator name (for failure reports and counts). */
  gen: string;
  state: FuzzState;
  /** Sent in one write once the state is reached. */
  junk: Buffer;
  /**
   * The proxy must end the connection by itself (ErrorResponse and/or close) without the client closing:
   * input that PostgreSQL rejects at once, and that pgproxy inspects (startup, auth, frame lengths, the
   * strings of Query/Parse/Bind/Describe/Close). Otherwise the client closes its side after a short wait and
   * the proxy must then close too.
   */
  selfClosing: boolean;
  /** How many protocol messages the junk holds (for the count of messages sent). */
  messages: number;
  /** Sent once a reply to `junk` has arrived (or after a second without one). */
  then?: Buffer;
}


type Rng = () => number;

const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const bytes = (r: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 0, 255)));
/** Random printable-ish bytes without NUL (for unterminated strings). */
const noNul = (r: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 1, 255)));

function untyped(len: number, body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeInt32BE(len | 0, 0);
  body.copy(b, 4);
  return b;
}

/** A typed header with any length, followed by `body` (which may be shorter or longer than the length says). */
function rawTyped(type: number, len: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type;
  b.writeInt32BE(len | 0, 1);
  body.copy(b, 5);
  return b;
}

const FRONTEND_TYPES = new Set('BCDEFHPQSXcdfp'.split('').map((c) => c.charCodeAt(0)));
const unknownType = (r: Rng): number => {
  for (;;) {
    const t = int(r, 0, 255);
    if (!FRONTEND_TYPES.has(t)) return t;
  }
};

function startupPacket(params: Record<string, string>, protocol = 196608, terminator = true): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`));
  if (terminator) parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(protocol, 4);
  body.copy(b, 8);
  return b;
}

// ------------------------------------------------------------------------------------------------ per state

type Gen = (r: Rng, ctx: FuzzContext) => Omit<FuzzCase, 'gen' | 'state' | 'messages'> & { messages?: number };

export interface FuzzContext {
  user: string;
  database: string;
}

const STARTUP: Record<string, Gen> = {
  'length below 8': (r) => {
    const len = int(r, -5, 7);
    return { junk: len >= 4 ? Buffer.concat([untyped(len, bytes(r, Math.max(0, len - 4)))]) : untyped(len, bytes(r, int(r, 0, 8))), selfClosing: true };
  },
  'length over 10004': (r) => ({ junk: untyped(pick(r, [10_005, 65_536, 1 << 20, 0x7fffffff, -1]), bytes(r, int(r, 0, 32))), selfClosing: true }),
  'truncated packet': (r, ctx) => {
    const p = startupPacket({ user: ctx.user, database: ctx.database });
    return { junk: p.subarray(0, int(r, 1, p.length - 1)), selfClosing: false };
  },
  'unknown protocol version': (r) => {
    const major = pick(r, [0, 1, 2, 4, 5, 255, 1234, 0xffff]);
    const minor = major === 1234 ? pick(r, [1, 2, 3, 5678 + 3]) : int(r, 0, 3);
    return { junk: untyped(8, Buffer.from([major >> 8, major & 255, minor >> 8, minor & 255])), selfClosing: true };
  },
  'SSLRequest with junk in the same packet': (r) => ({ junk: Buffer.concat([untyped(8, Buffer.from([0x04, 0xd2, 0x16, 0x2f])), bytes(r, int(r, 1, 40))]), selfClosing: true }),
  'GSSENCRequest with junk in the same packet': (r) => ({ junk: Buffer.concat([untyped(8, Buffer.from([0x04, 0xd2, 0x16, 0x30])), bytes(r, int(r, 1, 40))]), selfClosing: true }),
  'CancelRequest of the wrong size': (r) => {
    const len = pick(r, [8, 12, 20, 24]);
    return { junk: untyped(len, Buffer.concat([Buffer.from([0x04, 0xd2, 0x16, 0x2e]), bytes(r, len - 8)])), selfClosing: true };
  },
  'no user': (r, ctx) => ({ junk: startupPacket(r() < 0.5 ? { database: ctx.database } : {}), selfClosing: true }),
  'unterminated parameter': (r, ctx) => {
    const good = startupPacket({ user: ctx.user, database: ctx.database }, 196608, false);
    const body = Buffer.concat([good.subarray(8), noNul(r, int(r, 1, 20))]);
    return { junk: untyped(8 + body.length, Buffer.concat([Buffer.from([0, 3, 0, 0]), body])), selfClosing: true };
  },
  'random bytes': (r) => ({ junk: bytes(r, int(r, 1, 64)), selfClosing: false }),
};

const AUTH: Record<string, Gen> = {
  'wrong message type': (r) => ({ junk: frame(pick(r, ['Q', 'P', 'B', 'S', 'd', 'X', 'H']), noNul(r, int(r, 0, 20))), selfClosing: true }),
  'unknown type byte': (r) => ({ junk: frame(unknownType(r), bytes(r, int(r, 0, 20))), selfClosing: true }),
  'password length below 4': (r) => ({ junk: rawTyped(0x70, int(r, -3, 3), bytes(r, 8)), selfClosing: true }),
  'password length over 1 GB': (r) => ({ junk: rawTyped(0x70, pick(r, [0x40000001, 0x7fffffff]), bytes(r, 8)), selfClosing: true }),
  'wrong md5 response': (r) => ({ junk: serialize.password('md5' + bytes(r, 16).toString('hex')), selfClosing: true }),
  'password without NUL': (r) => ({ junk: frame('p', noNul(r, int(r, 0, 40))), selfClosing: true }),
  'truncated password': (r) => ({ junk: rawTyped(0x70, 40, bytes(r, int(r, 0, 30))), selfClosing: false }),
};

const AUTH_SCRAM: Record<string, Gen> = {
  'SASLInitialResponse without NUL': (r) => ({ junk: frame('p', noNul(r, int(r, 1, 30))), selfClosing: true }),
  'SASLInitialResponse, unknown mechanism': (r) => ({ junk: serialize.sendSASLInitialResponseMessage(pick(r, ['BOGUS', 'SCRAM-SHA-1', '']), 'n,,n=,r=abc'), selfClosing: true }),
  'SASLInitialResponse, bad data length': (r) => {
    const mech = Buffer.from('SCRAM-SHA-256\0');
    const data = noNul(r, int(r, 0, 30));
    const len = Buffer.alloc(4);
    len.writeInt32BE(pick(r, [-2, -1, data.length + 1, data.length + 1000, 0x7fffffff]), 0);
    return { junk: frame('p', Buffer.concat([mech, len, data])), selfClosing: true };
  },
  'SASLInitialResponse, junk client-first': (r) => ({ junk: serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', bytes(r, int(r, 0, 60)).toString('latin1')), selfClosing: true }),
  'SASLInitialResponse shorter than its header': (r) => ({ junk: frame('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), bytes(r, int(r, 0, 3))])), selfClosing: true }),
  'wrong message type': (r) => ({ junk: frame(pick(r, ['Q', 'S', 'X']), noNul(r, int(r, 0, 10))), selfClosing: true }),
};

/** Junk after login (also used inside a batch). */
const IDLE: Record<string, Gen> = {
  'unknown type byte': (r) => ({ junk: frame(unknownType(r), bytes(r, int(r, 0, 30))), selfClosing: true }),
  'length below 4': (r) => ({ junk: rawTyped(pick(r, [0x51, 0x50, 0x42, 0x53, 0x44]), int(r, -10, 3), bytes(r, 8)), selfClosing: true }),
  'length over the limit': (r) => ({ junk: rawTyped(pick(r, [0x51, 0x50, 0x42, 0x64]), pick(r, [0x40000001, 0x7fffffff]), bytes(r, 16)), selfClosing: true }),
  // ERROR 08P01 (PostgreSQL's answer to a field it cannot read), and the session goes on.
  'Query without NUL': (r) => ({ junk: frame('Q', noNul(r, int(r, 0, 40))), selfClosing: false }),
  'Parse with unterminated name or SQL': (r) =>
    r() < 0.5 ? { junk: frame('P', noNul(r, int(r, 1, 20))), selfClosing: false } : { junk: frame('P', Buffer.concat([Buffer.from('s\0'), noNul(r, int(r, 1, 30))])), selfClosing: false },
  'Bind with unterminated names': (r) =>
    r() < 0.5 ? { junk: frame('B', noNul(r, int(r, 0, 10))), selfClosing: false } : { junk: frame('B', Buffer.concat([Buffer.from('p\0'), noNul(r, int(r, 1, 10))])), selfClosing: false },
  'Describe S with unterminated name': (r) => ({ junk: frame('D', Buffer.concat([Buffer.from('S'), noNul(r, int(r, 0, 10))])), selfClosing: false }),
  'Close with unterminated name': (r) => ({ junk: frame('C', Buffer.concat([Buffer.from(pick(r, ['S', 'P'])), noNul(r, int(r, 0, 10))])), selfClosing: false }),
  'Close without a body': () => ({ junk: frame('C'), selfClosing: false }),
  // Forwarded to a backend, which answers with an error; the session goes on.
  'Bind with a garbled parameter section, then Sync': (r) => ({ junk: Buffer.concat([frame('B', Buffer.concat([Buffer.from('\0\0'), bytes(r, int(r, 0, 20))])), serialize.sync()]), selfClosing: false, messages: 2 }),
  'Execute/Describe P with junk, then Sync': (r) => ({
    junk: Buffer.concat([frame(pick(r, ['E', 'D']), r() < 0.5 ? Buffer.concat([Buffer.from('P'), noNul(r, int(r, 0, 10))]) : bytes(r, int(r, 0, 12))), serialize.sync()]),
    selfClosing: false,
    messages: 2,
  }),
  'an extended-protocol error, then a fatal message before any Sync': (r) => ({
    junk: Buffer.concat([frame('B', Buffer.concat([Buffer.from('\0\0'), bytes(r, int(r, 0, 12))])), serialize.execute({}), serialize.flush(), frame(unknownType(r), bytes(r, 4))]),
    selfClosing: true,
    messages: 4,
  }),
  'an extended-protocol error, and once it has arrived a fatal message (no Sync)': (r) => ({
    junk: Buffer.concat([frame('B', Buffer.concat([Buffer.from('\0\0'), bytes(r, int(r, 0, 12))])), serialize.execute({}), serialize.flush()]),
    then: frame(unknownType(r), bytes(r, 4)),
    selfClosing: true,
    messages: 4,
  }),
  'Sync/Flush with a body': (r) => ({ junk: frame(pick(r, ['S', 'H']), bytes(r, int(r, 1, 10))), selfClosing: false }),
  'FunctionCall with junk, then Sync': (r) => ({ junk: Buffer.concat([frame('F', bytes(r, int(r, 0, 20))), serialize.sync()]), selfClosing: false, messages: 2 }),
  'COPY messages outside COPY': (r) => ({ junk: Buffer.concat([serialize.copyData(bytes(r, int(r, 0, 20))), serialize.copyDone(), serialize.copyFail('x')]), selfClosing: false, messages: 3 }),
  'Query with junk SQL': (r) => ({ junk: serialize.query(noNul(r, int(r, 1, 40)).toString('latin1')), selfClosing: false }),
  'truncated message': (r) => ({ junk: rawTyped(0x51, 1000, noNul(r, int(r, 0, 100))), selfClosing: false }),
  'many junk messages then a fatal one': (r) => {
    const parts: Buffer[] = [];
    const n = int(r, 5, 40);
    for (let i = 0; i < n; i++) parts.push(serialize.query(`SELECT ${int(r, 0, 1000)} /* ${noNul(r, 5).toString('hex')} */`), frame('d', bytes(r, 5)));
    parts.push(frame(unknownType(r), bytes(r, 3)));
    return { junk: Buffer.concat(parts), selfClosing: true, messages: 2 * n + 1 };
  },
};

const COPY: Record<string, Gen> = {
  'junk rows in CopyData, then CopyDone': (r) => ({ junk: Buffer.concat([serialize.copyData(noNul(r, int(r, 1, 60))), serialize.copyDone()]), selfClosing: false, messages: 2 }),
  'unknown type byte instead of CopyData': (r) => ({ junk: frame(unknownType(r), bytes(r, int(r, 0, 20))), selfClosing: true }),
  'CopyData length below 4': (r) => ({ junk: rawTyped(0x64, int(r, -5, 3), bytes(r, 8)), selfClosing: true }),
  'CopyData length over the limit': (r) => ({ junk: rawTyped(0x64, pick(r, [0x40000001, 0x7fffffff]), bytes(r, 8)), selfClosing: true }),
  'CopyFail with an unterminated message': (r) => ({ junk: frame('f', noNul(r, int(r, 0, 20))), selfClosing: false }),
  'truncated CopyData': (r) => ({ junk: rawTyped(0x64, 5000, bytes(r, int(r, 0, 100))), selfClosing: false }),
};

const TABLES: Record<FuzzState, Record<string, Gen>> = {
  startup: STARTUP,
  auth: AUTH,
  'auth-scram': AUTH_SCRAM,
  idle: IDLE,
  batch: IDLE,
  copy: COPY,
};

const STATES: readonly FuzzState[] = ['startup', 'startup', 'auth', 'auth-scram', 'idle', 'idle', 'batch', 'copy'];

/** The next case: a state, then one of its generators. */
export function nextCase(r: Rng, ctx: FuzzContext): FuzzCase {
  const state = pick(r, STATES);
  const table = TABLES[state];
  const gen = pick(r, Object.keys(table));
  const c = table[gen]!(r, ctx);
  return { gen, state, junk: c.junk, selfClosing: c.selfClosing, messages: c.messages ?? 1, ...(c.then ? { then: c.then } : {}) };
}

/** Every (state, generator) pair, for coverage counts. */
export function allGenerators(): string[] {
  const out: string[] = [];
  for (const [state, table] of Object.entries(TABLES)) for (const gen of Object.keys(table)) out.push(`${state}: ${gen}`);
  return out;
}

export { startupPacket };
