/** Weighted choice of the node that serves a session's (or a statement's) reads. Pure: no I/O, no clock. */
import type { NodeState } from '../nodes/topology.js';

export interface LagLimits {
  /** 0 = no limit. */
  maxBytes: number;
  /** 0 = no limit. */
  maxMs: number;
  /**
   * A bound a session or statement asked for (SET pgproxy.max_lag_ms, a max_lag_ms hint), in ms; 0 = none. A
   * standby qualifies when its measured lag plus the age of that measurement (at `now`, Date.now()) is within it.
   */
  boundMs?: number;
  now?: number;
  /**
   * A bound of 0 (fully replayed): only a standby measured with no lag at or after this time (Date.now())
   * qualifies; 0 = no such condition.
   */
  freshSince?: number;
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
  const bound = limits.boundMs ?? 0;
  if (bound > 0 && (n.lagMs === null || n.measuredAt === 0 || n.lagMs + Math.max(0, (limits.now ?? 0) - n.measuredAt) > bound)) return true;
  const freshSince = limits.freshSince ?? 0;
  if (freshSince > 0 && (n.measuredAt < freshSince || n.lagBytes !== 0)) return true;
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
 * proportion to their weights (weight 0 on the primary keeps reads off it). With `preferLowerDelay`, only the
 * qualifying standbys with the least lag (in bytes) are candidates, weights breaking ties; the primary is picked
 * by weight only when no standby qualifies. Returns null when no node with a positive weight can serve the read:
 * the caller then uses the primary. Allocates nothing.
 */
export function pickReadNode(
  nodes: readonly NodeState[],
  limits: LagLimits = NO_LAG_LIMITS,
  minLsn: bigint | null = null,
  onlyStandbys = false,
  random: () => number = Math.random,
  preferLowerDelay = false,
): NodeState | null {
  let least = -1;
  if (preferLowerDelay) {
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i] as NodeState;
      if (n.weight > 0 && n.role === 'standby' && canRead(n, limits, minLsn, onlyStandbys)) {
        const lag = n.lagBytes ?? Number.MAX_SAFE_INTEGER;
        if (least < 0 || lag < least) least = lag;
      }
    }
  }
  let total = 0;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as NodeState;
    if (candidate(n, limits, minLsn, onlyStandbys, least)) total += n.weight;
  }
  if (total <= 0) return null;
  let r = random() * total;
  let last: NodeState | null = null;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as NodeState;
    if (!candidate(n, limits, minLsn, onlyStandbys, least)) continue;
    last = n;
    r -= n.weight;
    if (r < 0) return n;
  }
  return last; // floating-point rounding
}

/** `least` >= 0: only standbys lagging exactly that much (the least-lagged ones) are candidates. */
function candidate(n: NodeState, limits: LagLimits, minLsn: bigint | null, onlyStandbys: boolean, least: number): boolean {
  if (n.weight <= 0 || !canRead(n, limits, minLsn, onlyStandbys)) return false;
  return least < 0 || (n.role === 'standby' && (n.lagBytes ?? Number.MAX_SAFE_INTEGER) === least);
}

/** Weights normalised to sum 1 (pgpool's lb_weight), over all configured nodes. */
export function normalisedWeights(nodes: readonly NodeState[]): number[] {
  const total = nodes.reduce((s, n) => s + n.weight, 0);
  return nodes.map((n) => (total > 0 ? n.weight / total : 0));
}
