// The balancer with fake nodes and a seeded PRNG: no I/O.
import { describe, expect, it } from 'vitest';
import { Topology, type NodeState } from '../../../src/nodes/topology.js';
import { canRead, lagging, normalisedWeights, pickReadNode, readable, type LagLimits } from '../../../src/router/balancer.js';
import { prng } from '../../prng.js';

let nextPort = 6000;
/** A healthy, caught-up node with the given overrides. */
function node(o: Partial<NodeState> & { name: string }): NodeState {
  const base = new Topology([{ name: o.name, host: '127.0.0.1', port: nextPort++, weight: 1 }]).nodes[0]!;
  return Object.assign(base, { up: true, role: 'standby', following: true, lsn: 1000n, lagBytes: 0, lagMs: 0 }, o);
}

const NO_LIMITS: LagLimits = { maxBytes: 0, maxMs: 0 };

/** How often each node is picked in n draws. */
function tally(nodes: NodeState[], n: number, seed: number, limits = NO_LIMITS, minLsn: bigint | null = null, onlyStandbys = false): Map<string, number> {
  const random = prng(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const picked = pickReadNode(nodes, limits, minLsn, onlyStandbys, random);
    const key = picked?.name ?? 'none';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describe('pickReadNode', () => {
  it('respects the weights over many picks', () => {
    const nodes = [node({ name: 'p', role: 'primary', weight: 1 }), node({ name: 'a', weight: 2 }), node({ name: 'b', weight: 5 })];
    const n = 80_000;
    const counts = tally(nodes, n, 1234);
    // Expected shares 1/8, 2/8, 5/8; a binomial's standard deviation here is below 140 picks: allow 5 of them.
    expect(Math.abs(counts.get('p')! - n / 8)).toBeLessThan(700);
    expect(Math.abs(counts.get('a')! - (2 * n) / 8)).toBeLessThan(700);
    expect(Math.abs(counts.get('b')! - (5 * n) / 8)).toBeLessThan(700);
    expect(counts.has('none')).toBe(false);
  });

  it('never picks a node of weight 0', () => {
    const nodes = [node({ name: 'p', role: 'primary', weight: 0 }), node({ name: 'a', weight: 1 }), node({ name: 'z', weight: 0 })];
    expect([...tally(nodes, 10_000, 5).keys()]).toEqual(['a']);
  });

  it('skips down, unknown-role, not-following and lagging nodes', () => {
    const limits: LagLimits = { maxBytes: 1000, maxMs: 500 };
    const nodes = [
      node({ name: 'down', up: false }),
      node({ name: 'unknown', role: 'unknown' }),
      node({ name: 'elsewhere', following: false }),
      node({ name: 'behind-bytes', lagBytes: 5000 }),
      node({ name: 'behind-ms', lagMs: 2000 }),
      node({ name: 'no-lag-figure', lagBytes: null }),
      node({ name: 'ok', lagBytes: 999, lagMs: 499 }),
      node({ name: 'unknown-following', following: null }),
    ];
    expect([...tally(nodes, 10_000, 6, limits).keys()].sort()).toEqual(['ok', 'unknown-following']);
  });

  it('without lag limits, a lagging standby still takes reads', () => {
    const nodes = [node({ name: 'behind', lagBytes: 10_000_000, lagMs: 60_000 })];
    expect(pickReadNode(nodes, NO_LIMITS, null, false, prng(1))?.name).toBe('behind');
  });

  it('read-your-writes: only nodes replayed past minLsn, and the primary', () => {
    const nodes = [node({ name: 'p', role: 'primary', weight: 1, lsn: 500n }), node({ name: 'old', lsn: 1999n }), node({ name: 'new', lsn: 2000n }), node({ name: 'none', lsn: null })];
    expect([...tally(nodes, 10_000, 7, NO_LIMITS, 2000n).keys()].sort()).toEqual(['new', 'p']);
    expect([...tally(nodes, 10_000, 7, NO_LIMITS, 2000n, true).keys()]).toEqual(['new']);
  });

  it('onlyStandbys leaves the primary out', () => {
    const nodes = [node({ name: 'p', role: 'primary', weight: 10 }), node({ name: 'a', weight: 1 })];
    expect([...tally(nodes, 5_000, 8, NO_LIMITS, null, true).keys()]).toEqual(['a']);
    expect(tally(nodes, 5_000, 8).get('p')!).toBeGreaterThan(4000);
  });

  it('returns null when no node can serve the read', () => {
    expect(pickReadNode([], NO_LIMITS, null, false, prng(1))).toBeNull();
    expect(pickReadNode([node({ name: 'a', up: false }), node({ name: 'b', weight: 0 })], NO_LIMITS, null, false, prng(1))).toBeNull();
    expect(pickReadNode([node({ name: 'p', role: 'primary' })], NO_LIMITS, null, true, prng(1))).toBeNull();
  });

  it('a draw near 1 picks the last eligible node, a draw of 0 the first', () => {
    const nodes = [node({ name: 'a', weight: 1 }), node({ name: 'b', weight: 2 }), node({ name: 'c', weight: 0 })];
    expect(pickReadNode(nodes, NO_LIMITS, null, false, () => 0.9999999999999999)?.name).toBe('b');
    expect(pickReadNode(nodes, NO_LIMITS, null, false, () => 0)?.name).toBe('a');
  });
});

describe('node predicates', () => {
  it('readable, lagging, canRead', () => {
    expect(readable(node({ name: 'x' }))).toBe(true);
    expect(readable(node({ name: 'x', up: false }))).toBe(false);
    expect(lagging(node({ name: 'p', role: 'primary', lagBytes: 1e9 }), { maxBytes: 1, maxMs: 1 })).toBe(false);
    expect(lagging(node({ name: 's', lagMs: null }), { maxBytes: 0, maxMs: 100 })).toBe(true);
    expect(canRead(node({ name: 'p', role: 'primary', lsn: null }), NO_LIMITS, 10n, false)).toBe(true);
  });

  it('normalisedWeights', () => {
    expect(normalisedWeights([node({ name: 'a', weight: 1 }), node({ name: 'b', weight: 3 })])).toEqual([0.25, 0.75]);
    expect(normalisedWeights([node({ name: 'a', weight: 0 })])).toEqual([0]);
  });
});
