/** The goals the benchmark judges (met / NOT met), on the median over rounds, and the informational workers line. */
import type { ClassifyResult } from './classify.js';
import type { MemoryResult } from './memory.js';
import type { PgbenchResult } from './pgbench.js';
import { type Spread, targetStats, type TargetStats, pairedRatios, type WorkloadResults } from './stats.js';
import { TARGET_LABELS, type TargetId, WORKERS, WORKERS_WORKLOAD } from './targets/target.js';

export interface Goal {
  name: string;
  /** null: could not be measured. */
  met: boolean | null;
  measured: string;
}

/** What goals() reads. */
export interface GoalInputs {
  workloads: WorkloadResults[];
  memory: MemoryResult | null;
  classify: ClassifyResult | null;
}

export const NODE_PIPE_CPU_GOAL = 1.1;
export const NODE_PIPE_TPS_GOAL = 0.95;
export const IDLE_RSS_GOAL_MB = 150;
export const CACHED_CLASSIFY_GOAL_NS = 200;
export const VARYING_CLASSIFY_GOAL_NS = 500;

const SHORT: Readonly<Record<string, string>> = {
  'select-simple-c1': '`-S -M simple -c 1`',
  'select-simple-c16': '`-S -M simple -c 16`',
  'select-extended-c16': '`-S -M extended -c 16`',
  'tpcb-c16': 'tpcb-like `-c 16`',
};

export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fmt = (n: number | null | undefined, digits = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));
export const mb = (kb: number | null): string => (kb === null ? '–' : ((kb * 1024) / 1e6).toFixed(1));
/** "7,761" for one value, "7,761 (7,500–7,900)" for a spread over several rounds. */
export const spreadText = (s: Spread | null, f: (n: number) => string): string => (s === null ? '–' : s.n > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median));

export function workloadResults(workloads: readonly WorkloadResults[], name: string): WorkloadResults | undefined {
  return workloads.find((w) => w.workload.name === name);
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a != null && b != null && b > 0 ? a / b : null);

/** Why a pgproxy-vs-other comparison has no figure. */
function whyNot(w: WorkloadResults | undefined, name: string, p: TargetStats | undefined, o: TargetStats | undefined, other: TargetId, of: (s: TargetStats) => Spread | null): string {
  if (!w) return `workload ${name} not run`;
  if (!p) return 'pgproxy did not run';
  if (!o) return `${TARGET_LABELS[other]} did not run`;
  if (o.na !== undefined) return o.na;
  return of(p) === null ? 'pgproxy run failed' : `${TARGET_LABELS[other]} run failed`;
}

/**
 * pgproxy's median against another target's in one workload. `better` says which way the goal points:
 * 'higher' (TPS: ratio ≥ factor) or 'lower' (CPU: ratio ≤ factor).
 */
function compare(
  inputs: GoalInputs,
  name: string,
  wl: string,
  other: TargetId,
  factor: number,
  what: { unit: string; digits: number; better: 'higher' | 'lower'; of: (s: TargetStats) => Spread | null; run: (r: PgbenchResult) => number | null | undefined },
): Goal {
  const w = workloadResults(inputs.workloads, wl);
  const p = targetStats(w, 'pgproxy');
  const o = targetStats(w, other);
  const ps = p ? what.of(p) : null;
  const os = o ? what.of(o) : null;
  const r = ratio(ps?.median, os?.median);
  if (r === null || !ps || !os) return { name, met: null, measured: `not measured (${whyNot(w, wl, p, o, other, what.of)})` };
  const f = (n: number): string => (what.digits === 0 ? fmtInt(n) : n.toFixed(what.digits));
  const detail = [`${ps.n > 1 ? 'medians ' : ''}${f(ps.median)} vs ${f(os.median)} ${what.unit}`];
  if (ps.n > 1 || os.n > 1) {
    detail.push(`pgproxy ${f(ps.min)}–${f(ps.max)}, ${TARGET_LABELS[other]} ${f(os.min)}–${f(os.max)}`);
    const paired = pairedRatios(w, 'pgproxy', other, what.run);
    if (paired && paired.n > 1) detail.push(`per round ${paired.min.toFixed(2)}–${paired.max.toFixed(2)}×`);
  }
  const failures = p?.failures ?? '';
  if (failures) detail.push(`pgproxy: ${failures}`);
  const ok = what.better === 'higher' ? r >= factor : r <= factor;
  return { name, met: ok && failures === '', measured: `${r.toFixed(2)}× (${detail.join('; ')})` };
}

const TPS = { unit: 'TPS', digits: 0, better: 'higher', of: (s: TargetStats) => s.tps, run: (r: PgbenchResult) => r.tps } as const;
const CPU = { unit: 'µs/tx', digits: 1, better: 'lower', of: (s: TargetStats) => s.cpuUsPerTx, run: (r: PgbenchResult) => r.proxyCpuUsPerTx } as const;

export function goals(inputs: GoalInputs): Goal[] {
  const out: Goal[] = [];
  for (const wl of ['select-simple-c16', 'select-extended-c16', 'tpcb-c16']) {
    out.push(compare(inputs, `${SHORT[wl]}: pgproxy CPU/tx ≤ ${NODE_PIPE_CPU_GOAL.toFixed(2)}× node pipe`, wl, 'node-pipe', NODE_PIPE_CPU_GOAL, CPU));
    out.push(compare(inputs, `${SHORT[wl]}: pgproxy TPS ≥ ${NODE_PIPE_TPS_GOAL.toFixed(2)}× node pipe`, wl, 'node-pipe', NODE_PIPE_TPS_GOAL, TPS));
  }
  out.push(compare(inputs, '`-S -M simple -c 16`: pgproxy ≥ 2× pgpool-II', 'select-simple-c16', 'pgpool', 2, TPS));
  out.push(compare(inputs, '`-S -M simple -c 16`: pgproxy ≥ PgBouncer', 'select-simple-c16', 'pgbouncer', 1, TPS));
  out.push(compare(inputs, '`-S -M extended -c 16`: pgproxy ≥ 3× pgpool-II', 'select-extended-c16', 'pgpool', 3, TPS));
  out.push(compare(inputs, '`-S -M extended -c 16`: pgproxy ≥ PgBouncer', 'select-extended-c16', 'pgbouncer', 1, TPS));
  out.push(compare(inputs, 'tpcb-like `-c 16`: pgproxy ≥ PgBouncer', 'tpcb-c16', 'pgbouncer', 1, TPS));
  out.push(compare(inputs, '`-S -M simple -c 1`: pgproxy ≥ 0.90× direct', 'select-simple-c1', 'direct', 0.9, TPS));

  const tenK = inputs.memory?.levels.find((l) => l.clients === 10_000);
  out.push({
    name: `10,000 idle clients: pgproxy RSS ≤ ${IDLE_RSS_GOAL_MB} MB`,
    met: tenK && tenK.rssKb !== null && tenK.held === 10_000 ? (tenK.rssKb * 1024) / 1e6 <= IDLE_RSS_GOAL_MB : null,
    measured: !tenK
      ? 'not measured (memory run skipped)'
      : tenK.skipped
        ? `not measured (${tenK.skipped})`
        : `${mb(tenK.rssKb)} MB with ${fmtInt(tenK.held)} clients held${tenK.held !== 10_000 ? ` (${tenK.failed} failed to connect)` : ''}`,
  });
  const c = inputs.classify;
  out.push({
    name: `cached classification ≤ ${(CACHED_CLASSIFY_GOAL_NS / 1000).toFixed(1)} µs per statement`,
    met: c ? c.cachedNsPerStatement <= CACHED_CLASSIFY_GOAL_NS : null,
    measured: c
      ? `${(c.cachedNsPerStatement / 1000).toFixed(3)} µs (mean over ${c.corpusSize} statements through ${c.measuredCall}; median statement ` +
        `${(c.cachedMedianNs / 1000).toFixed(3)} µs, slowest ${(c.cachedSlowest.ns / 1000).toFixed(3)} µs; pgbench's select alone ${(c.pgbenchCachedNs / 1000).toFixed(3)} µs)`
      : 'not measured (skipped)',
  });
  out.push({
    name: `literal-varying statement (pgbench -S, aid = N) ≤ ${(VARYING_CLASSIFY_GOAL_NS / 1000).toFixed(1)} µs per statement`,
    met: c ? c.literalVaryingNs <= VARYING_CLASSIFY_GOAL_NS : null,
    measured: c ? `${(c.literalVaryingNs / 1000).toFixed(3)} µs (through ${c.measuredCall})` : 'not measured (skipped)',
  });
  return out;
}

/**
 * pgproxy with `workers: 2` against pgproxy with 1 at `-S -M simple -c 64`: informational, no threshold. The TPS
 * ratio, then latency, proxy CPU per transaction and RSS (summed over each target's processes) side by side.
 */
export function workersComparison(workloads: readonly WorkloadResults[]): { name: string; ratio: number | null; detail: string; measured: string } {
  const name = `workers: ${WORKERS} vs 1 at -S -c 64`;
  const w = workloadResults(workloads, WORKERS_WORKLOAD);
  const one = targetStats(w, 'pgproxy');
  const many = targetStats(w, 'pgproxy-workers');
  const r = ratio(many?.tps?.median, one?.tps?.median);
  const why = !w
    ? `workload ${WORKERS_WORKLOAD} not run`
    : !many
      ? `${TARGET_LABELS['pgproxy-workers']} did not run`
      : !one
        ? 'pgproxy (1 worker) did not run'
        : many.tps === null
          ? `${TARGET_LABELS['pgproxy-workers']} run failed`
          : 'pgproxy (1 worker) run failed';
  if (r === null || !one || !many) return { name, ratio: null, detail: why, measured: `not measured (${why})` };
  const pair = (f: (x: TargetStats) => string): string => `${f(many)} vs ${f(one)}`;
  const bits = [
    `${pair((x) => fmtInt(x.tps!.median))} TPS`,
    `avg ${pair((x) => fmt(x.avgLatencyMs?.median, 2))} ms`,
    `p99 ${pair((x) => fmt(x.p99LatencyMs?.median, 2))} ms`,
  ];
  if (many.cpuUsPerTx && one.cpuUsPerTx) bits.push(`proxy CPU ${pair((x) => fmt(x.cpuUsPerTx?.median, 1))} µs/tx`);
  if (many.proxyRssKb != null && one.proxyRssKb != null) {
    bits.push(`RSS ${pair((x) => mb(x.proxyRssKb))} MB in ${pair((x) => String(x.proxyProcesses ?? '?'))} processes`);
  }
  const notes = [many.failures && `${TARGET_LABELS['pgproxy-workers']}: ${many.failures}`, one.failures && `pgproxy: ${one.failures}`].filter(Boolean);
  const detail = `${bits.join('; ')}${notes.length ? `; ${notes.join('; ')}` : ''}`;
  return { name, ratio: r, detail, measured: `${r.toFixed(2)}× (${detail})` };
}
