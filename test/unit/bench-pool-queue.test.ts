// bench/pool-queue.ts: how many sessions of a step wait for a backend connection in pgproxy.
import { describe, expect, it } from 'vitest';
import { poolConnections, sessionQueue } from '../../bench/pool-queue.js';

const limits = (maxPerNode: number, maxConnectionsPerNode: number, workers = 1) => ({ maxPerNode, maxConnectionsPerNode, workers, acquireTimeoutMs: 120_000 });

describe('poolConnections', () => {
  it('the pool size, within the limit per node', () => {
    expect(poolConnections(limits(110, 80))).toBe(80);
    expect(poolConnections(limits(50, 80))).toBe(50);
    expect(poolConnections(limits(50, 0))).toBe(50);
  });

  it('with workers: each worker a pool of its own, within its share of the limit', () => {
    expect(poolConnections(limits(50, 80, 2))).toBe(80);
    expect(poolConnections(limits(30, 80, 2))).toBe(60);
    // Shares 27, 27, 26 of 80; pools of 30 each.
    expect(poolConnections(limits(30, 80, 3))).toBe(80);
    expect(poolConnections(limits(20, 0, 3))).toBe(60);
  });
});

describe('sessionQueue', () => {
  it('the sessions beyond the connections wait, and the text names the bound', () => {
    const q = sessionQueue(100, limits(110, 80));
    expect([q.connections, q.waiting]).toEqual([80, 20]);
    expect(q.text).toContain('20 sessions wait');
    expect(q.text).toContain('limits.max_connections_per_node 80');
    expect(q.text).toContain('pool.acquire_timeout_ms 120000');

    const shipped = sessionQueue(100, limits(50, 80));
    expect([shipped.connections, shipped.waiting]).toEqual([50, 50]);
    expect(shipped.text).toMatch(/^100 sessions share at most 50 backend connections to the primary \(pool\.max_per_node 50; limits\.max_connections_per_node 80\)/);
  });

  it('none waits when the connections suffice', () => {
    const q = sessionQueue(16, limits(110, 80));
    expect(q.waiting).toBe(0);
    expect(q.text).toContain('no session waits');
  });

  it('no time limit when acquire_timeout_ms is 0', () => {
    expect(sessionQueue(100, { ...limits(50, 0), acquireTimeoutMs: 0 }).text).toContain('with no time limit');
  });
});
