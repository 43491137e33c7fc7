// bench/scaling.ts: scaling efficiency and the database-bound goals, on made-up results.
import { describe, expect, it } from 'vitest';
import { type DbBoundData, type DbRun, type DbWorkloadId, dbGoals, efficiencyOf, scalingEfficiency, staleOf, type VariantId } from '../../bench/scaling.js';

const run = (tps: number | null, extra: Partial<DbRun> = {}): DbRun => ({
  tps,
  avgLatencyMs: 1,
  p99LatencyMs: 5,
  transactions: tps === null ? null : tps * 8,
  failure: '',
  errors: [],
  proxyCpuUsPerTx: null,
  servers: [],
  idleCores: null,
  ...extra,
});

function data(cells: [DbWorkloadId, VariantId, DbRun[]][]): DbBoundData {
  return {
    capCores: 0.3,
    clientsPerNode: 8,
    durationS: 8,
    rounds: 3,
    cgroups: 'test',
    variants: [],
    cells: cells.map(([workload, variant, runs]) => ({ workload, variant, runs })),
    servers: [],
    cappedSeconds: 0,
    skipped: [],
  };
}

describe('scalingEfficiency', () => {
  it('TPS over read nodes × the direct TPS of one node', () => {
    expect(scalingEfficiency(2000, 2, 1000)).toBe(1);
    expect(scalingEfficiency(2700, 3, 1000)).toBeCloseTo(0.9);
    expect(scalingEfficiency(1127, 1, 1221)).toBeCloseTo(0.923, 3);
  });

  it('no figure without a baseline or a result', () => {
    expect(scalingEfficiency(null, 2, 1000)).toBeNull();
    expect(scalingEfficiency(1000, 2, null)).toBeNull();
    expect(scalingEfficiency(1000, 2, 0)).toBeNull();
  });

  it('on the medians over the rounds, against the direct baseline of the same workload', () => {
    const d = data([
      ['select-simple', 'direct', [run(1000), run(1200), run(1100)]],
      ['select-simple', 'pgproxy-011', [run(2000), run(2300), run(1900)]],
      ['mixed', 'direct-primary', [run(500)]],
      ['mixed', 'pgproxy-off', [run(900)]],
    ]);
    expect(efficiencyOf(d, 'select-simple', 'pgproxy-011')).toBeCloseTo(2000 / (2 * 1100));
    expect(efficiencyOf(d, 'select-simple', 'direct')).toBe(1);
    expect(efficiencyOf(d, 'mixed', 'pgproxy-off')).toBeCloseTo(0.9);
    // A failed round (no TPS) does not count towards the median.
    const f = data([
      ['select-simple', 'direct', [run(1000)]],
      ['select-simple', 'pgproxy-111', [run(null, { failure: 'no result' }), run(2700), run(2700)]],
    ]);
    expect(efficiencyOf(f, 'select-simple', 'pgproxy-111')).toBeCloseTo(0.9);
  });
});

describe('dbGoals', () => {
  const ro = (direct: number, two: number, three: number): [DbWorkloadId, VariantId, DbRun[]][] =>
    (['select-simple', 'select-prepared'] as const).flatMap((w): [DbWorkloadId, VariantId, DbRun[]][] => [
      [w, 'direct', [run(direct)]],
      [w, 'pgproxy-011', [run(two)]],
      [w, 'pgproxy-111', [run(three)]],
    ]);

  it('read-only: ≥ 0.9 with 2 and with 3 read nodes, in both workloads', () => {
    const g = dbGoals(data(ro(1000, 1800, 2690)));
    const readOnly = g.filter((x) => x.name.includes('efficiency'));
    expect(readOnly.map((x) => [x.name.includes('0/1/1') ? 2 : 3, x.met])).toEqual([
      [2, true],
      [3, false],
      [2, true],
      [3, false],
    ]);
    // 0.8967 prints as 0.90 but is below the goal.
    expect(readOnly[1]!.measured).toBe('0.90 (2,690 TPS / (3 × 1,000 direct))');
  });

  it('a run with failures does not meet a goal, whatever its TPS', () => {
    const cells = ro(1000, 2000, 3000);
    cells[1]![2] = [run(2000, { failure: '3 failed transactions' })];
    const g = dbGoals(data(cells)).find((x) => x.name.includes('simple') && x.name.includes('0/1/1'))!;
    expect(g.met).toBe(false);
    expect(g.measured).toContain('3 failed transactions');
  });

  it('mixed: database ≥ 0.75 of off with 0 stale reads; stale reads fail it; pgpool-II shown beside', () => {
    const mixed = (dbTps: number, dbStale: number): DbBoundData =>
      data([
        ['mixed', 'pgproxy-off', [run(1000, { readBacks: 100, stale: 12 })]],
        ['mixed', 'pgproxy-database', [run(dbTps, { readBacks: 80, stale: dbStale })]],
        ['mixed', 'pgpool-011', [run(900, { readBacks: 90, stale: 30 }), run(950, { readBacks: 95, stale: 5 })]],
      ]);
    const goal = (d: DbBoundData) => dbGoals(d).find((x) => x.name.startsWith('mixed: read_your_writes'))!;
    expect(goal(mixed(800, 0))).toMatchObject({ met: true, measured: '0.80× (800 vs 1,000 TPS); stale 0 of 80 read-backs (off: 12 of 100)' });
    expect(goal(mixed(700, 0)).met).toBe(false);
    expect(goal(mixed(900, 1)).met).toBe(false);
    expect(dbGoals(mixed(800, 0)).find((x) => x.name.includes('pgpool-II 0/1/1'))).toEqual({
      name: 'mixed: pgpool-II 0/1/1 stale reads (informational)',
      met: null,
      measured: '35 of 185 read-backs',
    });
  });

  it('not measured when a side is missing', () => {
    const g = dbGoals(data([['select-simple', 'pgproxy-011', [run(2000)]]]));
    expect(g.every((x) => x.met === null)).toBe(true);
    expect(g[0]!.measured).toBe('not measured (no direct baseline)');
  });
});

describe('staleOf', () => {
  it('sums read-backs and stale reads over the rounds; none for pgbench workloads', () => {
    expect(staleOf({ workload: 'mixed', variant: 'pgproxy-off', runs: [run(1, { readBacks: 10, stale: 2 }), run(1, { readBacks: 5, stale: 0 })] })).toEqual({ readBacks: 15, stale: 2 });
    expect(staleOf({ workload: 'select-simple', variant: 'direct', runs: [run(1)] })).toBeNull();
  });
});
