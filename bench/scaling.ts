/**
 * The database-bound mode's vocabulary and arithmetic: its targets (variants of the benchmark's targets), its
 * workloads, the results of its runs, scaling efficiency and the goals judged on it. No I/O here (dbbound.ts runs
 * things; scaling-report.ts prints them).
 *
 * Scaling efficiency = TPS / (nodes taking reads × TPS of one node reached directly at the same clients per node).
 * 1.0 means every node that takes reads adds a whole server's worth of reads.
 */
import { type Spread, spread } from './stats.js';
import type { TargetId } from './targets/target.js';

export const DB_WORKLOADS = ['select-simple', 'select-prepared', 'mixed'] as const;
export type DbWorkloadId = (typeof DB_WORKLOADS)[number];

export const DB_WORKLOAD_TITLES: Readonly<Record<DbWorkloadId, string>> = {
  'select-simple': 'pgbench -S -M simple',
  'select-prepared': 'pgbench -S -M prepared',
  mixed: 'mixed 90/10, read-back on another connection',
};

export type VariantId = 'direct' | 'direct-primary' | 'pgbouncer' | 'pgpool-011' | 'pgpool-111' | 'pgproxy-011' | 'pgproxy-111' | 'pgproxy-off' | 'pgproxy-database';

export type ReadYourWrites = 'off' | 'session' | 'database';

export interface Variant {
  id: VariantId;
  /** The benchmark target it is a variant of (what --only/--skip name). */
  base: TargetId;
  label: string;
  /** Nodes that take reads: the efficiency's divisor; clients = clients per node × this. */
  readNodes: number;
  /** Load-balancing weights of node0 (the primary), node1, node2; null for a single node. */
  weights: readonly number[] | null;
  /** pgproxy's routing.read_your_writes. */
  readYourWrites?: ReadYourWrites;
  /** For direct connections: the node. */
  node?: number;
  workloads: readonly DbWorkloadId[];
}

const RO = ['select-simple', 'select-prepared'] as const;

/** In report order. pgproxy 0/1/1 runs with the default read_your_writes (session), so it is also the mixed "session" row. */
export const VARIANTS: readonly Variant[] = [
  { id: 'direct', base: 'direct', label: 'direct (one standby)', readNodes: 1, weights: null, node: 1, workloads: RO },
  { id: 'direct-primary', base: 'direct', label: 'direct (the primary)', readNodes: 1, weights: null, node: 0, workloads: ['mixed'] },
  { id: 'pgbouncer', base: 'pgbouncer', label: 'PgBouncer → primary', readNodes: 1, weights: null, workloads: [...RO, 'mixed'] },
  { id: 'pgpool-011', base: 'pgpool', label: 'pgpool-II 0/1/1', readNodes: 2, weights: [0, 1, 1], workloads: [...RO, 'mixed'] },
  { id: 'pgpool-111', base: 'pgpool', label: 'pgpool-II 1/1/1', readNodes: 3, weights: [1, 1, 1], workloads: RO },
  { id: 'pgproxy-011', base: 'pgproxy', label: 'pgproxy 0/1/1', readNodes: 2, weights: [0, 1, 1], readYourWrites: 'session', workloads: [...RO, 'mixed'] },
  { id: 'pgproxy-111', base: 'pgproxy', label: 'pgproxy 1/1/1', readNodes: 3, weights: [1, 1, 1], readYourWrites: 'session', workloads: RO },
  { id: 'pgproxy-off', base: 'pgproxy', label: 'pgproxy 0/1/1', readNodes: 2, weights: [0, 1, 1], readYourWrites: 'off', workloads: ['mixed'] },
  { id: 'pgproxy-database', base: 'pgproxy', label: 'pgproxy 0/1/1', readNodes: 2, weights: [0, 1, 1], readYourWrites: 'database', workloads: ['mixed'] },
];

export function variant(id: VariantId): Variant {
  return VARIANTS.find((v) => v.id === id)!;
}

/** The label in a workload's table: pgproxy's rows in the mixed workload differ only by read_your_writes. */
export function rowLabel(v: Variant, w: DbWorkloadId): string {
  return w === 'mixed' ? fullLabel(v) : v.label;
}

/** The label with pgproxy's read_your_writes mode (for lists of targets and logs). */
export function fullLabel(v: Variant): string {
  return v.readYourWrites ? `${v.label}, read_your_writes ${v.readYourWrites}` : v.label;
}

/** The direct variant a workload's efficiency is measured against. */
export function baselineOf(w: DbWorkloadId): VariantId {
  return w === 'mixed' ? 'direct-primary' : 'direct';
}

/** CPU one server's cgroup used during a run. */
export interface ServerUsage {
  node: string;
  /** Average cores used over the run (usage / wall time); null when usage is not measured. */
  cores: number | null;
  throttled: number;
  periods: number;
}

export interface DbRun {
  tps: number | null;
  avgLatencyMs: number | null;
  p99LatencyMs: number | null;
  transactions: number | null;
  /** What went wrong ('' when nothing): failed transactions, exit code, no result. */
  failure: string;
  errors: string[];
  /** Mixed only: read-backs, and how many were stale. */
  readBacks?: number;
  stale?: number;
  proxyCpuUsPerTx: number | null;
  servers: ServerUsage[];
  /**
   * Idle cores of the whole machine over the run (/proc/stat). Near 0: the machine itself was the limit (clients,
   * proxy and servers together), so the run was not database-bound.
   */
  idleCores: number | null;
}

export interface DbCell {
  workload: DbWorkloadId;
  variant: VariantId;
  /** One per round, in round order. */
  runs: DbRun[];
}

/** Per-server totals over the whole mode. */
export interface ServerTotal {
  node: string;
  role: string;
  usageSeconds: number | null;
  nrPeriods: number;
  nrThrottled: number;
  throttledSeconds: number;
}

export interface DbBoundData {
  capCores: number;
  clientsPerNode: number;
  durationS: number;
  rounds: number;
  /** How the caps were made (controller, period, quota, where). */
  cgroups: string;
  variants: { id: VariantId; label: string; version: string; setup: string }[];
  cells: DbCell[];
  servers: ServerTotal[];
  /** Wall time the servers were capped, s (what usage is compared with). */
  cappedSeconds: number;
  skipped: { what: string; reason: string }[];
}

export function cell(d: DbBoundData, w: DbWorkloadId, v: VariantId): DbCell | undefined {
  return d.cells.find((c) => c.workload === w && c.variant === v);
}

/** Median TPS (spread) over the rounds that produced one. */
export function tpsOf(c: DbCell | undefined): Spread | null {
  return c ? spread(c.runs.map((r) => (r.tps !== null && r.tps > 0 ? r.tps : null))) : null;
}

export function scalingEfficiency(tps: number | null | undefined, readNodes: number, directTps: number | null | undefined): number | null {
  if (tps == null || directTps == null || directTps <= 0 || readNodes <= 0) return null;
  return tps / (readNodes * directTps);
}

/** A variant's efficiency in a workload, on the medians. */
export function efficiencyOf(d: DbBoundData, w: DbWorkloadId, v: VariantId): number | null {
  return scalingEfficiency(tpsOf(cell(d, w, v))?.median, variant(v).readNodes, tpsOf(cell(d, w, baselineOf(w)))?.median);
}

export function staleOf(c: DbCell | undefined): { stale: number; readBacks: number } | null {
  if (!c || c.runs.every((r) => r.readBacks === undefined)) return null;
  return { stale: c.runs.reduce((s, r) => s + (r.stale ?? 0), 0), readBacks: c.runs.reduce((s, r) => s + (r.readBacks ?? 0), 0) };
}

/** Failures over the rounds ("round 2: 3 errors"), '' when none. */
export function failuresOf(c: DbCell | undefined): string {
  if (!c) return '';
  return c.runs
    .map((r, i) => (r.failure ? (c.runs.length > 1 ? `round ${i + 1}: ${r.failure}` : r.failure) : ''))
    .filter(Boolean)
    .join('; ');
}

export const READ_SCALING_GOAL = 0.9;
export const MIXED_TPS_GOAL = 0.75;

export interface DbGoal {
  name: string;
  /** null: not measured (or informational). */
  met: boolean | null;
  measured: string;
}

const f2 = (n: number): string => n.toFixed(2);
const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/**
 * Read-only: pgproxy's efficiency ≥ 0.9 with 2 read nodes (0/1/1) and with 3 (1/1/1), in each read-only
 * workload. Mixed: read_your_writes database keeps ≥ 0.75 of off's TPS with 0 stale reads; pgpool-II's stale
 * reads beside it (informational).
 */
export function dbGoals(d: DbBoundData): DbGoal[] {
  const out: DbGoal[] = [];
  for (const w of RO) {
    for (const v of ['pgproxy-011', 'pgproxy-111'] as const) {
      const vv = variant(v);
      const name = `${DB_WORKLOAD_TITLES[w].replace(/^pgbench /, '')}: ${vv.label} efficiency ≥ ${READ_SCALING_GOAL} (${vv.readNodes} read nodes)`;
      const c = cell(d, w, v);
      const e = efficiencyOf(d, w, v);
      const direct = tpsOf(cell(d, w, baselineOf(w)));
      const tps = tpsOf(c);
      if (e === null || !tps || !direct) {
        out.push({ name, met: null, measured: `not measured (${!c ? `${vv.label} did not run` : !tps ? `${vv.label} failed` : 'no direct baseline'})` });
        continue;
      }
      const failures = failuresOf(c);
      out.push({
        name,
        met: e >= READ_SCALING_GOAL && failures === '',
        measured: `${f2(e)} (${int(tps.median)} TPS / (${vv.readNodes} × ${int(direct.median)} direct)${failures ? `; ${failures}` : ''})`,
      });
    }
  }
  const off = cell(d, 'mixed', 'pgproxy-off');
  const db = cell(d, 'mixed', 'pgproxy-database');
  const name = `mixed: read_your_writes database ≥ ${MIXED_TPS_GOAL}× off's TPS with 0 stale reads`;
  const offTps = tpsOf(off);
  const dbTps = tpsOf(db);
  const dbStale = staleOf(db);
  if (!offTps || !dbTps || !dbStale) out.push({ name, met: null, measured: `not measured (${!off || !offTps ? 'off did not run' : 'database did not run'})` });
  else {
    const r = dbTps.median / offTps.median;
    const failures = failuresOf(db);
    const offStale = staleOf(off);
    out.push({
      name,
      met: r >= MIXED_TPS_GOAL && dbStale.stale === 0 && dbStale.readBacks > 0 && failures === '',
      measured:
        `${f2(r)}× (${int(dbTps.median)} vs ${int(offTps.median)} TPS); stale ${int(dbStale.stale)} of ${int(dbStale.readBacks)} read-backs` +
        (offStale ? ` (off: ${int(offStale.stale)} of ${int(offStale.readBacks)})` : '') +
        (failures ? `; ${failures}` : ''),
    });
  }
  for (const v of ['pgpool-011', 'pgpool-111'] as const) {
    const s = staleOf(cell(d, 'mixed', v));
    if (s) out.push({ name: `mixed: ${variant(v).label} stale reads (informational)`, met: null, measured: `${int(s.stale)} of ${int(s.readBacks)} read-backs` });
  }
  return out;
}
