/**
 * Where a unit of SQL must run, from the classifier's facts plus the few pieces of session state that change
 * the answer (session-wide read-only or serializable defaults, objects that live in one backend session).
 * Open transactions staying on their node is the session's business, not this module's.
 */
import type { Classification, StatementFacts } from './classify.js';
import { compileFunctionRules, isNeverOnStandby, type FunctionRules } from './functions.js';

export type RouteTarget = 'read' | 'primary' | 'any';

export interface Route {
  target: RouteTarget;
  /** Why the primary (for logs and metrics); '' otherwise. */
  reason: string;
  /** Read statements in the unit (pgpool's select_cnt counts these on the node that serves them). */
  reads: number;
  /** The unit may change data (so read-your-writes must learn the commit's WAL position afterwards). */
  writes: boolean;
  /** The unit opens a transaction. */
  begins: boolean;
  /** The unit creates something that lives in one backend session (temp table, LISTEN, advisory lock, WITH HOLD cursor, SQL PREPARE). */
  pins: string | null;
  /** Statements the classifier could not understand (sent to the primary). */
  notUnderstood: number;
  /** The unit changes the schema (the catalog facts cached for its database are stale afterwards). */
  ddl: boolean;
  /** The unit rolls back (ROLLBACK, or ROLLBACK TO a savepoint). */
  rollsBack: boolean;
}

export interface CompiledRedirect {
  readonly applicationName: RegExp | null;
  readonly database: RegExp | null;
  readonly user: RegExp | null;
  readonly to: 'primary' | 'standby' | number;
}

export interface RouterRules {
  readonly functions: FunctionRules;
  readonly redirect: readonly CompiledRedirect[];
  /** Both function lists are empty: volatility from the catalog decides. */
  readonly useVolatility: boolean;
  /** read_only_functions is set (and write_functions is not): only listed functions may run on a standby. */
  readonly onlyListedAreSafe: boolean;
  /** routing.transactions = split: a read-write transaction starts on the load-balance node (pgpool). */
  readonly splitTransactions: boolean;
}

/** Session state that changes routing. */
export interface SessionRouting {
  /** default_transaction_read_only is on (or SET SESSION CHARACTERISTICS ... READ ONLY). */
  defaultReadOnly: boolean;
  /** default_transaction_isolation is serializable: standbys cannot run it. */
  defaultSerializable: boolean;
}

/** Catalog facts of the session's database, when known. */
export interface CatalogFacts {
  isVolatile(name: string): boolean;
  isUnlogged(relation: string): boolean;
}

export interface RoutingSettings {
  write_functions: readonly string[];
  read_only_functions: readonly string[];
  redirect?: readonly { application_name?: string; database?: string; user?: string; to: 'primary' | 'standby' | number }[];
  transactions?: 'primary' | 'split';
}

const anchored = (source: string | undefined): RegExp | null => (source === undefined ? null : new RegExp(`^(?:${source})$`));

export function compileRouterRules(routing: RoutingSettings): RouterRules {
  return {
    redirect: (routing.redirect ?? []).map((r) => ({ applicationName: anchored(r.application_name), database: anchored(r.database), user: anchored(r.user), to: r.to })),
    functions: compileFunctionRules({ writeFunctions: [...routing.write_functions], readOnlyFunctions: [...routing.read_only_functions] }),
    useVolatility: routing.write_functions.length === 0 && routing.read_only_functions.length === 0,
    onlyListedAreSafe: routing.read_only_functions.length > 0 && routing.write_functions.length === 0,
    splitTransactions: routing.transactions === 'split',
  };
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

/** Session-level advisory locks outlive the statement and live in one backend session. */
function isSessionAdvisoryLock(fn: string): boolean {
  const bare = fn.startsWith('pg_catalog.') ? fn.slice(11) : fn;
  return (bare.startsWith('pg_advisory_lock') || bare.startsWith('pg_try_advisory_lock')) && !bare.includes('xact');
}

const NO_SESSION: SessionRouting = { defaultReadOnly: false, defaultSerializable: false };

/** The reason a statement must run on the primary, or null when a standby can serve it. */
export function primaryReason(f: StatementFacts, rules: RouterRules, session: SessionRouting = NO_SESSION, catalog: CatalogFacts | null = null): string | null {
  if (f.hint === 'primary') return 'hint';
  if (!f.understood) return 'not understood';
  switch (f.kind) {
    case 'write':
      return f.explainAnalyze ? 'explain analyze of a write' : 'write';
    case 'ddl':
      return 'ddl';
    case 'transaction': {
      const tx = f.tx;
      if (tx === null || tx.op !== 'begin') return 'transaction';
      if (tx.serializable || session.defaultSerializable) return 'serializable transaction';
      const readOnly = tx.readOnly || (session.defaultReadOnly && !tx.readWrite);
      // Split mode: a read-write transaction starts where the session reads, and moves at its first write.
      if (!readOnly && !rules.splitTransactions) return 'read-write transaction';
      return null;
    }
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
  if (session.defaultSerializable) return 'serializable session';
  const fns = rules.functions;
  for (const fn of f.functions) {
    if (isNeverOnStandby(fn)) return `function ${fn} cannot run on a standby`;
    if (fns.isWrite(fn)) return `write function ${fn}`;
    if (rules.onlyListedAreSafe && !fns.isReadOnly(fn)) return `function ${fn} is not in read_only_functions`;
    if (rules.useVolatility && catalog !== null && catalog.isVolatile(fn)) return `volatile function ${fn}`;
  }
  for (const rel of f.relations) {
    if (isNodeLocalRelation(rel)) return `node-local view ${rel}`;
    if (catalog !== null && catalog.isUnlogged(rel)) return `unlogged table ${rel}`;
  }
  return null;
}

/** What about this statement ties the session to one backend session, if anything. */
export function pinReason(f: StatementFacts): string | null {
  if (f.createsTemp) return 'temporary table';
  if (f.listen === 'listen') return 'LISTEN';
  if (f.cursor !== null && f.cursor.op === 'declare' && f.cursor.withHold) return 'WITH HOLD cursor';
  if (f.prepared !== null && f.prepared.op === 'prepare') return 'SQL PREPARE';
  for (const fn of f.functions) if (isSessionAdvisoryLock(fn)) return 'advisory lock';
  return null;
}

export function routeClassification(c: Classification, rules: RouterRules, session: SessionRouting = NO_SESSION, catalog: CatalogFacts | null = null): Route {
  let reads = 0;
  let reason: string | null = null;
  let writes = false;
  let begins = false;
  let pins: string | null = null;
  let notUnderstood = 0;
  let ddl = false;
  let rollsBack = false;
  for (const f of c.statements) {
    if (f.kind === 'empty') continue;
    const r = primaryReason(f, rules, session, catalog);
    if (r !== null) reason ??= r;
    if (f.kind === 'read') reads++;
    else if (f.kind === 'write' || f.kind === 'ddl' || f.kind === 'utility' || f.kind === 'unknown') writes = true;
    if (f.tx !== null) {
      if (f.tx.op === 'begin') begins = true;
      else if (f.tx.op === 'rollback' || f.tx.op === 'rollback_to') rollsBack = true;
      else if (f.tx.op === 'commit' || f.tx.op === 'commit_prepared') writes = true;
    }
    if (!f.understood) notUnderstood++;
    if (f.kind === 'ddl' || f.kind === 'unknown') ddl = true;
    pins ??= pinReason(f);
  }
  const target: RouteTarget = reason !== null ? 'primary' : reads === 0 && !begins ? 'any' : 'read';
  return { target, reason: reason ?? '', reads, writes, begins, pins, notUnderstood, ddl, rollsBack };
}

/** The first redirect rule matching a session decides where its reads go (pgpool's *_redirect_preference_list). */
export function redirectFor(rules: RouterRules, session: { applicationName: string; database: string; user: string }): 'primary' | 'standby' | number | null {
  for (const r of rules.redirect) {
    if (r.applicationName !== null && !r.applicationName.test(session.applicationName)) continue;
    if (r.database !== null && !r.database.test(session.database)) continue;
    if (r.user !== null && !r.user.test(session.user)) continue;
    return r.to;
  }
  return null;
}
