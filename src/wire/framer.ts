/**
 * Incremental splitter of length-prefixed protocol messages.
 *
 * Regular messages are `type(1) length(4) body`; the first message of a client connection (startup, SSL or
 * cancel request) has no type byte. Frames are handed out as offsets into `buf`, which is the caller's chunk
 * whenever the frame lies wholly inside it, so nothing is copied in the common case. Only a frame split
 * across chunks is assembled in a carry-over buffer.
 */
/** What was wrong with a frame, which decides the answer (PostgreSQL's, see docs/protocol-violations.md). */
export const enum FrameFault {
  /** A length PostgreSQL itself would not read (below 4, over its limit for the type): it logs and closes silently. */
  Length,
  /** A length within PostgreSQL's limits but over the framer's own (a configured limit): a clear error. */
  OverLimit,
  /** A type byte that is not a message a client sends in this phase: FATAL, like PostgreSQL. */
  Type,
}

export class FrameError extends Error {
  readonly code = 'FRAME';
  constructor(
    message: string,
    readonly fault: FrameFault = FrameFault.Length,
    /** The frame's type byte (for FrameFault.Type). */
    readonly type = 0,
    /** The frame's size in bytes (for FrameFault.OverLimit). */
    readonly size = 0,
  ) {
    super(message);
  }
}

/** PostgreSQL's limits on the length word of what a client sends (libpq.h, postgres.c SocketBackend). */
export const PQ_SMALL_MESSAGE_LIMIT = 10_000;
export const PQ_LARGE_MESSAGE_LIMIT = 0x3fff_fffe;
/** A startup-phase packet's length word: the protocol code plus at most 10,000 bytes (postmaster.c). */
export const MIN_STARTUP_LENGTH = 8;
export const MAX_STARTUP_LENGTH = 10_004;

/**
 * Per type byte, the largest length word PostgreSQL accepts for it; 0: not a message a client may send. The
 * framer checks the type as soon as its byte arrives, before waiting for a body, as PostgreSQL does.
 */
export type TypeLimits = Int32Array;

export function typeLimits(entries: Readonly<Record<string, number>>): TypeLimits {
  const t = new Int32Array(256);
  for (const [ch, limit] of Object.entries(entries)) t[ch.charCodeAt(0)] = limit;
  return t;
}

export class Framer {
  /** Buffer the current frame lives in (valid until the next call of `next`). */
  buf: Buffer = EMPTY;
  /** Frame type byte (0 for an untyped startup-phase frame). */
  type = 0;
  /** Offset of the frame's first byte (its type byte, or its length for untyped frames). */
  start = 0;
  /** Offset of the frame's body (after type and length). */
  bodyStart = 0;
  /** Offset one past the frame's last byte. */
  end = 0;

  private chunk: Buffer = EMPTY;
  private pos = 0;
  private carry: Buffer | null = null;
  private carryLen = 0;
  private untyped: boolean;
  private limits: TypeLimits | null = null;

  constructor(
    private maxFrame: number,
    untypedFirst = false,
  ) {
    this.untyped = untypedFirst;
  }

  /** Checks the type byte of every typed frame against `limits` (null: any type, only maxFrame applies). */
  setTypeLimits(limits: TypeLimits | null): void {
    this.limits = limits;
  }

  /** The next frame is a startup-phase frame without a type byte (after an SSL/GSS refusal). */
  expectUntyped(): void {
    this.untyped = true;
  }

  setMaxFrame(bytes: number): void {
    this.maxFrame = bytes;
  }

  /** Hand the framer a new chunk; call `next()` until it returns false before pushing again. */
  push(chunk: Buffer): void {
    this.chunk = chunk;
    this.pos = 0;
  }

  /**
   * Takes every byte not yet consumed (optionally starting with the current frame) out of the framer, e.g. to
   * hold input while the session waits. The framer is left empty.
   */
  takeRest(includeCurrent: boolean): Buffer {
    const parts: Buffer[] = [];
    if (includeCurrent) {
      if (this.buf === this.chunk && this.end === this.pos) this.pos = this.start;
      else parts.push(Buffer.from(this.buf.subarray(this.start, this.end)));
    }
    // A pending partial frame came before the chunk pushed since (push() before next() completed it).
    if (this.carry !== null && this.carryLen > 0) parts.push(this.carry.subarray(0, this.carryLen));
    if (this.pos < this.chunk.length) parts.push(this.chunk.subarray(this.pos));
    this.carry = null;
    this.carryLen = 0;
    this.chunk = EMPTY;
    this.pos = 0;
    this.buf = EMPTY;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Bytes received but not yet handed out as frames (unread chunk bytes plus a pending partial frame). */
  get buffered(): number {
    return this.chunk.length - this.pos + this.carryLen;
  }

  /** True while a partial frame is waiting for more bytes. */
  get pending(): boolean {
    return this.carryLen > 0;
  }

  /**
   * Advance to the next complete frame. Returns false when the chunk is used up (a partial frame, if any,
   * is kept for the next push). Throws FrameError for a length that cannot be valid.
   */
  next(): boolean {
    const headerLen = this.untyped ? 4 : 5;
    if (this.carryLen > 0) return this.nextFromCarry(headerLen);
    const chunk = this.chunk;
    const avail = chunk.length - this.pos;
    if (avail === 0) return false;
    if (!this.untyped && this.limits !== null && this.limits[chunk[this.pos]!] === 0) throw this.typeFault(chunk[this.pos]!);
    if (avail < headerLen) {
      this.stash(chunk, this.pos, chunk.length, headerLen);
      this.pos = chunk.length;
      return false;
    }
    const p = this.pos;
    const len = this.untyped ? chunk.readInt32BE(p) : chunk.readInt32BE(p + 1);
    const total = this.frameTotal(len, headerLen, chunk[p]!);
    if (avail < total) {
      this.stash(chunk, p, chunk.length, total);
      this.pos = chunk.length;
      return false;
    }
    this.buf = chunk;
    this.type = this.untyped ? 0 : chunk[p]!;
    this.start = p;
    this.bodyStart = p + headerLen;
    this.end = p + total;
    this.pos = p + total;
    this.untyped = false;
    return true;
  }

  private nextFromCarry(headerLen: number): boolean {
    const chunk = this.chunk;
    // Complete the header first, then the body, taking only what this frame needs from the chunk.
    if (this.carryLen < headerLen) {
      const take = Math.min(headerLen - this.carryLen, chunk.length - this.pos);
      this.append(chunk, this.pos, this.pos + take);
      this.pos += take;
      if (this.carryLen < headerLen) return false;
    }
    const carry = this.carry!;
    const len = this.untyped ? carry.readInt32BE(0) : carry.readInt32BE(1);
    const total = this.frameTotal(len, headerLen, carry[0]!);
    if (this.carryLen < total) {
      if (this.carry!.length < total) this.grow(total);
      const take = Math.min(total - this.carryLen, chunk.length - this.pos);
      this.append(chunk, this.pos, this.pos + take);
      this.pos += take;
      if (this.carryLen < total) return false;
    }
    this.buf = this.carry!;
    this.type = this.untyped ? 0 : this.buf[0]!;
    this.start = 0;
    this.bodyStart = headerLen;
    this.end = total;
    this.untyped = false;
    // The assembled frame stays valid until the next call; a new carry buffer is made for the next split
    // frame, so that views handed out of this one are never overwritten.
    this.carry = null;
    this.carryLen = 0;
    return true;
  }

  private frameTotal(len: number, headerLen: number, first: number): number {
    if (this.untyped) {
      if (len < MIN_STARTUP_LENGTH || len > MAX_STARTUP_LENGTH) throw new FrameError(`invalid length of startup packet (${len})`);
    } else if (len < 4 || (this.limits !== null && len > this.limits[first]!)) {
      throw new FrameError(`invalid message length ${len} for message type ${first}`);
    }
    const total = len + headerLen - 4;
    if (total > this.maxFrame) throw new FrameError(`message of ${total} bytes exceeds the limit of ${this.maxFrame}`, FrameFault.OverLimit, first, total);
    return total;
  }

  private typeFault(type: number): FrameError {
    return new FrameError(`invalid frontend message type ${type}`, FrameFault.Type, type);
  }

  private stash(src: Buffer, from: number, to: number, expected: number): void {
    this.carry = Buffer.allocUnsafe(Math.max(expected, 64));
    this.carryLen = 0;
    this.append(src, from, to);
  }

  private grow(size: number): void {
    const grown = Buffer.allocUnsafe(size);
    this.carry!.copy(grown, 0, 0, this.carryLen);
    this.carry = grown;
  }

  private append(src: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    let carry = this.carry!;
    if (this.carryLen + n > carry.length) {
      const grown = Buffer.allocUnsafe(Math.max(carry.length * 2, this.carryLen + n));
      carry.copy(grown, 0, 0, this.carryLen);
      carry = this.carry = grown;
    }
    src.copy(carry, this.carryLen, from, to);
    this.carryLen += n;
  }
}

const EMPTY = Buffer.alloc(0);
