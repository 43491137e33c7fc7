/**
 * Where a unit of SQL must run, from the classifier's facts plus the few pieces of session state that change
 * the answer (the session's transaction defaults) and the catalog's facts. Open transactions staying on their
 * node, pinning, redirects, lag and read-your-writes are the session's business, not this module's.
 *
 * decide() is the per-unit entry point: synchronous, no allocation, a Reason code (reasons.ts). The text of a
 * reason, with the function or relation behind it, is built only on demand by reasonDetail().
 */
import type { Classification, Isolation, SessionDefaults, StatementFacts } from './classify/index.js';
import { isNeverOnStandby } from './functions.js';
import { Hint } from './hints.js';
import type { CatalogFacts, SessionRouting } from './policy-inputs.js';
import { Reason, reasonLabel } from './reasons.js';
import { isNodeLocalRelation } from './relations.js';
import type { RouterRules } from './rules.js';

export type { CatalogFacts, SessionRouting } from './policy-inputs.js';
export { compileRouterRules, redirectFor, type CompiledRedirect, type RouterRules, type RoutingSettings } from './rules.js';

function sessionIsolation(s: SessionRouting): Isolation {
  return s.defaultIsolation;
}

/** Records in `session` what a unit's settings did to its transaction defaults (Classification.summary.defaults). */
export function applyDefaults(session: SessionRouting, d: SessionDefaults | null): void {
  if (d === null) return;
  if (d.readOnly !== undefined) session.defaultReadOnly = d.readOnly;
  if (d.isolation !== undefined) {
    session.defaultIsolation = d.isolation;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The decision

/** The function or relation behind the last decision's reason (a string of the facts: no allocation). */
let subject: string | null = null;

/**
 * Why the unit classified as `c` runs where it does: Read (a standby may serve it), Any (any node), or the
 * reason it needs the primary. `hints` is leadingHints() of the unit's text. The first statement with a
 * reason decides. Allocates nothing.
 */
export function decide(c: Classification, hints: number, rules: RouterRules, session: SessionRouting, catalog: CatalogFacts | null): Reason {
  subject = null;
  if ((hints & Hint.Primary) !== 0) return Reason.Hint;
  const statements = c.statements;
  for (let i = 0; i < statements.length; i++) {
    const r = statementReason(statements[i] as StatementFacts, rules, session, catalog);
    if (r !== Reason.Read) return r;
  }
  return c.summary.reads === 0 && !c.summary.begins ? Reason.Any : Reason.Read;
}

/** The reason a statement needs the primary, or Read when it does not. */
function statementReason(f: StatementFacts, rules: RouterRules, session: SessionRouting, catalog: CatalogFacts | null): Reason {
  if (f.hint === 'primary') return Reason.Hint;
  if (!f.understood) return Reason.NotUnderstood;
  switch (f.kind) {
    case 'write':
      return Reason.Write;
    case 'ddl':
      return Reason.Ddl;
    case 'transaction': {
      const tx = f.tx;
      if (tx === null || tx.op !== 'begin') return Reason.TransactionControl;
      const isolation = tx.isolation ?? sessionIsolation(session);
      if (isolation === 'serializable') return Reason.Serializable;
      const readOnly = tx.readOnly || (session.defaultReadOnly && !tx.readWrite);
      if (!readOnly) {
        if (!rules.splitTransactions) return Reason.ReadWriteTransaction;
        // Split mode: a read-write transaction starts where the session reads and moves at its first write,
        // which a repeatable-read snapshot cannot survive.
        if (isolation === 'repeatable read') return Reason.RepeatableRead;
      }
      return Reason.Read;
    }
    case 'session': {
      // Settings run where the session is and are replayed elsewhere; only asking for a writable or
      // serializable transaction needs the primary.
      const m = f.txCharacteristics;
      if (m === null) return Reason.Read;
      if (m.readWrite) return Reason.ReadWriteCharacteristics;
      if (m.serializable) return Reason.Serializable;
      return Reason.Read;
    }
    case 'utility':
      return Reason.Utility;
    case 'unknown':
      return Reason.NotUnderstood;
    case 'empty':
      return Reason.Read;
    case 'read':
      break;
  }
  if (f.locking) return Reason.LockingRead;
  if (f.writableCte) return Reason.WritableCte;
  if (f.selectInto) return Reason.SelectInto;
  if (sessionIsolation(session) === 'serializable') return Reason.Serializable;
  const fns = rules.functions;
  const functions = f.functions;
  for (let i = 0; i < functions.length; i++) {
    const fn = functions[i] as string;
    subject = fn;
    if (isNeverOnStandby(fn)) return Reason.NeverOnStandbyFunction;
    if (fns.isWrite(fn)) return Reason.WriteFunction;
    if (rules.onlyListedAreSafe && !fns.isReadOnly(fn)) return Reason.UnlistedFunction;
    if (rules.useVolatility && catalog !== null && catalog.isVolatile(fn)) return Reason.VolatileFunction;
  }
  const relations = f.relations;
  for (let i = 0; i < relations.length; i++) {
    const rel = relations[i] as string;
    subject = rel;
    if (isNodeLocalRelation(rel)) return Reason.NodeLocalRelation;
    if (catalog !== null && catalog.isUnlogged(rel)) return Reason.UnloggedRelation;
  }
  subject = null;
  return Reason.Read;
}

interface DecideMemo {
  rules: RouterRules;
  catalog: CatalogFacts | null;
  readOnly: boolean;
  isolation: Isolation;
  hints: number;
  reason: Reason;
}

/** The last decision per classification (classifications are shared by every text of the same shape). */
const memos = new WeakMap<Classification, DecideMemo>();

/**
 * decide(), remembered per classification for the inputs it was made with: the same statement shape in the same
 * session state, under the same rules and catalog snapshot, gets the same reason without walking its facts again.
 */
export function decideCached(c: Classification, hints: number, rules: RouterRules, session: SessionRouting, catalog: CatalogFacts | null): Reason {
  const m = memos.get(c);
  if (m !== undefined && m.rules === rules && m.catalog === catalog && m.readOnly === session.defaultReadOnly && m.isolation === session.defaultIsolation && m.hints === hints) return m.reason;
  const reason = decide(c, hints, rules, session, catalog);
  if (m === undefined) memos.set(c, { rules, catalog, readOnly: session.defaultReadOnly, isolation: session.defaultIsolation, hints, reason });
  else {
    m.rules = rules;
    m.catalog = catalog;
    m.readOnly = session.defaultReadOnly;
    m.isolation = session.defaultIsolation;
    m.hints = hints;
    m.reason = reason;
  }
  return reason;
}

/**
 * The reason for logs, with the function or relation behind it: 'volatile function now_audit()',
 * 'node-local view pg_stat_activity', 'locking read'. Decides again (same arguments as decide()).
 */
export function reasonDetail(c: Classification, hints: number, rules: RouterRules, session: SessionRouting, catalog: CatalogFacts | null): string {
  const r = decide(c, hints, rules, session, catalog);
  const name = subject;
  switch (r) {
    case Reason.NeverOnStandbyFunction:
      return `function ${name}() cannot run on a standby`;
    case Reason.WriteFunction:
      return `write function ${name}()`;
    case Reason.UnlistedFunction:
      return `function ${name}() is not in read_only_functions`;
    case Reason.VolatileFunction:
      return `volatile function ${name}()`;
    case Reason.NodeLocalRelation:
      return `node-local view ${name}`;
    case Reason.UnloggedRelation:
      return `unlogged table ${name}`;
    default:
      return reasonLabel(r).replace(/_/g, ' ');
  }
}
