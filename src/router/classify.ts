/**
 * Statement facts from SQL text: what kind of statement, which functions it calls, which relations it names,
 * locking clauses, hints, transaction and session effects. Facts only; router/policy.ts decides the route.
 *
 * Works on the lexer's token arrays (no token objects) with a little structural parsing per command and one
 * generic pass for functions/relations/locking. Results are cached by exact SQL text in a bounded LRU.
 *
 * Conventions (the lead codes against these):
 * - A string with no statement (empty, only whitespace/comments/semicolons) has ZERO statements; empty
 *   statements between semicolons are dropped. A statement that is only an unterminated comment is kept, as
 *   kind 'unknown', understood false. So kind 'empty' is never produced today (kept in the type for callers).
 * - VACUUM, ANALYZE, CHECKPOINT, REINDEX, CLUSTER are kind 'ddl' (they cannot or should not run on a standby).
 * - SET TRANSACTION, SET CONSTRAINTS are session kind with local = true (they last for the transaction only).
 * - Plain EXPLAIN is kind 'read' but carries the explained statement's facts (functions, relations, locking,
 *   writableCte, selectInto, prepared): a policy that looks at them errs towards the primary.
 * - For DDL, locking/writableCte/selectInto are always false (a CREATE POLICY ... FOR UPDATE is not a lock).
 * - GUC names are lowercased even when quoted (PostgreSQL compares them case-insensitively); function and
 *   relation names keep a quoted part's case.
 * - Additions to the brief: TxFacts.chain and TxFacts.gid, StatementFacts.preparedKind, DISCARD's target in
 *   SessionFacts.value, classifyCacheStats() / clearClassifyCache().
 */
import { KEYWORD_FLAGS, KEYWORDS, KwFlag, Lexer, StmtFlag, TokenType, type Keyword } from './lexer.js';

export type StatementKind = 'read' | 'write' | 'ddl' | 'transaction' | 'session' | 'utility' | 'empty' | 'unknown';
export type TxOp =
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'release'
  | 'rollback_to'
  | 'prepare_transaction'
  | 'commit_prepared'
  | 'rollback_prepared';
export interface TxFacts {
  op: TxOp;
  readOnly: boolean;
  readWrite: boolean;
  serializable: boolean;
  /** Savepoint name for savepoint / release / rollback_to (lowercased unless quoted). */
  savepoint: string | null;
  /** COMMIT/END/ROLLBACK/ABORT AND CHAIN: a new transaction starts at once, with the same characteristics. */
  chain: boolean;
  /** Global transaction id for prepare_transaction / commit_prepared / rollback_prepared. */
  gid: string | null;
}
export type SessionOp = 'set' | 'reset' | 'reset_all' | 'discard' | 'set_session_characteristics';
export interface SessionFacts {
  op: SessionOp;
  /** SET LOCAL (and SET TRANSACTION / SET CONSTRAINTS, which only last for the transaction). */
  local: boolean;
  /**
   * Lowercased GUC name ('timezone' for TIME ZONE, 'client_encoding' for NAMES, 'search_path' for SCHEMA,
   * 'role', 'session_authorization', 'xmloption', 'constraints', 'transaction_isolation' for RESET TRANSACTION
   * ISOLATION LEVEL); 'transaction' for SET TRANSACTION and SET SESSION CHARACTERISTICS; null for RESET ALL
   * and DISCARD.
   */
  name: string | null;
  /**
   * SET: raw text of the value part ("'UTC'", "DEFAULT", "\"$user\", public"), null for SET x FROM CURRENT.
   * DISCARD: what is discarded, lowercased ('all' | 'plans' | 'sequences' | 'temp'). RESET: null.
   */
  value: string | null;
}
export interface TxCharacteristics {
  readOnly: boolean;
  readWrite: boolean;
  serializable: boolean;
}
export interface SetConfigCall {
  name: string | null;
  isLocal: boolean | null;
}
export interface CursorFacts {
  op: 'declare' | 'fetch' | 'move' | 'close';
  name: string | null;
  withHold: boolean;
}
export interface PreparedFacts {
  op: 'prepare' | 'execute' | 'deallocate';
  name: string | null;
}
export interface StatementFacts {
  kind: StatementKind;
  command: string;
  functions: readonly string[];
  relations: readonly string[];
  locking: boolean;
  writableCte: boolean;
  selectInto: boolean;
  createsTemp: boolean;
  explainAnalyze: boolean;
  copy: 'from' | 'to' | null;
  hint: 'primary' | null;
  tx: TxFacts | null;
  txCharacteristics: TxCharacteristics | null;
  session: SessionFacts | null;
  setConfigCalls: readonly SetConfigCall[];
  listen: 'listen' | 'unlisten' | 'notify' | null;
  cursor: CursorFacts | null;
  prepared: PreparedFacts | null;
  /** PREPARE p AS <stmt>: the kind of <stmt> (the statement itself is 'utility'). */
  preparedKind: StatementKind | null;
  understood: boolean;
}
export interface Classification {
  statements: readonly StatementFacts[];
}

type Facts = {
  -readonly [K in keyof StatementFacts]: StatementFacts[K];
} & { functions: string[]; relations: string[]; setConfigCalls: SetConfigCall[] };

const EMPTY: never[] = Object.freeze([]) as unknown as never[];

function newFacts(): Facts {
  return {
    kind: 'unknown',
    command: '',
    functions: EMPTY,
    relations: EMPTY,
    locking: false,
    writableCte: false,
    selectInto: false,
    createsTemp: false,
    explainAnalyze: false,
    copy: null,
    hint: null,
    tx: null,
    txCharacteristics: null,
    session: null,
    setConfigCalls: EMPTY,
    listen: null,
    cursor: null,
    prepared: null,
    preparedKind: null,
    understood: true,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Token access. One lexer and one set of scratch arrays, reused: classification is synchronous and not
// re-entrant. `lim` bounds every look-ahead to the statement (or sub-statement) being analysed, because the
// typed arrays hold stale tokens past `count`.

const lx = new Lexer();
let src = '';
let T: Uint8Array = lx.types;
let S: Int32Array = lx.starts;
let E: Int32Array = lx.ends;
let KW: Uint16Array = lx.kws;
let lim = 0;
/**
 * Per-token marks set by structural parsing: a token is marked "not a function name" when its entry equals the
 * current generation (bumped per statement, so nothing needs clearing).
 */
let marks = new Uint32Array(256);
let markGen = 1;

const MAX_DEPTH = 64;
const fromList = new Uint8Array(MAX_DEPTH); // per paren depth: inside a FROM (or DELETE/MERGE USING) list
const noFrom = new Uint8Array(MAX_DEPTH); // per paren depth: FROM is not a clause here (EXTRACT(x FROM y))

function tt(i: number): number {
  return i < lim ? (T[i] as number) : 0;
}
function kw(i: number): Keyword | '' {
  return i < lim ? (KEYWORDS[KW[i] as number] as Keyword | '') : '';
}
function isName(i: number): boolean {
  const t = tt(i);
  return t === TokenType.Ident || t === TokenType.QuotedIdent;
}
function text(i: number): string {
  return src.slice(S[i], E[i]);
}
/** Raw source text of tokens [i, end), or null when empty. */
function rawFrom(i: number, end: number): string | null {
  return i < end ? src.slice(S[i], E[end - 1]) : null;
}

/** PostgreSQL's downcase_identifier: ASCII letters only. */
function asciiLower(s: string): string {
  let upper = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128) {
      let out = '';
      for (let j = 0; j < s.length; j++) {
        const d = s.charCodeAt(j);
        out += d >= 65 && d <= 90 ? String.fromCharCode(d | 0x20) : s[j];
      }
      return out;
    }
    if (c >= 65 && c <= 90) upper = true;
  }
  return upper ? s.toLowerCase() : s;
}

/** Identifier text as PostgreSQL sees it: unquoted lowercased, quoted verbatim with "" undoubled. */
function identName(i: number): string {
  const s = S[i] as number;
  const e = E[i] as number;
  if (T[i] === TokenType.QuotedIdent) {
    const q = src.charCodeAt(s) === 34 ? s : s + 2; // U&"..."
    const end = e - 1 > q && src.charCodeAt(e - 1) === 34 ? e - 1 : e;
    const body = src.slice(q + 1, end);
    return body.includes('""') ? body.split('""').join('"') : body;
  }
  return asciiLower(src.slice(s, e));
}

/** The value of a string literal token, or null when the token is not one. */
function stringValue(i: number): string | null {
  if (tt(i) !== TokenType.String) return null;
  const s = S[i] as number;
  const e = E[i] as number;
  const c0 = src.charCodeAt(s);
  const q = c0 === 39 ? s : src.charCodeAt(s + 1) === 39 ? s + 1 : s + 2; // '..' | E'..' | U&'..'
  const end = e - 1 > q && src.charCodeAt(e - 1) === 39 ? e - 1 : e;
  const body = src.slice(q + 1, end);
  if ((c0 | 0x20) !== 101 || !body.includes('\\')) return body.includes("''") ? body.split("''").join("'") : body;
  let out = '';
  for (let k = 0; k < body.length; k++) {
    const c = body[k] as string;
    if (c === "'" && body[k + 1] === "'") {
      out += "'";
      k++;
    } else if (c === '\\' && k + 1 < body.length) {
      const d = body[++k] as string;
      out += d === 'n' ? '\n' : d === 't' ? '\t' : d === 'r' ? '\r' : d === 'b' ? '\b' : d === 'f' ? '\f' : d;
    } else out += c;
  }
  return out;
}

/** A boolean-ish setting value token (on/off, true/false, yes/no, 1/0, quoted or not), or null. */
function boolValue(i: number): boolean | null {
  const t = tt(i);
  let v: string | null;
  if (t === TokenType.String) v = stringValue(i);
  else if (t === TokenType.Ident || t === TokenType.Number) v = text(i);
  else return null;
  if (v === null) return null;
  switch (asciiLower(v.trim())) {
    case 'on': case 'true': case 't': case 'yes': case 'y': case '1':
      return true;
    case 'off': case 'false': case 'f': case 'no': case 'n': case '0':
      return false;
    default:
      return null;
  }
}

/** Index after the `)` matching the `(` at i (or lim when unbalanced). */
function skipGroup(i: number): number {
  let depth = 0;
  for (let j = i; j < lim; j++) {
    const t = T[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) return j + 1;
  }
  return lim;
}

/** End index (inclusive) of a dotted name chain starting at i: a, a.b, "A".b.c */
function chainEnd(i: number): number {
  let j = i;
  while (j + 2 < lim && T[j + 1] === TokenType.Dot && (T[j + 2] === TokenType.Ident || T[j + 2] === TokenType.QuotedIdent)) j += 2;
  return j;
}
function chainName(i: number, j: number): string {
  if (i === j) return identName(i);
  let out = identName(i);
  for (let k = i + 2; k <= j; k += 2) out += '.' + identName(k);
  return out;
}

function addUnique(list: string[], v: string): string[] {
  if (list === EMPTY) return [v];
  if (!list.includes(v)) list.push(v);
  return list;
}

// ---------------------------------------------------------------------------------------------------------
// The generic pass: functions, relations, locking, writable CTEs, SELECT INTO.

const SCAN_MAIN_SELECT = 1; // the statement's main command is SELECT/VALUES/TABLE: a free INTO is SELECT INTO
const SCAN_CREATE_INDEX = 2; // ON <table> (<cols>) names a relation
const SCAN_DML_USING = 4; // DELETE ... USING / MERGE ... USING list relations
const SCAN_DDL = 8;

const REL_NONE = 0;
const REL_FROM = 1; // FROM/JOIN/USING item: name( is a function in FROM
const REL_STRICT = 2; // INTO/TABLE/UPDATE/REFERENCES/ON-of-index: name( is the relation and its column list

function scan(f: Facts, from: number, to: number, opts: number): void {
  const savedLim = lim;
  lim = to;
  let depth = 0;
  fromList[0] = 0;
  noFrom[0] = 0;
  let expect = REL_NONE;
  let relEnd = -2; // last token of the last relation chain (an alias may follow it)
  for (let i = from; i < to; i++) {
    const t = T[i] as number;
    if (t === TokenType.LParen) {
      const pk = i > from ? kw(i - 1) : '';
      depth++;
      if (depth < MAX_DEPTH) {
        fromList[depth] = 0;
        noFrom[depth] = pk === 'extract' || pk === 'substring' || pk === 'trim' || pk === 'overlay' || pk === 'position' ? 1 : 0;
      }
      expect = REL_NONE;
      continue;
    }
    if (t === TokenType.RParen) {
      if (depth > 0) depth--;
      expect = REL_NONE;
      continue;
    }
    if (t === TokenType.Comma) {
      expect = depth < MAX_DEPTH && fromList[depth] === 1 ? REL_FROM : REL_NONE;
      continue;
    }
    if (t !== TokenType.Ident && t !== TokenType.QuotedIdent) {
      expect = REL_NONE;
      continue;
    }
    const pt = i > from ? (T[i - 1] as number) : 0;
    if (t === TokenType.Ident) {
      const k = KEYWORDS[KW[i] as number] as Keyword | '';
      if (k !== '') {
        const pk = i > from ? kw(i - 1) : '';
        switch (k) {
          case 'from':
            if ((depth < MAX_DEPTH && noFrom[depth] === 1) || pk === 'distinct') break;
            expect = pk === 'delete' ? REL_STRICT : REL_FROM;
            if (depth < MAX_DEPTH) fromList[depth] = 1;
            continue;
          case 'join':
            expect = REL_FROM;
            continue;
          case 'with':
            // a WITH clause (not WITH (options) / WITH ORDINALITY ...): its CTE names are not function calls
            if (isName(i + 1)) cteList(i);
            break;
          case 'only':
          case 'lateral':
            if (expect !== REL_NONE) continue;
            break;
          case 'if':
          case 'not':
          case 'exists':
            if (expect === REL_STRICT) continue;
            break;
          case 'update':
            if (i === from || pt === TokenType.LParen || pt === TokenType.RParen) {
              if (pt === TokenType.LParen || (pt === TokenType.RParen && depth > 0)) f.writableCte = true;
              expect = REL_STRICT;
              continue;
            }
            break;
          case 'insert':
          case 'delete':
          case 'merge':
            if (pt === TokenType.LParen || (pt === TokenType.RParen && depth > 0)) f.writableCte = true;
            break;
          case 'into':
            if (pk === 'insert' || pk === 'merge') {
              expect = REL_STRICT;
              continue;
            }
            if ((opts & SCAN_MAIN_SELECT) !== 0) {
              f.selectInto = true;
              let j = i + 1;
              for (;;) {
                const k2 = kw(j);
                if (k2 === 'temp' || k2 === 'temporary') f.createsTemp = true;
                else if (k2 !== 'unlogged' && k2 !== 'global' && k2 !== 'local' && k2 !== 'table') break;
                j++;
              }
              i = j - 1;
              expect = REL_STRICT;
              continue;
            }
            break;
          case 'table':
          case 'references':
            expect = REL_STRICT;
            continue;
          case 'view':
            if ((opts & SCAN_DDL) !== 0) {
              expect = REL_STRICT;
              continue;
            }
            break;
          case 'on':
            if ((opts & SCAN_CREATE_INDEX) !== 0 && depth === 0) {
              expect = REL_STRICT;
              continue;
            }
            break;
          case 'using':
            if ((opts & SCAN_DML_USING) !== 0 && depth === 0) {
              expect = REL_FROM;
              fromList[0] = 1;
              continue;
            }
            break;
          case 'for': {
            if (depth < MAX_DEPTH) fromList[depth] = 0;
            expect = REL_NONE;
            const k1 = kw(i + 1);
            if (k1 === 'update' || k1 === 'share') {
              f.locking = true;
              i += 1;
            } else if (k1 === 'no' && kw(i + 2) === 'key' && kw(i + 3) === 'update') {
              f.locking = true;
              i += 3;
            } else if (k1 === 'key' && kw(i + 2) === 'share') {
              f.locking = true;
              i += 2;
            }
            continue;
          }
          case 'where':
          case 'group':
          case 'having':
          case 'order':
          case 'limit':
          case 'offset':
          case 'fetch':
          case 'window':
          case 'union':
          case 'intersect':
          case 'except':
          case 'returning':
          case 'set':
          case 'select':
          case 'values':
          case 'do':
            if (depth < MAX_DEPTH) fromList[depth] = 0;
            expect = REL_NONE;
            continue;
          default:
            break;
        }
      }
    }

    // A name: a relation, a function call, or neither.
    const j = chainEnd(i);
    const next = j + 1 < to ? (T[j + 1] as number) : 0;
    if (next === TokenType.LParen) {
      if (expect === REL_STRICT) {
        f.relations = addUnique(f.relations, chainName(i, j));
        relEnd = j;
      } else if (isFunctionCall(i, j, from, pt, depth, relEnd, expect)) {
        const name = chainName(i, j);
        f.functions = addUnique(f.functions, name);
        if (name === 'set_config' || name === 'pg_catalog.set_config') setConfigCall(f, j + 1);
      }
    } else if (expect !== REL_NONE) {
      f.relations = addUnique(f.relations, chainName(i, j));
      relEnd = j;
    }
    expect = REL_NONE;
    i = j;
  }
  lim = savedLim;
}

/** Is the name chain [i..j], followed by `(`, a function call? */
function isFunctionCall(i: number, j: number, from: number, pt: number, depth: number, relEnd: number, expect: number): boolean {
  if (marks[i] === markGen) return false;
  // IN (, CAST(, varchar(10), OVER (...): syntax. Qualified (pg_catalog.substring(...)) is a real call.
  if (i === j && T[i] === TokenType.Ident && ((KEYWORD_FLAGS[KW[i] as number] as number) & KwFlag.NotFunction) !== 0) return false;
  if (i > from) {
    if (pt === TokenType.RParen) return false; // f(x) AS g(a) / (VALUES ...) v(a,b): column aliases
    if (pt === TokenType.Cast) return false; // x::mytype(3)
    if (i === relEnd + 1) return false; // FROM t a(x, y)
    switch (kw(i - 1)) {
      case 'as': // alias with column list, CAST(x AS type(n)), CREATE TYPE t AS RANGE (...)
      case 'function': // CREATE/ALTER/DROP FUNCTION f(args), EXECUTE FUNCTION trig()
      case 'procedure':
      case 'aggregate':
      case 'routine':
      case 'type':
      case 'domain':
      case 'statistics':
      case 'collation':
      case 'tablesample': // TABLESAMPLE system (10)
      case 'trigger':
        return false;
      case 'using': // USING btree (col), EXCLUDE USING gist (...); but DELETE ... USING f(x) calls f
        if (expect === REL_NONE) return false;
        break;
      case 'by': // CREATE TABLE ... PARTITION BY RANGE (col)
        if (depth === 0 && i - 2 >= from && kw(i - 2) === 'partition') return false;
        break;
      default:
        break;
    }
  }
  return true;
}

/** set_config(name, value, is_local) whose `(` is at p. */
function setConfigCall(f: Facts, p: number): void {
  // argument starts: after `(` and after each top-level comma
  let a1 = -1;
  let a3 = -1;
  let depth = 0;
  let arg = 0;
  let end = lim;
  for (let k = p + 1; k < lim; k++) {
    const t = T[k];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen) {
      if (depth === 0) {
        end = k;
        break;
      }
      depth--;
    } else if (t === TokenType.Comma && depth === 0) {
      arg++;
      if (arg === 2) a3 = k + 1;
    }
  }
  a1 = p + 1;
  const single = (k: number): boolean => k >= 0 && k < end && (k + 1 === end || T[k + 1] === TokenType.Comma || T[k + 1] === TokenType.Cast);
  let name: string | null = null;
  if (single(a1) && T[a1] === TokenType.String) name = asciiLower(stringValue(a1) ?? '');
  let isLocal: boolean | null = null;
  if (a3 >= 0 && single(a3)) isLocal = boolValue(a3);
  const call: SetConfigCall = Object.freeze({ name, isLocal });
  if (f.setConfigCalls === EMPTY) f.setConfigCalls = [call];
  else f.setConfigCalls.push(call);
}

// ---------------------------------------------------------------------------------------------------------
// Commands

function unknown(f: Facts): void {
  f.kind = 'unknown';
  f.understood = false;
}

/** Dispatch on the statement's leading keyword; tokens [a, b). */
function analyze(f: Facts, a: number, b: number): void {
  const savedLim = lim;
  lim = b;
  try {
    analyzeIn(f, a, b);
  } finally {
    lim = savedLim;
  }
}

function analyzeIn(f: Facts, a: number, b: number): void {
  let s = a;
  while (s < b && T[s] === TokenType.LParen) s++;
  if (s >= b || T[s] !== TokenType.Ident) {
    unknown(f);
    return;
  }
  const k = kw(s);
  if (s > a && k !== 'select' && k !== 'values' && k !== 'table' && k !== 'with') {
    unknown(f);
    return;
  }
  switch (k) {
    case 'select':
    case 'values':
    case 'table':
      f.command = k === 'select' ? 'SELECT' : k === 'values' ? 'VALUES' : 'TABLE';
      scan(f, a, b, SCAN_MAIN_SELECT);
      f.kind = f.selectInto || f.writableCte ? 'write' : 'read';
      return;
    case 'with':
      withStatement(f, a, s, b);
      return;
    case 'insert':
    case 'update':
    case 'delete':
    case 'merge':
      f.command = k.toUpperCase();
      f.kind = 'write';
      scan(f, s, b, k === 'delete' || k === 'merge' ? SCAN_DML_USING : 0);
      return;
    case 'show':
      f.command = 'SHOW';
      f.kind = 'read';
      return;
    case 'explain':
      explain(f, s, b);
      return;
    case 'copy':
      copy(f, s, b);
      return;
    case 'create':
      create(f, s, b);
      return;
    case 'alter':
      f.kind = 'ddl';
      f.command = ddlCommand(s, b);
      scan(f, s + 1, b, SCAN_DDL);
      ddlFacts(f);
      return;
    case 'drop':
    case 'comment':
    case 'grant':
    case 'revoke':
    case 'refresh':
    case 'reindex':
    case 'cluster':
    case 'vacuum':
    case 'analyze':
    case 'analyse':
    case 'checkpoint':
    case 'import':
    case 'reassign':
    case 'security':
      f.kind = 'ddl';
      f.command = ddlCommand(s, b);
      return;
    case 'truncate':
      f.kind = 'write';
      f.command = 'TRUNCATE';
      relationList(f, s + 1, b);
      return;
    case 'lock':
      f.kind = 'utility';
      f.command = 'LOCK';
      relationList(f, s + 1, b);
      return;
    case 'begin':
    case 'start':
    case 'commit':
    case 'end':
    case 'rollback':
    case 'abort':
    case 'savepoint':
    case 'release':
      transaction(f, k, s, b);
      return;
    case 'prepare':
      if (kw(s + 1) === 'transaction' && tt(s + 2) === TokenType.String) {
        transaction(f, k, s, b);
        return;
      }
      prepare(f, s, b);
      return;
    case 'set':
      set(f, s, b);
      return;
    case 'reset':
      reset(f, s, b);
      return;
    case 'discard':
      discard(f, s, b);
      return;
    case 'call':
      f.kind = 'utility';
      f.command = 'CALL';
      scan(f, s + 1, b, 0);
      return;
    case 'do':
      f.kind = 'utility';
      f.command = 'DO';
      return;
    case 'load':
      f.kind = 'utility';
      f.command = 'LOAD';
      return;
    case 'listen':
    case 'unlisten':
    case 'notify':
      f.kind = 'utility';
      f.command = k.toUpperCase();
      f.listen = k;
      return;
    case 'execute':
      f.kind = 'utility';
      f.command = 'EXECUTE';
      f.prepared = Object.freeze({ op: 'execute' as const, name: isName(s + 1) ? identName(s + 1) : null });
      if (!isName(s + 1)) f.understood = false;
      scan(f, s + 2, b, 0); // the arguments
      return;
    case 'deallocate': {
      f.kind = 'utility';
      f.command = 'DEALLOCATE';
      const i = kw(s + 1) === 'prepare' ? s + 2 : s + 1;
      const all = kw(i) === 'all' && i + 1 === b;
      f.prepared = Object.freeze({ op: 'deallocate' as const, name: all || !isName(i) ? null : identName(i) });
      if (!all && !isName(i)) f.understood = false;
      return;
    }
    case 'declare':
      declare(f, s, b);
      return;
    case 'fetch':
    case 'move':
    case 'close': {
      f.kind = 'utility';
      f.command = k.toUpperCase();
      const last = b - 1;
      let name: string | null = null;
      if (k === 'close' && kw(s + 1) === 'all' && b === s + 2) name = null;
      else if (last > s && isName(last)) name = identName(last);
      else f.understood = false;
      f.cursor = Object.freeze({ op: k, name, withHold: false });
      return;
    }
    default:
      unknown(f);
      return;
  }
}

/** Parse the CTE list of the WITH at s, marking CTE names; returns the index after it. */
function cteList(s: number): number {
  let i = s + 1;
  if (kw(i) === 'recursive') i++;
  for (;;) {
    if (!isName(i)) break;
    marks[i] = markGen; // WITH x(a, b) AS (...)
    i++;
    if (tt(i) === TokenType.LParen) i = skipGroup(i);
    if (kw(i) !== 'as') break;
    i++;
    if (kw(i) === 'not') i++;
    if (kw(i) === 'materialized') i++;
    if (tt(i) !== TokenType.LParen) break;
    i = skipGroup(i);
    // SEARCH ... SET col / CYCLE ... USING path: up to the next CTE or the main statement
    while (i < lim && tt(i) !== TokenType.Comma && tt(i) !== TokenType.LParen && tt(i) !== TokenType.RParen && !isMainKeyword(kw(i))) i++;
    if (tt(i) === TokenType.Comma) {
      i++;
      continue;
    }
    break;
  }
  return i;
}

function withStatement(f: Facts, a: number, s: number, b: number): void {
  let i = cteList(s);
  while (tt(i) === TokenType.LParen) i++;
  const mk = kw(i);
  if (!isMainKeyword(mk)) {
    scan(f, a, b, 0);
    f.command = 'WITH';
    unknown(f);
    return;
  }
  f.command = mk === 'select' ? 'SELECT' : mk.toUpperCase();
  const readish = mk === 'select' || mk === 'values' || mk === 'table';
  scan(f, a, b, readish ? SCAN_MAIN_SELECT : mk === 'delete' || mk === 'merge' ? SCAN_DML_USING : 0);
  f.kind = !readish || f.writableCte || f.selectInto ? 'write' : 'read';
}

function isMainKeyword(k: Keyword | ''): boolean {
  return k === 'select' || k === 'insert' || k === 'update' || k === 'delete' || k === 'merge' || k === 'values' || k === 'table';
}

function explain(f: Facts, s: number, b: number): void {
  let i = s + 1;
  let analyzeOpt = false;
  const k1 = kw(i + 1);
  if (tt(i) === TokenType.LParen && !(isMainKeyword(k1) || k1 === 'with' || tt(i + 1) === TokenType.LParen)) {
    // EXPLAIN (option [value], ...)
    let j = i + 1;
    while (j < b && tt(j) !== TokenType.RParen) {
      const ok = kw(j);
      let v: boolean | null = true;
      if (tt(j + 1) !== TokenType.Comma && tt(j + 1) !== TokenType.RParen) v = boolValue(j + 1);
      if (ok === 'analyze' || ok === 'analyse') analyzeOpt = v !== false;
      // to the next option
      let depth = 0;
      while (j < b) {
        const t = tt(j);
        if (t === TokenType.LParen) depth++;
        else if (t === TokenType.RParen) {
          if (depth === 0) break;
          depth--;
        } else if (t === TokenType.Comma && depth === 0) {
          j++;
          break;
        }
        j++;
      }
    }
    i = j + 1;
  } else {
    for (;;) {
      const k = kw(i);
      if (k === 'analyze' || k === 'analyse') analyzeOpt = true;
      else if (k !== 'verbose') break;
      i++;
    }
  }
  if (i >= b) {
    f.command = 'EXPLAIN';
    unknown(f);
    return;
  }
  analyze(f, i, b);
  const inner = f.kind;
  f.command = 'EXPLAIN';
  f.explainAnalyze = analyzeOpt;
  if (inner !== 'unknown') f.kind = analyzeOpt ? inner : 'read';
}

function copy(f: Facts, s: number, b: number): void {
  let i = s + 1;
  if (tt(i) === TokenType.LParen) {
    // COPY (query) TO ...
    const close = skipGroup(i) - 1;
    analyze(f, i + 1, close);
    const inner = f.kind;
    f.command = 'COPY';
    f.copy = 'to';
    if (inner !== 'unknown') f.kind = inner === 'write' ? 'write' : 'read';
    if (kw(close + 1) !== 'to') f.understood = false;
    return;
  }
  f.command = 'COPY';
  if (kw(i) === 'binary') i++;
  if (!isName(i)) {
    unknown(f);
    return;
  }
  const j = chainEnd(i);
  f.relations = addUnique(f.relations, chainName(i, j));
  i = j + 1;
  if (tt(i) === TokenType.LParen) i = skipGroup(i);
  const dir = kw(i);
  if (dir === 'from') {
    f.copy = 'from';
    f.kind = 'write';
  } else if (dir === 'to') {
    f.copy = 'to';
    f.kind = 'read';
  } else {
    unknown(f);
    return;
  }
  scan(f, i + 1, b, 0); // COPY ... FROM ... WHERE <expr>
}

function create(f: Facts, s: number, b: number): void {
  f.kind = 'ddl';
  f.command = ddlCommand(s, b);
  let temp = false;
  let i = s + 1;
  for (;;) {
    const k = kw(i);
    if (k === 'or' && kw(i + 1) === 'replace') i += 2;
    else if (k === 'temp' || k === 'temporary') {
      temp = true;
      i++;
    } else if (k === 'global' || k === 'local' || k === 'unlogged' || k === 'recursive') i++;
    else break;
  }
  const obj = kw(i);
  if (temp && (obj === 'table' || obj === 'view' || obj === 'sequence')) f.createsTemp = true;
  let opts = SCAN_DDL;
  if (obj === 'index' || (obj === 'unique' && kw(i + 1) === 'index')) opts |= SCAN_CREATE_INDEX;
  scan(f, s + 1, b, opts);
  ddlFacts(f);
}

function ddlFacts(f: Facts): void {
  f.locking = false;
  f.writableCte = false;
  f.selectInto = false;
}

/** 'CREATE TABLE', 'CREATE MATERIALIZED VIEW', 'ALTER TABLE', 'DROP INDEX', 'REFRESH MATERIALIZED VIEW', ... */
function ddlCommand(s: number, b: number): string {
  const verb = kw(s);
  switch (verb) {
    case 'vacuum':
    case 'reindex':
    case 'cluster':
    case 'checkpoint':
    case 'grant':
    case 'revoke':
    case 'comment':
      return verb.toUpperCase();
    case 'analyze':
    case 'analyse':
      return 'ANALYZE';
    case 'security':
      return 'SECURITY LABEL';
    case 'refresh':
      return 'REFRESH MATERIALIZED VIEW';
    case 'import':
      return 'IMPORT FOREIGN SCHEMA';
    case 'reassign':
      return 'REASSIGN OWNED';
    default:
      break;
  }
  let i = s + 1;
  if (verb === 'create') {
    for (;;) {
      const k = kw(i);
      if (k === 'or' && kw(i + 1) === 'replace') i += 2;
      else if (
        k === 'temp' || k === 'temporary' || k === 'unlogged' || k === 'global' || k === 'local' || k === 'unique' ||
        k === 'recursive' || k === 'trusted' || k === 'procedural' || k === 'constraint' || (k === 'default' && kw(i + 1) === 'conversion')
      )
        i++;
      else break;
    }
  }
  if (i >= b || tt(i) !== TokenType.Ident) return verb.toUpperCase();
  let words = 1;
  const k = kw(i);
  const k1 = kw(i + 1);
  if (k === 'foreign' && k1 === 'data') words = 3;
  else if (k === 'text' && k1 === 'search') words = 3;
  else if (k === 'materialized' || k === 'foreign' || k === 'event' || k === 'access' || k === 'default' || k === 'large') words = 2;
  else if (k === 'user' && k1 === 'mapping') words = 2;
  else if (k === 'operator' && (k1 === 'class' || k1 === 'family')) words = 2;
  let out = verb.toUpperCase();
  for (let w = 0; w < words && i + w < b && tt(i + w) === TokenType.Ident; w++) out += ' ' + text(i + w).toUpperCase();
  return out;
}

/** LOCK [TABLE] [ONLY] a [*], b ... / TRUNCATE [TABLE] [ONLY] a [*], b ... */
function relationList(f: Facts, i: number, b: number): void {
  if (kw(i) === 'table') i++;
  while (i < b) {
    if (kw(i) === 'only') i++;
    if (!isName(i)) break;
    const j = chainEnd(i);
    f.relations = addUnique(f.relations, chainName(i, j));
    i = j + 1;
    if (tt(i) === TokenType.Op && text(i) === '*') i++;
    if (tt(i) !== TokenType.Comma) break;
    i++;
  }
}

function txFacts(op: TxOp): TxFacts {
  return { op, readOnly: false, readWrite: false, serializable: false, savepoint: null, chain: false, gid: null };
}

/**
 * Transaction modes from i to b: ISOLATION LEVEL x, READ ONLY|WRITE, [NOT] DEFERRABLE, commas (BEGIN also
 * accepts WORK|TRANSACTION first). Returns false when something else is there.
 */
function txModes(m: TxCharacteristics, i: number, b: number): boolean {
  while (i < b) {
    const k = kw(i);
    if (tt(i) === TokenType.Comma) i++;
    else if (k === 'isolation' && kw(i + 1) === 'level') {
      const l = kw(i + 2);
      if (l === 'serializable') {
        m.serializable = true;
        i += 3;
      } else if (l === 'repeatable' || l === 'read') i += 4;
      else return false;
    } else if (k === 'read' && kw(i + 1) === 'only') {
      m.readOnly = true;
      i += 2;
    } else if (k === 'read' && kw(i + 1) === 'write') {
      m.readWrite = true;
      i += 2;
    } else if (k === 'not' && kw(i + 1) === 'deferrable') i += 2;
    else if (k === 'deferrable') i++;
    else return false;
  }
  return true;
}

function transaction(f: Facts, k: Keyword, s: number, b: number): void {
  f.kind = 'transaction';
  let i = s + 1;
  switch (k) {
    case 'begin':
    case 'start': {
      f.command = k === 'begin' ? 'BEGIN' : 'START TRANSACTION';
      if (k === 'start') {
        if (kw(i) !== 'transaction') {
          unknown(f);
          return;
        }
        i++;
      } else if (kw(i) === 'work' || kw(i) === 'transaction') i++;
      const tx = txFacts('begin');
      if (!txModes(tx, i, b)) f.understood = false;
      f.tx = Object.freeze(tx);
      return;
    }
    case 'commit':
    case 'end':
    case 'rollback':
    case 'abort': {
      f.command = k.toUpperCase();
      const commit = k === 'commit' || k === 'end';
      if ((k === 'commit' || k === 'rollback') && kw(i) === 'prepared') {
        f.command = commit ? 'COMMIT PREPARED' : 'ROLLBACK PREPARED';
        const tx = txFacts(commit ? 'commit_prepared' : 'rollback_prepared');
        tx.gid = stringValue(i + 1);
        if (tx.gid === null) f.understood = false;
        f.tx = Object.freeze(tx);
        return;
      }
      if (kw(i) === 'work' || kw(i) === 'transaction') i++;
      if (k === 'rollback' && kw(i) === 'to') {
        i++;
        if (kw(i) === 'savepoint') i++;
        const tx = txFacts('rollback_to');
        if (isName(i)) tx.savepoint = identName(i);
        else f.understood = false;
        f.tx = Object.freeze(tx);
        return;
      }
      const tx = txFacts(commit ? 'commit' : 'rollback');
      if (kw(i) === 'and') {
        if (kw(i + 1) === 'chain') tx.chain = true;
        else if (kw(i + 1) !== 'no' || kw(i + 2) !== 'chain') f.understood = false;
      } else if (i < b) f.understood = false;
      f.tx = Object.freeze(tx);
      return;
    }
    case 'savepoint':
    case 'release': {
      f.command = k.toUpperCase();
      if (k === 'release' && kw(i) === 'savepoint') i++;
      const tx = txFacts(k);
      if (isName(i)) tx.savepoint = identName(i);
      else f.understood = false;
      f.tx = Object.freeze(tx);
      return;
    }
    case 'prepare': {
      f.command = 'PREPARE TRANSACTION';
      const tx = txFacts('prepare_transaction');
      tx.gid = stringValue(s + 2);
      f.tx = Object.freeze(tx);
      return;
    }
    default:
      unknown(f);
  }
}

function sessionFacts(op: SessionOp, local: boolean, name: string | null, value: string | null): SessionFacts {
  return Object.freeze({ op, local, name, value });
}

function set(f: Facts, s: number, b: number): void {
  f.kind = 'session';
  f.command = 'SET';
  let i = s + 1;
  let local = false;
  let k = kw(i);
  if (k === 'session' && kw(i + 1) === 'characteristics') {
    // SET SESSION CHARACTERISTICS AS TRANSACTION modes
    const m: TxCharacteristics = { readOnly: false, readWrite: false, serializable: false };
    if (kw(i + 2) !== 'as' || kw(i + 3) !== 'transaction' || !txModes(m, i + 4, b)) f.understood = false;
    f.txCharacteristics = Object.freeze(m);
    f.session = sessionFacts('set_session_characteristics', false, 'transaction', rawFrom(i + 4, b));
    return;
  }
  if ((k === 'session' || k === 'local') && !(k === 'session' && kw(i + 1) === 'authorization')) {
    local = k === 'local';
    i++;
    k = kw(i);
  }
  // Special forms, unless the word is followed by = / TO (then it is an ordinary GUC of that name).
  const afterIsAssign = isAssign(i + 1);
  if (!afterIsAssign) {
    let name: string | null = null;
    let v = i + 1;
    switch (k) {
      case 'transaction': {
        const m: TxCharacteristics = { readOnly: false, readWrite: false, serializable: false };
        if (kw(i + 1) === 'snapshot') {
          if (tt(i + 2) !== TokenType.String) f.understood = false;
        } else {
          if (!txModes(m, i + 1, b)) f.understood = false;
          f.txCharacteristics = Object.freeze(m);
        }
        f.session = sessionFacts('set', true, 'transaction', rawFrom(i + 1, b));
        return;
      }
      case 'session':
        if (kw(i + 1) === 'authorization') {
          name = 'session_authorization';
          v = i + 2;
        }
        break;
      case 'time':
        if (kw(i + 1) === 'zone') {
          name = 'timezone';
          v = i + 2;
        }
        break;
      case 'names':
        name = 'client_encoding';
        break;
      case 'schema':
        name = 'search_path';
        break;
      case 'role':
        name = 'role';
        break;
      case 'xml':
        if (kw(i + 1) === 'option') {
          name = 'xmloption';
          v = i + 2;
        }
        break;
      case 'constraints':
        f.session = sessionFacts('set', true, 'constraints', rawFrom(i + 1, b));
        return;
      default:
        break;
    }
    if (name !== null) {
      if (v >= b) f.understood = false;
      f.session = sessionFacts('set', local, name, rawFrom(v, b));
      return;
    }
  }
  // SET [SESSION|LOCAL] name {= | TO} value | FROM CURRENT
  if (!isName(i)) {
    f.understood = false;
    f.session = sessionFacts('set', local, null, null);
    return;
  }
  const j = chainEnd(i);
  const name = asciiLower(chainName(i, j));
  let value: string | null = null;
  if (isAssign(j + 1)) {
    value = rawFrom(j + 2, b);
    if (value === null) f.understood = false;
  } else if (!(kw(j + 1) === 'from' && kw(j + 2) === 'current' && j + 3 === b)) f.understood = false;
  f.session = sessionFacts('set', local, name, value);
  if (value !== null) gucTxCharacteristics(f, name, j + 2, b);
}

function isAssign(i: number): boolean {
  return (tt(i) === TokenType.Op && S[i] as number + 1 === E[i] && src.charCodeAt(S[i] as number) === 61) || kw(i) === 'to';
}

/** SET [default_]transaction_read_only / [default_]transaction_isolation: transaction characteristics. */
function gucTxCharacteristics(f: Facts, name: string, v: number, b: number): void {
  if (name === 'transaction_read_only' || name === 'default_transaction_read_only') {
    const on = v + 1 === b ? boolValue(v) : null;
    if (on !== null) f.txCharacteristics = Object.freeze({ readOnly: on, readWrite: !on, serializable: false });
  } else if (name === 'transaction_isolation' || name === 'default_transaction_isolation') {
    if (v + 1 !== b) return;
    const t = tt(v);
    const level = t === TokenType.String ? stringValue(v) : t === TokenType.Ident ? text(v) : null;
    if (level === null || asciiLower(level) === 'default') return;
    f.txCharacteristics = Object.freeze({ readOnly: false, readWrite: false, serializable: asciiLower(level.trim()) === 'serializable' });
  }
}

function reset(f: Facts, s: number, b: number): void {
  f.kind = 'session';
  f.command = 'RESET';
  const i = s + 1;
  const k = kw(i);
  let name: string | null = null;
  if (k === 'all' && i + 1 === b) {
    f.session = sessionFacts('reset_all', false, null, null);
    return;
  }
  if (k === 'time' && kw(i + 1) === 'zone') name = 'timezone';
  else if (k === 'session' && kw(i + 1) === 'authorization') name = 'session_authorization';
  else if (k === 'transaction' && kw(i + 1) === 'isolation' && kw(i + 2) === 'level') name = 'transaction_isolation';
  else if (isName(i)) {
    const j = chainEnd(i);
    name = asciiLower(chainName(i, j));
    if (j + 1 !== b) f.understood = false;
  } else f.understood = false;
  f.session = sessionFacts('reset', false, name, null);
}

function discard(f: Facts, s: number, b: number): void {
  f.kind = 'session';
  f.command = 'DISCARD';
  const k = kw(s + 1);
  let what: string | null = null;
  if (k === 'all' || k === 'plans' || k === 'sequences' || k === 'temp') what = k;
  else if (k === 'temporary') what = 'temp';
  if (what === null || s + 2 !== b) f.understood = false;
  f.session = sessionFacts('discard', false, null, what);
}

function prepare(f: Facts, s: number, b: number): void {
  const name = isName(s + 1) ? identName(s + 1) : null;
  let i = s + 2;
  if (name !== null) marks[s + 1] = markGen;
  if (tt(i) === TokenType.LParen) i = skipGroup(i); // parameter types
  if (name === null || kw(i) !== 'as' || i + 1 >= b) {
    f.kind = 'utility';
    f.command = 'PREPARE';
    f.prepared = Object.freeze({ op: 'prepare' as const, name });
    f.understood = false;
    return;
  }
  analyze(f, i + 1, b);
  f.preparedKind = f.kind;
  f.kind = 'utility';
  f.command = 'PREPARE';
  f.prepared = Object.freeze({ op: 'prepare' as const, name });
}

function declare(f: Facts, s: number, b: number): void {
  const name = isName(s + 1) ? identName(s + 1) : null;
  let i = s + 2;
  while (i < b && kw(i) !== 'cursor') i++;
  let withHold = false;
  if (kw(i + 1) === 'with' && kw(i + 2) === 'hold') withHold = true;
  while (i < b && kw(i) !== 'for') i++;
  if (name === null || i + 1 >= b) {
    f.kind = 'utility';
    f.command = 'DECLARE';
    f.cursor = Object.freeze({ op: 'declare' as const, name, withHold });
    f.understood = false;
    return;
  }
  analyze(f, i + 1, b);
  f.kind = 'utility';
  f.command = 'DECLARE';
  f.cursor = Object.freeze({ op: 'declare' as const, name, withHold });
}

// ---------------------------------------------------------------------------------------------------------
// Entry points and the cache

function freezeFacts(f: Facts): StatementFacts {
  if (f.functions !== EMPTY) Object.freeze(f.functions);
  if (f.relations !== EMPTY) Object.freeze(f.relations);
  if (f.setConfigCalls !== EMPTY) Object.freeze(f.setConfigCalls);
  return Object.freeze(f);
}

const NOT_UNDERSTOOD: Classification = (() => {
  const f = newFacts();
  unknown(f);
  return Object.freeze({ statements: Object.freeze([freezeFacts(f)]) });
})();

/** Classify without the cache. Never throws: on an internal error the answer is one unknown statement. */
export function classifyUncached(sql: string): Classification {
  try {
    return classifyText(sql);
  } catch {
    return NOT_UNDERSTOOD;
  }
}

function classifyText(sql: string): Classification {
  lx.lex(sql);
  src = sql;
  T = lx.types;
  S = lx.starts;
  E = lx.ends;
  KW = lx.kws;
  if (marks.length < lx.count) {
    marks = new Uint32Array(lx.types.length);
    markGen = 0;
  }
  const n = lx.stmtCount;
  const out: StatementFacts[] = [];
  for (let st = 0; st < n; st++) {
    const a = lx.stmtFirst[st] as number;
    const b = lx.stmtEnd[st] as number;
    const flags = lx.stmtFlags[st] as number;
    const f = newFacts();
    if (++markGen === 0xffffffff) {
      marks.fill(0);
      markGen = 1;
    }
    lim = b;
    analyze(f, a, b);
    if ((flags & (StmtFlag.Unterminated | StmtFlag.Unbalanced)) !== 0) f.understood = false;
    if ((flags & StmtFlag.HintPrimary) !== 0) f.hint = 'primary';
    out.push(freezeFacts(f));
  }
  src = '';
  return Object.freeze({ statements: Object.freeze(out) });
}

/** Texts longer than this are classified every time, never cached (long generated IN lists are all distinct). */
const MAX_CACHED_TEXT = 64 * 1024;
/** Total characters of cached texts; past it the oldest entries go even below the entry count limit. */
const MAX_CACHED_CHARS = 16 * 1024 * 1024;

let capacity = 10_000;
let cachedChars = 0;
const cache = new Map<string, Classification>();
let hits = 0;
let misses = 0;

/** Classify `sql` (cached by exact text in an LRU; default 10,000 entries). Never throws. */
export function classify(sql: string): Classification {
  const hit = cache.get(sql);
  if (hit !== undefined) {
    hits++;
    // Move to the most-recent end (Map keeps insertion order).
    cache.delete(sql);
    cache.set(sql, hit);
    return hit;
  }
  misses++;
  const c = classifyUncached(sql);
  if (capacity > 0 && sql.length <= MAX_CACHED_TEXT) {
    cache.set(sql, c);
    cachedChars += sql.length;
    while (cache.size > capacity || cachedChars > MAX_CACHED_CHARS) evictOldest();
  }
  return c;
}

function evictOldest(): void {
  const oldest = cache.keys().next();
  if (oldest.done === true) return;
  cache.delete(oldest.value);
  cachedChars -= oldest.value.length;
}

/** Set the LRU capacity (0 disables caching); shrinking evicts the oldest entries at once. */
export function setClassifyCacheSize(n: number): void {
  capacity = Math.max(0, Math.floor(n));
  while (cache.size > capacity) evictOldest();
}

export function clearClassifyCache(): void {
  cache.clear();
  cachedChars = 0;
}

/** For metrics: entries, capacity, hits and misses since start. */
export function classifyCacheStats(): { size: number; capacity: number; hits: number; misses: number } {
  return { size: cache.size, capacity, hits, misses };
}
