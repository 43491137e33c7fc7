/**
 * Schema changes and maintenance: CREATE, ALTER, DROP, COMMENT, GRANT, REVOKE, SECURITY LABEL, REFRESH,
 * REINDEX, CLUSTER, VACUUM, ANALYZE, CHECKPOINT, IMPORT FOREIGN SCHEMA, REASSIGN OWNED. All kind 'ddl'.
 */
import { TokenType, type Keyword } from '../lexer.js';
import { kw, text, tt, type Facts } from './cursor.js';
import { SCAN_CREATE_INDEX, SCAN_DDL, scan } from './scan.js';

/** A DDL statement led by keyword k at s; tokens [s, b). */
export function ddl(f: Facts, k: Keyword, s: number, b: number): void {
  f.kind = 'ddl';
  f.command = ddlCommand(s, b);
  if (k === 'create') create(f, s, b);
  else if (k === 'alter') {
    scan(f, s + 1, b, SCAN_DDL);
    notQueryFacts(f);
  }
}

function create(f: Facts, s: number, b: number): void {
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
  notQueryFacts(f);
}

/** In DDL, FOR UPDATE (CREATE POLICY ... FOR UPDATE), INTO and DELETE words are not query clauses. */
function notQueryFacts(f: Facts): void {
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
