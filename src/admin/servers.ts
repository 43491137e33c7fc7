/**
 * SHOW SERVERS: every connection pgproxy holds to a node, with PgBouncer's columns where they apply and the node's
 * name last. Pooled connections are idle (in their pool), used (leased to a client, running nothing), active
 * (leased, running a statement) or reset (DISCARD ALL after a client left); pgproxy's own connections are listed
 * by what they are for: health, replay, catalog, auth_query.
 */
import type { AdminTable, ProxyContext } from '../context.js';
import type { NodeState } from '../nodes/topology.js';
import type { BackendConnection } from '../pool/backend.js';
import type { OwnConnection } from '../pool/own-connections.js';
import type { Pool } from '../pool/pool.js';

export const SERVERS_COLUMNS = [
  'type', 'user', 'database', 'state', 'addr', 'port', 'local_addr', 'local_port', 'connect_time', 'request_time',
  'wait', 'wait_us', 'close_needed', 'ptr', 'link', 'remote_pid', 'tls', 'application_name', 'node',
];

type Row = (string | null)[];

/** What the sessions say of the connections they hold, by connection id. */
interface Lease {
  clientId: number;
  applicationName: string;
  active: boolean;
}

function iso(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

export function showServers(ctx: ProxyContext): AdminTable {
  const leases = new Map<number, Lease>();
  for (const s of ctx.sessions) {
    const c = s.describe();
    for (const srv of c.servers) leases.set(srv.connectionId, { clientId: c.id, applicationName: c.applicationName, active: srv.active });
  }
  const rows: Row[] = [];
  for (const pool of ctx.pools.all()) for (const conn of pool.connections()) if (!conn.closed) rows.push(pooledRow(pool, conn, leases.get(conn.id)));
  rows.push(...ownServerRows(ctx.topology.nodes, ctx.ownConnections?.list() ?? []));
  return { columns: SERVERS_COLUMNS, rows };
}

/** SHOW SERVERS rows of pgproxy's own connections (with workers, the primary process adds its health checker's). */
export function ownServerRows(nodes: readonly NodeState[], own: readonly OwnConnection[]): Row[] {
  return own.map((c) => ownRow(nodes, c));
}

function pooledRow(pool: Pool, conn: BackendConnection, lease: Lease | undefined): Row {
  const state = conn.poolState === 'leased' ? (lease?.active ? 'active' : 'used') : conn.poolState;
  const socket = conn.socket;
  return [
    'S',
    pool.user,
    pool.database,
    state,
    pool.node.host,
    String(pool.node.port),
    socket.localAddress ?? null,
    socket.localPort === undefined ? null : String(socket.localPort),
    iso(conn.createdAt),
    iso(Math.max(conn.leasedAt, conn.lastReleasedAt)),
    '0',
    '0',
    pool.expired(conn) ? '1' : '0',
    String(conn.id),
    lease === undefined ? null : String(lease.clientId),
    String(conn.pid),
    conn.tlsDescription,
    lease?.applicationName ?? '',
    pool.node.name,
  ];
}

function ownRow(nodes: readonly NodeState[], c: OwnConnection): Row {
  const node = nodes.find((n) => n.host === c.host && n.port === c.port);
  const nodeName = node?.name ?? `${c.host}:${c.port}`;
  return [
    'S',
    c.user,
    c.database,
    c.kind,
    c.host,
    String(c.port),
    c.localAddress,
    c.localPort === null ? null : String(c.localPort),
    c.openedAt === null ? null : c.openedAt.toISOString(),
    null,
    '0',
    '0',
    '0',
    `${c.kind}:${c.localPort ?? c.pid}`,
    null,
    String(c.pid),
    c.tls,
    c.applicationName,
    nodeName,
  ];
}
