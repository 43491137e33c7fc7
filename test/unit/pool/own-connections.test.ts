// pgproxy's own connections as SHOW SERVERS lists them: short-lived ones while tracked, long-lived ones through
// their owners. No I/O: node-postgres clients that never connect (pid 0, no socket yet).
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { OWN_APPLICATION_NAMES, OwnConnections } from '../../../src/pool/own-connections.js';

function client(port: number, database = 'app'): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port, user: 'mon', database });
}

describe('OwnConnections', () => {
  it('lists a tracked connection until it is untracked, with what it is for', () => {
    const own = new OwnConnections();
    const untrack = own.track('catalog', client(5432, 'shop'));
    expect(own.list()).toEqual([
      {
        kind: 'catalog',
        host: '127.0.0.1',
        port: 5432,
        user: 'mon',
        database: 'shop',
        pid: 0,
        localAddress: null,
        localPort: null,
        openedAt: expect.any(Date),
        applicationName: OWN_APPLICATION_NAMES.catalog,
        tls: '',
      },
    ]);
    untrack();
    expect(own.list()).toEqual([]);
  });

  it('lists the connections a watched owner holds at the time of asking', () => {
    const own = new OwnConnections();
    const held = new Map<number, pg.Client>();
    own.watch('health', () => held.values());
    expect(own.list()).toEqual([]);
    held.set(0, client(5432));
    held.set(1, client(5433));
    expect(own.list().map((c) => [c.kind, c.port, c.applicationName, c.openedAt])).toEqual([
      ['health', 5432, 'pgproxy health check', null],
      ['health', 5433, 'pgproxy health check', null],
    ]);
  });
});
