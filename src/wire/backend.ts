/**
 * Frames pgproxy sends to clients as if it were a backend, and decoders for the backend messages it inspects.
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { AuthCode, BackendCode } from './codes.js';

/** A growable writer for building frames off the hot path (startup, errors, admin results). */
export class FrameWriter {
  private buf: Buffer;
  private len = 0;
  private frameStart = -1;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }

  begin(type: number): this {
    this.ensure(5);
    this.frameStart = this.len;
    this.buf[this.len] = type;
    this.len += 5;
    return this;
  }

  end(): this {
    this.buf.writeInt32BE(this.len - this.frameStart - 1, this.frameStart + 1);
    this.frameStart = -1;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.len);
    this.len += 4;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.len);
    this.len += 2;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.len++] = v;
    return this;
  }

  cstring(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.len);
    this.len += n;
    this.buf[this.len++] = 0;
    return this;
  }

  bytes(b: Buffer): this {
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
    return this;
  }

  /** A copy of everything written so far (the writer may be reused). */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

function codeOnly(type: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = type;
  b.writeInt32BE(4, 1);
  return b;
}

export const AUTH_OK = new FrameWriter(9).begin(BackendCode.Authentication).int32(AuthCode.Ok).end().toBuffer();
export const READY_IDLE = new FrameWriter(6).begin(BackendCode.ReadyForQuery).byte(0x49).end().toBuffer();
export const PARSE_COMPLETE = codeOnly(BackendCode.ParseComplete);
export const BIND_COMPLETE = codeOnly(BackendCode.BindComplete);
export const CLOSE_COMPLETE = codeOnly(BackendCode.CloseComplete);
export const NO_DATA = codeOnly(BackendCode.NoData);
/** ParameterDescription of a statement without parameters. */
export const NO_PARAMETERS = new FrameWriter(7).begin(BackendCode.ParameterDescription).int16(0).end().toBuffer();
export const SSL_REFUSED = Buffer.from('N');
export const SSL_ACCEPTED = Buffer.from('S');
export const AUTH_CLEARTEXT = new FrameWriter(9).begin(BackendCode.Authentication).int32(AuthCode.CleartextPassword).end().toBuffer();

const READY_IN_TX = new FrameWriter(6).begin(BackendCode.ReadyForQuery).byte(0x54).end().toBuffer();
const READY_FAILED = new FrameWriter(6).begin(BackendCode.ReadyForQuery).byte(0x45).end().toBuffer();

/** ReadyForQuery with a transaction status: shared constant frames for I, T and E (never write into them). */
export function readyForQuery(status: number): Buffer {
  switch (status) {
    case 0x49:
      return READY_IDLE;
    case 0x54:
      return READY_IN_TX;
    case 0x45:
      return READY_FAILED;
    default:
      return new FrameWriter(6).begin(BackendCode.ReadyForQuery).byte(status).end().toBuffer();
  }
}

/** A whole message around a body received from a backend (a copy: the body is a borrowed view). */
export function messageFrame(type: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(body.length + 5);
  b[0] = type;
  b.writeInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

export function authMd5Request(salt: Buffer): Buffer {
  return new FrameWriter(13).begin(BackendCode.Authentication).int32(AuthCode.MD5Password).bytes(salt).end().toBuffer();
}

export function authSaslRequest(mechanisms: string[]): Buffer {
  const w = new FrameWriter(64).begin(BackendCode.Authentication).int32(AuthCode.SASL);
  for (const m of mechanisms) w.cstring(m);
  return w.byte(0).end().toBuffer();
}

export function authSaslContinue(data: Buffer, final = false): Buffer {
  return new FrameWriter(data.length + 9)
    .begin(BackendCode.Authentication)
    .int32(final ? AuthCode.SASLFinal : AuthCode.SASLContinue)
    .bytes(data)
    .end()
    .toBuffer();
}

export function parameterStatus(name: string, value: string): Buffer {
  return new FrameWriter(name.length + value.length + 7).begin(BackendCode.ParameterStatus).cstring(name).cstring(value).end().toBuffer();
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return new FrameWriter(13).begin(BackendCode.BackendKeyData).int32(pid).int32(secret).end().toBuffer();
}

export function commandComplete(tag: string): Buffer {
  return new FrameWriter(tag.length + 6).begin(BackendCode.CommandComplete).cstring(tag).end().toBuffer();
}

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'LOG' | 'INFO' | 'DEBUG';

export interface ErrorFields {
  severity: Severity;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse (or NoticeResponse when `notice`) with the fields clients read. */
export function errorResponse(f: ErrorFields, notice = false): Buffer {
  const w = new FrameWriter(f.message.length + 64).begin(notice ? BackendCode.NoticeResponse : BackendCode.ErrorResponse);
  w.byte(0x53).cstring(f.severity); // S
  w.byte(0x56).cstring(f.severity); // V (non-localised severity)
  w.byte(0x43).cstring(f.code); // C
  w.byte(0x4d).cstring(f.message); // M
  if (f.detail) w.byte(0x44).cstring(f.detail); // D
  if (f.hint) w.byte(0x48).cstring(f.hint); // H
  return w.byte(0).end().toBuffer();
}

export interface ColumnSpec {
  name: string;
  typeOid: number;
  typeSize: number;
}

export const TEXT_OID = 25;
export const INT4_OID = 23;
export const INT8_OID = 20;
export const BOOL_OID = 16;
export const FLOAT8_OID = 701;

export function textColumn(name: string): ColumnSpec {
  return { name, typeOid: TEXT_OID, typeSize: -1 };
}

/** RowDescription + DataRows + CommandComplete for a result the proxy answers itself (text format). */
export function resultSet(columns: ColumnSpec[], rows: (string | null)[][], tag: string, withDescription = true): Buffer {
  const w = new FrameWriter(256);
  if (withDescription) writeRowDescription(w, columns);
  for (const row of rows) {
    w.begin(BackendCode.DataRow).int16(row.length);
    for (const v of row) {
      if (v === null) w.int32(-1);
      else {
        const b = Buffer.from(v, 'utf8');
        w.int32(b.length).bytes(b);
      }
    }
    w.end();
  }
  w.begin(BackendCode.CommandComplete).cstring(tag).end();
  return w.toBuffer();
}

export function rowDescription(columns: ColumnSpec[]): Buffer {
  const w = new FrameWriter(128);
  writeRowDescription(w, columns);
  return w.toBuffer();
}

function writeRowDescription(w: FrameWriter, columns: ColumnSpec[]): void {
  w.begin(BackendCode.RowDescription).int16(columns.length);
  for (const c of columns) w.cstring(c.name).int32(0).int16(0).int32(c.typeOid).int16(c.typeSize).int32(-1).int16(0);
  w.end();
}

/** Reads the fields of an ErrorResponse / NoticeResponse body. */
export function parseErrorFields(body: Buffer): { severity: string; code: string; message: string } {
  let severity = '';
  let code = '';
  let message = '';
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const field = body[i]!;
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    if (field === 0x56 || (field === 0x53 && severity === '')) severity = body.toString('utf8', i + 1, end);
    else if (field === 0x43) code = body.toString('latin1', i + 1, end);
    else if (field === 0x4d) message = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return { severity, code, message };
}

/** Reads a ParameterStatus body: name\0value\0. */
export function parseParameterStatus(body: Buffer): [string, string] {
  const z = body.indexOf(0);
  const z2 = body.indexOf(0, z + 1);
  return [body.toString('utf8', 0, z), body.toString('utf8', z + 1, z2 < 0 ? body.length : z2)];
}
