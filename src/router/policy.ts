/**
 * Where a unit of SQL must run, from the classifier's facts alone: the primary, or any node that may serve
 * reads. Session and transaction state (an open transaction stays on its node) are the session's business.
 */
import type { Classification, StatementFacts } from './classify.js';
import { compileFunctionRules, isNeverOnStandby, type FunctionRules } from './functions.js';

export type RouteTarget = 'read' | 'primary' | 'any';

export interface Route {
  target: RouteTarget;
  /** Why the primary (for logs and metrics); '' for reads. */
  reason: string;
  /** Read statements in the unit (pgpool's select_cnt counts these on the node that serves them). */
  reads: number;
}

export interface RouterRules {
  readonly functions: FunctionRules;
}

export function compileRouterRules(routing: { write_functions: readonly string[]; read_only_functions: readonly string[] }): RouterRules {
  return { functions: compileFunctionRules({ writeFunctions: [...routing.write_functions], readOnlyFunctions: [...routing.read_only_functions] }) };
}

/** Node-local statistics and activity: each node has its own, and the primary's are the ones that matter. */
const NODE_LOCAL_PREFIXES = ['pg_stat_', 'pg_statio_'];
const NODE_LOCAL_RELATIONS = new Set(['pg_locks', 'pg_replication_slots', 'pg_prepared_xacts', 'pg_stat_activity', 'pg_stat_replication']);

function isNodeLocalRelation(name: string): boolean {
  const bare = name.startsWith('pg_catalog.') ? name.slice(11) : name;
  if (NODE_LOCAL_RELATIONS.has(bare)) return true;
  for (const p of NODE_LOCAL_PREFIXES) if (bare.startsWith(p)) return true;
  return false;
}

/** The reason a statement must run on the primary, or null when a standby can serve it. */
export function primaryReason(f: StatementFacts, rules: RouterRules): string | null {
  if (f.hint === 'primary') return 'hint';
  if (!f.understood) return 'not understood';
  switch (f.kind) {
    case 'write':
      return f.explainAnalyze ? 'explain analyze of a write' : 'write';
    case 'ddl':
      return 'ddl';
    case 'transaction':
      return 'transaction';
    case 'session':
      // Settings run where the session is and are replayed elsewhere; only asking for a writable or
      // serializable transaction needs the primary.
      return f.txCharacteristics !== null && (f.txCharacteristics.readWrite || f.txCharacteristics.serializable) ? 'read-write or serializable transaction' : null;
    case 'utility':
      return 'utility';
    case 'unknown':
      return 'not understood';
    case 'empty':
      return null;
    case 'read':
      break;
  }
  if (f.locking) return 'locking read';
  if (f.writableCte) return 'writable cte';
  if (f.selectInto) return 'select into';
  for (const fn of f.functions) {
    if (isNeverOnStandby(fn)) return `function ${fn} cannot run on a standby`;
    if (rules.functions.isWrite(fn)) return `write function ${fn}`;
  }
  for (const rel of f.relations) if (isNodeLocalRelation(rel)) return `node-local view ${rel}`;
  return null;
}

export function routeClassification(c: Classification, rules: RouterRules): Route {
  let reads = 0;
  let reason: string | null = null;
  let statements = 0;
  for (const f of c.statements) {
    if (f.kind === 'empty') continue;
    statements++;
    const r = primaryReason(f, rules);
    if (r !== null) reason ??= r;
    if (f.kind === 'read') reads++;
  }
  if (reason !== null) return { target: 'primary', reason, reads };
  return { target: reads === 0 || statements === 0 ? 'any' : 'read', reason: '', reads };
}
