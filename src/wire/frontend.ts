/**
 * Decoders for the client messages pgproxy inspects, and encoders for the few it sends to backends itself.
 * Offsets are into the framer's buffer; strings are decoded only where routing needs them.
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { FrontendCode } from './codes.js';
import { PQ_LARGE_MESSAGE_LIMIT, PQ_SMALL_MESSAGE_LIMIT, typeLimits } from './framer.js';

/** A message whose body PostgreSQL would reject; the message is PostgreSQL's (pqformat.c). */
export class MessageError extends Error {
  readonly code = 'MESSAGE';
}

/** What a logged-in client may send, with PostgreSQL's length limit for each type (postgres.c SocketBackend). */
export const SESSION_MESSAGE_LIMITS = typeLimits({
  Q: PQ_LARGE_MESSAGE_LIMIT,
  F: PQ_LARGE_MESSAGE_LIMIT,
  B: PQ_LARGE_MESSAGE_LIMIT,
  P: PQ_LARGE_MESSAGE_LIMIT,
  d: PQ_LARGE_MESSAGE_LIMIT,
  X: PQ_SMALL_MESSAGE_LIMIT,
  C: PQ_SMALL_MESSAGE_LIMIT,
  D: PQ_SMALL_MESSAGE_LIMIT,
  E: PQ_SMALL_MESSAGE_LIMIT,
  H: PQ_SMALL_MESSAGE_LIMIT,
  S: PQ_SMALL_MESSAGE_LIMIT,
  c: PQ_SMALL_MESSAGE_LIMIT,
  f: PQ_SMALL_MESSAGE_LIMIT,
});

/** PostgreSQL's limit on an authentication message (PG_MAX_AUTH_TOKEN_LENGTH); nothing else is expected then. */
export const AUTH_MESSAGE_LIMITS = typeLimits({ p: 65_535 });

/** Index of the NUL ending the C string at `from`, or a MessageError when it runs past `end`. */
export function cstringEnd(buf: Buffer, from: number, end: number): number {
  const z = buf.indexOf(0, from);
  if (z < 0 || z >= end) throw new MessageError('invalid string in message');
  return z;
}

/**
 * What PostgreSQL would say about the body of a Close, Describe, Execute, Flush or Sync (each read field by
 * field, then checked for leftover bytes), or null when it is well formed. Other types: null.
 */
export function bodyProblem(type: number, buf: Buffer, bodyStart: number, end: number): string | null {
  switch (type) {
    case FrontendCode.Close:
    case FrontendCode.Describe: {
      if (end === bodyStart) return 'no data left in message';
      const z = buf.indexOf(0, bodyStart + 1);
      if (z < 0 || z >= end) return 'invalid string in message';
      if (z !== end - 1) return 'invalid message format';
      const sub = buf[bodyStart]!;
      if (sub !== 0x53 && sub !== 0x50) return `invalid ${type === FrontendCode.Close ? 'CLOSE' : 'DESCRIBE'} message subtype ${sub}`;
      return null;
    }
    case FrontendCode.Execute: {
      const z = buf.indexOf(0, bodyStart);
      if (z < 0 || z >= end) return 'invalid string in message';
      if (end - (z + 1) < 4) return 'insufficient data left in message';
      return end - (z + 1) > 4 ? 'invalid message format' : null;
    }
    case FrontendCode.Flush:
    case FrontendCode.Sync:
      return end === bodyStart ? null : 'invalid message format';
    default:
      return null;
  }
}

export interface StartupPacket {
  protocol: number;
  params: Map<string, string>;
}

/** Startup packet body (after its length): protocol version, then name/value pairs ending in an empty name. */
export function parseStartup(buf: Buffer, start: number, end: number): StartupPacket {
  if (end - start < 8) throw new MessageError('startup packet too short');
  const protocol = buf.readInt32BE(start + 4);
  const params = new Map<string, string>();
  let i = start + 8;
  while (i < end && buf[i] !== 0) {
    const nameEnd = cstringEnd(buf, i, end);
    const valueEnd = cstringEnd(buf, nameEnd + 1, end);
    params.set(buf.toString('utf8', i, nameEnd), buf.toString('utf8', nameEnd + 1, valueEnd));
    i = valueEnd + 1;
  }
  // Like PostgreSQL: a startup packet's list ends with an empty name, which is its last byte.
  if (protocol >> 16 === 3 && (i !== end - 1 || buf[i] !== 0)) throw new MessageError('invalid startup packet layout: expected terminator as last byte');
  return { protocol, params };
}

/** Query: the SQL text. */
export function queryText(buf: Buffer, bodyStart: number, end: number): string {
  return buf.toString('utf8', bodyStart, cstringEnd(buf, bodyStart, end));
}

export interface ParseMessage {
  name: string;
  sql: string;
}

export function parseParse(buf: Buffer, bodyStart: number, end: number): ParseMessage {
  const nameEnd = cstringEnd(buf, bodyStart, end);
  const sqlEnd = cstringEnd(buf, nameEnd + 1, end);
  return {
    name: nameEnd === bodyStart ? '' : buf.toString('utf8', bodyStart, nameEnd),
    sql: buf.toString('utf8', nameEnd + 1, sqlEnd),
  };
}

/** Bind: portal name then statement name. Returns the statement name. */
export function bindStatementName(buf: Buffer, bodyStart: number, end: number): string {
  const portalEnd = cstringEnd(buf, bodyStart, end);
  const stmtEnd = cstringEnd(buf, portalEnd + 1, end);
  return stmtEnd === portalEnd + 1 ? '' : buf.toString('utf8', portalEnd + 1, stmtEnd);
}

/** Bind: the portal name. */
export function bindPortalName(buf: Buffer, bodyStart: number, end: number): string {
  const portalEnd = cstringEnd(buf, bodyStart, end);
  return portalEnd === bodyStart ? '' : buf.toString('utf8', bodyStart, portalEnd);
}

/** Describe / Close: kind byte ('S' statement or 'P' portal) then a name. */
export function targetName(buf: Buffer, bodyStart: number, end: number): string {
  if (end - bodyStart < 2) throw new MessageError('message too short');
  const z = cstringEnd(buf, bodyStart + 1, end);
  return z === bodyStart + 1 ? '' : buf.toString('utf8', bodyStart + 1, z);
}

/** Execute: portal name. */
export function executePortalName(buf: Buffer, bodyStart: number, end: number): string {
  const z = cstringEnd(buf, bodyStart, end);
  return z === bodyStart ? '' : buf.toString('utf8', bodyStart, z);
}

function frame(type: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(body.length + 5);
  b[0] = type;
  b.writeInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

export const SYNC = frame(FrontendCode.Sync, Buffer.alloc(0));
export const TERMINATE = frame(FrontendCode.Terminate, Buffer.alloc(0));

export function queryMessage(sql: string): Buffer {
  return frame(FrontendCode.Query, Buffer.from(sql + '\0', 'utf8'));
}

/** Close of a prepared statement ('S') by name. */
export function closeStatement(name: string): Buffer {
  return frame(FrontendCode.Close, Buffer.from('S' + name + '\0', 'utf8'));
}
