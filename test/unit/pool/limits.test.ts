// limits.* with workers: each worker enforces an equal share, and the shares add up to the configured limit (so the
// workers together never exceed it); a limit smaller than the number of workers is refused.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../../src/config/load.js';
import { globalLimitsOf, workerShare } from '../../../src/pool/limits.js';

const BASE = ['backends:', '  - port: 5432', 'auth:', '  users:', '    - { name: app, password: s3cret-pw }'];

function config(extra: string[]): ReturnType<typeof parseConfigText> {
  return parseConfigText([...BASE, ...extra].join('\n'), 'pgproxy.yaml', {});
}

describe('workerShare', () => {
  it.each([
    [80, 1],
    [80, 2],
    [80, 3],
    [80, 7],
    [97, 64],
    [5, 5],
    [6, 4],
  ])('limit %i among %i workers: shares differ by at most 1 and add up to the limit', (limit, workers) => {
    const shares = Array.from({ length: workers }, (_, i) => workerShare(limit, workers, i + 1));
    expect(shares.reduce((a, b) => a + b, 0)).toBe(limit);
    expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    expect(Math.min(...shares)).toBeGreaterThanOrEqual(1);
  });

  it('0 (no limit) stays 0; without workers (worker 0) the whole limit applies', () => {
    expect(workerShare(0, 4, 2)).toBe(0);
    expect(workerShare(80, 1, 0)).toBe(80);
    expect(workerShare(80, 4, 0)).toBe(80);
    expect([1, 2, 3].map((w) => workerShare(10, 3, w))).toEqual([4, 3, 3]);
  });
});

describe('globalLimitsOf', () => {
  it('the defaults: 80 connections per node, no user or database limit', () => {
    expect(globalLimitsOf(config([]), 0)).toEqual({ maxPerNode: 80, maxPerUser: 0, maxPerDatabase: 0, workerShare: false });
  });

  it('with workers: 3, every limit is split among the workers', () => {
    const c = config(['workers: 3', 'limits: { max_connections_per_node: 80, max_connections_per_user: 10, max_connections_per_database: 3 }']);
    expect([1, 2, 3].map((w) => globalLimitsOf(c, w))).toEqual([
      { maxPerNode: 27, maxPerUser: 4, maxPerDatabase: 1, workerShare: true },
      { maxPerNode: 27, maxPerUser: 3, maxPerDatabase: 1, workerShare: true },
      { maxPerNode: 26, maxPerUser: 3, maxPerDatabase: 1, workerShare: true },
    ]);
  });

  it('a limit below the number of workers is refused, naming the key (a worker would get a share of 0)', () => {
    let err: unknown;
    try {
      config(['workers: 4', 'limits:', '  max_connections_per_node: 3', '  max_connections_per_user: 0']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      { path: 'limits.max_connections_per_node', line: 8, message: '3 is less than workers (4): each worker gets an equal share; use at least 4, or 0 for no limit' },
    ]);
  });
});
