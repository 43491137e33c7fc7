/**
 * The distribution step of `npm run bench` (section `distribution`): where SELECTs and INSERTs land
 * (distribution.ts), through pgproxy and pgpool-II. pgproxy runs here as users run it, a target of its own started
 * for this step with the pool and limits of the shipped pgproxy.yaml (not the raised pool size of the workloads),
 * stopped right after; sessions beyond its connections to a node wait for one, and the report says how many.
 */
import path from 'node:path';
import type { LocalCluster } from '../src/devcluster/cluster.js';
import { insertDistribution, rolesOf, selectDistribution, shippedPoolSummary, startShippedPgproxy } from './distribution.js';
import { sessionQueue } from './pool-queue.js';
import { AbortedError, type ProcessTracker } from './procs.js';
import type { BenchData } from './report.js';
import { type PgproxyTarget, pgproxyLogProblems } from './targets/pgproxy.js';
import type { Target } from './targets/target.js';

export const DIST_SESSIONS = 100;
export const DIST_SELECTS = 100;

export interface DistributionContext {
  tracker: ProcessTracker;
  cluster: LocalCluster;
  /** The run's temp dir (the shipped pgproxy's config and log go below it). */
  tmp: string;
  /** INSERTs per session (--inserts). */
  inserts: number;
  /** Whether pgproxy is selected (--only/--skip). */
  withPgproxy: boolean;
  /** pgpool-II when it runs, else null. */
  pgpool: Target | null;
  data: Pick<BenchData, 'versions' | 'selectDist' | 'insertDist' | 'distSettings' | 'problems' | 'skipped'>;
  log(line: string): void;
}

export async function runDistribution(ctx: DistributionContext): Promise<void> {
  const { tracker, data, log } = ctx;
  let pgproxy: PgproxyTarget | null = null;
  if (ctx.withPgproxy) {
    log('starting pgproxy with the pool and limits of the shipped pgproxy.yaml, for the distribution...');
    try {
      pgproxy = await startShippedPgproxy({
        info: ctx.cluster.info,
        dir: path.join(ctx.tmp, 'pgproxy-distribution'),
        tracker,
        version: data.versions.pgproxy ?? 'unknown',
        label: 'pgproxy (pgproxy.yaml pool)',
      });
      log(`  listening on ${pgproxy.host}:${pgproxy.port} (pid ${pgproxy.pid})`);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const msg = (err as Error).message;
      data.problems.push(`pgproxy (distribution, shipped pool) failed to start: ${msg}`);
    }
  }
  const targets = [pgproxy, ctx.pgpool].filter((t): t is Target => t !== null);
  if (targets.length === 0) {
    data.skipped.push({ what: 'distribution', reason: 'neither pgproxy nor pgpool-II is running' });
    return;
  }
  const queue = pgproxy ? sessionQueue(DIST_SESSIONS, pgproxy.connectionLimits) : null;
  data.distSettings = {
    sessions: DIST_SESSIONS,
    selects: DIST_SELECTS,
    inserts: ctx.inserts,
    pgproxy: pgproxy && queue ? { pool: shippedPoolSummary(), connectionsPerNode: queue.connections, insertQueue: queue.text, setup: pgproxy.setup } : null,
  };
  try {
    await measure(ctx, targets);
  } finally {
    if (pgproxy) {
      data.problems.push(...(await pgproxyLogProblems(pgproxy.logFile, `${pgproxy.label} (distribution)`)));
      await pgproxy.stop();
      const problem = pgproxy.stopProblem();
      if (problem) data.problems.push(`${pgproxy.label} stop: ${problem}`);
    }
  }
}

async function measure(ctx: DistributionContext, targets: readonly Target[]): Promise<void> {
  const { tracker, data, log, cluster } = ctx;
  const roles = await rolesOf(cluster);
  const m = { cluster, tracker, roles };
  for (const t of targets) {
    log(`distribution via ${t.label}: ${DIST_SESSIONS} sessions × ${DIST_SELECTS} SELECT inet_server_port()...`);
    const s = await selectDistribution(m, t, DIST_SESSIONS, DIST_SELECTS);
    data.selectDist.push(s);
    log(`  ${s.perNode.map((n) => `${n.node}/${n.role} ${n.count}`).join(', ')}${s.errors.length ? `; errors: ${s.errors.join('; ')}` : ''}`);
    if (s.errors.length && t.id === 'pgproxy') data.problems.push(`SELECT distribution through ${t.label}: ${s.errors.join('; ')}`);
    tracker.check();

    log(`distribution via ${t.label}: ${DIST_SESSIONS} sessions × ${ctx.inserts} INSERTs...`);
    if (t.id === 'pgproxy' && data.distSettings?.pgproxy) log(`  ${data.distSettings.pgproxy.insertQueue}`);
    const ins = await insertDistribution(m, t, DIST_SESSIONS, ctx.inserts);
    data.insertDist.push(ins);
    log(
      `  rows ${ins.rows.map((r) => `${r.node} ${r.rows}`).join(', ')} of ${ins.expectedRows}; WAL ${ins.lsnEqual ? 'equal' : 'NOT equal'} ` +
        `(${ins.rows.map((r) => r.lsn).join(' ')}); ${(ins.elapsedMs / 1000).toFixed(1)} s, ${ins.insertsPerSecond} inserts/s` +
        (ins.errors.length ? `; errors: ${ins.errors.join('; ')}` : ''),
    );
    if (t.id === 'pgproxy' && (ins.errors.length > 0 || !ins.rowsEqual || ins.rows[0]?.rows !== ins.expectedRows)) {
      data.problems.push(`INSERT distribution through ${t.label}: ${ins.errors.join('; ') || `rows ${ins.rows.map((r) => r.rows).join('/')} of ${ins.expectedRows}`}`);
    }
    tracker.check();
  }
}
