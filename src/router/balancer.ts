/** Weighted choice of the node that serves a session's (or a statement's) reads. Pure: no I/O, no clock. */
import type { NodeState } from '../nodes/topology.js';

export interface LagLimits {
  /** 0 = no limit. */
  maxBytes: number;
  /** 0 = no limit. */
  maxMs: number;
}

export const NO_LAG_LIMITS: LagLimits = { maxBytes: 0, maxMs: 0 };

/** Up, and known to be a primary or a standby. */
export function readable(n: NodeState): boolean {
  return n.up && n.role !== 'unknown';
}

/** A standby that is not streaming, or lags beyond a limit, takes no reads until it catches up. */
export function lagging(n: NodeState, limits: LagLimits): boolean {
  if (n.role !== 'standby') return false;
  if (limits.maxBytes > 0 && (n.lagBytes === null || n.lagBytes > limits.maxBytes)) return true;
  if (limits.maxMs > 0 && (n.lagMs === null || n.lagMs > limits.maxMs)) return true;
  return false;
}

/**
 * Whether `n` may serve a read: up, not lagging, and (read-your-writes) replayed past `minLsn`. The primary
 * always has every committed write.
 */
export function canRead(n: NodeState, limits: LagLimits, minLsn: bigint | null, onlyStandbys: boolean): boolean {
  if (!readable(n)) return false;
  if (n.role === 'primary') return !onlyStandbys;
  if (n.following === false || lagging(n, limits)) return false;
  return minLsn === null || (n.lsn !== null && n.lsn >= minLsn);
}

/**
 * Picks a node among those that may serve reads, by weight. Standbys and the primary both take reads in
 * proportion to their weights (weight 0 on the primary keeps reads off it). Returns null when no node with a
 * positive weight can serve the read: the caller then uses the primary. Allocates nothing.
 */
export function pickReadNode(
  nodes: readonly NodeState[],
  limits: LagLimits = NO_LAG_LIMITS,
  minLsn: bigint | null = null,
  onlyStandbys = false,
  random: () => number = Math.random,
): NodeState | null {
  let total = 0;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as NodeState;
    if (n.weight > 0 && canRead(n, limits, minLsn, onlyStandbys)) total += n.weight;
  }
  if (total <= 0) return null;
  let r = random() * total;
  let last: NodeState | null = null;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as NodeState;
    if (n.weight <= 0 || !canRead(n, limits, minLsn, onlyStandbys)) continue;
    last = n;
    r -= n.weight;
    if (r < 0) return n;
  }
  return last; // floating-point rounding
}

/** Weights normalised to sum 1 (pgpool's lb_weight), over all configured nodes. */
export function normalisedWeights(nodes: readonly NodeState[]): number[] {
  const total = nodes.reduce((s, n) => s + n.weight, 0);
  return nodes.map((n) => (total > 0 ? n.weight / total : 0));
}
