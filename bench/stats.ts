/**
 * Results of a workload over its rounds (each round runs every target once) and what is judged on them: the
 * median of each figure, with its spread (min–max) over the rounds.
 */
import type { PgbenchResult, Workload } from './pgbench.js';
import type { TargetId } from './targets/target.js';

/** The workloads run in several interleaved rounds (the others run once), and judged on the median. */
export const KEY_WORKLOADS: readonly string[] = ['select-simple-c16', 'select-extended-c16', 'tpcb-c16'];

/** One round of a workload; `K` names what ran in it (the comparison targets, or read_your_writes modes). */
export interface RoundResults<K extends string = TargetId> {
  /** 1-based. */
  round: number;
  /** In the order they ran. */
  order: K[];
  results: Partial<Record<K, PgbenchResult>>;
}

export interface WorkloadResults<K extends string = TargetId> {
  workload: Workload;
  /** In the order they ran. */
  rounds: RoundResults<K>[];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Values the spread is made of (one per round that produced one). */
  n: number;
}

export interface TargetStats {
  /** Every round's result, in round order. */
  runs: PgbenchResult[];
  /** Set when the target cannot run this workload (the same in every round). */
  na?: string;
  tps: Spread | null;
  avgLatencyMs: Spread | null;
  p99LatencyMs: Spread | null;
  cpuUsPerTx: Spread | null;
  /** Summed over the rounds. */
  transactions: number | null;
  /** Failures in any round ("round 2: 3 failed transactions"), empty when none. */
  failures: string;
  /** Distinct pgbench error lines over the rounds. */
  errors: string[];
  /** From the last round: the target's processes and their summed RSS. */
  proxyProcesses: number | null;
  proxyRssKb: number | null;
}

export function spread(values: readonly (number | null | undefined)[]): Spread | null {
  const v = values.filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** A run's TPS when it ran and produced one. */
export function tpsOf(r: PgbenchResult | undefined): number | null {
  return r && r.na === undefined && r.tps !== null && r.tps > 0 ? r.tps : null;
}

/** What went wrong in one run ('' when nothing). */
export function failureNote(r: PgbenchResult | undefined): string {
  if (!r || r.na !== undefined) return '';
  const bits: string[] = [];
  if (r.failedTransactions) bits.push(`${r.failedTransactions} failed transactions`);
  if (r.exitCode !== 0) bits.push(`pgbench exit ${String(r.exitCode)}`);
  if (r.timedOut) bits.push('timed out');
  if (r.tps === null) bits.push('no result');
  return bits.join(', ');
}

export function targetStats<K extends string>(w: WorkloadResults<K> | undefined, id: NoInfer<K>): TargetStats | undefined {
  if (!w) return undefined;
  const runs = w.rounds.map((r) => r.results[id]).filter((r): r is PgbenchResult => r !== undefined);
  if (runs.length === 0) return undefined;
  const na = runs.find((r) => r.na !== undefined)?.na;
  const ran = runs.filter((r) => r.na === undefined);
  const failures = w.rounds
    .map((r) => ({ round: r.round, note: failureNote(r.results[id]) }))
    .filter((x) => x.note !== '')
    .map((x) => (w.rounds.length > 1 ? `round ${x.round}: ${x.note}` : x.note));
  const last = ran[ran.length - 1];
  const tx = ran.map((r) => r.transactions).filter((t): t is number => t !== null);
  return {
    runs,
    ...(na !== undefined ? { na } : {}),
    tps: spread(ran.map(tpsOf)),
    avgLatencyMs: spread(ran.map((r) => r.avgLatencyMs)),
    p99LatencyMs: spread(ran.map((r) => r.p99LatencyMs)),
    cpuUsPerTx: spread(ran.map((r) => r.proxyCpuUsPerTx)),
    transactions: tx.length > 0 ? tx.reduce((a, b) => a + b, 0) : null,
    failures: failures.join('; '),
    errors: [...new Set(ran.flatMap((r) => r.errors))].slice(0, 5),
    proxyProcesses: last?.proxyProcesses ?? null,
    proxyRssKb: last?.proxyRssKb ?? null,
  };
}

/**
 * a / b per round, for the rounds where both ran (paired: the two ran minutes apart at most), as a spread.
 * Complements the ratio of the medians, which is what the goals judge.
 */
export function pairedRatios<K extends string>(
  w: WorkloadResults<K> | undefined,
  a: NoInfer<K>,
  b: NoInfer<K>,
  of: (r: PgbenchResult) => number | null | undefined,
): Spread | null {
  if (!w) return null;
  return spread(
    w.rounds.map((r) => {
      const x = r.results[a];
      const y = r.results[b];
      if (!x || !y || x.na !== undefined || y.na !== undefined) return null;
      const vx = of(x);
      const vy = of(y);
      return vx != null && vy != null && vy > 0 ? vx / vy : null;
    }),
  );
}
