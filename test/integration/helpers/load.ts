// Bounded client load for the pool and failover tests: loops with a count and a time limit, a per-statement
// hang guard, errors reduced to their SQLSTATE, and direct counts of a node's backend connections.
import pg from 'pg';
import type { ClusterInfo } from '../../../src/devcluster/cluster.js';
import type { Pool } from '../../../src/pool/pool.js';
import type { RunningProxy } from '../../../src/server.js';
import { proxyClient, sleep } from './proxy.js';

/** What a client saw of an error: the SQLSTATE (undefined for a socket/driver error), severity, message. */
export interface SeenError {
  code: string | undefined;
  severity: string | undefined;
  message: string;
}

export function seenError(err: unknown): SeenError {
  const e = err as { code?: unknown; severity?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined,
    severity: typeof e?.severity === 'string' ? e.severity : undefined,
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

/** A statement that did not finish within its bound: the proxy left the client hanging. */
export class HangError extends Error {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what}: no answer within ${ms} ms (hang)`);
  }
}

/** `p`, or a HangError after `ms`. The promise itself is left to settle on its own (its rejection is swallowed). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  p.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new HangError(what, ms)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** One statement of a load loop. */
export interface OpRecord {
  client: number;
  /** Index of the statement in its client's loop. */
  seq: number;
  start: number;
  end: number;
  ok: boolean;
  hang: boolean;
  /** inet_server_port() (or whatever number the statement returned), when it succeeded. */
  value: number | null;
  error: SeenError | null;
}

export interface LoopOptions {
  /** Stop starting statements once this returns true. */
  stop: () => boolean;
  /** Hard bound on statements per client. */
  maxOps: number;
  /** Bound on one statement (a longer one counts as a hang and ends that client's loop). */
  statementTimeoutMs: number;
  /** Pause between statements. Default 0. */
  pauseMs?: number;
  /** Sees each record as it is made (so that a test can wait for progress while the loop runs). */
  onRecord?: (r: OpRecord) => void;
}

/**
 * Runs `op` in a loop on one client until `stop()` or `maxOps`; never throws. `op` returns a number to record
 * (e.g. the server port) or null.
 */
export async function clientLoop(
  id: number,
  client: pg.Client,
  op: (c: pg.Client, seq: number) => Promise<number | null>,
  opts: LoopOptions,
): Promise<OpRecord[]> {
  const records: OpRecord[] = [];
  for (let seq = 0; seq < opts.maxOps && !opts.stop(); seq++) {
    const start = Date.now();
    let record: OpRecord;
    try {
      const value = await withDeadline(op(client, seq), opts.statementTimeoutMs, `client ${id} statement ${seq}`);
      record = { client: id, seq, start, end: Date.now(), ok: true, hang: false, value, error: null };
    } catch (err) {
      const hang = err instanceof HangError;
      record = { client: id, seq, start, end: Date.now(), ok: false, hang, value: null, error: seenError(err) };
    }
    records.push(record);
    opts.onRecord?.(record);
    if (record.hang) break;
    if (opts.pauseMs) await sleep(opts.pauseMs);
  }
  return records;
}

/** A client through the proxy whose unsolicited errors (an ErrorResponse while idle, a lost socket) are collected, not thrown. */
export interface WatchedClient {
  client: pg.Client;
  /** 'error' events: what a driver sees when the server sends something while no query runs. */
  unsolicited: SeenError[];
}

export async function connectWatched(proxy: RunningProxy, info: ClusterInfo, extra: Partial<pg.ClientConfig> = {}, user = info.users.app): Promise<WatchedClient> {
  const client = proxyClient(proxy, info, user, extra);
  const unsolicited: SeenError[] = [];
  client.on('error', (err) => unsolicited.push(seenError(err)));
  await client.connect();
  return { client, unsolicited };
}

/** Ends clients without waiting on ones the proxy might hold (bounded). */
export async function endAll(clients: Iterable<pg.Client>): Promise<void> {
  await Promise.all([...clients].map((c) => withDeadline(c.end(), 5_000, 'client end').catch(() => (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy())));
}

/** Destroys the client's socket at once, as a crashing application would. */
export function destroySocket(client: pg.Client): void {
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Client backends of `user` on node `i`, counted directly on the node as superuser (this connection excluded). */
export async function backendsOf(info: ClusterInfo, i: number, user: string, extraWhere = 'true'): Promise<number> {
  const n = info.nodes[i]!;
  const c = new pg.Client({
    host: n.host,
    port: n.port,
    user: info.users.superuser.name,
    password: info.users.superuser.password,
    database: 'postgres',
    connectionTimeoutMillis: 5_000,
    query_timeout: 5_000,
  });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND (${extraWhere})`,
      [user],
    );
    return r.rows[0]!.n;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Waits until a backend on one of the nodes of `info` runs exactly `sql` (state active, for `user`), i.e. the
 * statement has reached PostgreSQL; returns that node's index. For tests that must act while a statement runs
 * (cancel it, kill its node, drop its client) rather than after a guessed delay.
 */
export async function waitUntilRunning(info: ClusterInfo, sql: string, timeoutMs = 10_000, user = info.users.app.name): Promise<number> {
  const monitors = await Promise.all(
    info.nodes.map(async (n) => {
      const c = new pg.Client({ host: n.host, port: n.port, user: info.users.superuser.name, password: info.users.superuser.password, database: 'postgres', connectionTimeoutMillis: 5_000, query_timeout: 5_000 });
      c.on('error', () => undefined);
      return c.connect().then(
        () => c,
        () => null, // a node that is down runs nothing
      );
    }),
  );
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const [i, c] of monitors.entries()) {
        if (c === null) continue;
        const r = await c
          .query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND state = 'active' AND query = $2`, [user, sql])
          .catch(() => null);
        if (r && r.rows[0]!.n > 0) return i;
      }
      if (Date.now() > deadline) throw new Error(`no node ran ${JSON.stringify(sql)} within ${timeoutMs} ms`);
      await sleep(10);
    }
  } finally {
    await Promise.all(monitors.map((c) => c?.end().catch(() => undefined)));
  }
}

/** The proxy's pool for (node, user) on the cluster's database, once a session has used it. */
export function poolOf(proxy: RunningProxy, nodeId: number, user: string): Pool | undefined {
  return proxy.context.pools.all().find((p) => p.node.id === nodeId && p.user === user);
}

/** Idle and leased connection counts of the proxy's pools on node `nodeId` for `user`. */
export function poolCounts(proxy: RunningProxy, nodeId: number, user: string): { idle: number; active: number } {
  let idle = 0;
  let active = 0;
  for (const p of proxy.context.pools.all()) {
    if (p.node.id !== nodeId || p.user !== user) continue;
    idle += p.idleCount;
    active += p.activeCount;
  }
  return { idle, active };
}

/** Records every topology change of the proxy (node name, to-state, time). */
export function recordTopology(proxy: RunningProxy): { node: string; to: string; at: number }[] {
  const changes: { node: string; to: string; at: number }[] = [];
  proxy.context.topology.on('change', (change: { node: string; to: string }) => changes.push({ node: change.node, to: change.to, at: Date.now() }));
  return changes;
}

/** Counts by key, for messages. */
export function tally<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) {
    const k = key(it);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * Session-pooled writers held at a gate: each client opens a transaction with one INSERT into `table` (so it holds a
 * primary connection until it leaves), waits until `open()`, commits, runs `more` one-row INSERT transactions and
 * `last` if given, then ends. `holding()` counts the clients that got their first INSERT in.
 */
export function gatedWriters(
  clients: readonly pg.Client[],
  table: string,
  more: number,
  last?: (c: pg.Client) => Promise<unknown>,
): { runs: Promise<void>[]; open(): void; holding(): number } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let holding = 0;
  const runs = clients.map(async (c, i) => {
    await c.query('BEGIN');
    await c.query(`INSERT INTO ${table} VALUES (${i}, 0)`);
    holding++;
    await gate;
    await c.query('COMMIT');
    for (let n = 1; n <= more; n++) await c.query(`BEGIN; INSERT INTO ${table} VALUES (${i}, ${n}); COMMIT`);
    if (last) await last(c);
    await c.end();
  });
  return { runs, open, holding: () => holding };
}

/**
 * Samples peaks until stop(): `watcher` connects, then `sample(watcher, peaks)` runs back to back, a few
 * milliseconds apart; stop() resolves with the peaks once the last sample ended and the watcher closed.
 */
export function watchPeaksWith<P extends object>(watcher: pg.Client, peaks: P, sample: (c: pg.Client, peaks: P) => Promise<void>): { stop(): Promise<P> } {
  watcher.on('error', () => undefined);
  let running = true;
  const loop = (async () => {
    await watcher.connect();
    while (running) {
      await sample(watcher, peaks);
      await sleep(5);
    }
    await watcher.end();
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peaks;
    },
  };
}
