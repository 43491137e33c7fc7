/**
 * The consistency-cost section's results (ryw-cost.ts runs it): what `read_your_writes: session` and `database`
 * cost against `off` on tpcb-like and on an autocommit INSERT load, the goal (session ≥ 0.95× off's TPS), and the
 * report's lines. No I/O.
 */
import { fmt, fmtInt, type Goal, spreadText } from './goals.js';
import type { PgbenchResult } from './pgbench.js';
import type { ReadYourWrites } from './scaling.js';
import { pairedRatios, type Spread, spread, targetStats, type WorkloadResults } from './stats.js';

export const RYW_MODES: readonly ReadYourWrites[] = ['off', 'session', 'database'];

/** Issue 11's aim: `session` costs at most 5 % of `off`'s TPS. */
export const RYW_SESSION_GOAL = 0.95;

export type RywWorkloadId = 'tpcb' | 'insert';

/** One workload's rounds, results keyed by read_your_writes mode. */
export interface RywWorkloadResults extends WorkloadResults<ReadYourWrites> {
  id: RywWorkloadId;
  /** Short name for goals and stdout, e.g. "tpcb-like -c 16". */
  short: string;
}

export interface RywCostData {
  durationS: number;
  rounds: number;
  /** The INSERT load: concurrent sessions, INSERTs per session, and whether sessions wait for a connection. */
  insert: { sessions: number; perSession: number; queue: string };
  /** The pgproxy targets that started, one per mode. */
  modes: { mode: ReadYourWrites; label: string; setup: string }[];
  workloads: RywWorkloadResults[];
}

export interface RatioToOff {
  /** The mode's median TPS over off's median TPS. */
  ratio: number | null;
  /** mode / off per round, where both ran (paired: they ran minutes apart at most). */
  perRound: Spread | null;
}

const tps = (r: PgbenchResult): number | null => r.tps;

/** `mode`'s TPS against off's in one workload. */
export function ratioToOff(w: WorkloadResults<ReadYourWrites> | undefined, mode: ReadYourWrites): RatioToOff {
  const m = targetStats(w, mode)?.tps?.median;
  const off = targetStats(w, 'off')?.tps?.median;
  return { ratio: m != null && off != null && off > 0 ? m / off : null, perRound: pairedRatios(w, mode, 'off', tps) };
}

/** Per workload: session ≥ RYW_SESSION_GOAL × off's median TPS, with no failed run in either mode. */
export function rywGoals(d: RywCostData): Goal[] {
  return d.workloads.map((w) => {
    const name = `${w.short}: read_your_writes session ≥ ${RYW_SESSION_GOAL.toFixed(2)}× off's TPS`;
    const session = targetStats(w, 'session');
    const off = targetStats(w, 'off');
    const { ratio, perRound } = ratioToOff(w, 'session');
    if (ratio === null || !session?.tps || !off?.tps) {
      const why = !off ? 'off did not run' : !session ? 'session did not run' : !off.tps ? 'off produced no result' : 'session produced no result';
      return { name, met: null, measured: `not measured (${why})` };
    }
    const detail = [`${session.tps.n > 1 ? 'medians ' : ''}${fmtInt(session.tps.median)} vs ${fmtInt(off.tps.median)} TPS`];
    if (perRound && perRound.n > 1) detail.push(`per round ${perRound.min.toFixed(2)}–${perRound.max.toFixed(2)}×`);
    const failures = [session.failures && `session: ${session.failures}`, off.failures && `off: ${off.failures}`].filter(Boolean);
    detail.push(...failures);
    return { name, met: ratio >= RYW_SESSION_GOAL && failures.length === 0, measured: `${ratio.toFixed(2)}× (${detail.join('; ')})` };
  });
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const seconds = (ms: number): string => (ms / 1000).toFixed(1);

/** The "Consistency cost" section of latest.md. */
export function rywMarkdown(d: RywCostData): string[] {
  const L: string[] = [];
  L.push('## Consistency cost: `read_your_writes` off, session, database', '');
  L.push(
    `Three pgproxy processes, alike but for \`routing.read_your_writes\`, in ${d.rounds} interleaved round${d.rounds === 1 ? '' : 's'}: each round runs ` +
      'each workload once through every mode, in an order rotated per round and workload. In session and database mode pgproxy asks the primary ' +
      'for its WAL insert position after every unit that may have written, pipelined behind it; database mode also holds the unit\'s ' +
      'ReadyForQuery until that position is published. The cost is largest where every statement is a write: the autocommit INSERT load. ' +
      'Judged on the median TPS, the spread (min–max) in parentheses; "× off" is the ratio of the medians, "per round" the range of the ratios of the runs paired by round.',
    '',
  );
  for (const m of d.modes) L.push(`- **${m.label}**: ${m.setup}.`);
  L.push(
    `- tpcb-like: \`--duration\` ${d.durationS} s per run, pgbench tables reset on the primary before each (VACUUM, TRUNCATE as pgbench does). ` +
      `INSERT load: ${fmtInt(d.insert.sessions)} sessions × ${fmtInt(d.insert.perSession)} autocommit INSERTs (\`-t\`) into a table made once on the primary and ` +
      `emptied before each run; elapsed is pgbench's wall-clock time. ${d.insert.queue}.`,
    '',
  );
  for (const g of rywGoals(d)) L.push(`Goal: ${g.name}: **${g.met === null ? 'not measured' : g.met ? 'met' : 'NOT met'}**, ${g.measured}.`, '');
  for (const w of d.workloads) {
    // "pgbench ... (tpcb-like)": the command in code, what it is beside it.
    const [, command, what] = /^(.*?)(?: \((.+)\))?$/.exec(w.workload.title) ?? [];
    L.push(`### \`${command ?? w.workload.title}\`${what ? ` (${what})` : ''}${w.rounds.length > 1 ? ` — ${w.rounds.length} rounds, median (min–max)` : ''}`, '');
    L.push('| read_your_writes | TPS | × off | × off per round | avg latency ms | p99 latency ms | transactions | elapsed s | proxy CPU µs/tx | problems |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const mode of RYW_MODES) {
      const s = targetStats(w, mode);
      if (!s) continue;
      const r = ratioToOff(w, mode);
      const elapsed = s.runs.map((x) => x.elapsedMs);
      const problems = cell([s.failures, ...s.errors].filter(Boolean).join('; '));
      L.push(
        `| ${mode} | ${spreadText(s.tps, fmtInt)} | ${fmt(r.ratio)} | ${mode !== 'off' && r.perRound && r.perRound.n > 1 ? `${r.perRound.min.toFixed(2)}–${r.perRound.max.toFixed(2)}` : ''} | ` +
          `${fmt(s.avgLatencyMs?.median, 3)} | ${fmt(s.p99LatencyMs?.median, 3)} | ${s.transactions === null ? '–' : fmtInt(s.transactions)} | ` +
          `${spreadText(spread(elapsed), seconds)} | ${s.cpuUsPerTx === null ? '' : spreadText(s.cpuUsPerTx, (n) => n.toFixed(1))} | ${problems} |`,
      );
    }
    L.push('', `Run order per round: ${w.rounds.map((r) => `${r.round}: ${r.order.join(' → ')}`).join('; ')}.`, '');
  }
  return L;
}

/** The section's lines on stdout. */
export function rywSummary(d: RywCostData): string[] {
  const L = [`Consistency cost (read_your_writes; TPS median (min–max) over ${d.rounds} round${d.rounds === 1 ? '' : 's'}, × off, proxy CPU µs/tx):`];
  for (const w of d.workloads) {
    const parts = RYW_MODES.flatMap((mode) => {
      const s = targetStats(w, mode);
      if (!s) return [];
      const r = mode === 'off' ? '' : ` ${fmt(ratioToOff(w, mode).ratio)}×`;
      const failed = s.failures ? ` FAILED (${s.failures})` : '';
      return [`${mode} ${spreadText(s.tps, fmtInt)}${r}, ${fmt(s.cpuUsPerTx?.median, 1)} µs/tx${failed}`];
    });
    L.push(`  ${w.short}: ${parts.join('; ')}`);
  }
  L.push(`  INSERT load: ${d.insert.queue}`);
  return L;
}
