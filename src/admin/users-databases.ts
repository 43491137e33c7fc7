/**
 * SHOW USERS, SHOW DATABASES and SHOW VERSION with PgBouncer's columns where they apply. pgproxy configures no
 * databases: a client's database is the same database on every node. So SHOW DATABASES has a row per database
 * in use (by a pool or a client) and node, with that node's host and port, and a row for the admin console's
 * virtual database `pgproxy`, as PgBouncer lists `pgbouncer`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdminTable, ProxyContext } from '../context.js';

export const USERS_COLUMNS = ['name', 'pool_size', 'pool_mode', 'max_user_connections', 'current_connections', 'current_client_connections'];

/** The columns of SHOW USERS summed over workers (the others are the same in every worker). */
export const USERS_SUMMED = [USERS_COLUMNS.indexOf('current_connections'), USERS_COLUMNS.indexOf('current_client_connections')];

export const DATABASES_COLUMNS = [
  'name', 'host', 'port', 'database', 'force_user', 'pool_size', 'min_pool_size', 'reserve_pool', 'pool_mode',
  'max_connections', 'current_connections', 'paused', 'disabled', 'node',
];

/** SHOW DATABASES has a row per database and node; only the connection count differs between workers. */
export const DATABASES_KEY = [DATABASES_COLUMNS.indexOf('name'), DATABASES_COLUMNS.indexOf('node')];
export const DATABASES_SUMMED = [DATABASES_COLUMNS.indexOf('current_connections')];

/** The admin console's virtual database. */
export const ADMIN_DATABASE = 'pgproxy';

/** Users in auth.users, and any other (auth.query) with a pool or a client. */
export function showUsers(ctx: ProxyContext): AdminTable {
  const clients = new Map<string, number>();
  for (const s of ctx.sessions) {
    const user = s.describe().user;
    if (user !== '') clients.set(user, (clients.get(user) ?? 0) + 1);
  }
  const names = new Set<string>(ctx.config.auth.users.map((u) => u.name));
  for (const p of ctx.pools.all()) names.add(p.user);
  for (const u of clients.keys()) names.add(u);
  const pool = ctx.config.pool;
  const rows = [...names].sort().map((name) => [
    name,
    String(pool.max_per_node),
    pool.mode,
    String(ctx.config.limits.max_connections_per_user),
    String(ctx.pools.connectionsOfUser(name)),
    String(clients.get(name) ?? 0),
  ]);
  return { columns: USERS_COLUMNS, rows };
}

export function showDatabases(ctx: ProxyContext): AdminTable {
  const connections = new Map<string, number>();
  const names = new Set<string>();
  for (const p of ctx.pools.all()) {
    names.add(p.database);
    const key = `${p.database}\0${p.node.id}`;
    connections.set(key, (connections.get(key) ?? 0) + p.activeCount + p.idleCount);
  }
  for (const s of ctx.sessions) {
    const db = s.describe().database;
    if (db !== '' && db !== ADMIN_DATABASE) names.add(db);
  }
  const { pool, limits } = ctx.config;
  const paused = ctx.controls.paused ? '1' : '0';
  const rows: (string | null)[][] = [];
  for (const name of [...names].sort()) {
    for (const n of ctx.topology.nodes) {
      if (n.removed) continue;
      rows.push([
        name, n.host, String(n.port), name, null, String(pool.max_per_node), String(pool.min_idle), '0', pool.mode,
        String(limits.max_connections_per_database), String(connections.get(`${name}\0${n.id}`) ?? 0), paused, n.detached ? '1' : '0', n.name,
      ]);
    }
  }
  rows.push([ADMIN_DATABASE, null, String(ctx.config.listen.port), ADMIN_DATABASE, null, '0', '0', '0', null, '0', '0', '0', '0', null]);
  return { columns: DATABASES_COLUMNS, rows };
}

let version: string | null = null;

/** pgproxy's version, from the package.json above this module (in src/ or dist/src/, or an installed package). */
export function pgproxyVersion(): string {
  if (version !== null) return version;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pgproxy' && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // none here: look further up
    }
    const up = path.dirname(dir);
    if (up === dir) return (version = 'unknown');
    dir = up;
  }
}

export function showVersion(): AdminTable {
  return { columns: ['version'], rows: [[`pgproxy ${pgproxyVersion()}`]] };
}
