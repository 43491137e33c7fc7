/**
 * pgproxy's own connections to the nodes outside the pools, for SHOW SERVERS: the health checker's and the
 * replay-position pollers' (long-lived, one per node, watched through their owners), the catalog loads' and the
 * auth.query lookups' (short-lived, tracked while open). One registry per running proxy.
 */
import net from 'node:net';
import tls from 'node:tls';
import type pg from 'pg';

declare module 'pg' {
  interface Client {
    /** The backend's pid from BackendKeyData (null before it arrives); node-postgres sets it, its typings omit it. */
    readonly processID: number | null;
  }
}

export type OwnConnectionKind = 'health' | 'replay' | 'catalog' | 'auth_query';

/** The application_name each kind of connection logs in with (shown in pg_stat_activity). */
export const OWN_APPLICATION_NAMES: Readonly<Record<OwnConnectionKind, string>> = {
  health: 'pgproxy health check',
  replay: 'pgproxy replay poll',
  catalog: 'pgproxy catalog',
  auth_query: 'pgproxy auth_query',
};

export interface OwnConnection {
  kind: OwnConnectionKind;
  host: string;
  port: number;
  user: string;
  database: string;
  /** The backend's pid; 0 while logging in. */
  pid: number;
  localAddress: string | null;
  localPort: number | null;
  /** When pgproxy opened it, when known. */
  openedAt: Date | null;
  applicationName: string;
  /** TLS protocol and cipher, or '' when plaintext. */
  tls: string;
}

export class OwnConnections {
  private readonly tracked = new Map<pg.Client, { kind: OwnConnectionKind; openedAt: Date }>();
  private readonly watched: { kind: OwnConnectionKind; clients: () => Iterable<pg.Client> }[] = [];

  /** A short-lived connection, listed until the returned function is called. */
  track(kind: OwnConnectionKind, client: pg.Client): () => void {
    this.tracked.set(client, { kind, openedAt: new Date() });
    return () => {
      this.tracked.delete(client);
    };
  }

  /** Long-lived connections a component keeps itself (the health checker's, the replay pollers'). */
  watch(kind: OwnConnectionKind, clients: () => Iterable<pg.Client>): void {
    this.watched.push({ kind, clients });
  }

  list(): OwnConnection[] {
    const out: OwnConnection[] = [];
    for (const w of this.watched) for (const c of w.clients()) out.push(describeClient(w.kind, c, null));
    for (const [c, t] of this.tracked) out.push(describeClient(t.kind, c, t.openedAt));
    return out;
  }
}

function describeClient(kind: OwnConnectionKind, c: pg.Client, openedAt: Date | null): OwnConnection {
  const stream: unknown = c.connection?.stream;
  const socket = stream instanceof net.Socket ? stream : null;
  return {
    kind,
    host: c.host,
    port: c.port,
    user: c.user ?? '',
    database: c.database ?? '',
    pid: c.processID ?? 0,
    localAddress: socket?.localAddress ?? null,
    localPort: socket?.localPort ?? null,
    openedAt,
    applicationName: OWN_APPLICATION_NAMES[kind],
    tls: socket instanceof tls.TLSSocket ? `${socket.getProtocol() ?? ''}/${socket.getCipher()?.name ?? ''}` : '',
  };
}
