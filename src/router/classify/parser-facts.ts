/**
 * Statement facts from PostgreSQL's own parse tree (libpg-query's JSON form of a RawStmt): the StatementFacts the
 * classifier derives from tokens, derived from the grammar instead. Two users: the fallback for a statement the
 * classifier does not understand (parser.ts), and the differential test that holds the classifier to the grammar.
 * Off the hot path: a tree costs tens of microseconds to get.
 *
 * Same conventions as facts.ts. Where the tree says more than the tokens can, the tree is followed:
 * - functions: every FuncCall, schema-qualified as written; calls written as SQL syntax (EXTRACT, SUBSTRING ...
 *   FROM, TRIM, OVERLAY, POSITION, AT TIME ZONE ..., funcformat COERCE_SQL_SYNTAX) are left out, as the classifier
 *   leaves out their keywords: they are built-ins that are never volatile and never refused on a standby;
 * - relations: every RangeVar but a reference to a CTE in scope;
 * - locking / writableCte / selectInto: a locking clause, a data-modifying CTE, an INTO clause anywhere in the
 *   statement's queries (false for DDL, as for the classifier).
 * Facts read from a literal's value or from the source text (SET values, set_config arguments, two-phase gids,
 * EXPLAIN option values) set `treeTextSensitive`: such facts must not be shared by every text of a shape.
 */
import { EMPTY, addUnique, asciiLower, freezeFacts, newFacts, parseBool, type Facts } from './cursor.js';
import { constText, firstLocation, isAscii, isObj, list, nodeOf, obj, str, utf8Index, type Obj } from './parser-tree.js';
import type { Isolation, SetConfigCall, StatementFacts, TxCharacteristics, TxFacts, TxOp } from './facts.js';
import { SERVER_DEFAULTS, defaultsFromSetting, parseIsolation } from './session.js';

/** After the last factsFromTree(): whether a fact came from a literal's value or from source text. */
export let treeTextSensitive = false;

/** Source text of the statement being mapped, and its end (char indexes), for raw SET values. */
let source = '';
let sourceEnd = 0;
/** Maps a byte offset of the parser's UTF-8 input to a string index; null when the text is ASCII. */
let byteToIndex: Int32Array | null = null;
/** CTE names in scope (a reference to one is not a relation). */
const cteScope: string[] = [];

/**
 * The facts of one parsed statement. `stmt` is a RawStmt's `stmt` node; `sql` the text given to the parser;
 * `end` the string index where the statement's text ends (SET values run up to it). Never throws on an
 * unexpected tree: what it does not know is DDL.
 */
export function factsFromTree(stmt: unknown, sql: string, end: number = sql.length): StatementFacts {
  treeTextSensitive = false;
  source = sql;
  sourceEnd = end;
  byteToIndex = isAscii(sql) ? null : utf8Index(sql);
  cteScope.length = 0;
  const f = newFacts();
  try {
    statement(f, stmt);
  } finally {
    source = '';
    byteToIndex = null;
  }
  f.parsed = true;
  return freezeFacts(f);
}

// ---------------------------------------------------------------------------------------------------------
// Statements

const DML: Readonly<Record<string, string>> = { InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE' };

function statement(f: Facts, node: unknown): void {
  const n = nodeOf(node);
  if (n === null) {
    f.kind = 'unknown';
    f.understood = false;
    return;
  }
  const [type, s] = n;
  if (type === 'SelectStmt') {
    f.command = 'SELECT';
    walk(f, node);
    f.kind = f.selectInto || f.writableCte ? 'write' : 'read';
    return;
  }
  const dml = DML[type];
  if (dml !== undefined) {
    f.command = dml;
    f.kind = 'write';
    walk(f, node);
    f.selectInto = false; // INSERT ... SELECT ... INTO: PostgreSQL refuses it, and it is no SELECT INTO statement
    return;
  }
  switch (type) {
    case 'TruncateStmt':
      f.command = 'TRUNCATE';
      f.kind = 'write';
      walk(f, s.relations);
      return;
    case 'VariableShowStmt':
      f.command = 'SHOW';
      f.kind = 'read';
      f.show = asciiLower(str(s.name) ?? '');
      return;
    case 'TransactionStmt':
      transaction(f, s);
      return;
    case 'VariableSetStmt':
      variableSet(f, s);
      return;
    case 'ConstraintsSetStmt':
      f.command = 'SET';
      f.kind = 'session';
      f.session = Object.freeze({ op: 'set' as const, local: true, name: 'constraints', value: null });
      return;
    case 'DiscardStmt': {
      f.command = 'DISCARD';
      f.kind = 'session';
      const what = DISCARD[str(s.target) ?? ''] ?? null;
      f.session = Object.freeze({ op: 'discard' as const, local: false, name: null, value: what });
      if (what === 'all') f.defaults = SERVER_DEFAULTS;
      return;
    }
    case 'ExplainStmt':
      explain(f, s);
      return;
    case 'CopyStmt':
      copy(f, s);
      return;
    case 'PrepareStmt': {
      statement(f, s.query);
      f.defaults = null; // runs at EXECUTE, not now
      f.preparedKind = f.kind;
      f.kind = 'utility';
      f.command = 'PREPARE';
      f.prepared = Object.freeze({ op: 'prepare' as const, name: str(s.name) });
      return;
    }
    case 'ExecuteStmt':
      f.kind = 'utility';
      f.command = 'EXECUTE';
      f.prepared = Object.freeze({ op: 'execute' as const, name: str(s.name) });
      walk(f, s.params);
      return;
    case 'DeallocateStmt':
      f.kind = 'utility';
      f.command = 'DEALLOCATE';
      f.prepared = Object.freeze({ op: 'deallocate' as const, name: s.isall === true ? null : str(s.name) });
      return;
    case 'DeclareCursorStmt': {
      statement(f, s.query);
      f.defaults = null; // runs at FETCH, not now
      f.kind = 'utility';
      f.command = 'DECLARE';
      const withHold = ((typeof s.options === 'number' ? s.options : 0) & CURSOR_OPT_HOLD) !== 0;
      f.cursor = Object.freeze({ op: 'declare' as const, name: str(s.portalname), withHold });
      return;
    }
    case 'FetchStmt': {
      const op = s.ismove === true ? ('move' as const) : ('fetch' as const);
      f.kind = 'utility';
      f.command = op.toUpperCase();
      f.cursor = Object.freeze({ op, name: str(s.portalname), withHold: false });
      return;
    }
    case 'ClosePortalStmt':
      f.kind = 'utility';
      f.command = 'CLOSE';
      f.cursor = Object.freeze({ op: 'close' as const, name: str(s.portalname), withHold: false });
      return;
    case 'ListenStmt':
    case 'UnlistenStmt':
    case 'NotifyStmt': {
      const op = type === 'ListenStmt' ? ('listen' as const) : type === 'UnlistenStmt' ? ('unlisten' as const) : ('notify' as const);
      f.kind = 'utility';
      f.command = op.toUpperCase();
      f.listen = op;
      return;
    }
    case 'CallStmt': {
      f.kind = 'utility';
      f.command = 'CALL';
      const call = obj(s.funccall);
      if (call !== null) funcCall(f, call);
      return;
    }
    case 'DoStmt':
    case 'LoadStmt':
      f.kind = 'utility';
      f.command = type === 'DoStmt' ? 'DO' : 'LOAD';
      return;
    case 'LockStmt':
      f.kind = 'utility';
      f.command = 'LOCK';
      walk(f, s.relations);
      return;
    default:
      ddl(f, type, s, node);
  }
}

/** DeclareCursorStmt.options: WITH HOLD (parsenodes.h CURSOR_OPT_HOLD). */
const CURSOR_OPT_HOLD = 0x0020;

const DISCARD: Readonly<Record<string, string>> = { DISCARD_ALL: 'all', DISCARD_PLANS: 'plans', DISCARD_SEQUENCES: 'sequences', DISCARD_TEMP: 'temp' };

/** Schema changes, maintenance and every statement type not named above. */
function ddl(f: Facts, type: string, s: Obj, node: unknown): void {
  f.kind = 'ddl';
  f.command = type.endsWith('Stmt') ? type.slice(0, -4) : type;
  walk(f, node);
  // In DDL, FOR UPDATE (CREATE POLICY), INTO and DELETE (a rule's action) are not query clauses.
  f.locking = false;
  f.writableCte = false;
  f.selectInto = false;
  let target: Obj | null = null;
  if (type === 'CreateStmt') target = obj(s.relation);
  else if (type === 'ViewStmt') target = obj(s.view);
  else if (type === 'CreateSeqStmt') target = obj(s.sequence);
  else if (type === 'CreateTableAsStmt') target = obj(obj(s.into)?.rel);
  if (target !== null && target.relpersistence === 't') f.createsTemp = true;
}

function explain(f: Facts, s: Obj): void {
  let analyze = false;
  for (const o of list(s.options)) {
    const d = nodeOf(o);
    if (d === null || d[0] !== 'DefElem') continue;
    const name = str(d[1].defname);
    if (name === 'analyze' || name === 'analyse') analyze = optionValue(d[1].arg) !== false;
  }
  statement(f, s.query);
  const inner = f.kind;
  f.command = 'EXPLAIN';
  f.explainAnalyze = analyze;
  if (inner === 'session' || inner === 'transaction') {
    f.kind = 'unknown';
    f.understood = false;
  } else if (inner !== 'unknown') f.kind = analyze ? inner : 'read';
  if (!analyze) f.defaults = null; // a plain EXPLAIN runs nothing
}

/** An EXPLAIN option's value: absent is true, else parse_bool of its text (null when it is none). */
function optionValue(arg: unknown): boolean | null {
  if (arg === undefined) return true;
  treeTextSensitive = true; // ANALYZE 0 and ANALYZE 1 have one shape
  const text = constText(arg);
  return text === null ? null : parseBool(text);
}

function copy(f: Facts, s: Obj): void {
  f.command = 'COPY';
  if (s.query !== undefined) {
    statement(f, s.query);
    const inner = f.kind;
    f.command = 'COPY';
    f.copy = 'to';
    if (inner !== 'unknown') f.kind = inner === 'write' ? 'write' : 'read';
    return;
  }
  const rel = obj(s.relation);
  if (rel !== null) relation(f, rel);
  f.copy = s.is_from === true ? 'from' : 'to';
  f.kind = s.is_from === true ? 'write' : 'read';
  walk(f, s.whereClause);
}

// ---------------------------------------------------------------------------------------------------------
// Transactions and settings

const TX_OPS: Readonly<Record<string, [TxOp, string]>> = {
  TRANS_STMT_BEGIN: ['begin', 'BEGIN'],
  TRANS_STMT_START: ['begin', 'START TRANSACTION'],
  TRANS_STMT_COMMIT: ['commit', 'COMMIT'],
  TRANS_STMT_ROLLBACK: ['rollback', 'ROLLBACK'],
  TRANS_STMT_SAVEPOINT: ['savepoint', 'SAVEPOINT'],
  TRANS_STMT_RELEASE: ['release', 'RELEASE'],
  TRANS_STMT_ROLLBACK_TO: ['rollback_to', 'ROLLBACK'],
  TRANS_STMT_PREPARE: ['prepare_transaction', 'PREPARE TRANSACTION'],
  TRANS_STMT_COMMIT_PREPARED: ['commit_prepared', 'COMMIT PREPARED'],
  TRANS_STMT_ROLLBACK_PREPARED: ['rollback_prepared', 'ROLLBACK PREPARED'],
};

function transaction(f: Facts, s: Obj): void {
  const op = TX_OPS[str(s.kind) ?? ''];
  if (op === undefined) {
    f.kind = 'unknown';
    f.understood = false;
    return;
  }
  f.kind = 'transaction';
  f.command = op[1];
  const tx: TxFacts = { op: op[0], readOnly: false, readWrite: false, serializable: false, isolation: null, savepoint: null, chain: s.chain === true, gid: null };
  txModes(tx, s.options);
  tx.savepoint = str(s.savepoint_name);
  if (s.gid !== undefined) {
    treeTextSensitive = true;
    tx.gid = str(s.gid) ?? '';
  }
  f.tx = Object.freeze(tx);
}

/** Transaction modes (DefElems transaction_isolation / transaction_read_only / transaction_deferrable) into m. */
function txModes(m: TxCharacteristics, options: unknown): void {
  for (const o of list(options)) {
    const d = nodeOf(o);
    if (d === null || d[0] !== 'DefElem') continue;
    const name = str(d[1].defname);
    const value = constText(d[1].arg);
    if (name === 'transaction_isolation' && value !== null) {
      m.isolation = parseIsolation(value);
      m.serializable = m.isolation === 'serializable';
    } else if (name === 'transaction_read_only' && value !== null) {
      const on = value === '1';
      m.readOnly = on;
      m.readWrite = !on;
    }
  }
}

function noCharacteristics(): TxCharacteristics {
  return { readOnly: false, readWrite: false, serializable: false, isolation: null };
}

function variableSet(f: Facts, s: Obj): void {
  f.kind = 'session';
  const kind = str(s.kind);
  const rawName = str(s.name);
  const local = s.is_local === true;
  f.command = kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL' ? 'RESET' : 'SET';
  if (kind === 'VAR_RESET_ALL') {
    f.session = Object.freeze({ op: 'reset_all' as const, local: false, name: null, value: null });
    f.defaults = SERVER_DEFAULTS;
    return;
  }
  if (kind === 'VAR_RESET') {
    const name = asciiLower(rawName ?? '');
    f.session = Object.freeze({ op: 'reset' as const, local: false, name, value: null });
    f.defaults = defaultsFromSetting(name, null);
    return;
  }
  if (kind === 'VAR_SET_MULTI') {
    // SET TRANSACTION ..., SET TRANSACTION SNAPSHOT ..., SET SESSION CHARACTERISTICS AS TRANSACTION ...
    const value = rawValue(s.args);
    if (rawName === 'TRANSACTION SNAPSHOT') {
      f.session = Object.freeze({ op: 'set' as const, local: true, name: 'transaction', value });
      return;
    }
    const m = noCharacteristics();
    txModes(m, s.args);
    f.txCharacteristics = Object.freeze(m);
    if (rawName === 'SESSION CHARACTERISTICS') {
      f.session = Object.freeze({ op: 'set_session_characteristics' as const, local: false, name: 'transaction', value });
      f.defaults = characteristicsDefaults(m);
    } else f.session = Object.freeze({ op: 'set' as const, local: true, name: 'transaction', value });
    return;
  }
  const name = asciiLower(rawName ?? '');
  if (kind === 'VAR_SET_CURRENT') {
    f.session = Object.freeze({ op: 'set' as const, local, name, value: null });
    return;
  }
  const args = list(s.args);
  const isDefault = kind === 'VAR_SET_DEFAULT';
  const value = isDefault ? 'DEFAULT' : rawValue(args);
  f.session = Object.freeze({ op: 'set' as const, local, name, value });
  const single = args.length === 1 ? constText(args[0]) : null;
  if (single !== null) treeTextSensitive = true;
  gucTxCharacteristics(f, name, single);
  if (!local && (single !== null || isDefault)) f.defaults = defaultsFromSetting(name, isDefault ? null : single);
}

/** SET [default_]transaction_read_only / [default_]transaction_isolation with one constant value. */
function gucTxCharacteristics(f: Facts, name: string, value: string | null): void {
  if (value === null) return;
  if (name === 'transaction_read_only' || name === 'default_transaction_read_only') {
    const on = parseBool(value);
    if (on !== null) f.txCharacteristics = Object.freeze({ readOnly: on, readWrite: !on, serializable: false, isolation: null });
  } else if ((name === 'transaction_isolation' || name === 'default_transaction_isolation') && asciiLower(value) !== 'default') {
    const isolation: Isolation | null = parseIsolation(value);
    f.txCharacteristics = Object.freeze({ readOnly: false, readWrite: false, serializable: isolation === 'serializable', isolation });
  }
}

function characteristicsDefaults(m: TxCharacteristics): StatementFacts['defaults'] {
  const d: { readOnly?: boolean; isolation?: Isolation } = {};
  if (m.readOnly || m.readWrite) d.readOnly = m.readOnly;
  if (m.isolation !== null) d.isolation = m.isolation;
  return d.readOnly === undefined && d.isolation === undefined ? null : Object.freeze(d);
}

/** The source text from the first argument to the end of the statement (what the classifier reports as a value). */
function rawValue(args: unknown): string | null {
  const at = firstLocation(args);
  if (at < 0) return null;
  treeTextSensitive = true;
  const start = byteToIndex === null ? at : (byteToIndex[at] ?? -1);
  if (start < 0 || start >= sourceEnd) return null;
  return source.slice(start, sourceEnd).trimEnd();
}

// ---------------------------------------------------------------------------------------------------------
// The walk over queries and expressions

/** Visits every node under v, collecting functions, relations, locking clauses, writable CTEs and INTO. */
function walk(f: Facts, v: unknown): void {
  if (Array.isArray(v)) {
    for (const x of v) walk(f, x);
    return;
  }
  if (!isObj(v)) return;
  if (typeof v.relname === 'string') {
    relation(f, v); // a RangeVar, wrapped or not (InsertStmt.relation, IntoClause.rel ...)
    return;
  }
  const saved = cteScope.length;
  // CTE names are in scope in the statement that carries the WITH, the CTEs themselves included
  for (const c of list(obj(v.withClause)?.ctes)) {
    const name = str(nodeOf(c)?.[1].ctename);
    if (name !== null) cteScope.push(name);
  }
  for (const k in v) field(f, k, v[k]);
  cteScope.length = saved;
}

function field(f: Facts, k: string, x: unknown): void {
  switch (k) {
    case 'FuncCall': {
      const call = obj(x);
      if (call !== null) funcCall(f, call);
      return;
    }
    case 'LockingClause':
      f.locking = true; // FOR UPDATE OF a, b: a and b are names in FROM, not further relations
      return;
    case 'CommonTableExpr': {
      const q = nodeOf(obj(x)?.ctequery);
      if (q !== null && DML[q[0]] !== undefined) f.writableCte = true;
      break;
    }
    case 'intoClause':
      f.selectInto = true;
      if (obj(obj(x)?.rel)?.relpersistence === 't') f.createsTemp = true;
      break;
    default:
      break;
  }
  walk(f, x);
}

function relation(f: Facts, r: Obj): void {
  const name = str(r.relname) ?? '';
  const schema = str(r.schemaname);
  if (schema === null && cteScope.includes(name)) return;
  const catalog = str(r.catalogname);
  const qualified = schema === null ? name : catalog === null ? `${schema}.${name}` : `${catalog}.${schema}.${name}`;
  f.relations = addUnique(f.relations, qualified);
}

function funcCall(f: Facts, call: Obj): void {
  if (call.funcformat !== 'COERCE_SQL_SYNTAX' && !grammarCall(call)) {
    const parts: string[] = [];
    for (const p of list(call.funcname)) parts.push(str(nodeOf(p)?.[1].sval) ?? '');
    const name = parts.join('.');
    f.functions = addUnique(f.functions, name);
    if (name === 'set_config' || name === 'pg_catalog.set_config') setConfigCall(f, list(call.args));
  }
  walk(f, call.args);
  walk(f, call.agg_order);
  walk(f, call.agg_filter);
  walk(f, call.over);
}

/**
 * A call the grammar writes as pg_catalog.f for syntax the text spells otherwise: LIKE ... ESCAPE (like_escape),
 * SIMILAR TO (similar_to_escape), JSON_OBJECT(args), TREAT(x AS t). Its location is the syntax's, not a name's.
 */
function grammarCall(call: Obj): boolean {
  const names = list(call.funcname);
  if (names.length !== 2 || str(nodeOf(names[0])?.[1].sval) !== 'pg_catalog' || typeof call.location !== 'number') return false;
  const at = byteToIndex === null ? call.location : (byteToIndex[call.location] ?? -1);
  if (at < 0) return false;
  const written = source.slice(source.charCodeAt(at) === 34 ? at + 1 : at, at + 11).toLowerCase();
  return !written.startsWith('pg_catalog');
}

/** set_config(name, value, is_local): constant arguments are facts, and a session-level one may set defaults. */
function setConfigCall(f: Facts, args: readonly unknown[]): void {
  treeTextSensitive = true;
  const n = args.length > 0 ? constText(args[0]) : null;
  const name = n === null ? null : asciiLower(n);
  const l = args.length > 2 ? constText(args[2]) : null;
  const isLocal = l === null ? null : parseBool(l);
  const call: SetConfigCall = Object.freeze({ name, isLocal });
  if (f.setConfigCalls === EMPTY) f.setConfigCalls = [call];
  else f.setConfigCalls.push(call);
  const value = args.length > 1 && isStringConst(args[1]) ? constText(args[1]) : null;
  if (isLocal === false && name !== null && value !== null) {
    const d = defaultsFromSetting(name, value);
    if (d !== null) f.defaults = f.defaults === null ? d : Object.freeze({ ...f.defaults, ...d });
  }
}

function isStringConst(v: unknown): boolean {
  const n = nodeOf(v);
  if (n === null) return false;
  if (n[0] === 'TypeCast') return isStringConst(n[1].arg);
  return n[0] === 'A_Const' && obj(n[1].sval) !== null;
}
