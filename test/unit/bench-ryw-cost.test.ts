// bench/ryw-cost-report.ts: read_your_writes session and database against off, the goal, the report's lines.
import { describe, expect, it } from 'vitest';
import type { PgbenchResult, Workload } from '../../bench/pgbench.js';
import { ratioToOff, RYW_SESSION_GOAL, type RywCostData, rywGoals, rywMarkdown, rywSummary, type RywWorkloadResults } from '../../bench/ryw-cost-report.js';
import type { ReadYourWrites } from '../../bench/scaling.js';

const run = (tps: number | null, extra: Partial<PgbenchResult> = {}): PgbenchResult => ({
  tps,
  avgLatencyMs: 1,
  p99LatencyMs: 4,
  transactions: tps === null ? null : Math.round(tps * 3),
  failedTransactions: 0,
  exitCode: 0,
  errors: [],
  proxyCpuUsPerTx: 50,
  elapsedMs: 3000,
  command: 'pgbench',
  ...extra,
});

const tpcbWorkload: Workload = { name: 'tpcb-c16', title: 'pgbench -M simple -c 16 (tpcb-like)', script: 'tpcb-like', mode: 'simple', clients: 16 };

/** Rounds of results per mode: rounds[i] is round i + 1. */
function workload(perMode: Partial<Record<ReadYourWrites, (PgbenchResult | undefined)[]>>, id: 'tpcb' | 'insert' = 'tpcb'): RywWorkloadResults {
  const n = Math.max(...Object.values(perMode).map((r) => r.length));
  return {
    id,
    short: id === 'tpcb' ? 'tpcb-like -c 16' : 'autocommit INSERT 100 × 100',
    workload: tpcbWorkload,
    rounds: Array.from({ length: n }, (_, i) => {
      const results: Partial<Record<ReadYourWrites, PgbenchResult>> = {};
      for (const [mode, runs] of Object.entries(perMode) as [ReadYourWrites, (PgbenchResult | undefined)[]][]) if (runs[i]) results[mode] = runs[i];
      return { round: i + 1, order: Object.keys(results) as ReadYourWrites[], results };
    }),
  };
}

const data = (...workloads: RywWorkloadResults[]): RywCostData => ({
  durationS: 3,
  rounds: 3,
  insert: { sessions: 100, perSession: 100, queue: '100 sessions share at most 80 backend connections to the primary' },
  modes: [],
  workloads,
});

describe('ratioToOff', () => {
  it('the ratio of the medians, and the per-round ratios paired by round', () => {
    const w = workload({ off: [run(1000), run(1200), run(1100)], session: [run(1050), run(1080), run(990)], database: [run(800), run(900), run(700)] });
    const s = ratioToOff(w, 'session');
    expect(s.ratio).toBeCloseTo(1050 / 1100);
    expect(s.perRound).toMatchObject({ n: 3, min: 0.9, max: 1.05 });
    expect(ratioToOff(w, 'database').ratio).toBeCloseTo(800 / 1100);
    expect(ratioToOff(w, 'off').ratio).toBe(1);
  });

  it('no figure without off, and a round where either failed is not paired', () => {
    expect(ratioToOff(workload({ session: [run(1000)] }), 'session').ratio).toBeNull();
    const w = workload({ off: [run(1000), run(null, { exitCode: 1 })], session: [run(900), run(950)] });
    expect(ratioToOff(w, 'session').perRound).toMatchObject({ n: 1, min: 0.9 });
  });
});

describe('rywGoals', () => {
  it('one goal per workload: session ≥ 0.95× off', () => {
    const tpcb = workload({ off: [run(1000), run(1000), run(1000)], session: [run(960), run(950), run(970)] });
    const insert = workload({ off: [run(4000), run(4000), run(4000)], session: [run(3700), run(3790), run(3900)] }, 'insert');
    const g = rywGoals(data(tpcb, insert));
    expect(g.map((x) => [x.name, x.met])).toEqual([
      [`tpcb-like -c 16: read_your_writes session ≥ ${RYW_SESSION_GOAL.toFixed(2)}× off's TPS`, true],
      [`autocommit INSERT 100 × 100: read_your_writes session ≥ ${RYW_SESSION_GOAL.toFixed(2)}× off's TPS`, false],
    ]);
    expect(g[0]!.measured).toMatch(/^0\.96× \(medians 960 vs 1,000 TPS; per round 0\.95–0\.97×\)$/);
    expect(g[1]!.measured).toMatch(/^0\.95× /); // 3790 / 4000 = 0.9475: printed rounded, still not met
  });

  it('a failed run fails the goal; a missing mode is not measured', () => {
    const failed = workload({ off: [run(1000)], session: [run(990, { failedTransactions: 3 })] });
    const [g] = rywGoals(data(failed));
    expect(g!.met).toBe(false);
    expect(g!.measured).toContain('session: 3 failed transactions');
    expect(rywGoals(data(workload({ off: [run(1000)] })))[0]).toMatchObject({ met: null, measured: 'not measured (session did not run)' });
    expect(rywGoals(data(workload({ session: [run(1000)] })))[0]).toMatchObject({ met: null, measured: 'not measured (off did not run)' });
  });
});

describe('report lines', () => {
  const d = data(workload({ off: [run(1000), run(1100), run(1050)], session: [run(1000), run(1000), run(1000)], database: [run(900), run(950), run(800)] }));

  it('markdown: a row per mode with the ratio to off, the goal and the queue note', () => {
    const md = rywMarkdown(d).join('\n');
    expect(md).toContain('### `pgbench -M simple -c 16` (tpcb-like) — 3 rounds, median (min–max)');
    expect(md).toContain('| off | 1,050 (1,000–1,100) | 1.00 |  |');
    expect(md).toContain('| session | 1,000 (1,000–1,000) | 0.95 | 0.91–1.00 |');
    expect(md).toContain('| database | 900 (800–950) | 0.86 |');
    expect(md).toContain("Goal: tpcb-like -c 16: read_your_writes session ≥ 0.95× off's TPS: **met**, 0.95× (medians 1,000 vs 1,050 TPS; per round 0.91–1.00×).");
    expect(md).toContain('100 sessions share at most 80 backend connections');
  });

  it('stdout: TPS, the ratio to off and CPU per mode', () => {
    const s = rywSummary(d).join('\n');
    expect(s).toContain('tpcb-like -c 16: off 1,050 (1,000–1,100), 50.0 µs/tx; session 1,000 (1,000–1,000) 0.95×, 50.0 µs/tx; database 900 (800–950) 0.86×, 50.0 µs/tx');
  });
});
