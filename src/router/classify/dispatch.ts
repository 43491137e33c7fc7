/** Dispatch on a statement's leading keyword to the module of its command family. */
import { TokenType } from '../lexer.js';
import { T, asciiLower, chainEnd, chainName, isName, kw, setLim, tt, unknown, type Facts } from './cursor.js';
import { ddl } from './ddl.js';
import { dml, select, truncate, withStatement } from './query.js';
import { discard, reset, set } from './session.js';
import { transaction } from './transaction.js';
import { copy, cursorCommand, deallocate, declare, execute, explain, prepare, utility } from './utility.js';

/** SHOW name | SHOW ALL | SHOW TIME ZONE | SHOW TRANSACTION ISOLATION LEVEL | SHOW SESSION AUTHORIZATION. */
function show(f: Facts, s: number, b: number): void {
  f.command = 'SHOW';
  f.kind = 'read';
  const k1 = kw(s + 1);
  if (k1 === 'time' && kw(s + 2) === 'zone' && s + 3 === b) f.show = 'timezone';
  else if (k1 === 'transaction' && kw(s + 2) === 'isolation' && kw(s + 3) === 'level' && s + 4 === b) f.show = 'transaction_isolation';
  else if (k1 === 'session' && kw(s + 2) === 'authorization' && s + 3 === b) f.show = 'session_authorization';
  else if (isName(s + 1) && chainEnd(s + 1) + 1 === b) f.show = asciiLower(chainName(s + 1, chainEnd(s + 1)));
  else f.understood = false;
}

/** Analyse the statement in tokens [a, b) into f. */
export function analyze(f: Facts, a: number, b: number): void {
  const savedLim = setLim(b);
  try {
    analyzeIn(f, a, b);
  } finally {
    setLim(savedLim);
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
      select(f, k, a, b);
      return;
    case 'with':
      withStatement(f, a, s, b);
      return;
    case 'insert':
    case 'update':
    case 'delete':
    case 'merge':
      dml(f, k, s, b);
      return;
    case 'truncate':
      truncate(f, s, b);
      return;
    case 'show':
      show(f, s, b);
      return;
    case 'create':
    case 'alter':
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
      ddl(f, k, s, b);
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
      if (kw(s + 1) === 'transaction' && tt(s + 2) === TokenType.String) transaction(f, k, s, b);
      else prepare(f, s, b, analyze);
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
    case 'explain':
      explain(f, s, b, analyze);
      return;
    case 'copy':
      copy(f, s, b, analyze);
      return;
    case 'execute':
      execute(f, s, b);
      return;
    case 'deallocate':
      deallocate(f, s, b);
      return;
    case 'declare':
      declare(f, s, b, analyze);
      return;
    case 'fetch':
    case 'move':
    case 'close':
      cursorCommand(f, k, s, b);
      return;
    case 'lock':
    case 'call':
    case 'do':
    case 'load':
    case 'listen':
    case 'unlisten':
    case 'notify':
      utility(f, k, s, b);
      return;
    default:
      unknown(f);
      return;
  }
}
