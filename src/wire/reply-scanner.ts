/**
 * Walks the message headers of a backend's byte stream without assembling whole messages, so that large
 * DataRows and COPY data stream through in the chunks they came in. For each message the owner decides at
 * its header whether it reaches the client; the few messages whose content matters (ReadyForQuery,
 * ErrorResponse, ParameterStatus...) are handed over whole once complete, after every forwarded byte before
 * their end has been passed on (so a reaction to ReadyForQuery sees the client stream up to date).
 */
export interface ReplyHandler {
  /** Called at every message header. Return true to forward the message, false to swallow it. */
  onReplyHeader(type: number, bodyLength: number): boolean;
  /** Called when a message whose type is in the capture set is complete; `body` is valid only during the call. */
  onReplyMessage(type: number, body: Buffer): void;
  /** Bytes to forward to the client, in order. `whole` is true when `bytes` is the entire inbound chunk. */
  onForward(bytes: Buffer, whole: boolean): void;
}

/** Captured bodies larger than this are not assembled (no message we inspect is ever this large). */
const MAX_CAPTURE = 1 << 20;

export class ReplyScanner {
  private readonly header = Buffer.alloc(5);
  private headerLen = 0;
  private remaining = 0;
  private forwarding = true;
  private capturing = false;
  private capture: Buffer | null = null;
  private captureLen = 0;
  private type = 0;
  // Per-feed state, kept in fields so that helpers need no closures.
  private chunk: Buffer = EMPTY;
  private run = 0;

  /** `captureTypes[type]` is 1 for message types whose whole body the handler wants. */
  constructor(
    private readonly handler: ReplyHandler,
    private readonly captureTypes: Uint8Array,
  ) {}

  /** True between messages (no partial message pending). */
  get atBoundary(): boolean {
    return this.headerLen === 0 && this.remaining === 0;
  }

  feed(chunk: Buffer): void {
    const h = this.handler;
    const n = chunk.length;
    this.chunk = chunk;
    this.run = this.forwarding && this.headerLen === 0 ? 0 : -1;
    let i = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - i);
        if (this.capturing) this.appendCapture(chunk, i, i + take);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0 && this.capturing) this.deliverCaptured(i);
        continue;
      }
      const msgStart = i;
      let type: number;
      let len: number;
      let splitHeader = false;
      if (this.headerLen === 0 && n - i >= 5) {
        type = chunk[i]!;
        len = chunk.readInt32BE(i + 1);
        i += 5;
      } else {
        const take = Math.min(5 - this.headerLen, n - i);
        chunk.copy(this.header, this.headerLen, i, i + take);
        this.headerLen += take;
        i += take;
        if (this.headerLen < 5) {
          // The header's fate is decided when it completes; flush what came before it.
          this.flushTo(msgStart);
          this.run = -1;
          break;
        }
        type = this.header[0]!;
        len = this.header.readInt32BE(1);
        this.headerLen = 0;
        splitHeader = true;
      }
      const body = len - 4;
      if (body < 0) throw new Error(`backend sent an invalid message length ${len}`);
      this.type = type;
      const forward = h.onReplyHeader(type, body);
      if (splitHeader) {
        // Part of this header arrived in an earlier chunk and was held back: emit the header ourselves.
        this.flushTo(msgStart);
        if (forward) h.onForward(Buffer.from(this.header), false);
        this.run = forward ? i : -1;
      } else if (forward && this.run < 0) {
        this.run = msgStart;
      } else if (!forward && this.run >= 0) {
        this.flushTo(msgStart);
        this.run = -1;
      }
      this.forwarding = forward;
      this.capturing = this.captureTypes[type] === 1 && body <= MAX_CAPTURE;
      this.remaining = body;
      if (!this.capturing) continue;
      this.captureLen = 0;
      if (n - i >= body) {
        // Whole body inside this chunk: hand out a view, no copy.
        i += body;
        this.remaining = 0;
        this.capturing = false;
        this.flushTo(i);
        h.onReplyMessage(type, chunk.subarray(i - body, i));
        if (this.forwarding && this.run < 0) this.run = i;
      }
    }
    if (this.run >= 0 && n > this.run) h.onForward(this.run === 0 ? chunk : chunk.subarray(this.run), this.run === 0);
    this.chunk = EMPTY;
  }

  /** Forward the pending run up to `end` (exclusive) and continue the run from there. */
  private flushTo(end: number): void {
    const run = this.run;
    if (run >= 0 && end > run) {
      const whole = run === 0 && end === this.chunk.length;
      this.handler.onForward(whole ? this.chunk : this.chunk.subarray(run, end), whole);
      this.run = end;
    }
  }

  private deliverCaptured(end: number): void {
    this.capturing = false;
    this.flushTo(end);
    this.handler.onReplyMessage(this.type, this.capture!.subarray(0, this.captureLen));
    if (this.forwarding && this.run < 0) this.run = end;
  }

  private appendCapture(src: Buffer, from: number, to: number): void {
    const n = to - from;
    if (this.capture === null || this.captureLen + n > this.capture.length) {
      const grown = Buffer.allocUnsafe(Math.max(256, (this.captureLen + n) * 2));
      if (this.capture !== null) this.capture.copy(grown, 0, 0, this.captureLen);
      this.capture = grown;
    }
    src.copy(this.capture, this.captureLen, from, to);
    this.captureLen += n;
  }
}

const EMPTY = Buffer.alloc(0);

export function captureSet(...types: number[]): Uint8Array {
  const set = new Uint8Array(256);
  for (const t of types) set[t] = 1;
  return set;
}
