/**
 * The admin console: the virtual database `pgproxy` on the proxy port (for admin.users), like PgBouncer's
 * `pgbouncer` database and pgpool's PCP commands. Results are ordinary RowDescription/DataRow frames, so psql
 * and any driver can read them.
 */
import { redactConfig } from '../config/redact.js';
import type { AdminTable, ProxyContext } from '../context.js';
import { ProxyError } from '../errors.js';
import { commandComplete, resultSet, textColumn } from '../wire/backend.js';
import { SqlState } from '../wire/codes.js';
import { poolNodesRows } from './pool-nodes.js';
import { showServers } from './servers.js';
import { DATABASES_KEY, DATABASES_SUMMED, showDatabases, showUsers, showVersion, USERS_SUMMED } from './users-databases.js';

const POOL_NODES_COLUMNS = [
  'node_id', 'hostname', 'port', 'status', 'pg_status', 'lb_weight', 'role', 'pg_role', 'select_cnt',
  'load_balance_node', 'replication_delay', 'replication_state', 'replication_sync_state', 'last_status_change',
];

type Rows = (string | null)[][];

export type { AdminTable };

function table(columns: string[], rows: Rows): AdminTable {
  return { columns, rows };
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

function round(n: number, digits = 3): string {
  return String(Math.round(n * 10 ** digits) / 10 ** digits);
}

function showNodes(ctx: ProxyContext): AdminTable {
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

function showPools(ctx: ProxyContext): AdminTable {
  const rows = ctx.pools.all().map((p) => [p.node.name, p.database, p.user, String(p.activeCount), String(p.idleCount), String(p.waitingCount), round(p.maxWaitMs, 1)]);
  return table(['node', 'database', 'user', 'active', 'idle', 'waiting', 'maxwait_ms'], rows);
}

function showClients(ctx: ProxyContext): AdminTable {
  const rows: Rows = [];
  for (const s of ctx.sessions) {
    const c = s.describe();
    rows.push([String(c.id), c.user, c.database, c.address, c.applicationName, c.state, c.tls ? 'true' : 'false', iso(c.connectedAt), c.servers.map((x) => x.node).join(',')]);
  }
  return table(['id', 'user', 'database', 'address', 'application_name', 'state', 'tls', 'connect_time', 'nodes'], rows);
}

function showStats(ctx: ProxyContext): AdminTable {
  const rows = ctx.topology.nodes.map((n) => [
    n.name,
    String(n.queries),
    String(n.selectCount),
    String(n.writes),
    String(n.bytesToNode),
    String(n.bytesFromNode),
    n.queries > 0 ? round(n.queryTimeMs / n.queries) : '0',
    round(n.queryTimeMs),
  ]);
  return table(['node', 'queries', 'reads', 'writes', 'bytes_in', 'bytes_out', 'avg_query_ms', 'total_query_ms'], rows);
}

function showConfig(ctx: ProxyContext): AdminTable {
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
  'SHOW NODES', 'SHOW POOL_NODES', 'SHOW POOLS', 'SHOW CLIENTS', 'SHOW SERVERS', 'SHOW USERS', 'SHOW DATABASES',
  'SHOW STATS', 'SHOW CONFIG', 'SHOW VERSION', 'RELOAD', 'PAUSE', 'RESUME', 'DETACH NODE n', 'ATTACH NODE n', 'SHUTDOWN', 'SHOW HELP',
];

/** The figures of this process for a SHOW command, or null when `cmd` is not one. */
export function localAdminTable(cmd: string, ctx: ProxyContext): AdminTable | null {
  switch (cmd) {
    case 'SHOW NODES':
      return showNodes(ctx);
    case 'SHOW POOL_NODES':
      // The console's own session reads nothing: it has no load-balance node (a client session's SHOW POOL_NODES
      // marks its own).
      return table(POOL_NODES_COLUMNS, poolNodesRows(ctx.topology.nodes, null));
    case 'SHOW POOLS':
      return showPools(ctx);
    case 'SHOW CLIENTS':
      return showClients(ctx);
    case 'SHOW SERVERS':
      return showServers(ctx);
    case 'SHOW USERS':
      return showUsers(ctx);
    case 'SHOW DATABASES':
      return showDatabases(ctx);
    case 'SHOW VERSION':
      return showVersion();
    case 'SHOW STATS':
      return showStats(ctx);
    case 'SHOW CONFIG':
      return showConfig(ctx);
    case 'SHOW HELP':
      return table(['command'], HELP.map((h) => [h]));
    default:
      return null;
  }
}

const SELECT_CNT = POOL_NODES_COLUMNS.indexOf('select_cnt');

/** Combines the tables of every worker: lists are joined, per-node counters summed. */
export function mergeAdminTables(cmd: string, tables: AdminTable[]): AdminTable {
  const first = tables[0]!;
  if (tables.length === 1) return first;
  switch (cmd) {
    case 'SHOW CLIENTS':
    case 'SHOW SERVERS':
    case 'SHOW POOLS':
      return { columns: first.columns, rows: tables.flatMap((t) => t.rows) };
    case 'SHOW USERS':
      return mergeKeyed(tables, [0], USERS_SUMMED);
    case 'SHOW DATABASES':
      return mergeKeyed(tables, DATABASES_KEY, DATABASES_SUMMED);
    case 'SHOW NODES':
    case 'SHOW POOL_NODES': {
      const rows = first.rows.map((r, i) => {
        const out = [...r];
        out[SELECT_CNT] = String(tables.reduce((sum, t) => sum + Number(t.rows[i]?.[SELECT_CNT] ?? 0), 0));
        return out;
      });
      return { columns: first.columns, rows };
    }
    case 'SHOW STATS': {
      const rows = first.rows.map((r, i) => {
        const sum = (col: number): number => tables.reduce((acc, t) => acc + Number(t.rows[i]?.[col] ?? 0), 0);
        const queries = sum(1);
        const total = sum(7);
        return [r[0]!, String(queries), String(sum(2)), String(sum(3)), String(sum(4)), String(sum(5)), queries > 0 ? round(total / queries) : '0', round(total)];
      });
      return { columns: first.columns, rows };
    }
    default:
      return first;
  }
}

/** Rows with equal key columns become one, the `summed` columns added up (a row only some workers have is kept). */
function mergeKeyed(tables: AdminTable[], keyColumns: number[], summed: number[]): AdminTable {
  const byKey = new Map<string, (string | null)[]>();
  for (const t of tables) {
    for (const r of t.rows) {
      const key = keyColumns.map((c) => r[c] ?? '').join('\0');
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, [...r]);
      else for (const c of summed) seen[c] = String(Number(seen[c] ?? 0) + Number(r[c] ?? 0));
    }
  }
  return { columns: tables[0]!.columns, rows: [...byKey.values()] };
}

function render(cmd: string, t: AdminTable): Buffer {
  return resultSet(t.columns.map(textColumn), t.rows, cmd === 'SHOW POOL_NODES' ? `SELECT ${t.rows.length}` : 'SHOW');
}

/** Runs one admin command; the result frames do not include ReadyForQuery. */
export async function runAdminCommand(sql: string, ctx: ProxyContext): Promise<Buffer> {
  const words = sql.trim().replace(/;\s*$/, '').trim().split(/\s+/).map((w) => w.toUpperCase());
  const cmd = words.join(' ');
  if (cmd === '') return Buffer.from([0x49, 0, 0, 0, 4]); // EmptyQueryResponse
  const local = localAdminTable(cmd, ctx);
  if (local !== null) {
    // With workers, the figures of every worker are gathered and merged.
    const tables = ctx.collectAdmin ? await ctx.collectAdmin(cmd) : [local];
    return render(cmd, mergeAdminTables(cmd, tables));
  }
  switch (cmd) {
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
