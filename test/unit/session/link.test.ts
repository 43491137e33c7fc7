// A link tells its connection whether a view of the backend chunk it just handled is still queued for the client.
import { describe, expect, it } from 'vitest';
import type { NodeState } from '../../../src/nodes/topology.js';
import type { BackendConnection } from '../../../src/pool/backend.js';
import { Link, type LinkOwner } from '../../../src/session/link.js';
import { OWED } from '../../../src/session/reply-queue.js';
import { BackendCode } from '../../../src/wire/codes.js';

function frame(type: number, body: Buffer): Buffer {
  const b = Buffer.alloc(body.length + 5);
  b[0] = type;
  b.writeInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

function setup(queued: boolean) {
  const forwarded: Buffer[] = [];
  const ready: string[] = [];
  const owner = {
    toClient(bytes: Buffer) {
      forwarded.push(Buffer.from(bytes));
      return queued;
    },
    linkReady: (_l: Link, unit: unknown) => ready.push(unit === OWED.query ? 'query' : String(unit)),
    linkError() {},
    linkNotification() {},
    linkWalPosition() {},
    linkLost() {},
    linkDrained() {},
    linkSettled() {},
    linkMalformed() {},
    linkLocal() {},
  } satisfies LinkOwner;
  const conn = { owner: null, destroy() {} } as unknown as BackendConnection;
  const node = { bytesFromNode: 0 } as unknown as NodeState;
  const link = new Link(conn, node, owner);
  link.expect(OWED.query);
  return { link, conn, forwarded, ready };
}

const reply = Buffer.concat([frame(BackendCode.CommandComplete, Buffer.from('SELECT 1\0')), frame(BackendCode.ReadyForQuery, Buffer.from('I'))]);

describe('Link', () => {
  it('forwards a reply and reports the chunk as kept when the client write was queued', () => {
    const { link, conn, forwarded, ready } = setup(true);
    expect(link.onBackendData(conn, reply)).toBe(true);
    expect(Buffer.concat(forwarded)).toEqual(reply);
    expect(ready).toEqual(['query']);
  });

  it('reports nothing kept when the client took the bytes at once', () => {
    const { link, conn } = setup(false);
    expect(link.onBackendData(conn, reply)).toBe(false);
  });
});
