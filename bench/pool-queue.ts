/**
 * Whether sessions of a benchmark step wait for a backend connection in pgproxy. In session pooling a session keeps
 * its backend connection until it disconnects, so sessions beyond what one node takes wait (pgproxy queues them
 * for pool.acquire_timeout_ms) until others end. That is expected, not a failure, but the report must say so: a
 * step where a fifth of the sessions start late measures something else than one where none does.
 */
import { workerShare } from '../src/pool/limits.js';

/** What bounds one pool's backend connections to one node. */
export interface ConnectionLimits {
  /** pool.max_per_node (per worker). */
  readonly maxPerNode: number;
  /** limits.max_connections_per_node (all pools and workers together); 0: no limit. */
  readonly maxConnectionsPerNode: number;
  /** `workers` (1: a single process). */
  readonly workers: number;
  /** pool.acquire_timeout_ms; 0: no limit. */
  readonly acquireTimeoutMs: number;
}

export interface SessionQueue {
  sessions: number;
  /** Backend connections one pool can have to the node at once. */
  connections: number;
  /** Sessions that wait for a connection: the ones beyond `connections`. */
  waiting: number;
  /** One sentence for the report. */
  text: string;
}

/**
 * Backend connections one pool (one database and user) can hold to one node: its size in every worker, each within
 * that worker's share of the limit (pgproxy's own rule, src/pool/limits.ts).
 */
export function poolConnections(l: ConnectionLimits): number {
  if (l.workers <= 1) return l.maxConnectionsPerNode > 0 ? Math.min(l.maxPerNode, l.maxConnectionsPerNode) : l.maxPerNode;
  let sum = 0;
  for (let w = 1; w <= l.workers; w++) {
    const share = workerShare(l.maxConnectionsPerNode, l.workers, w);
    sum += share > 0 ? Math.min(l.maxPerNode, share) : l.maxPerNode;
  }
  return sum;
}

/** `sessions` concurrent sessions of one database and user, each holding a connection to the same node for its life. */
export function sessionQueue(sessions: number, l: ConnectionLimits, node = 'the primary'): SessionQueue {
  const connections = poolConnections(l);
  const waiting = Math.max(0, sessions - connections);
  const bound =
    l.maxConnectionsPerNode > 0 && connections < l.maxPerNode * Math.max(1, l.workers)
      ? `limits.max_connections_per_node ${l.maxConnectionsPerNode}; pool.max_per_node ${l.maxPerNode}`
      : `pool.max_per_node ${l.maxPerNode}${l.workers > 1 ? ` × ${l.workers} workers` : ''}${l.maxConnectionsPerNode > 0 ? `; limits.max_connections_per_node ${l.maxConnectionsPerNode}` : ''}`;
  const wait = l.acquireTimeoutMs > 0 ? `for up to pool.acquire_timeout_ms ${l.acquireTimeoutMs}` : 'with no time limit (pool.acquire_timeout_ms 0)';
  const text =
    waiting > 0
      ? `${sessions} sessions share at most ${connections} backend connections to ${node} (${bound}): ${waiting} sessions wait for a connection, ` +
        `${wait}, until others end; queued, not failed`
      : `${sessions} sessions, at most ${connections} backend connections to ${node} (${bound}): no session waits for a connection`;
  return { sessions, connections, waiting, text };
}
