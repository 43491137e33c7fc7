// A raw PostgreSQL v3 protocol client for tests that need exact control of what is sent and when: frames built
// with pg-protocol's `serialize` (or by hand), replies framed here and handed out as typed messages with a
// timeout on every read. It speaks to pgproxy and to PostgreSQL alike, so a test can send the same bytes to
// both and compare what comes back.
// @see https://www.postgresql.org/docs/current/protocol-message-formats.html
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { md5SaltedResponse } from '../../../src/wire/auth/md5.js';

export { serialize };

/** One backend message: its type as a character ('Z', 'E', '1'...) and its body (without type and length). */
export interface Msg {
  type: string;
  body: Buffer;
}

export interface ConnectOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Extra startup parameters (application_name...). */
  params?: Record<string, string>;
  timeoutMs?: number;
}

export class ProtoTimeoutError extends Error {}

/** Messages longer than this are an error of the peer (or of this framer); PostgreSQL's own limit is 1 GB. */
const MAX_MESSAGE = 1 << 30;

export class ProtoClient {
  /** ParameterStatus values received during startup (and later, as they arrive). */
  readonly params = new Map<string, string>();
  /** BackendKeyData of the session (pid and secret), once logged in. */
  pid = 0;
  secret = 0;
  /** Set when the socket has closed (by either side). */
  closed = false;
  /** Socket error, if any (ECONNRESET...). */
  error: Error | null = null;
  /** When set, every framed message goes here instead of the read queue (for streams too large to queue). */
  onMessage: ((m: Msg) => void) | null = null;

  private chunks: Buffer[] = [];
  private avail = 0;
  private readonly queue: Msg[] = [];
  private wake: (() => void) | null = null;
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.avail += chunk.length;
      this.notify();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        this.notify();
        resolve();
      });
    });
  }

  /** A TCP connection with nothing sent yet (for startup-phase tests). */
  static open(host: string, port: number, timeoutMs = 5_000): Promise<ProtoClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ProtoTimeoutError(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ProtoClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Connects, sends a startup packet, answers md5 / cleartext authentication, and waits for ReadyForQuery. */
  static async connect(opts: ConnectOptions): Promise<ProtoClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const c = await ProtoClient.open(opts.host, opts.port, timeoutMs);
    try {
      c.send(serialize.startup({ user: opts.user, database: opts.database, ...opts.params }));
      for (;;) {
        const m = await c.read(timeoutMs);
        if (m.type === 'R') {
          const code = m.body.readInt32BE(0);
          if (code === 0) continue;
          if (code === 5) c.send(serialize.password(md5SaltedResponse(opts.user, opts.password, m.body.subarray(4, 8))));
          else if (code === 3) c.send(serialize.password(opts.password));
          else throw new Error(`proto-client: unsupported authentication request ${code}`);
        } else if (m.type === 'E') {
          throw new Error(`proto-client: login failed: ${JSON.stringify(errorFields(m.body))}`);
        } else if (m.type === 'K') {
          c.pid = m.body.readInt32BE(0);
          c.secret = m.body.readInt32BE(4);
        } else if (m.type === 'Z') {
          return c;
        }
        // 'S' (recorded by the framer), 'N', 'v': nothing to do.
      }
    } catch (err) {
      c.destroy();
      throw err;
    }
  }

  send(...frames: Buffer[]): void {
    this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  /** The next message, or ProtoTimeoutError after `timeoutMs`; an Error when the connection closes first. */
  async read(timeoutMs = 5_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.next();
      if (m) return m;
      if (this.closed) throw new Error(`proto-client: connection closed${this.error ? ` (${this.error.message})` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new ProtoTimeoutError(`proto-client: no message within ${timeoutMs} ms`);
      await this.waitData(left);
    }
  }

  /** Messages up to and including the first one for which `stop` is true. */
  async readUntil(stop: (m: Msg) => boolean, timeoutMs = 5_000): Promise<Msg[]> {
    const deadline = Date.now() + timeoutMs;
    const out: Msg[] = [];
    for (;;) {
      const m = await this.read(Math.max(1, deadline - Date.now()));
      out.push(m);
      if (stop(m)) return out;
    }
  }

  /** Messages up to and including the next ReadyForQuery. */
  readUntilReady(timeoutMs = 5_000): Promise<Msg[]> {
    return this.readUntil((m) => m.type === 'Z', timeoutMs);
  }

  /** Messages up to and including the `n`th ReadyForQuery. */
  async readReady(n: number, timeoutMs = 5_000): Promise<Msg[]> {
    let seen = 0;
    return this.readUntil((m) => m.type === 'Z' && ++seen === n, timeoutMs);
  }

  /**
   * Messages up to and including the `n`th ReadyForQuery; when the connection closes or `timeoutMs` passes
   * first, what came until then (never throws: for comparing whole exchanges, whatever they turn out to be).
   */
  async collectReady(n: number, timeoutMs = 15_000): Promise<Msg[]> {
    const out: Msg[] = [];
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    while (seen < n) {
      const left = deadline - Date.now();
      if (left <= 0) return out;
      try {
        const m = await this.read(left);
        out.push(m);
        if (m.type === 'Z') seen++;
      } catch {
        return out;
      }
    }
    return out;
  }

  /** Sends a simple Query and returns every reply up to ReadyForQuery. */
  async query(sql: string, timeoutMs = 10_000): Promise<Msg[]> {
    this.send(serialize.query(sql));
    return this.readUntilReady(timeoutMs);
  }

  /** Every message that arrives within `ms` (none expected: the caller asserts on the result). */
  async drain(ms: number): Promise<Msg[]> {
    const out: Msg[] = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return out;
      try {
        out.push(await this.read(left));
      } catch (err) {
        if (err instanceof ProtoTimeoutError) return out;
        if (this.closed) return out;
        throw err;
      }
    }
  }

  /** The first `n` raw bytes received (e.g. the one-byte answer to an SSLRequest), bypassing the framer. */
  async readRaw(n: number, timeoutMs = 5_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.avail < n) {
      if (this.closed) throw new Error('proto-client: connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new ProtoTimeoutError(`proto-client: ${n} bytes not received within ${timeoutMs} ms`);
      await this.waitData(left);
    }
    return this.take(n);
  }

  /** Resolves true once the connection is closed, false if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const r = await Promise.race([this.closedPromise.then(() => true), timedOut]);
    clearTimeout(timer);
    return r;
  }

  /** Bytes received but not yet read as messages. */
  get buffered(): number {
    return this.avail;
  }

  /** Terminate, then close. */
  async end(timeoutMs = 2_000): Promise<void> {
    if (!this.closed) {
      this.socket.end(Buffer.from([0x58, 0, 0, 0, 4]));
      if (!(await this.waitClosed(timeoutMs))) this.socket.destroy();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    if (this.onMessage) {
      for (let m = this.next(); m; m = this.next()) this.onMessage(m);
    }
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private waitData(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Frames the next complete message out of the received bytes, if there is one. */
  private next(): Msg | null {
    const q = this.queue.shift();
    if (q) return q;
    if (this.avail < 5) return null;
    const header = this.peek(5);
    const len = header.readInt32BE(1);
    if (len < 4 || len > MAX_MESSAGE) throw new Error(`proto-client: invalid message length ${len} (type ${JSON.stringify(String.fromCharCode(header[0]!))})`);
    if (this.avail < len + 1) return null;
    const frame = this.take(len + 1);
    const m: Msg = { type: String.fromCharCode(frame[0]!), body: frame.subarray(5) };
    if (m.type === 'S') {
      const [k, v] = parameterStatus(m.body);
      this.params.set(k, v);
    }
    return m;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  /** Takes `n` bytes off the front, copying only when they span chunks. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.avail -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - o);
      c.copy(out, o, 0, k);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.avail -= n;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------- decoders

/** Message types as one string, e.g. '12CZ'. */
export function types(msgs: readonly Msg[]): string {
  return msgs.map((m) => m.type).join('');
}

/** Fields of an ErrorResponse / NoticeResponse, keyed by field letter (S, V, C, M, D, H, P, W...). */
export function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    out[String.fromCharCode(body[i]!)] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

/** SQLSTATEs of the ErrorResponses in `msgs`, in order. */
export function errorCodes(msgs: readonly Msg[]): string[] {
  return msgs.filter((m) => m.type === 'E').map((m) => errorFields(m.body).C ?? '');
}

/** A DataRow in text format: one string (or null) per column. */
export function dataRow(body: Buffer): (string | null)[] {
  const n = body.readInt16BE(0);
  const out: (string | null)[] = [];
  let o = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(o);
    o += 4;
    if (len < 0) out.push(null);
    else {
      out.push(body.toString('utf8', o, o + len));
      o += len;
    }
  }
  return out;
}

/** All DataRows of `msgs`, decoded as text. */
export function rows(msgs: readonly Msg[]): (string | null)[][] {
  return msgs.filter((m) => m.type === 'D').map((m) => dataRow(m.body));
}

export interface FieldDescription {
  name: string;
  tableOid: number;
  column: number;
  typeOid: number;
  typeSize: number;
  typeMod: number;
  format: number;
}

export function rowDescription(body: Buffer): FieldDescription[] {
  const n = body.readInt16BE(0);
  const out: FieldDescription[] = [];
  let o = 2;
  for (let i = 0; i < n; i++) {
    const z = body.indexOf(0, o);
    const name = body.toString('utf8', o, z);
    o = z + 1;
    out.push({
      name,
      tableOid: body.readInt32BE(o),
      column: body.readInt16BE(o + 4),
      typeOid: body.readInt32BE(o + 6),
      typeSize: body.readInt16BE(o + 10),
      typeMod: body.readInt32BE(o + 12),
      format: body.readInt16BE(o + 16),
    });
    o += 18;
  }
  return out;
}

/** ParameterDescription: the parameter type OIDs. */
export function parameterTypes(body: Buffer): number[] {
  const n = body.readInt16BE(0);
  return Array.from({ length: n }, (_, i) => body.readInt32BE(2 + 4 * i));
}

export function commandTag(body: Buffer): string {
  return body.toString('utf8', 0, body.indexOf(0));
}

/** Tags of the CommandCompletes in `msgs`, in order. */
export function tags(msgs: readonly Msg[]): string[] {
  return msgs.filter((m) => m.type === 'C').map((m) => commandTag(m.body));
}

export function parameterStatus(body: Buffer): [string, string] {
  const z = body.indexOf(0);
  const z2 = body.indexOf(0, z + 1);
  return [body.toString('utf8', 0, z), body.toString('utf8', z + 1, z2 < 0 ? body.length : z2)];
}

/** NotificationResponse: sender pid, channel, payload. */
export function notification(body: Buffer): { pid: number; channel: string; payload: string } {
  const z = body.indexOf(0, 4);
  const z2 = body.indexOf(0, z + 1);
  return { pid: body.readInt32BE(0), channel: body.toString('utf8', 4, z), payload: body.toString('utf8', z + 1, z2) };
}

/** The status byte of a ReadyForQuery ('I', 'T' or 'E'). */
export function readyStatus(m: Msg): string {
  return String.fromCharCode(m.body[0]!);
}

/** Status of the last ReadyForQuery in `msgs`. */
export function lastReady(msgs: readonly Msg[]): string {
  const z = [...msgs].reverse().find((m) => m.type === 'Z');
  return z ? readyStatus(z) : '';
}

// ---------------------------------------------------------------------------------------------- frame builders

/** A frame `type(1) length(4) body` with any body (also for deliberately malformed messages). */
export function frame(type: string | number, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const out = Buffer.allocUnsafe(b.length + 5);
  out[0] = typeof type === 'string' ? type.charCodeAt(0) : type;
  out.writeInt32BE(b.length + 4, 1);
  b.copy(out, 5);
  return out;
}

/** Parse + Bind + Execute of one statement (unnamed unless given), text parameters, all rows. */
export function pbe(sql: string, values: (string | null)[] = [], opts: { name?: string; portal?: string; rows?: number } = {}): Buffer {
  return Buffer.concat([
    serialize.parse({ name: opts.name ?? '', text: sql }),
    serialize.bind({ statement: opts.name ?? '', portal: opts.portal ?? '', values }),
    serialize.execute({ portal: opts.portal ?? '', rows: opts.rows ?? 0 }),
  ]);
}

/** Bind + Execute of an already parsed statement. */
export function be(name: string, values: (string | null)[] = [], opts: { portal?: string; rows?: number } = {}): Buffer {
  return Buffer.concat([serialize.bind({ statement: name, portal: opts.portal ?? '', values }), serialize.execute({ portal: opts.portal ?? '', rows: opts.rows ?? 0 })]);
}
