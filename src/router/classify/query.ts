/** Queries and data changes: SELECT, VALUES, TABLE, WITH ..., INSERT, UPDATE, DELETE, MERGE, TRUNCATE. */
import { TokenType, type Keyword } from '../lexer.js';
import { kw, tt, unknown, type Facts } from './cursor.js';
import { SCAN_DML_USING, SCAN_MAIN_SELECT, cteList, isMainKeyword, relationList, scan } from './scan.js';

/** SELECT / VALUES / TABLE, maybe after opening parentheses: tokens [a, b), keyword k at s. */
export function select(f: Facts, k: Keyword, a: number, b: number): void {
  f.command = k === 'select' ? 'SELECT' : k === 'values' ? 'VALUES' : 'TABLE';
  scan(f, a, b, SCAN_MAIN_SELECT);
  f.kind = f.selectInto || f.writableCte ? 'write' : 'read';
}

/** INSERT / UPDATE / DELETE / MERGE at s. */
export function dml(f: Facts, k: Keyword, s: number, b: number): void {
  f.command = k.toUpperCase();
  f.kind = 'write';
  scan(f, s, b, k === 'delete' || k === 'merge' ? SCAN_DML_USING : 0);
}

export function truncate(f: Facts, s: number, b: number): void {
  f.kind = 'write';
  f.command = 'TRUNCATE';
  relationList(f, s + 1, b);
}

/** WITH [RECURSIVE] ctes main-statement; the WITH at s, tokens [a, b). */
export function withStatement(f: Facts, a: number, s: number, b: number): void {
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
