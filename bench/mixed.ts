/**
 * The mixed workload of the database-bound mode: 90 % reads and 10 % writes, where the row a write just changed is
 * read back at once on another connection, which is what an application with a connection pool does. pgbench
 * gives each client a single connection, so this is a small harness of its own: `pairs` pairs of connections, A
 * and B, each pair running one statement at a time in a fixed cycle of ten: a write on A, its read-back on B as
 * soon as the write is acknowledged, then eight reads of random pgbench_accounts rows on B. Pairs start at
 * different points of the cycle, so writes are spread over time.
 *
 * Each pair owns one row of `bench_pairs` and writes ever larger values into it, so a read-back that returns
 * anything but the value just written saw the database from before the acknowledged write: a stale read.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';

export const MIXED_TABLE = 'bench_pairs';
/** Statements per cycle: one write, its read-back, eight other reads. */
export const CYCLE = 10;

const WRITE = `UPDATE ${MIXED_TABLE} SET seq = $2 WHERE pair = $1`;
const READ_BACK = `SELECT seq::text AS seq FROM ${MIXED_TABLE} WHERE pair = $1`;
const READ = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';

/** SQL that creates the pairs' rows (run on the primary, once, before the runs). */
export function mixedSetupSql(pairs: number): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${MIXED_TABLE} (pair int PRIMARY KEY, seq bigint NOT NULL)`,
    `INSERT INTO ${MIXED_TABLE} SELECT g, 0 FROM generate_series(0, ${pairs - 1}) g ON CONFLICT (pair) DO NOTHING`,
  ];
}

/** Whether a read-back that returned `seen` (null: no row) missed the acknowledged write of `written`. */
export function isStale(written: number, seen: number | null): boolean {
  return seen === null || seen < written;
}

/** Read-backs and how many of them were stale. */
export class StaleTally {
  readBacks = 0;
  stale = 0;

  record(written: number, seen: number | null): void {
    this.readBacks++;
    if (isStale(written, seen)) this.stale++;
  }
}

export interface MixedConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface MixedOptions {
  target: MixedConnection;
  pairs: number;
  durationS: number;
  /** Reads pick aid in 1..aidMax (pgbench's scale × 100,000). */
  aidMax: number;
  /** Every value written in this run is above `base`, which is above every value of earlier runs. */
  base: number;
  /** Checked between statements: the run stops early when it turns true (Ctrl-C). */
  aborted(): boolean;
}

export interface MixedResult {
  /** Statements completed within the run's duration, per second (each is its own transaction). */
  tps: number | null;
  avgLatencyMs: number | null;
  p99LatencyMs: number | null;
  transactions: number;
  writes: number;
  readBacks: number;
  stale: number;
  /** Statements that failed, and their distinct messages (a few). */
  errorCount: number;
  errors: string[];
}

/** Nearest-rank percentile of unsorted values (sorts a copy). */
export function percentileOf(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]!;
}

export async function runMixed(o: MixedOptions): Promise<MixedResult> {
  const errors = new Map<string, number>();
  const fail = (err: unknown): void => {
    const msg = (err as Error).message.replace(/\d+/g, 'N');
    errors.set(msg, (errors.get(msg) ?? 0) + 1);
  };
  const clients: pg.Client[] = [];
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ ...o.target, connectionTimeoutMillis: 10_000, query_timeout: 60_000 });
    c.on('error', fail);
    clients.push(c);
    await c.connect();
    return c;
  };
  const tally = new StaleTally();
  const latencies: number[] = [];
  let writes = 0;
  try {
    const pairs = await Promise.all(Array.from({ length: o.pairs }, async () => [await connect(), await connect()] as const));
    const start = performance.now();
    const deadline = start + o.durationS * 1000;
    const loop = async (i: number, a: pg.Client, b: pg.Client): Promise<void> => {
      let written = o.base;
      let writeOk = false;
      for (let step = i % CYCLE; performance.now() < deadline && !o.aborted(); step = (step + 1) % CYCLE) {
        const t0 = performance.now();
        let readBack: number | null | undefined;
        try {
          if (step === 0) {
            writeOk = false;
            written++;
            await a.query(WRITE, [i, written]);
            writeOk = true;
          } else if (step === 1) {
            const r = await b.query<{ seq: string }>(READ_BACK, [i]);
            readBack = r.rows[0] ? Number(r.rows[0].seq) : null;
          } else {
            await b.query(READ, [1 + Math.floor(Math.random() * o.aidMax)]);
          }
        } catch (err) {
          fail(err);
          // A broken connection (no SQLSTATE) would fail every statement from now on: this pair stops.
          if ((err as { code?: string }).code === undefined) return;
          continue;
        }
        const t1 = performance.now();
        if (t1 > deadline) return;
        latencies.push(t1 - t0);
        if (step === 0) writes++;
        // A read-back is judged only against a write that was acknowledged (a pair's first cycle may begin here).
        if (readBack !== undefined && writeOk) tally.record(written, readBack);
      }
    };
    await Promise.all(pairs.map(([a, b], i) => loop(i, a, b)));
  } catch (err) {
    fail(err);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  const n = latencies.length;
  return {
    tps: n > 0 ? n / o.durationS : null,
    avgLatencyMs: n > 0 ? latencies.reduce((s, v) => s + v, 0) / n : null,
    p99LatencyMs: percentileOf(latencies, 0.99),
    transactions: n,
    writes,
    readBacks: tally.readBacks,
    stale: tally.stale,
    errorCount: [...errors.values()].reduce((s, v) => s + v, 0),
    errors: [...errors.keys()].slice(0, 5),
  };
}
