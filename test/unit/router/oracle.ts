/**
 * The differential oracle: PostgreSQL's own parser (libpg-query) beside the classifier. For a SQL text, the facts
 * of each statement from both (parser-facts.ts maps the tree), the facts on which they disagree, and whether a
 * disagreement changes where the policy sends the statement. Shared by the differential tests (the classifier's
 * tables, the routing tests' statements, PostgreSQL's regression suite).
 */
import { loadModule, parseSync } from 'libpg-query';
import { classifyUncached, loadParser, type Classification, type StatementFacts } from '../../../src/router/classify/index.js';
import { factsFromTree } from '../../../src/router/classify/parser-facts.js';
import { setParserFallback } from '../../../src/router/classify/parser.js';
import { summarize } from '../../../src/router/classify/summary.js';
import { compileRouterRules, decide, type CatalogFacts, type SessionRouting } from '../../../src/router/policy.js';
import { targetOf, type Target } from '../../../src/router/reasons.js';

/** Loads PostgreSQL's parser for the oracle and for the classifier's fallback. */
export async function loadOracle(): Promise<void> {
  await Promise.all([loadModule(), loadParser()]);
}

/** The parser's facts of each statement of `sql`, or null when PostgreSQL's grammar rejects the text. */
export function parserFacts(sql: string): StatementFacts[] | null {
  if (sql === '') return []; // the server answers an empty query string with EmptyQueryResponse
  let tree: { stmts?: { stmt?: unknown; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch {
    return null;
  }
  const bytes = Buffer.from(sql, 'utf8');
  const out: StatementFacts[] = [];
  for (const raw of tree.stmts ?? []) {
    const start = raw.stmt_location ?? 0;
    const endByte = raw.stmt_len === undefined || raw.stmt_len === 0 ? bytes.length : start + raw.stmt_len;
    // the statement's text ends there (a SET value runs up to it), less a trailing semicolon
    const end = bytes.toString('utf8', 0, endByte).replace(/[\s;]+$/, '').length;
    out.push(factsFromTree(raw.stmt, sql, end));
  }
  return out;
}

/** A fact the two disagree on, with both values. */
export interface Disagreement {
  fact: string;
  classifier: unknown;
  parser: unknown;
}

const sortedSet = (xs: readonly string[]): string[] => [...new Set(xs)].sort();
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The facts the two disagree on. Facts are compared where routing or the session uses them:
 * - kind, and the query facts (locking, writable CTE, SELECT INTO) of every statement but DDL;
 * - functions of reads (the policy's function rules) and the session-level advisory locks of any statement (pins);
 * - relations of reads (node-local views, unlogged tables) and whether a temporary relation is created;
 * - transaction facts, transaction characteristics, session facts (the value only for settings that are replayed,
 *   compared as PostgreSQL reads it), session defaults, set_config calls, LISTEN, cursors, prepared statements, COPY,
 *   EXPLAIN ANALYZE, SHOW.
 */
export function compareFacts(c: StatementFacts, p: StatementFacts): Disagreement[] {
  const out: Disagreement[] = [];
  const check = (fact: string, a: unknown, b: unknown): void => {
    if (!same(a, b)) out.push({ fact, classifier: a, parser: b });
  };
  check('understood', c.understood, p.understood);
  check('kind', c.kind, p.kind);
  if (c.kind !== 'ddl' || p.kind !== 'ddl') {
    check('locking', c.locking, p.locking);
    check('writableCte', c.writableCte, p.writableCte);
    check('selectInto', c.selectInto, p.selectInto);
  }
  const reads = c.kind === 'read' || p.kind === 'read' || c.preparedKind === 'read' || p.preparedKind === 'read';
  if (reads) {
    check('functions', sortedSet(c.functions), sortedSet(p.functions));
    check('relations', sortedSet(c.relations), sortedSet(p.relations));
  } else check('sessionAdvisoryLocks', sortedSet(c.functions.filter(isAdvisoryLock)), sortedSet(p.functions.filter(isAdvisoryLock)));
  check('createsTemp', c.createsTemp, p.createsTemp);
  check('tx', c.tx, p.tx);
  check('txCharacteristics', c.txCharacteristics, p.txCharacteristics);
  if (c.session === null || p.session === null) check('session', c.session, p.session);
  else {
    const { value: cv, ...cs } = c.session;
    const { value: pv, ...ps } = p.session;
    check('session', cs, ps);
    if (!c.session.local && (c.session.op === 'set' ? !sameSettingValue(c.session.name, cv, pv) : cv !== pv)) out.push({ fact: 'session.value', classifier: cv, parser: pv });
  }
  check('defaults', c.defaults, p.defaults);
  check('setConfigCalls', c.setConfigCalls, p.setConfigCalls);
  check('listen', c.listen, p.listen);
  check('cursor', c.cursor, p.cursor);
  check('prepared', c.prepared, p.prepared);
  check('preparedKind', c.preparedKind, p.preparedKind);
  check('copy', c.copy, p.copy);
  check('explainAnalyze', c.explainAnalyze, p.explainAnalyze);
  check('show', c.show, p.show);
  return out;
}

function isAdvisoryLock(fn: string): boolean {
  return fn.replace(/^pg_catalog\./, '').includes('advisory');
}

/** The special SET forms whose values the general `SET x TO value` does not read alike (TIME ZONE LOCAL ...). */
const SET_FORMS: Readonly<Record<string, string>> = { timezone: 'SET TIME ZONE ', xmloption: 'SET XML OPTION ', role: 'SET ROLE ', session_authorization: 'SET SESSION AUTHORIZATION ' };

/** Two raw setting values are the same when PostgreSQL reads them alike (`SET x TO <value>`, or the name's own form). */
function sameSettingValue(name: string | null, a: string | null, b: string | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  const read = (prefix: string, v: string): string | null => {
    try {
      const stmt = (parseSync(prefix + v) as { stmts: { stmt: { VariableSetStmt: { kind?: string; args?: unknown } } }[] }).stmts[0]?.stmt.VariableSetStmt;
      return JSON.stringify([stmt?.kind, stmt?.args], (k, x: unknown) => (k === 'location' ? undefined : x));
    } catch {
      return null;
    }
  };
  for (const prefix of ['SET x TO ', SET_FORMS[name ?? ''] ?? 'SET x TO ']) {
    const ra = read(prefix, a);
    if (ra !== null && ra === read(prefix, b)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------
// Routing: does a disagreement change where the statement goes?

const RULES = {
  catalog: compileRouterRules({ write_functions: [], read_only_functions: [] }),
  split: compileRouterRules({ write_functions: [], read_only_functions: [], transactions: 'split' }),
  allWrite: compileRouterRules({ write_functions: ['.*'], read_only_functions: [] }),
  noneSafe: compileRouterRules({ write_functions: [], read_only_functions: ['no_function_has_this_name'] }),
};

const SESSIONS: readonly SessionRouting[] = [
  { defaultReadOnly: false, defaultIsolation: 'read committed' },
  { defaultReadOnly: true, defaultIsolation: 'read committed' },
  { defaultReadOnly: false, defaultIsolation: 'repeatable read' },
  { defaultReadOnly: false, defaultIsolation: 'serializable' },
];

const catalogOf = (volatile: (n: string) => boolean, unlogged: (n: string) => boolean): CatalogFacts => ({ isVolatile: volatile, isUnlogged: unlogged });
const NOTHING = (): boolean => false;
const EVERYTHING = (): boolean => true;

function one(f: StatementFacts): Classification {
  return { statements: [f], summary: summarize([f]) };
}

/** The state in which the two sets of facts go to different targets, or null when they never do. */
export function routingDifference(c: StatementFacts, p: StatementFacts): string | null {
  const cc = one(c);
  const pc = one(p);
  // every name either side reports, alone volatile or unlogged, besides none and all of them
  const catalogs: [string, CatalogFacts | null][] = [
    ['no catalog', null],
    ['nothing volatile or unlogged', catalogOf(NOTHING, NOTHING)],
    ['everything volatile and unlogged', catalogOf(EVERYTHING, EVERYTHING)],
  ];
  for (const fn of new Set([...c.functions, ...p.functions])) catalogs.push([`only ${fn}() volatile`, catalogOf((n) => n === fn, NOTHING)]);
  for (const rel of new Set([...c.relations, ...p.relations])) catalogs.push([`only ${rel} unlogged`, catalogOf(NOTHING, (n) => n === rel)]);
  for (const [rulesName, rules] of Object.entries(RULES)) {
    for (const session of SESSIONS) {
      for (const [catalogName, catalog] of catalogs) {
        const a: Target = targetOf(decide(cc, 0, rules, session, catalog));
        const b: Target = targetOf(decide(pc, 0, rules, session, catalog));
        if (a !== b) return `${rulesName} rules, ${JSON.stringify(session)}, ${catalogName}: classifier -> ${a}, parser -> ${b}`;
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// One text through both

export interface StatementResult {
  index: number;
  /** The classifier's own facts (or, when it did not understand the statement, its fallback's). */
  classifier: StatementFacts;
  parser: StatementFacts;
  /** The classifier did not understand the statement and routes it on the parser fallback's facts. */
  fallback: boolean;
  disagreements: Disagreement[];
  /** The state in which the two go to different nodes, or null. */
  routing: string | null;
}

export interface TextResult {
  sql: string;
  /** PostgreSQL's grammar rejects the text: nothing to compare (it fails with the same error wherever it runs). */
  unparsed: boolean;
  /** Whether the classifier understood every statement (of interest when the parser rejects the text). */
  classifierUnderstood: boolean;
  /** Statement counts differ (then statements are not compared). */
  countMismatch: [classifier: number, parser: number] | null;
  statements: StatementResult[];
}

/** Classifies `sql` with the classifier alone (the parser fallback off). */
function classifierAlone(sql: string): readonly StatementFacts[] {
  setParserFallback(false);
  try {
    return classifyUncached(sql).statements;
  } finally {
    setParserFallback(true);
  }
}

export function compareText(sql: string): TextResult {
  const parsed = parserFacts(sql);
  const alone = classifierAlone(sql);
  const result: TextResult = { sql, unparsed: parsed === null, classifierUnderstood: alone.every((f) => f.understood), countMismatch: null, statements: [] };
  if (parsed === null) return result;
  if (alone.length !== parsed.length) {
    result.countMismatch = [alone.length, parsed.length];
    return result;
  }
  let withFallback: readonly StatementFacts[] | null = null;
  alone.forEach((own, index) => {
    let c = own;
    let fallback = false;
    if (!own.understood) {
      withFallback ??= classifyUncached(sql).statements;
      c = withFallback[index] as StatementFacts;
      fallback = c.parsed;
    }
    // the parser's facts carry no hint: hints are comments, read by router/hints.ts for both
    const p = c.hint === null ? (parsed[index] as StatementFacts) : { ...(parsed[index] as StatementFacts), hint: c.hint };
    const disagreements = compareFacts(c, p);
    const routing = disagreements.length === 0 ? null : routingDifference(c, p);
    result.statements.push({ index, classifier: c, parser: p, fallback, disagreements, routing });
  });
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Tallies for a corpus

/** A disagreement the tests accept: the fact, which disagreements, and why they cannot change routing. */
export interface Documented {
  fact: string;
  when: (sql: string, d: Disagreement) => boolean;
  why: string;
}

export interface Tally {
  texts: number;
  statements: number;
  agree: number;
  /** Statements the classifier did not understand, routed on the parser fallback's facts. */
  fallback: number;
  /** Texts PostgreSQL's grammar rejects (the classifier understood them all / not). */
  rejectedByParser: number;
  rejectedUnderstood: number;
  /** Disagreements by fact. */
  byFact: Record<string, number>;
  /** Accepted disagreements, by reason. */
  documented: Record<string, number>;
  /** What fails the test: undocumented disagreements, statement-count mismatches, routing differences. */
  failures: string[];
}

/**
 * Disagreements that cannot change where a statement goes, by fact, with the reason. Each is also run through the
 * policy (oracle.ts routingDifference): documented or not, one that changes the target fails.
 */
export const DOCUMENTED: readonly Documented[] = [
  {
    fact: 'parses',
    // SET default_transaction_read_only = 'o' parses; these are the texts PostgreSQL's grammar itself rejects
    when: () => true,
    why: 'PostgreSQL rejects the text with a syntax error on whichever node it is sent to, so no node runs it',
  },
];

/** One line per source for the test log: the agreement figures. */
export function summaryLine(name: string, t: Tally): string {
  const facts = Object.entries(t.byFact).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  return `${name}: ${t.texts} texts, ${t.statements} statements compared, ${t.agree} agree; disagreements by fact: ${facts}; ` +
    `routed on the parser fallback: ${t.fallback}; rejected by PostgreSQL: ${t.rejectedByParser} (${t.rejectedUnderstood} of them understood by the classifier)`;
}

export function tally(texts: Iterable<string>, documented: readonly Documented[], label: (sql: string) => string = (sql) => JSON.stringify(sql)): Tally {
  const t: Tally = { texts: 0, statements: 0, agree: 0, fallback: 0, rejectedByParser: 0, rejectedUnderstood: 0, byFact: {}, documented: {}, failures: [] };
  const accept = (fact: string, sql: string, d: Disagreement): Documented | undefined => documented.find((x) => x.fact === fact && x.when(sql, d));
  for (const sql of texts) {
    t.texts++;
    const r = compareText(sql);
    if (r.unparsed) {
      t.rejectedByParser++;
      if (!r.classifierUnderstood) continue;
      t.rejectedUnderstood++;
      const d: Disagreement = { fact: 'parses', classifier: true, parser: false };
      const doc = accept('parses', sql, d);
      if (doc === undefined) t.failures.push(`${label(sql)}: PostgreSQL rejects it, the classifier understands it`);
      else t.documented[doc.why] = (t.documented[doc.why] ?? 0) + 1;
      continue;
    }
    if (r.countMismatch !== null) {
      t.failures.push(`${label(sql)}: ${r.countMismatch[0]} statements for the classifier, ${r.countMismatch[1]} for PostgreSQL`);
      continue;
    }
    for (const s of r.statements) {
      t.statements++;
      if (s.fallback) t.fallback++;
      if (s.disagreements.length === 0) {
        t.agree++;
        continue;
      }
      for (const d of s.disagreements) {
        t.byFact[d.fact] = (t.byFact[d.fact] ?? 0) + 1;
        const doc = accept(d.fact, sql, d);
        if (doc === undefined) t.failures.push(`${label(sql)} #${s.index}: ${d.fact}: classifier ${JSON.stringify(d.classifier)}, PostgreSQL ${JSON.stringify(d.parser)}`);
        else t.documented[doc.why] = (t.documented[doc.why] ?? 0) + 1;
      }
      if (s.routing !== null) t.failures.push(`${label(sql)} #${s.index}: goes elsewhere: ${s.routing}`);
    }
  }
  return t;
}
