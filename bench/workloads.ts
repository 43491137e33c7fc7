/**
 * The pgbench workloads over the targets, in rounds: the key workloads (KEY_WORKLOADS) run `rounds` times, the
 * others once. Round r runs every selected workload whose rounds are not done yet, and within a workload every
 * live target once, in an order rotated by round and workload so each target takes each position in turn.
 */
import type { LocalCluster } from '../src/devcluster/cluster.js';
import { runPgbench, type Workload } from './pgbench.js';
import type { ProcessTracker } from './procs.js';
import { failureNote, KEY_WORKLOADS, type RoundResults, type WorkloadResults } from './stats.js';
import type { Target } from './targets/target.js';

export interface WorkloadRun {
  tracker: ProcessTracker;
  cluster: LocalCluster;
  /** pgbench's per-transaction logs (and its output with keepLogs). */
  logDir: string;
  keepLogs: boolean;
  durationS: number;
  /** Rounds of the key workloads. */
  rounds: number;
  targets: readonly Target[];
  /** False once a target has exited: it is left out of later runs. */
  alive(t: Target): boolean;
  /** After each run through `t` (pgproxy: did it survive?). */
  afterRun(t: Target, w: Workload): Promise<void>;
  log(line: string): void;
  /** Where results, skips and problems go. */
  out: { workloads: WorkloadResults[]; skipped: { what: string; reason: string }[]; problems: string[] };
}

export const roundsOf = (w: Workload, rounds: number): number => (KEY_WORKLOADS.includes(w.name) ? rounds : 1);

/** `xs` rotated left by `by`: round r of a rotation starts with the r-th. */
export const rotate = <T>(xs: readonly T[], by: number): T[] => (xs.length === 0 ? [] : [...xs.slice(by % xs.length), ...xs.slice(0, by % xs.length)]);

/** What pgbench does before a tpcb-like run without -n, done on the primary so every target starts alike. */
export async function resetTpcbTables(cluster: LocalCluster): Promise<void> {
  const app = cluster.info.users.app;
  for (const sql of ['VACUUM pgbench_branches', 'VACUUM pgbench_tellers', 'TRUNCATE pgbench_history']) await cluster.query(0, sql, [], app);
}

export async function runWorkloads(o: WorkloadRun, workloads: readonly Workload[]): Promise<void> {
  const results = new Map<string, WorkloadResults>();
  const maxRounds = Math.max(0, ...workloads.map((w) => roundsOf(w, o.rounds)));
  let runNo = 0;
  for (let round = 0; round < maxRounds; round++) {
    for (const [wi, w] of workloads.entries()) {
      const total = roundsOf(w, o.rounds);
      if (round >= total) continue;
      const live = o.targets.filter((t) => (t.workloads === undefined || t.workloads.includes(w.name)) && o.alive(t));
      if (live.length === 0) {
        if (round === 0) o.out.skipped.push({ what: `workload ${w.name}`, reason: 'no selected target runs it' });
        continue;
      }
      let wr = results.get(w.name);
      if (!wr) {
        wr = { workload: w, rounds: [] };
        results.set(w.name, wr);
        o.out.workloads.push(wr);
      }
      const order = rotate(live, round + wi);
      const rr: RoundResults = { round: round + 1, order: order.map((t) => t.id), results: {} };
      wr.rounds.push(rr);
      o.log(`${w.title}${total > 1 ? `, round ${round + 1} of ${total}` : ''} (${o.durationS} s per target)`);
      for (const t of order) {
        o.tracker.check();
        if (w.script === 'tpcb-like' && t.unsupportedMode(w.mode) === null) await resetTpcbTables(o.cluster);
        const tag = `${++runNo}_${w.name}_r${round + 1}_${t.id}`;
        const r = await runPgbench({ tracker: o.tracker, target: t, workload: w, durationS: o.durationS, logDir: o.logDir, keepLogs: o.keepLogs, tag });
        rr.results[t.id] = r;
        const name = t.label.padEnd(20);
        if (r.na !== undefined) {
          o.log(`  ${name} n/a: ${r.na}`);
          if (round === 0) o.out.skipped.push({ what: `${w.title} on ${t.label}`, reason: `n/a: ${r.na}` });
          continue;
        }
        const failed = failureNote(r);
        const detail = [failed, ...r.errors.map((e) => `"${e}"`)].filter(Boolean);
        o.log(
          `  ${name} ${r.tps === null ? 'no result' : `${Math.round(r.tps).toLocaleString('en-US').padStart(7)} TPS`}` +
            `  avg ${r.avgLatencyMs?.toFixed(3) ?? '–'} ms  p99 ${r.p99LatencyMs?.toFixed(3) ?? '–'} ms` +
            (r.proxyCpuUsPerTx != null ? `  proxy CPU ${r.proxyCpuUsPerTx.toFixed(1)} µs/tx` : '') +
            (failed ? `  FAILED: ${detail.join('; ')}` : ''),
        );
        if (failed) o.out.problems.push(`${w.title}${total > 1 ? ` (round ${round + 1})` : ''} through ${t.label}: ${detail.join('; ')}`);
        await o.afterRun(t, w);
      }
      const p = rr.results.pgproxy;
      const n = rr.results['node-pipe'];
      if (p?.tps && n?.tps && p.proxyCpuUsPerTx && n.proxyCpuUsPerTx) {
        o.log(`  pgproxy / node pipe: CPU per transaction ${(p.proxyCpuUsPerTx / n.proxyCpuUsPerTx).toFixed(2)}×, TPS ${(p.tps / n.tps).toFixed(2)}×`);
      }
    }
  }
}
