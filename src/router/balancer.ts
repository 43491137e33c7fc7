/** Weighted choice of the node that serves a session's (or a statement's) reads. */
import type { NodeState } from '../pool/topology.js';

/**
 * Picks a node among those that are up, by weight. Standbys and the primary both take reads in proportion to
 * their weights (weight 0 on the primary keeps reads off it); when no node with a positive weight is up, the
 * primary serves reads. Returns null only when no node is usable at all.
 */
export function pickReadNode(nodes: readonly NodeState[], random: () => number = Math.random): NodeState | null {
  let total = 0;
  for (const n of nodes) if (readable(n)) total += n.weight;
  if (total > 0) {
    let r = random() * total;
    for (const n of nodes) {
      if (!readable(n) || n.weight <= 0) continue;
      r -= n.weight;
      if (r < 0) return n;
    }
    // Floating-point rounding: fall back to the last eligible node.
    for (let i = nodes.length - 1; i >= 0; i--) if (readable(nodes[i]!) && nodes[i]!.weight > 0) return nodes[i]!;
  }
  for (const n of nodes) if (n.up && n.role === 'primary') return n;
  for (const n of nodes) if (readable(n)) return n;
  return null;
}

/** Up, and known to be a primary or a standby. */
export function readable(n: NodeState): boolean {
  return n.up && n.role !== 'unknown';
}

/** Weights normalised to sum 1 (pgpool's lb_weight), over all configured nodes. */
export function normalisedWeights(nodes: readonly NodeState[]): number[] {
  const total = nodes.reduce((s, n) => s + n.weight, 0);
  return nodes.map((n) => (total > 0 ? n.weight / total : 0));
}
