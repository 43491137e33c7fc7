/**
 * Section `ryw-cost`: what `routing.read_your_writes` costs. Three pgproxy targets, set up like the main pgproxy
 * target (weights 0/1/1, the benchmark's pool size) but for read_your_writes off / session / database, run in
 * `--rounds` interleaved rounds, the order rotated per round and workload:
 * - pgbench tpcb-like `-c 16` for `--duration` s, the pgbench tables reset on the primary before each run;
 * - an autocommit INSERT load: 100 sessions × `--inserts` one-line INSERTs (`pgbench -c 100 -j 2 -t N -f`), where
 *   the LSN capture after every write weighs most; its table is made once on the primary and emptied before each run.
 * Results and the goal (session ≥ 0.95× off's TPS) are in ryw-cost-report.ts. The targets stop at the end, also when
 * the section fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LocalCluster } from '../src/devcluster/cluster.js';
import type { Options } from './options.js';
import { runPgbench, WORKLOADS, type Workload } from './pgbench.js';
import { sessionQueue } from './pool-queue.js';
import { AbortedError, type ProcessTracker } from './procs.js';
import { RYW_MODES, type RywCostData, type RywWorkloadResults } from './ryw-cost-report.js';
import type { ReadYourWrites } from './scaling.js';
import { failureNote, type RoundResults } from './stats.js';
import { type PgproxyTarget, pgproxyLogProblems, startPgproxy } from './targets/pgproxy.js';
import { resetTpcbTables, rotate } from './workloads.js';

/** Concurrent sessions of the INSERT load (the seeds' distribution test). */
export const RYW_INSERT_SESSIONS = 100;
const INSERT_TABLE = 'bench_ryw_insert';
/** The longest one INSERT run may take (100,000 INSERTs take about a minute on a loaded 2-core machine). */
const INSERT_TIMEOUT_S = 900;
const TPCB = 'tpcb-c16';

export interface RywCostContext {
  o: Options;
  tracker: ProcessTracker;
  cluster: LocalCluster;
  /** The run's temp dir (the targets' configs and logs, the INSERT script go below it). */
  tmp: string;
  /** pool.max_per_node of the targets (run.ts PGPROXY_POOL_SIZE). */
  pgproxyPoolSize: number;
  data: { versions: Record<string, string>; problems: string[]; skipped: { what: string; reason: string }[] };
  log(line: string): void;
}

interface Started {
  mode: ReadYourWrites;
  target: PgproxyTarget;
  /** False once its process has exited: left out of later runs. */
  alive: boolean;
}

/** The section's data for the report, or null when no target started (the reasons are in ctx.data). */
export async function runRywCost(ctx: RywCostContext): Promise<RywCostData | null> {
  const { o, cluster, log } = ctx;
  const dir = path.join(ctx.tmp, 'ryw-cost');
  await mkdir(dir, { recursive: true });
  const app = cluster.info.users.app;
  await cluster.query(0, `DROP TABLE IF EXISTS ${INSERT_TABLE}`, [], app);
  await cluster.query(0, `CREATE TABLE ${INSERT_TABLE} (client int NOT NULL, at timestamptz NOT NULL DEFAULT now())`, [], app);
  const script = path.join(dir, 'insert.sql');
  await writeFile(script, `INSERT INTO ${INSERT_TABLE} (client) VALUES (:client_id);\n`);
  const tpcb = WORKLOADS.find((w) => w.name === TPCB);
  if (!tpcb) throw new Error(`no workload ${TPCB}`);
  const insert: Workload = {
    name: `ryw-insert-c${RYW_INSERT_SESSIONS}`,
    title: `pgbench -M simple -c ${RYW_INSERT_SESSIONS} -j 2 -t ${o.inserts} -f insert.sql (autocommit INSERT)`,
    script: { file: script },
    mode: 'simple',
    clients: RYW_INSERT_SESSIONS,
    transactionsPerClient: o.inserts,
  };

  const started: Started[] = [];
  try {
    await startTargets(ctx, dir, started);
    if (started.length === 0) {
      ctx.data.skipped.push({ what: 'consistency cost (ryw-cost)', reason: 'no pgproxy target started' });
      return null;
    }
    const data: RywCostData = {
      durationS: o.durationS,
      rounds: o.rounds,
      insert: { sessions: RYW_INSERT_SESSIONS, perSession: o.inserts, queue: sessionQueue(RYW_INSERT_SESSIONS, started[0]!.target.connectionLimits).text },
      modes: started.map((s) => ({ mode: s.mode, label: s.target.label, setup: s.target.setup })),
      workloads: [
        { id: 'tpcb', short: 'tpcb-like -c 16', workload: tpcb, rounds: [] },
        { id: 'insert', short: `autocommit INSERT ${RYW_INSERT_SESSIONS} × ${o.inserts}`, workload: insert, rounds: [] },
      ],
    };
    log(`consistency cost: INSERT load: ${data.insert.queue}`);
    await runRounds(ctx, started, data.workloads);
    for (const s of started) ctx.data.problems.push(...(await pgproxyLogProblems(s.target.logFile, s.target.label)));
    return data;
  } finally {
    for (const s of [...started].reverse()) {
      await s.target.stop().catch(() => undefined);
      const problem = s.target.stopProblem();
      if (problem) ctx.data.problems.push(`${s.target.label} stop: ${problem}`);
    }
  }
}

async function startTargets(ctx: RywCostContext, dir: string, started: Started[]): Promise<void> {
  for (const mode of RYW_MODES) {
    const label = `pgproxy (read_your_writes ${mode})`;
    ctx.tracker.check();
    ctx.log(`starting ${label}...`);
    try {
      const target = await startPgproxy({
        info: ctx.cluster.info,
        dir: path.join(dir, mode),
        tracker: ctx.tracker,
        version: ctx.data.versions.pgproxy ?? 'unknown',
        maxPerNode: ctx.pgproxyPoolSize,
        readYourWrites: mode,
        label,
      });
      started.push({ mode, target, alive: true });
      ctx.log(`  listening on ${target.host}:${target.port} (pid ${target.pid})`);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const msg = (err as Error).message.replace(/\n/g, ' / ');
      ctx.log(`  failed to start: ${msg}`);
      ctx.data.skipped.push({ what: label, reason: `failed to start: ${msg}` });
      ctx.data.problems.push(`${label} failed to start: ${msg}`);
    }
  }
}

async function runRounds(ctx: RywCostContext, started: Started[], workloads: RywWorkloadResults[]): Promise<void> {
  const { o, tracker, cluster, log } = ctx;
  const logDir = path.join(ctx.tmp, 'pgbench-logs');
  await mkdir(logDir, { recursive: true });
  let runNo = 0;
  for (let round = 0; round < o.rounds; round++) {
    for (const [wi, w] of workloads.entries()) {
      const order = rotate(
        started.filter((s) => s.alive),
        round + wi,
      );
      if (order.length === 0) return;
      const rr: RoundResults<ReadYourWrites> = { round: round + 1, order: order.map((s) => s.mode), results: {} };
      w.rounds.push(rr);
      log(`consistency cost: ${w.workload.title}, round ${round + 1} of ${o.rounds}${w.id === 'tpcb' ? ` (${o.durationS} s per mode)` : ''}`);
      for (const s of order) {
        tracker.check();
        if (w.id === 'tpcb') await resetTpcbTables(cluster);
        else await cluster.query(0, `TRUNCATE ${INSERT_TABLE}`, [], cluster.info.users.app);
        const r = await runPgbench({
          tracker,
          target: s.target,
          workload: w.workload,
          durationS: o.durationS,
          ...(w.id === 'insert' ? { timeoutS: INSERT_TIMEOUT_S } : {}),
          logDir,
          keepLogs: o.keep,
          tag: `ryw${++runNo}_${w.id}_r${round + 1}_${s.mode}`,
        });
        rr.results[s.mode] = r;
        const failed = failureNote(r);
        const detail = [failed, ...r.errors.map((e) => `"${e}"`)].filter(Boolean);
        log(
          `  ${s.mode.padEnd(9)} ${r.tps === null ? 'no result' : `${Math.round(r.tps).toLocaleString('en-US').padStart(7)} TPS`}` +
            `  avg ${r.avgLatencyMs?.toFixed(3) ?? '–'} ms  p99 ${r.p99LatencyMs?.toFixed(3) ?? '–'} ms` +
            (r.proxyCpuUsPerTx != null ? `  proxy CPU ${r.proxyCpuUsPerTx.toFixed(1)} µs/tx` : '') +
            (r.elapsedMs !== undefined ? `  ${(r.elapsedMs / 1000).toFixed(1)} s` : '') +
            (failed ? `  FAILED: ${detail.join('; ')}` : ''),
        );
        if (failed) ctx.data.problems.push(`consistency cost ${w.workload.title} (round ${round + 1}) through ${s.target.label}: ${detail.join('; ')}`);
        if (!tracker.running().some((p) => p.pid === s.target.pid)) {
          s.alive = false;
          ctx.data.problems.push(`${s.target.label} exited during ${w.workload.title}`);
        }
      }
    }
  }
}
