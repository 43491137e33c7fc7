/**
 * Decoders for the client messages pgproxy inspects, and encoders for the few it sends to backends itself.
 * Offsets are into the framer's buffer; strings are decoded only where routing needs them.
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { FrontendCode } from './codes.js';

export class MessageError extends Error {
  readonly code = 'MESSAGE';
}

/** Index of the NUL ending the C string at `from`, or a MessageError when it runs past `end`. */
export function cstringEnd(buf: Buffer, from: number, end: number): number {
  const z = buf.indexOf(0, from);
  if (z < 0 || z >= end) throw new MessageError('unterminated string in message');
  return z;
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
export const FLUSH = frame(FrontendCode.Flush, Buffer.alloc(0));
export const TERMINATE = frame(FrontendCode.Terminate, Buffer.alloc(0));

export function queryMessage(sql: string): Buffer {
  return frame(FrontendCode.Query, Buffer.from(sql + '\0', 'utf8'));
}

/** Close of a prepared statement ('S') by name. */
export function closeStatement(name: string): Buffer {
  return frame(FrontendCode.Close, Buffer.from('S' + name + '\0', 'utf8'));
}
