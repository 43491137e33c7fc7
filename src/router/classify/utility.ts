/**
 * Utility commands: EXPLAIN, COPY, PREPARE / EXECUTE / DEALLOCATE, DECLARE / FETCH / MOVE / CLOSE, LISTEN /
 * UNLISTEN / NOTIFY, CALL, DO, LOAD, LOCK. EXPLAIN, COPY (query), PREPARE and DECLARE analyse the statement they
 * carry, through dispatch.ts (a cycle between the two modules, for nested statements only).
 */
import { TokenType, type Keyword } from '../lexer.js';
import { addUnique, boolValue, chainEnd, chainName, identName, isName, kw, mark, skipGroup, tt, unknown, type Analyze, type Facts } from './cursor.js';
import { isMainKeyword, relationList, scan } from './scan.js';

export function explain(f: Facts, s: number, b: number, analyze: Analyze): void {
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
  // PostgreSQL explains queries, EXECUTE, DECLARE and CREATE TABLE AS only.
  if (inner === 'session' || inner === 'transaction') unknown(f);
  else if (inner !== 'unknown') f.kind = analyzeOpt ? inner : 'read';
  if (!analyzeOpt) f.defaults = null; // a plain EXPLAIN runs nothing
}

export function copy(f: Facts, s: number, b: number, analyze: Analyze): void {
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
  // COPY ... FROM ... WHERE <expr>: the only expressions (the options are not calls)
  for (let w = i + 1; w < b; w++) {
    if (tt(w) === TokenType.LParen) w = skipGroup(w) - 1;
    else if (kw(w) === 'where') {
      scan(f, w + 1, b, 0);
      break;
    }
  }
}

/** Commands PREPARE accepts (PreparableStmt), and DECLARE ... CURSOR FOR (a SELECT). */
const PREPARABLE: ReadonlySet<string> = new Set(['SELECT', 'VALUES', 'TABLE', 'INSERT', 'UPDATE', 'DELETE', 'MERGE']);
const CURSOR_QUERY: ReadonlySet<string> = new Set(['SELECT', 'VALUES', 'TABLE']);

export function prepare(f: Facts, s: number, b: number, analyze: Analyze): void {
  const name = isName(s + 1) ? identName(s + 1) : null;
  let i = s + 2;
  if (name !== null) mark(s + 1);
  if (tt(i) === TokenType.LParen) i = skipGroup(i); // parameter types
  if (name === null || kw(i) !== 'as' || i + 1 >= b) {
    f.kind = 'utility';
    f.command = 'PREPARE';
    f.prepared = Object.freeze({ op: 'prepare' as const, name });
    f.understood = false;
    return;
  }
  analyze(f, i + 1, b);
  if (!PREPARABLE.has(f.command)) f.understood = false; // PostgreSQL prepares queries and data changes only
  f.defaults = null; // runs at EXECUTE, not now
  f.preparedKind = f.kind;
  f.kind = 'utility';
  f.command = 'PREPARE';
  f.prepared = Object.freeze({ op: 'prepare' as const, name });
}

export function execute(f: Facts, s: number, b: number): void {
  f.kind = 'utility';
  f.command = 'EXECUTE';
  f.prepared = Object.freeze({ op: 'execute' as const, name: isName(s + 1) ? identName(s + 1) : null });
  if (!isName(s + 1)) f.understood = false;
  scan(f, s + 2, b, 0); // the arguments
}

export function deallocate(f: Facts, s: number, b: number): void {
  f.kind = 'utility';
  f.command = 'DEALLOCATE';
  const i = kw(s + 1) === 'prepare' ? s + 2 : s + 1;
  const all = kw(i) === 'all' && i + 1 === b;
  f.prepared = Object.freeze({ op: 'deallocate' as const, name: all || !isName(i) ? null : identName(i) });
  if (!all && !isName(i)) f.understood = false;
}

export function declare(f: Facts, s: number, b: number, analyze: Analyze): void {
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
  if (!CURSOR_QUERY.has(f.command)) f.understood = false; // a cursor is declared for a query only
  f.defaults = null; // runs at FETCH, not now
  f.kind = 'utility';
  f.command = 'DECLARE';
  f.cursor = Object.freeze({ op: 'declare' as const, name, withHold });
}

/** FETCH / MOVE / CLOSE: the cursor is the last word. */
export function cursorCommand(f: Facts, k: 'fetch' | 'move' | 'close', s: number, b: number): void {
  f.kind = 'utility';
  f.command = k.toUpperCase();
  const last = b - 1;
  let name: string | null = null;
  if (k === 'close' && kw(s + 1) === 'all' && b === s + 2) name = null;
  else if (last > s && isName(last)) name = identName(last);
  else f.understood = false;
  f.cursor = Object.freeze({ op: k, name, withHold: false });
}

/** LISTEN / UNLISTEN / NOTIFY, CALL, DO, LOAD, LOCK. */
export function utility(f: Facts, k: Keyword, s: number, b: number): void {
  f.kind = 'utility';
  switch (k) {
    case 'listen':
    case 'unlisten':
    case 'notify':
      f.command = k.toUpperCase();
      f.listen = k;
      return;
    case 'call':
      f.command = 'CALL';
      scan(f, s + 1, b, 0);
      return;
    case 'lock':
      f.command = 'LOCK';
      relationList(f, s + 1, b);
      return;
    default:
      f.command = k.toUpperCase(); // DO, LOAD
      return;
  }
}
