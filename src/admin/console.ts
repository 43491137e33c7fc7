/**
 * The admin console: the virtual database `pgproxy` on the proxy port (for admin.users), like PgBouncer's
 * `pgbouncer` database and pgpool's PCP commands. Results are ordinary RowDescription/DataRow frames, so psql
 * and any driver can read them.
 */
import { redactConfig } from '../config/schema.js';
import type { ProxyContext } from '../context.js';
import { ProxyError } from '../errors.js';
import { commandComplete, resultSet, textColumn } from '../wire/backend.js';
import { SqlState } from '../wire/codes.js';
import { poolNodesRows } from './pool-nodes.js';

const POOL_NODES_COLUMNS = [
  'node_id', 'hostname', 'port', 'status', 'pg_status', 'lb_weight', 'role', 'pg_role', 'select_cnt',
  'load_balance_node', 'replication_delay', 'replication_state', 'replication_sync_state', 'last_status_change',
];

type Rows = (string | null)[][];

function table(columns: string[], rows: Rows, tag = `SHOW`): Buffer {
  return resultSet(columns.map(textColumn), rows, tag === 'SHOW' ? 'SHOW' : tag);
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

function round(n: number, digits = 3): string {
  return String(Math.round(n * 10 ** digits) / 10 ** digits);
}

function showNodes(ctx: ProxyContext): Buffer {
  const base = poolNodesRows(ctx.topology.nodes, null);
  const rows = ctx.topology.nodes.map((n, i) => [
    ...base[i]!,
    n.name,
    n.lagBytes === null ? null : String(n.lagBytes),
    n.lagMs === null ? null : String(n.lagMs),
    iso(n.lastCheck),
    String(n.errorCount),
    n.lastError,
    n.detached ? 'true' : 'false',
  ]);
  return table([...POOL_NODES_COLUMNS, 'name', 'lag_bytes', 'lag_ms', 'last_check', 'error_count', 'last_error', 'detached'], rows);
}

function showPools(ctx: ProxyContext): Buffer {
  const rows = ctx.pools.all().map((p) => [p.node.name, p.database, p.user, String(p.activeCount), String(p.idleCount), String(p.waitingCount), round(p.maxWaitMs, 1)]);
  return table(['node', 'database', 'user', 'active', 'idle', 'waiting', 'maxwait_ms'], rows);
}

function showClients(ctx: ProxyContext): Buffer {
  const rows: Rows = [];
  for (const s of ctx.sessions) {
    const c = s.describe();
    rows.push([String(c.id), c.user, c.database, c.address, c.applicationName, c.state, c.tls ? 'true' : 'false', iso(c.connectedAt), c.servers.map((x) => x.node).join(',')]);
  }
  return table(['id', 'user', 'database', 'address', 'application_name', 'state', 'tls', 'connect_time', 'nodes'], rows);
}

function showServers(ctx: ProxyContext): Buffer {
  const rows: Rows = [];
  for (const s of ctx.sessions) {
    const c = s.describe();
    for (const srv of c.servers) rows.push([String(srv.connectionId), srv.node, c.database, c.user, String(srv.pid), srv.active ? 'active' : 'idle', String(c.id)]);
  }
  return table(['id', 'node', 'database', 'user', 'backend_pid', 'state', 'client_id'], rows);
}

function showStats(ctx: ProxyContext): Buffer {
  const rows = ctx.topology.nodes.map((n) => [
    n.name,
    String(n.queries),
    String(n.selectCount),
    String(n.writes),
    String(n.bytesToNode),
    String(n.bytesFromNode),
    n.queries > 0 ? round(n.queryTimeMs / n.queries) : '0',
  ]);
  return table(['node', 'queries', 'reads', 'writes', 'bytes_in', 'bytes_out', 'avg_query_ms'], rows);
}

function showConfig(ctx: ProxyContext): Buffer {
  const rows: Rows = [];
  const walk = (value: unknown, key: string): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(v, key === '' ? k : `${key}.${k}`);
    } else rows.push([key, value === null ? null : typeof value === 'string' ? value : JSON.stringify(value)]);
  };
  walk(redactConfig(ctx.config), '');
  return table(['key', 'value'], rows);
}

function nodeId(ctx: ProxyContext, arg: string | undefined): number {
  const id = Number(arg);
  if (!Number.isInteger(id) || id < 0 || id >= ctx.topology.nodes.length) {
    throw new ProxyError('22023', `no node with id ${arg ?? '(missing)'}; node ids are 0..${ctx.topology.nodes.length - 1}`);
  }
  return id;
}

const HELP = [
  'SHOW NODES', 'SHOW POOL_NODES', 'SHOW POOLS', 'SHOW CLIENTS', 'SHOW SERVERS', 'SHOW STATS', 'SHOW CONFIG',
  'RELOAD', 'PAUSE', 'RESUME', 'DETACH NODE n', 'ATTACH NODE n', 'SHUTDOWN', 'SHOW HELP',
];

/** Runs one admin command; the result frames do not include ReadyForQuery. */
export async function runAdminCommand(sql: string, ctx: ProxyContext): Promise<Buffer> {
  const words = sql.trim().replace(/;\s*$/, '').trim().split(/\s+/).map((w) => w.toUpperCase());
  const cmd = words.join(' ');
  switch (cmd) {
    case '':
      return Buffer.from([0x49, 0, 0, 0, 4]); // EmptyQueryResponse
    case 'SHOW NODES':
      return showNodes(ctx);
    case 'SHOW POOL_NODES':
      return resultSet(POOL_NODES_COLUMNS.map(textColumn), poolNodesRows(ctx.topology.nodes, null), `SELECT ${ctx.topology.nodes.length}`);
    case 'SHOW POOLS':
      return showPools(ctx);
    case 'SHOW CLIENTS':
      return showClients(ctx);
    case 'SHOW SERVERS':
      return showServers(ctx);
    case 'SHOW STATS':
      return showStats(ctx);
    case 'SHOW CONFIG':
      return showConfig(ctx);
    case 'SHOW HELP':
      return table(['command'], HELP.map((h) => [h]));
    case 'RELOAD':
      try {
        await ctx.controls.reload();
      } catch (err) {
        throw new ProxyError('F0000', `reload refused, the current configuration stays: ${(err as Error).message}`);
      }
      return commandComplete('RELOAD');
    case 'PAUSE':
      ctx.controls.pause();
      return commandComplete('PAUSE');
    case 'RESUME':
      ctx.controls.resume();
      return commandComplete('RESUME');
    case 'SHUTDOWN':
      setImmediate(() => ctx.controls.shutdown());
      return commandComplete('SHUTDOWN');
  }
  if (words[0] === 'DETACH' && words[1] === 'NODE' && words.length === 3) {
    ctx.controls.detachNode(nodeId(ctx, words[2]));
    return commandComplete('DETACH NODE');
  }
  if (words[0] === 'ATTACH' && words[1] === 'NODE' && words.length === 3) {
    ctx.controls.attachNode(nodeId(ctx, words[2]));
    return commandComplete('ATTACH NODE');
  }
  throw new ProxyError(SqlState.FeatureNotSupported, `unknown admin command "${sql.trim().slice(0, 60)}"; try SHOW HELP`);
}
