/**
 * The limits across pools (limits.*) that one process enforces. They hold for pgproxy as a whole: with `workers: N`
 * (node:cluster), each worker enforces an equal share of every limit, so that the workers' connections together
 * never exceed it. A share is fixed, not lent between workers: no worker waits on another to open a connection.
 */
import type { Config } from '../config/types.js';
import type { GlobalLimits } from './manager.js';

/**
 * Worker `worker`'s share (1-based) of `limit` split among `workers` processes: the remainder goes to the first
 * workers, so the shares add up to the limit. 0 (no limit) stays 0; worker 0 means no workers (the whole limit).
 */
export function workerShare(limit: number, workers: number, worker: number): number {
  if (limit === 0 || worker === 0 || workers <= 1) return limit;
  return Math.floor(limit / workers) + (worker <= limit % workers ? 1 : 0);
}

/** This process's limits across pools: worker is its 1-based worker number, 0 when pgproxy runs without workers. */
export function globalLimitsOf(config: Config, worker: number): GlobalLimits {
  const l = config.limits;
  const share = (limit: number): number => workerShare(limit, config.workers, worker);
  return {
    maxPerNode: share(l.max_connections_per_node),
    maxPerUser: share(l.max_connections_per_user),
    maxPerDatabase: share(l.max_connections_per_database),
    workerShare: config.workers > 1 && worker > 0,
  };
}
