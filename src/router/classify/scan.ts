/**
 * The generic pass over a statement's tokens: called functions, named relations, locking clauses, writable
 * CTEs, SELECT INTO, set_config calls. Command modules call scan() on the token range that holds expressions.
 */
import { KEYWORD_FLAGS, KEYWORDS, KwFlag, TokenType, type Keyword } from '../lexer.js';
import {
  EMPTY,
  KW,
  T,
  addCte,
  addUnique,
  asciiLower,
  boolValue,
  chainEnd,
  chainName,
  isCteAt,
  isMarked,
  isName,
  isOpChar,
  kw,
  lim,
  mark,
  setLim,
  skipGroup,
  stringValue,
  tt,
  type Facts,
} from './cursor.js';
import type { SetConfigCall } from './facts.js';
import { defaultsFromSetting } from './session.js';

/** The statement's main command is SELECT/VALUES/TABLE: a free INTO is SELECT INTO. */
export const SCAN_MAIN_SELECT = 1;
/** ON <table> (<cols>) names a relation. */
export const SCAN_CREATE_INDEX = 2;
/** DELETE ... USING / MERGE ... USING list relations. */
export const SCAN_DML_USING = 4;
export const SCAN_DDL = 8;

const REL_NONE = 0;
const REL_FROM = 1; // FROM/JOIN/USING item: name( is a function in FROM
const REL_STRICT = 2; // INTO/TABLE/UPDATE/REFERENCES/ON-of-index: name( is the relation and its column list

const MAX_DEPTH = 64;
const fromList = new Uint8Array(MAX_DEPTH); // per paren depth: inside a FROM (or DELETE/MERGE USING) list
const noFrom = new Uint8Array(MAX_DEPTH); // per paren depth: FROM is not a clause here (EXTRACT(x FROM y))

export function scan(f: Facts, from: number, to: number, opts: number): void {
  const savedLim = setLim(to);
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
      // FROM (a JOIN b ...): a parenthesised from-list item holds relations (or a subquery, whose SELECT resets it)
      const item = expect === REL_FROM;
      if (depth < MAX_DEPTH) {
        fromList[depth] = item ? 1 : 0;
        noFrom[depth] = pk === 'extract' || pk === 'substring' || pk === 'trim' || pk === 'overlay' || pk === 'position' ? 1 : 0;
      }
      expect = item ? REL_FROM : REL_NONE;
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
            if (isName(i + 1)) {
              cteList(i);
              if (depth < MAX_DEPTH) fromList[depth] = 0;
              expect = REL_NONE;
              continue;
            }
            break;
          case 'only':
          case 'lateral':
            if (expect !== REL_NONE) continue;
            break;
          case 'rows':
            // ROWS FROM (f(...), g(...)): functions in FROM
            if (expect !== REL_NONE && kw(i + 1) === 'from') {
              i++;
              expect = REL_NONE;
              continue;
            }
            if (tt(i + 1) === TokenType.LParen && !expressionStart(i, from)) {
              expect = REL_NONE;
              continue;
            }
            break;
          case 'range':
          case 'groups':
            // a window frame, ROWS (subquery) PRECEDING; a call rows(...) only where an expression starts
            if (tt(i + 1) === TokenType.LParen && !expressionStart(i, from)) {
              expect = REL_NONE;
              continue;
            }
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
          case 'set':
            // SELECT set('t'): a call (UPDATE t SET (a, b) = ... is not)
            if (tt(i + 1) === TokenType.LParen && (pt === TokenType.Comma || pt === TokenType.LParen || pk === 'select')) break;
            if (depth < MAX_DEPTH) fromList[depth] = 0;
            expect = REL_NONE;
            continue;
          case 'returning':
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
        relation(f, i, j);
        relEnd = j;
      } else if (isFunctionCall(i, j, from, pt, depth, relEnd, expect)) {
        const name = chainName(i, j);
        f.functions = addUnique(f.functions, name);
        if (name === 'set_config' || name === 'pg_catalog.set_config') setConfigCall(f, j + 1);
      }
    } else if (expect !== REL_NONE) {
      relation(f, i, j);
      relEnd = j;
    }
    expect = REL_NONE;
    i = j;
  }
  setLim(savedLim);
}

/** The name chain [i..j] names a relation, unless it is a reference to a CTE in scope. */
function relation(f: Facts, i: number, j: number): void {
  const name = chainName(i, j);
  if (i === j && isCteAt(name, i)) return;
  f.relations = addUnique(f.relations, name);
}

/** Is the name chain [i..j], followed by `(`, a function call? */
function isFunctionCall(i: number, j: number, from: number, pt: number, depth: number, relEnd: number, expect: number): boolean {
  if (isMarked(i)) return false;
  // IN (, CAST(, varchar(10), OVER (...): syntax. Qualified (pg_catalog.substring(...)) is a real call, and so is
  // substring(s, 1, 2) or overlay(a, b, 1) written with commas only.
  if (i === j && T[i] === TokenType.Ident && ((KEYWORD_FLAGS[KW[i] as number] as number) & KwFlag.NotFunction) !== 0 && !plainCallOfSyntaxWord(i)) return false;
  // name(...) 'text' is a typed literal (timestamptz(3) '2020-01-01'), not a call
  if (tt(skipGroup(j + 1)) === TokenType.String) return false;
  if (i > from) {
    // f(x) AS g(a) / (VALUES ...) v(a,b): column aliases; but DISTINCT ON (a) f(x) starts an expression
    if (pt === TokenType.RParen && !afterDistinctOn(i - 1, from)) return false;
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

/**
 * substring(...) / overlay(...) at i whose arguments use no FROM, FOR, SIMILAR or PLACING: an ordinary call; and
 * set(...), which scan() lets through only where it is one.
 */
function plainCallOfSyntaxWord(i: number): boolean {
  const k = kw(i);
  if (k === 'set') return true;
  if (k !== 'substring' && k !== 'overlay') return false;
  const end = skipGroup(i + 1);
  let depth = 0;
  for (let m = i + 1; m < end; m++) {
    const t = T[m];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen) depth--;
    else if (depth === 1) {
      const w = kw(m);
      if (w === 'from' || w === 'for' || w === 'similar' || w === 'placing') return false;
    }
  }
  return true;
}

/** Does the `)` at c close DISTINCT ON ( ... )? */
function afterDistinctOn(c: number, from: number): boolean {
  let depth = 0;
  for (let m = c; m >= from; m--) {
    const t = T[m];
    if (t === TokenType.RParen) depth++;
    else if (t === TokenType.LParen && --depth === 0) return m - 2 >= from && kw(m - 1) === 'on' && kw(m - 2) === 'distinct';
  }
  return false;
}

/** Is the word at i where an expression starts (after SELECT, a comma, an operator, `(` ...)? */
function expressionStart(i: number, from: number): boolean {
  if (i <= from) return true;
  const pt = T[i - 1];
  if (pt === TokenType.Comma || pt === TokenType.LParen || pt === TokenType.Op) return true;
  switch (kw(i - 1)) {
    case 'select':
    case 'distinct':
    case 'all':
    case 'where':
    case 'and':
    case 'or':
    case 'not':
    case 'when':
    case 'then':
    case 'else':
    case 'having':
    case 'returning':
    case 'values':
      return true;
    default:
      return false;
  }
}

/** set_config(name, value, is_local) whose `(` is at p. */
function setConfigCall(f: Facts, p: number): void {
  // argument starts: after `(` and after each top-level comma
  const a1 = p + 1;
  let a2 = -1;
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
      if (arg === 1) a2 = k + 1;
      else if (arg === 2) a3 = k + 1;
    }
  }
  // a constant argument: one token, maybe followed by a cast
  const single = (k: number): boolean => k >= 0 && k < end && (k + 1 === end || T[k + 1] === TokenType.Comma || T[k + 1] === TokenType.Cast);
  let name: string | null = null;
  if (single(a1) && T[a1] === TokenType.String) name = asciiLower(stringValue(a1) ?? '');
  let isLocal: boolean | null = null;
  if (a3 >= 0 && single(a3)) isLocal = boolValue(a3);
  const call: SetConfigCall = Object.freeze({ name, isLocal });
  if (f.setConfigCalls === EMPTY) f.setConfigCalls = [call];
  else f.setConfigCalls.push(call);
  if (isLocal === false && name !== null && a2 >= 0 && single(a2) && tt(a2) === TokenType.String) {
    const d = defaultsFromSetting(name, stringValue(a2));
    if (d !== null) f.defaults = f.defaults === null ? d : Object.freeze({ ...f.defaults, ...d });
  }
}

/**
 * Parse the CTE list of the WITH at s, marking CTE names (not function names) and registering them as CTEs in
 * scope up to the end of the parenthesised query that holds the WITH; returns the index after the list.
 */
export function cteList(s: number): number {
  let i = s + 1;
  if (kw(i) === 'recursive') i++;
  const scopeEnd = groupEnd(s);
  for (;;) {
    if (!isName(i)) break;
    mark(i); // WITH x(a, b) AS (...)
    addCte(chainName(i, i), s, scopeEnd);
    i++;
    if (tt(i) === TokenType.LParen) i = skipGroup(i);
    if (kw(i) !== 'as') break;
    i++;
    if (kw(i) === 'not') i++;
    if (kw(i) === 'materialized') i++;
    if (tt(i) !== TokenType.LParen) break;
    i = skipGroup(i);
    // SEARCH {DEPTH|BREADTH} FIRST BY cols SET col; CYCLE cols SET col [TO v DEFAULT v] USING col
    if (kw(i) === 'search') {
      while (i < lim && kw(i) !== 'set') i++;
      i += 2;
    }
    if (kw(i) === 'cycle') {
      while (i < lim && kw(i) !== 'set') i++;
      i += 2;
      if (kw(i) === 'to') while (i < lim && kw(i) !== 'using') i++;
      if (kw(i) === 'using') i += 2;
    }
    if (tt(i) === TokenType.Comma) {
      i++;
      continue;
    }
    break;
  }
  return i;
}

/** Index of the `)` that closes the group holding token s (or lim: the statement's end). */
function groupEnd(s: number): number {
  let depth = 0;
  for (let k = s; k < lim; k++) {
    const t = T[k];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth < 0) return k;
  }
  return lim;
}

export function isMainKeyword(k: Keyword | ''): boolean {
  return k === 'select' || k === 'insert' || k === 'update' || k === 'delete' || k === 'merge' || k === 'values' || k === 'table';
}

/** LOCK [TABLE] [ONLY] a [*], b ... / TRUNCATE [TABLE] [ONLY] a [*], b ... */
export function relationList(f: Facts, i: number, b: number): void {
  if (kw(i) === 'table') i++;
  while (i < b) {
    if (kw(i) === 'only') i++;
    if (!isName(i)) break;
    const j = chainEnd(i);
    f.relations = addUnique(f.relations, chainName(i, j));
    i = j + 1;
    if (isOpChar(i, 42)) i++; // *
    if (tt(i) !== TokenType.Comma) break;
    i++;
  }
}
