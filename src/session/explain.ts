/**
 * Where the last unit went and why, in words: the text of `SET pgproxy.explain = on` notices and of
 * `SHOW pgproxy.last_route`. Built only when asked for: the per-unit path records a few fields, no text.
 */
import type { NodeState } from '../nodes/topology.js';
import { formatLsn } from '../nodes/topology.js';
import type { Classification } from '../router/classify/index.js';
import { reasonDetail, type CatalogFacts, type RouterRules, type SessionRouting } from '../router/policy.js';
import { Reason, reasonLabel } from '../router/reasons.js';

/** The last routing decision of a session (one object per session, overwritten per unit). */
export interface RouteRecord {
  reason: Reason;
  node: NodeState | null;
  classification: Classification | null;
  hints: number;
  /** Milliseconds the read waited for a standby to catch up (-1: it did not wait). */
  waitedMs: number;
  /** The position it waited for (null: a staleness bound). */
  waitedFor: bigint | null;
  /** The read went to the session's own load-balance node (load_balance: session). */
  sessionNode: boolean;
  /** The catalog facts the decision was made with (to describe it the same way). */
  catalog: CatalogFacts | null;
}

export function newRouteRecord(): RouteRecord {
  return { reason: Reason.Read, node: null, classification: null, hints: 0, waitedMs: -1, waitedFor: null, sessionNode: false, catalog: null };
}

/** Reasons whose text names the function or relation behind them (reasonDetail() finds it again). */
const NAMES_SUBJECT: ReadonlySet<Reason> = new Set([
  Reason.NeverOnStandbyFunction,
  Reason.WriteFunction,
  Reason.UnlistedFunction,
  Reason.VolatileFunction,
  Reason.NodeLocalRelation,
  Reason.UnloggedRelation,
]);

/** The decision in words, e.g. "read, load-balanced by weight" or "volatile function now_audit()". */
export function routeText(r: RouteRecord, rules: RouterRules, session: SessionRouting, catalog: CatalogFacts | null): string {
  let text: string;
  switch (r.reason) {
    case Reason.Read:
      text = r.sessionNode ? "read, the session's load-balance node" : 'read, load-balanced by weight';
      break;
    case Reason.Any:
      text = 'any node (reads and writes no data)';
      break;
    case Reason.InTransaction:
      text = 'in transaction';
      break;
    case Reason.ReadYourWrites:
      text = 'read-your-writes: no standby caught up, primary';
      break;
    case Reason.Lag:
      text = 'every standby lags beyond the limits, primary';
      break;
    case Reason.NoStandby:
      text = 'no standby can take reads, primary';
      break;
    case Reason.Pinned:
      text = 'the session is pinned to the primary (an object of its backend session lives there)';
      break;
    case Reason.Redirect:
      text = 'redirect rule or pgproxy.route';
      break;
    case Reason.FunctionCall:
      text = 'function call (fastpath)';
      break;
    case Reason.ReadWriteTransaction:
      text = 'in read-write transaction';
      break;
    default:
      // The policy's own reasons name their function or relation; the session's (a transaction's access mode) do not.
      text = r.classification !== null && NAMES_SUBJECT.has(r.reason) ? reasonDetail(r.classification, r.hints, rules, session, catalog) : reasonLabel(r.reason).replace(/_/g, ' ');
  }
  if (r.waitedMs >= 0 && r.node !== null) {
    const what = r.waitedFor !== null ? `to replay ${formatLsn(r.waitedFor)}` : 'to be recent enough';
    text = `waited ${Math.round(r.waitedMs)} ms for ${r.node.role === 'standby' ? r.node.name : 'a standby'} ${what}; ${text}`;
  }
  return text;
}

/** The text of an explain notice for the unit just routed. */
export function explainText(r: RouteRecord, rules: RouterRules, session: SessionRouting, catalog: CatalogFacts | null): string {
  const node = r.node;
  const where = node === null ? 'pgproxy' : `${node.name} (${node.role})`;
  return `pgproxy: ${where}: ${routeText(r, rules, session, catalog)}`;
}
