/** What the workloads and the distribution runs need to know about something they connect to. */
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { ProcessTracker } from '../procs.js';

export type TargetId = 'direct' | 'pgproxy' | 'pgproxy-workers' | 'node-pipe' | 'pgpool' | 'pgbouncer';

export const TARGET_IDS: readonly TargetId[] = ['direct', 'pgproxy', 'pgproxy-workers', 'node-pipe', 'pgpool', 'pgbouncer'];

/** pgproxy with `workers: 2` runs only in this workload (the project's `-S -c 64` measurement), next to pgproxy with 1. */
export const WORKERS_WORKLOAD = 'select-simple-c64';
export const WORKERS = 2;

export const TARGET_LABELS: Readonly<Record<TargetId, string>> = {
  direct: 'direct (primary)',
  pgproxy: 'pgproxy',
  'pgproxy-workers': `pgproxy (workers: ${WORKERS})`,
  'node-pipe': 'node pipe',
  pgpool: 'pgpool-II',
  pgbouncer: 'PgBouncer',
};

export interface Target {
  readonly id: TargetId;
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** The server process (for CPU and RSS from /proc), null for the direct connection. */
  readonly pid: number | null;
  /** Version string for the report. */
  readonly version: string;
  /** One line describing how it is set up, for the report. */
  readonly setup: string;
  /** Names of the only workloads it runs in; every workload when absent. */
  readonly workloads?: readonly string[];
  /** Reason a pgbench query mode cannot work on this target (reported as n/a), or null. */
  unsupportedMode(mode: 'simple' | 'extended' | 'prepared'): string | null;
  stop(): Promise<void>;
}

/** Until host:port accepts a TCP connection, or the deadline / the process's exit. */
export async function waitForPort(
  host: string,
  port: number,
  opts: { timeoutMs: number; exited?: () => boolean; tracker?: ProcessTracker },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    opts.tracker?.check();
    if (opts.exited?.()) throw new Error('the process exited before accepting connections');
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      const done = (v: boolean): void => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(1_000, () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${host}:${port} did not accept connections within ${opts.timeoutMs} ms`);
}

export interface PoolNodeRow {
  node_id: string;
  port: string;
  status: string;
  role: string;
}

/**
 * Until `SHOW POOL_NODES` (pgproxy and pgpool-II both answer it) shows `nodes` nodes up (pgpool-II says
 * `waiting` for a node no client has used yet) and exactly one primary.
 */
export async function waitForPoolNodes(
  conn: { host: string; port: number; user: string; password: string; database: string },
  nodes: number,
  opts: { timeoutMs: number; exited?: () => boolean; tracker?: ProcessTracker },
): Promise<PoolNodeRow[]> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    opts.tracker?.check();
    if (opts.exited?.()) throw new Error('the process exited');
    const client = new pg.Client({ ...conn, connectionTimeoutMillis: 3_000, query_timeout: 3_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const rows = (await client.query<PoolNodeRow>('SHOW POOL_NODES')).rows;
      const up = rows.filter((r) => r.status === 'up' || r.status === 'waiting');
      const primaries = rows.filter((r) => r.role === 'primary');
      if (rows.length === nodes && up.length === nodes && primaries.length === 1) return rows;
      last = JSON.stringify(rows.map((r) => `${r.node_id}:${r.status}/${r.role}`));
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await client.end().catch(() => undefined);
    }
    await sleep(250);
  }
  throw new Error(`SHOW POOL_NODES never showed ${nodes} nodes up with one primary within ${opts.timeoutMs} ms (last: ${last})`);
}

/** Last lines of a log file, for error messages. */
export async function logTail(file: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return '';
  }
}

/** PostgreSQL's md5 password hash: 'md5' + md5(password || user), as pool_passwd and userlist.txt hold it. */
export function md5PasswordHash(user: string, password: string): string {
  return `md5${createHash('md5').update(password + user).digest('hex')}`;
}
