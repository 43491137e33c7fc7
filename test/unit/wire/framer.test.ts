import { describe, expect, it } from 'vitest';
import { FrameError, FrameFault, Framer, MAX_STARTUP_LENGTH, typeLimits } from '../../../src/wire/framer.js';
import { prng } from '../../prng.js';
import { cut } from './chunks.js';

// Framer tests in the manner of pg-protocol's inbound-parser tests: the same byte stream is cut every way we can
// think of (one chunk, every two-chunk split, one byte per chunk, seeded random cuts) and must always give back
// exactly the frames it was built from.

interface Frame {
  type: number;
  body: Buffer;
}

const MAX = 1 << 22;


function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

function typed(type: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + body.length);
  b[0] = type;
  b.writeInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

function untyped(body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(4 + body.length);
  b.writeInt32BE(body.length + 4, 0);
  body.copy(b, 4);
  return b;
}

function encode(frames: Frame[]): Buffer {
  return Buffer.concat(frames.map((f) => typed(f.type, f.body)));
}

// Mix tiny, medium and large pieces so that headers, small bodies and big bodies all get split.
function randomCuts(rand: () => number, length: number, scales = [4, 16, 300, 5000, 100_000]): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (;;) {
    at += 1 + Math.floor(rand() * scales[Math.floor(rand() * scales.length)]!);
    if (at >= length) return offsets;
    offsets.push(at);
  }
}

/**
 * Pushes every chunk and drains the framer, copying each frame (views are valid only until the next `next`)
 * and checking that the offsets describe a well-formed frame.
 */
function drain(framer: Framer, chunks: Buffer[], onFrame?: (f: Framer) => void): Frame[] {
  const out: Frame[] = [];
  for (const chunk of chunks) {
    framer.push(chunk);
    while (framer.next()) {
      const { buf, start, bodyStart, end, type } = framer;
      // Plain checks rather than expect(): this runs for hundreds of thousands of frames.
      const wellFormed =
        type === 0
          ? bodyStart - start === 4 && buf.readInt32BE(start) === end - start
          : bodyStart - start === 5 && buf[start] === type && buf.readInt32BE(start + 1) === end - start - 1;
      if (!wellFormed) expect.fail(`frame ${out.length}: offsets ${start}/${bodyStart}/${end} do not describe a frame`);
      // A frame is either a view of the chunk or was assembled in the carry buffer, where it starts at 0.
      if (buf !== chunk && start !== 0) expect.fail(`frame ${out.length}: carried frame at offset ${start}`);
      out.push({ type, body: Buffer.from(buf.subarray(bodyStart, end)) });
      onFrame?.(framer);
    }
  }
  return out;
}

/** Compares without handing vitest a megabyte buffer to diff. */
function expectFrames(actual: Frame[], expected: Frame[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (a.type !== e.type || !a.body.equals(e.body)) {
      expect.fail(`frame ${i}: got type ${a.type} with ${a.body.length} bytes, expected type ${e.type} with ${e.body.length} bytes`);
    }
  }
}

function frames(rand: () => number, sizes: number[]): Frame[] {
  const types = [0x44, 0x51, 0x50, 0x42, 0x45, 0x53, 0x48, 0x43, 0x64, 0x70, 0x58];
  return sizes.map((n, i) => ({ type: types[i % types.length]!, body: randomBytes(rand, n) }));
}

describe('Framer: a stream of many frames, cut every way', () => {
  const rand = prng(0x5eed);
  // Every small size (including bodies shorter than a header), then the big ones, then small ones again.
  const bigSizes = [0, 1, 2, 3, 4, 5, 0, 0, 1, 7, 13, 100, 65536, 0, 1, 1 << 20, 3, 0, 65535, 65537, 1, 4096, 0];
  const big = frames(rand, bigSizes);
  const bigStream = encode(big);
  // A shorter stream for the quadratic every-split test.
  const smallSizes = [0, 1, 2, 3, 4, 5, 6, 0, 0, 9, 1, 40, 0, 2, 130, 1, 0];
  const small = frames(rand, smallSizes);
  const smallStream = encode(small);

  it('yields the frames from one chunk, each a view of that chunk', () => {
    const f = new Framer(MAX);
    f.push(bigStream);
    const got: Frame[] = [];
    while (f.next()) {
      expect(f.buf).toBe(bigStream);
      got.push({ type: f.type, body: Buffer.from(f.buf.subarray(f.bodyStart, f.end)) });
    }
    expectFrames(got, big);
    expect(f.pending).toBe(false);
    expect(f.next()).toBe(false);
  });

  it('yields the frames for a split into two chunks at every byte boundary', () => {
    for (let at = 0; at <= smallStream.length; at++) {
      const f = new Framer(MAX);
      expectFrames(drain(f, cut(smallStream, [at])), small);
      expect(f.pending).toBe(false);
    }
  });

  it('hands out every frame that lies wholly inside a chunk as a view of that chunk (no copy)', () => {
    for (let at = 0; at <= smallStream.length; at++) {
      const [first, second] = cut(smallStream, [at]) as [Buffer, Buffer];
      const f = new Framer(MAX);
      let frameStart = 0;
      for (const [chunk, chunkStart] of [[first, 0], [second, at]] as const) {
        f.push(chunk);
        while (f.next()) {
          const frameEnd = frameStart + f.end - f.start;
          const inside = frameStart >= chunkStart && frameEnd <= chunkStart + chunk.length;
          expect(f.buf === chunk).toBe(inside);
          if (inside) expect(f.start).toBe(frameStart - chunkStart);
          frameStart = frameEnd;
        }
      }
      expect(frameStart).toBe(smallStream.length);
    }
  });

  it('yields the frames for a split into three chunks at every pair of boundaries', () => {
    const s = encode(small.slice(0, 8));
    for (let a = 0; a <= s.length; a++) {
      for (let b = a; b <= s.length; b++) {
        const f = new Framer(MAX);
        expectFrames(drain(f, cut(s, [a, b])), small.slice(0, 8));
        expect(f.pending).toBe(false);
      }
    }
  });

  it('yields the frames for one byte per chunk (small stream)', () => {
    const f = new Framer(MAX);
    const chunks = Array.from({ length: smallStream.length }, (_, i) => smallStream.subarray(i, i + 1));
    expectFrames(drain(f, chunks), small);
  });

  it('yields the frames for one byte per chunk, including the 64 KiB and 1 MiB frames', () => {
    const f = new Framer(MAX);
    const got: Frame[] = [];
    // No `drain` here: a million expect() calls would dominate the run time.
    for (let i = 0; i < bigStream.length; i++) {
      f.push(bigStream.subarray(i, i + 1));
      while (f.next()) got.push({ type: f.type, body: Buffer.from(f.buf.subarray(f.bodyStart, f.end)) });
    }
    expectFrames(got, big);
    expect(f.pending).toBe(false);
  });

  it('yields the frames for seeded random chunkings', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = prng(seed);
      const stream = seed % 3 === 0 ? smallStream : bigStream;
      const expected = seed % 3 === 0 ? small : big;
      const f = new Framer(MAX);
      expectFrames(drain(f, cut(stream, randomCuts(r, stream.length))), expected);
      expect(f.pending).toBe(false);
    }
  });

  it('yields the frames when chunks also carry empty buffers', () => {
    const f = new Framer(MAX);
    const chunks = cut(smallStream, [0, 0, 3, 3, 20, 20, smallStream.length]);
    expectFrames(drain(f, chunks), small);
  });

  it('reports pending exactly while a partial frame waits', () => {
    const s = encode(small);
    const boundaries = new Set<number>();
    let at = 0;
    for (const fr of small) boundaries.add((at += 5 + fr.body.length));
    boundaries.add(0);
    for (let i = 0; i <= s.length; i++) {
      const f = new Framer(MAX);
      f.push(s.subarray(0, i));
      while (f.next());
      expect(f.pending).toBe(!boundaries.has(i));
    }
  });
});

const STARTUP = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('user\0alice\0database\0db\0\0')]);
const SSL_REQUEST = untyped(Buffer.from([0x04, 0xd2, 0x16, 0x2f])); // 80877103
const GSS_REQUEST = untyped(Buffer.from([0x04, 0xd2, 0x16, 0x30])); // 80877104

describe('Framer: untyped startup frames', () => {
  const afterStartup: Frame[] = [
    { type: 0x70, body: Buffer.from('secret\0') },
    { type: 0x51, body: Buffer.from('select 1\0') },
    { type: 0x53, body: Buffer.alloc(0) },
  ];

  it('reads the first frame without a type byte, then typed frames', () => {
    const s = Buffer.concat([untyped(STARTUP), encode(afterStartup)]);
    for (let at = 0; at <= s.length; at++) {
      const f = new Framer(10_000, true);
      const got = drain(f, cut(s, [at]));
      expectFrames(got, [{ type: 0, body: STARTUP }, ...afterStartup]);
    }
  });

  it('the startup frame starts at its length, body after it', () => {
    const f = new Framer(10_000, true);
    const packet = untyped(STARTUP);
    f.push(packet);
    expect(f.next()).toBe(true);
    expect(f.type).toBe(0);
    expect(f.buf).toBe(packet);
    expect(f.start).toBe(0);
    expect(f.bodyStart).toBe(4);
    expect(f.end).toBe(packet.length);
    expect(f.buf.readInt32BE(f.start + 4)).toBe(196608);
  });

  it('expectUntyped() after an SSLRequest or GSSENCRequest reads the next frame untyped', () => {
    for (const request of [SSL_REQUEST, GSS_REQUEST]) {
      const s = Buffer.concat([request, untyped(STARTUP), encode(afterStartup)]);
      const cuts: number[][] = [];
      for (let at = 0; at <= s.length; at++) cuts.push([at]);
      for (let seed = 0; seed < 20; seed++) cuts.push(randomCuts(prng(seed), s.length).filter((_, i) => i < 40));
      cuts.push(Array.from({ length: s.length - 1 }, (_, i) => i + 1));
      for (const offsets of cuts) {
        const f = new Framer(10_000, true);
        let first = true;
        const got = drain(f, cut(s, offsets), (fr) => {
          if (first) {
            first = false;
            expect(fr.type).toBe(0);
            expect(fr.end - fr.start).toBe(8);
            fr.expectUntyped();
          }
        });
        expectFrames(got, [{ type: 0, body: request.subarray(4) }, { type: 0, body: STARTUP }, ...afterStartup]);
      }
    }
  });

  it('a second untyped frame is not expected unless asked for', () => {
    const f = new Framer(10_000, true);
    // A typed frame with byte 0 as type would misparse; here the next frame is typed 'p'.
    f.push(Buffer.concat([SSL_REQUEST, typed(0x70, Buffer.from('x\0'))]));
    expect(f.next()).toBe(true);
    expect(f.type).toBe(0);
    expect(f.next()).toBe(true);
    expect(f.type).toBe(0x70);
  });
});

function lengthHeader(type: number | null, len: number): Buffer {
  const b = Buffer.alloc(type === null ? 4 : 5);
  if (type === null) b.writeInt32BE(len, 0);
  else {
    b[0] = type;
    b.writeInt32BE(len, 1);
  }
  return b;
}

describe('Framer: invalid lengths', () => {
  /** Feeds `data` cut at `at` and returns the error thrown, if any. */
  function run(maxFrame: number, untypedFirst: boolean, data: Buffer, at: number): unknown {
    const f = new Framer(maxFrame, untypedFirst);
    try {
      for (const c of cut(data, [at])) {
        f.push(c);
        while (f.next());
      }
    } catch (err) {
      return err;
    }
    return null;
  }

  it.each([3, 2, 1, 0, -1, -4, -0x80000000])('typed length %i throws FrameError, whole or split', (len) => {
    const data = Buffer.concat([lengthHeader(0x51, len), Buffer.alloc(16)]);
    for (let at = 0; at <= data.length; at++) {
      const err = run(1000, false, data, at);
      expect(err).toBeInstanceOf(FrameError);
      expect((err as FrameError).code).toBe('FRAME');
    }
  });

  it.each([3, 0, -1])('untyped length %i throws FrameError', (len) => {
    const data = Buffer.concat([lengthHeader(null, len), Buffer.alloc(16)]);
    for (let at = 0; at <= data.length; at++) expect(run(1000, true, data, at)).toBeInstanceOf(FrameError);
  });

  it('a frame of exactly the limit passes, one byte more throws (typed: limit counts the type byte)', () => {
    // maxFrame 100: typed length 99 is 100 bytes on the wire.
    const ok = typed(0x44, Buffer.alloc(95));
    const tooBig = typed(0x44, Buffer.alloc(96));
    for (let at = 0; at <= ok.length; at++) expect(run(100, false, ok, at)).toBeNull();
    for (let at = 0; at <= tooBig.length; at++) expect(run(100, false, tooBig, at)).toBeInstanceOf(FrameError);
  });

  it('the limit applies to untyped frames too, and is thrown as soon as the header is known', () => {
    const ok = untyped(Buffer.alloc(96));
    for (let at = 0; at <= ok.length; at++) expect(run(100, true, ok, at)).toBeNull();
    // Only the 4-byte length of an oversized packet has arrived: refuse it now, not after buffering it.
    const f = new Framer(10_000, true);
    f.push(lengthHeader(null, 10_001));
    expect(() => f.next()).toThrow(FrameError);
    const g = new Framer(10_000, true);
    g.push(lengthHeader(null, 10_001).subarray(0, 2));
    expect(g.next()).toBe(false);
    g.push(lengthHeader(null, 10_001).subarray(2));
    expect(() => g.next()).toThrow(FrameError);
  });

  it('setMaxFrame raises the limit for the frames after the startup packet', () => {
    const f = new Framer(10_000, true);
    const big = typed(0x51, Buffer.alloc(50_000));
    f.push(Buffer.concat([untyped(STARTUP), big]));
    expect(f.next()).toBe(true);
    f.setMaxFrame(1 << 20);
    expect(f.next()).toBe(true);
    expect(f.end - f.start).toBe(big.length);
    f.setMaxFrame(1000);
    f.push(big);
    expect(() => f.next()).toThrow(/exceeds the limit of 1000/);
  });

  it('a negative length never reaches a buffer allocation', () => {
    const data = lengthHeader(0x44, -5);
    expect(() => {
      const f = new Framer(MAX);
      f.push(data.subarray(0, 3));
      f.next();
      f.push(data.subarray(3));
      f.next();
    }).toThrow(FrameError);
  });
});

describe('Framer: takeRest', () => {
  const rand = prng(7);
  const list = frames(rand, [3, 0, 12, 1, 30, 0, 70, 2, 5, 0]);
  const stream = encode(list);
  const starts: number[] = [];
  {
    let at = 0;
    for (const fr of list) {
      starts.push(at);
      at += 5 + fr.body.length;
    }
    starts.push(at);
  }

  function expectEmpty(f: Framer): void {
    expect(f.pending).toBe(false);
    expect(f.next()).toBe(false);
    expect(f.takeRest(false).length).toBe(0);
  }

  it('after the k-th frame of a two-chunk feed, for every split and every k, hands back exactly the rest', () => {
    for (let at = 0; at <= stream.length; at++) {
      const chunks = cut(stream, [at]);
      for (const includeCurrent of [true, false]) {
        for (let k = 0; k < list.length; k++) {
          const f = new Framer(MAX);
          let seen = 0;
          let pushed = 0;
          let rest: Buffer | null = null;
          for (const c of chunks) {
            f.push(c);
            pushed += c.length;
            while (rest === null && f.next()) {
              if (seen++ === k) rest = Buffer.from(f.takeRest(includeCurrent));
            }
            if (rest !== null) break;
          }
          expect(rest, `split ${at}, k ${k}`).not.toBeNull();
          const from = includeCurrent ? starts[k]! : starts[k + 1]!;
          if (!rest!.equals(stream.subarray(from, pushed))) {
            expect.fail(`split ${at}, frame ${k}, includeCurrent ${includeCurrent}: got ${rest!.length} bytes, expected ${pushed - from}`);
          }
          expectEmpty(f);
          // What the framer handed back, then the bytes not yet pushed, make a valid stream of the remaining frames.
          const fresh = new Framer(MAX);
          expectFrames(drain(fresh, [rest!, stream.subarray(pushed)]), list.slice(includeCurrent ? k : k + 1));
          // The emptied framer is reusable from a frame boundary.
          expectFrames(drain(f, [stream.subarray(starts[k + 1]!)]), list.slice(k + 1));
        }
      }
    }
  });

  it('when the current frame came from the carry buffer, hands back a copy of it before the chunk rest', () => {
    // Frame 4 (30-byte body) is split across the two chunks.
    const at = starts[4]! + 10;
    const f = new Framer(MAX);
    f.push(stream.subarray(0, at));
    for (let i = 0; i < 4; i++) expect(f.next()).toBe(true);
    expect(f.next()).toBe(false);
    expect(f.pending).toBe(true);
    const second = stream.subarray(at);
    f.push(second);
    expect(f.next()).toBe(true);
    expect(f.buf).not.toBe(second);
    expect(f.start).toBe(0);
    const rest = f.takeRest(true);
    expect(rest.equals(stream.subarray(starts[4]!))).toBe(true);
    expectEmpty(f);
    expectFrames(drain(new Framer(MAX), [rest]), list.slice(4));
  });

  it('when the current frame is the last in the chunk, includeCurrent hands back a view of it, no copy', () => {
    const first = stream.subarray(0, starts[3]!);
    const f = new Framer(MAX);
    f.push(first);
    for (let i = 0; i < 3; i++) expect(f.next()).toBe(true);
    const rest = f.takeRest(true);
    expect(rest.equals(stream.subarray(starts[2]!, starts[3]!))).toBe(true);
    expect(rest.buffer).toBe(first.buffer);
    expectEmpty(f);
  });

  it('with a partial frame pending after the chunk is used up, hands back the partial frame', () => {
    for (let at = 1; at < stream.length; at++) {
      const f = new Framer(MAX);
      f.push(stream.subarray(0, at));
      while (f.next());
      const k = starts.findIndex((s) => s >= at);
      const lastBoundary = starts[k] === at ? at : starts[k - 1]!;
      expect(f.pending).toBe(lastBoundary !== at);
      const rest = f.takeRest(false);
      expect(rest.equals(stream.subarray(lastBoundary, at))).toBe(true);
      expectEmpty(f);
      const idx = starts.indexOf(lastBoundary);
      expectFrames(drain(new Framer(MAX), [rest, stream.subarray(at)]), list.slice(idx));
    }
  });

  it('with a partial frame pending and a new chunk pushed but not yet read, hands back both in stream order', () => {
    for (let a = 1; a < stream.length; a++) {
      for (const b of [a + 1, a + 3, a + 17, stream.length]) {
        if (b > stream.length) continue;
        const f = new Framer(MAX);
        f.push(stream.subarray(0, a));
        while (f.next());
        const lastBoundary = [...starts].reverse().find((s) => s <= a)!;
        f.push(stream.subarray(a, b));
        const rest = f.takeRest(false);
        if (!rest.equals(stream.subarray(lastBoundary, b))) {
          expect.fail(`cut at ${a}, pushed to ${b}: the held bytes are not the stream from ${lastBoundary}`);
        }
        expectEmpty(f);
        const idx = starts.indexOf(lastBoundary);
        expectFrames(drain(new Framer(MAX), [rest, stream.subarray(b)]), list.slice(idx));
      }
    }
  });

  it('right after push, before any next(), hands back the chunk itself (a view, no copy)', () => {
    const f = new Framer(MAX);
    f.push(stream);
    const rest = f.takeRest(false);
    expect(rest.buffer).toBe(stream.buffer);
    expect(rest.byteOffset).toBe(stream.byteOffset);
    expect(rest.length).toBe(stream.length);
    expectEmpty(f);
  });

  it('keeps the untyped mode: held startup bytes are read untyped again', () => {
    const s = Buffer.concat([untyped(STARTUP), typed(0x51, Buffer.from('x\0'))]);
    const f = new Framer(10_000, true);
    f.push(s.subarray(0, 10));
    expect(f.next()).toBe(false);
    const rest = f.takeRest(false);
    f.push(Buffer.concat([rest, s.subarray(10)]));
    expect(f.next()).toBe(true);
    expect(f.type).toBe(0);
    expect(f.next()).toBe(true);
    expect(f.type).toBe(0x51);
  });
});

describe('Framer: borrowed views', () => {
  it('a frame assembled in the carry buffer is not overwritten by the next split frame', () => {
    const rand = prng(99);
    // Same sizes, so that a reused carry buffer would be overwritten in place.
    const a = typed(0x44, randomBytes(rand, 200));
    const b = typed(0x44, randomBytes(rand, 200));
    const c = typed(0x44, randomBytes(rand, 200));
    const s = Buffer.concat([a, b, c]);
    const chunks = cut(s, [100, 300, 500]);
    const f = new Framer(MAX);
    f.push(chunks[0]!);
    expect(f.next()).toBe(false);
    f.push(chunks[1]!);
    expect(f.next()).toBe(true);
    expect(f.buf).not.toBe(chunks[1]);
    const viewA = f.buf.subarray(f.start, f.end);
    const copyA = Buffer.from(viewA);
    expect(copyA.equals(a)).toBe(true);
    expect(f.next()).toBe(false); // b is split: stashed in a carry buffer
    expect(viewA.equals(copyA)).toBe(true);
    f.push(chunks[2]!);
    expect(f.next()).toBe(true);
    const viewB = f.buf.subarray(f.start, f.end);
    expect(viewB.equals(b)).toBe(true);
    expect(viewA.equals(copyA)).toBe(true);
    expect(f.next()).toBe(false);
    f.push(chunks[3]!);
    expect(f.next()).toBe(true);
    expect(f.buf.subarray(f.start, f.end).equals(c)).toBe(true);
    expect(viewA.equals(copyA)).toBe(true);
    expect(viewB.equals(b)).toBe(true);
  });

  it('holds for every chunking: views of all frames, kept to the end, still hold their bytes', () => {
    const rand = prng(1234);
    const list = frames(rand, Array.from({ length: 40 }, () => Math.floor(rand() * 90)));
    const s = encode(list);
    for (let seed = 0; seed < 200; seed++) {
      const f = new Framer(MAX);
      const views: Buffer[] = [];
      for (const c of cut(s, randomCuts(prng(seed), s.length, [3, 10, 60, 200]))) {
        f.push(c);
        while (f.next()) views.push(f.buf.subarray(f.bodyStart, f.end));
      }
      expect(views.length).toBe(list.length);
      views.forEach((v, i) => {
        if (!v.equals(list[i]!.body)) expect.fail(`seed ${seed}: view of frame ${i} was overwritten`);
      });
    }
  });

  it('never writes into the caller chunk', () => {
    const rand = prng(5);
    const list = frames(rand, [10, 0, 300, 2]);
    const s = encode(list);
    const copy = Buffer.from(s);
    for (let at = 0; at <= s.length; at++) {
      drain(new Framer(MAX), cut(s, [at, Math.min(s.length, at + 3)]));
      expect(s.equals(copy)).toBe(true);
    }
  });
});

describe('type limits (what a client may send in a phase, and how long)', () => {
  const limits = typeLimits({ Q: 1000, S: 10 });

  it('an unknown type fails as soon as its byte arrives, before any length or body', () => {
    const f = new Framer(MAX);
    f.setTypeLimits(limits);
    f.push(Buffer.from([0x79]));
    expect(() => f.next()).toThrow(expect.objectContaining({ fault: FrameFault.Type, type: 0x79 }));
  });

  it('a type byte arriving alone after a good frame is checked too', () => {
    const f = new Framer(MAX);
    f.setTypeLimits(limits);
    f.push(Buffer.concat([typed(0x53, Buffer.alloc(0)), Buffer.from([0x00])]));
    expect(f.next()).toBe(true);
    expect(() => f.next()).toThrow(expect.objectContaining({ fault: FrameFault.Type, type: 0 }));
  });

  it("a length over the type's limit is a Length fault even before the body arrives", () => {
    const f = new Framer(MAX);
    f.setTypeLimits(limits);
    f.push(lengthHeader(0x53, 11));
    expect(() => f.next()).toThrow(expect.objectContaining({ fault: FrameFault.Length }));
    const g = new Framer(MAX);
    g.setTypeLimits(limits);
    g.push(lengthHeader(0x53, 10).subarray(0, 3));
    expect(g.next()).toBe(false);
    g.push(lengthHeader(0x53, 10).subarray(3));
    expect(g.next()).toBe(false); // within the limit: waits for the body
  });

  it("the framer's own limit below the type's gives an OverLimit fault with the frame's size", () => {
    const f = new Framer(100);
    f.setTypeLimits(limits);
    f.push(lengthHeader(0x51, 500));
    expect(() => f.next()).toThrow(expect.objectContaining({ fault: FrameFault.OverLimit, size: 501 }));
  });

  it('startup-phase lengths outside 8..10,004 are Length faults; the bounds themselves are read', () => {
    for (const [len, ok] of [[7, false], [8, true], [MAX_STARTUP_LENGTH, true], [MAX_STARTUP_LENGTH + 1, false]] as const) {
      const f = new Framer(MAX_STARTUP_LENGTH, true);
      f.push(lengthHeader(null, len));
      if (ok) expect(f.next()).toBe(false);
      else expect(() => f.next()).toThrow(expect.objectContaining({ fault: FrameFault.Length }));
    }
  });
});
