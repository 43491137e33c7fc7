// The reused read buffer of a backend socket: a view of it that is still queued for a client must never be
// overwritten by the next read.
import { describe, expect, it } from 'vitest';
import { SocketReads } from '../../../src/pool/backend.js';

/** Simulates the socket: reads `bytes` into the buffer the reader offers, then calls back as Node does. */
function read(reads: SocketReads, bytes: Buffer): Buffer {
  const buf = reads.nextBuffer();
  bytes.copy(buf, 0);
  reads.onRead(bytes.length, buf);
  return buf;
}

describe('SocketReads', () => {
  it('reuses one buffer while nothing of it is kept', () => {
    const reads = new SocketReads();
    const seen: Buffer[] = [];
    reads.sink = (chunk) => {
      seen.push(Buffer.from(chunk));
      return false;
    };
    const first = read(reads, Buffer.from('first'));
    const second = read(reads, Buffer.from('second!'));
    expect(second).toBe(first);
    expect(seen.map((b) => b.toString())).toEqual(['first', 'second!']);
  });

  it('after a view was kept (queued for a slow client), the next read goes into a new buffer: the view stays intact', () => {
    const reads = new SocketReads();
    const queued: Buffer[] = [];
    let keep = true;
    reads.sink = (chunk) => {
      if (keep) queued.push(chunk); // a view, as a queued socket write would hold it
      return keep;
    };
    const first = read(reads, Buffer.from('queued bytes'));
    keep = false;
    const second = read(reads, Buffer.from('XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'));
    expect(second).not.toBe(first);
    expect(queued[0]!.toString()).toBe('queued bytes');
    // Once nothing is kept, the new buffer is reused in turn.
    expect(read(reads, Buffer.from('again'))).toBe(second);
  });

  it('the chunk handed on is exactly the bytes read', () => {
    const reads = new SocketReads();
    let got = '';
    reads.sink = (chunk) => {
      got = chunk.toString();
      return false;
    };
    read(reads, Buffer.from('a longer chunk of bytes'));
    read(reads, Buffer.from('short'));
    expect(got).toBe('short');
  });
});
