// The balancer's staleness rules with fake nodes and a seeded PRNG: a bound of the session or statement (measured
// lag plus the measurement's age), a bound of 0 (fully replayed, measured since the read began), the configured
// limits next to them, read-your-writes positions, and prefer_lower_delay (the least-lagged qualifying standby,
// weights breaking ties). No I/O, no clock: `now` is given.
import { describe, expect, it } from 'vitest';
import { Topology, type NodeState } from '../../../src/nodes/topology.js';
import { canRead, lagging, pickReadNode, type LagLimits } from '../../../src/router/balancer.js';
import { prng } from '../../prng.js';

const NOW = 1_000_000;
let nextPort = 7000;

/** A healthy standby, caught up and measured just now, with the given overrides. */
function node(o: Partial<NodeState> & { name: string }): NodeState {
  const base = new Topology([{ name: o.name, host: '127.0.0.1', port: nextPort++, weight: 1 }]).nodes[0]!;
  return Object.assign(base, { up: true, role: 'standby', following: true, lsn: 1000n, lagBytes: 0, lagMs: 0, measuredAt: NOW }, o);
}

function limits(o: Partial<Required<LagLimits>> = {}): Required<LagLimits> {
  return { maxBytes: 0, maxMs: 0, boundMs: 0, now: NOW, freshSince: 0, ...o };
}

/** Names picked in n draws, with how often. */
function tally(nodes: NodeState[], n: number, seed: number, l: LagLimits, opts: { minLsn?: bigint | null; onlyStandbys?: boolean; preferLowerDelay?: boolean } = {}): Map<string, number> {
  const random = prng(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const picked = pickReadNode(nodes, l, opts.minLsn ?? null, opts.onlyStandbys ?? false, random, opts.preferLowerDelay ?? false);
    const key = picked?.name ?? 'none';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

const names = (m: Map<string, number>): string[] => [...m.keys()].sort();

describe('a staleness bound (pgproxy.max_lag_ms, the max_lag_ms hint)', () => {
  it('counts the measured lag plus the age of the measurement', () => {
    const l = limits({ boundMs: 500 });
    expect(lagging(node({ name: 'fresh', lagMs: 499 }), l)).toBe(false);
    expect(lagging(node({ name: 'at-the-bound', lagMs: 500 }), l)).toBe(false);
    expect(lagging(node({ name: 'over', lagMs: 501 }), l)).toBe(true);
    // Caught up when measured, but measured 600 ms ago: it may be 600 ms behind now.
    expect(lagging(node({ name: 'old-measure', lagMs: 0, measuredAt: NOW - 600 }), l)).toBe(true);
    expect(lagging(node({ name: 'sum', lagMs: 300, measuredAt: NOW - 201 }), l)).toBe(true);
    expect(lagging(node({ name: 'sum-ok', lagMs: 300, measuredAt: NOW - 200 }), l)).toBe(false);
    // A measurement "from the future" (clock read before it landed) counts as age 0.
    expect(lagging(node({ name: 'future', lagMs: 100, measuredAt: NOW + 50 }), l)).toBe(false);
  });

  it('an unmeasured standby (no lag figure, never measured) does not qualify; the primary always does', () => {
    const l = limits({ boundMs: 10_000 });
    expect(lagging(node({ name: 'no-figure', lagMs: null }), l)).toBe(true);
    expect(lagging(node({ name: 'never', measuredAt: 0 }), l)).toBe(true);
    expect(lagging(node({ name: 'p', role: 'primary', lagMs: null, measuredAt: 0 }), l)).toBe(false);
  });

  it('the configured limits still apply under a looser bound of the session (the stricter wins)', () => {
    const n = node({ name: 'a', lagMs: 2_000, lagBytes: 10 });
    expect(lagging(n, limits({ boundMs: 3_600_000 }))).toBe(false);
    expect(lagging(n, limits({ boundMs: 3_600_000, maxMs: 1_000 }))).toBe(true);
    expect(lagging(n, limits({ boundMs: 3_600_000, maxBytes: 5 }))).toBe(true);
  });

  it('the bound and read-your-writes both hold: a standby within the bound that has not replayed the position is skipped', () => {
    const nodes = [node({ name: 'p', role: 'primary', weight: 0, lsn: 5000n }), node({ name: 'close-but-old', lagMs: 10, lsn: 1999n }), node({ name: 'replayed', lagMs: 400, lsn: 2000n })];
    expect(names(tally(nodes, 2_000, 11, limits({ boundMs: 500 }), { minLsn: 2000n }))).toEqual(['replayed']);
    expect(names(tally(nodes, 2_000, 11, limits({ boundMs: 300 }), { minLsn: 2000n }))).toEqual(['none']);
    expect(names(tally(nodes, 2_000, 11, limits({ boundMs: 500 })))).toEqual(['close-but-old', 'replayed']);
  });
});

describe('a bound of 0: fully replayed', () => {
  it('only a standby measured with no lag at or after the read began qualifies', () => {
    const began = NOW - 5;
    const l = limits({ freshSince: began });
    expect(lagging(node({ name: 'measured-after', lagBytes: 0, measuredAt: began }), l)).toBe(false);
    expect(lagging(node({ name: 'measured-before', lagBytes: 0, measuredAt: began - 1 }), l)).toBe(true);
    expect(lagging(node({ name: 'behind', lagBytes: 8, lagMs: 0, measuredAt: NOW }), l)).toBe(true);
    expect(lagging(node({ name: 'no-figure', lagBytes: null, measuredAt: NOW }), l)).toBe(true);
    const nodes = [node({ name: 'p', role: 'primary', weight: 0 }), node({ name: 'stale-measure', measuredAt: began - 100 }), node({ name: 'ok', measuredAt: NOW })];
    expect(names(tally(nodes, 1_000, 12, l))).toEqual(['ok']);
  });
});

describe('prefer_lower_delay', () => {
  it('sends every read to the least-lagged qualifying standby, however the weights are', () => {
    const nodes = [
      node({ name: 'p', role: 'primary', weight: 1 }),
      node({ name: 'far', lagBytes: 5_000, weight: 100 }),
      node({ name: 'near', lagBytes: 10, weight: 1 }),
      node({ name: 'unknown-lag', lagBytes: null, weight: 100 }),
    ];
    expect(names(tally(nodes, 5_000, 21, limits(), { preferLowerDelay: true }))).toEqual(['near']);
    // Without it, by weight: all of them.
    expect(names(tally(nodes, 5_000, 21, limits()))).toEqual(['far', 'near', 'p', 'unknown-lag']);
  });

  it('weights break ties between standbys equally behind', () => {
    const nodes = [node({ name: 'p', role: 'primary', weight: 5 }), node({ name: 'a', lagBytes: 0, weight: 1 }), node({ name: 'b', lagBytes: 0, weight: 3 }), node({ name: 'c', lagBytes: 1, weight: 50 })];
    const n = 40_000;
    const counts = tally(nodes, n, 22, limits(), { preferLowerDelay: true });
    expect(names(counts)).toEqual(['a', 'b']);
    // Expected 1/4 and 3/4; the binomial's standard deviation is under 90 picks: allow 5 of them.
    expect(Math.abs(counts.get('a')! - n / 4)).toBeLessThan(450);
  });

  it('only qualifying standbys compete: one excluded by a bound, a position or weight 0 is passed over for the next least-lagged', () => {
    const began = NOW - 5;
    const nodes = [
      node({ name: 'p', role: 'primary', weight: 1, lsn: 9000n }),
      node({ name: 'zero-weight', lagBytes: 0, weight: 0 }),
      node({ name: 'old-measure', lagBytes: 0, lagMs: 0, measuredAt: NOW - 2_000 }),
      node({ name: 'not-replayed', lagBytes: 1, lagMs: 1, lsn: 1500n }),
      node({ name: 'next', lagBytes: 200, lagMs: 20, lsn: 2000n }),
      node({ name: 'last', lagBytes: 900, lagMs: 30, lsn: 2000n }),
    ];
    expect(names(tally(nodes, 2_000, 23, limits({ boundMs: 1_000 }), { minLsn: 2000n, preferLowerDelay: true }))).toEqual(['next']);
    // Fully replayed wanted: no standby qualifies, so the primary is picked by weight.
    expect(names(tally(nodes, 2_000, 23, limits({ freshSince: began }), { preferLowerDelay: true }))).toEqual(['p']);
    // ... unless only standbys may serve: then none.
    expect(names(tally(nodes, 2_000, 23, limits({ freshSince: began }), { preferLowerDelay: true, onlyStandbys: true }))).toEqual(['none']);
  });

  it('a standby that stopped following the primary never serves, however little it lags', () => {
    const nodes = [node({ name: 'p', role: 'primary', weight: 0 }), node({ name: 'elsewhere', lagBytes: 0, following: false }), node({ name: 'follows', lagBytes: 50 })];
    expect(names(tally(nodes, 1_000, 24, limits(), { preferLowerDelay: true }))).toEqual(['follows']);
    expect(canRead(nodes[1]!, limits(), null, false)).toBe(false);
  });
});
