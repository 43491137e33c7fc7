// bench/mixed.ts: what counts as a stale read-back, and the latency percentile.
import { describe, expect, it } from 'vitest';
import { isStale, percentileOf, StaleTally } from '../../bench/mixed.js';

describe('stale read-backs', () => {
  it('a read-back is stale unless it returns the value just written', () => {
    expect(isStale(1_000_000_005, 1_000_000_005)).toBe(false);
    expect(isStale(1_000_000_005, 1_000_000_004)).toBe(true);
    // The pair's value of an earlier run, or no row at all.
    expect(isStale(2_000_000_001, 1_000_000_900)).toBe(true);
    expect(isStale(5, null)).toBe(true);
  });

  it('the tally counts read-backs and the stale ones', () => {
    const t = new StaleTally();
    t.record(11, 11);
    t.record(12, 11);
    t.record(13, null);
    t.record(14, 14);
    expect({ readBacks: t.readBacks, stale: t.stale }).toEqual({ readBacks: 4, stale: 2 });
  });
});

describe('percentileOf', () => {
  it('nearest rank, on unsorted values', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentileOf(values, 0.99)).toBe(99);
    expect(percentileOf(values, 0.5)).toBe(50);
    expect(percentileOf([3], 0.99)).toBe(3);
    expect(percentileOf([], 0.99)).toBeNull();
  });
});
