/** Transaction control: BEGIN / START TRANSACTION, COMMIT / END, ROLLBACK / ABORT, savepoints, two-phase commit. */
import { TokenType, type Keyword } from '../lexer.js';
import { identName, isName, kw, stringValue, tt, unknown, type Facts } from './cursor.js';
import type { Isolation, TxCharacteristics, TxFacts, TxOp } from './facts.js';

function txFacts(op: TxOp): TxFacts {
  return { op, readOnly: false, readWrite: false, serializable: false, isolation: null, savepoint: null, chain: false, gid: null };
}

export function noCharacteristics(): TxCharacteristics {
  return { readOnly: false, readWrite: false, serializable: false, isolation: null };
}

const SERIALIZABLE = { level: 'serializable', words: 1 } as const;
const REPEATABLE_READ = { level: 'repeatable read', words: 2 } as const;
const READ_COMMITTED = { level: 'read committed', words: 2 } as const;
const READ_UNCOMMITTED = { level: 'read uncommitted', words: 2 } as const;

/** The level named at i (after ISOLATION LEVEL) and how many words it takes, or null. */
function isolationAt(i: number): { readonly level: Isolation; readonly words: number } | null {
  const k = kw(i);
  const k1 = kw(i + 1);
  if (k === 'serializable') return SERIALIZABLE;
  if (k === 'repeatable' && k1 === 'read') return REPEATABLE_READ;
  if (k === 'read' && k1 === 'committed') return READ_COMMITTED;
  if (k === 'read' && k1 === 'uncommitted') return READ_UNCOMMITTED;
  return null;
}

/**
 * Transaction modes from i to b: ISOLATION LEVEL x, READ ONLY|WRITE, [NOT] DEFERRABLE, commas (BEGIN also
 * accepts WORK|TRANSACTION first). Returns false when something else is there.
 */
export function txModes(m: TxCharacteristics, i: number, b: number): boolean {
  while (i < b) {
    const k = kw(i);
    if (tt(i) === TokenType.Comma) i++;
    else if (k === 'isolation' && kw(i + 1) === 'level') {
      const l = isolationAt(i + 2);
      if (l === null) return false;
      m.isolation = l.level;
      m.serializable = l.level === 'serializable';
      i += 2 + l.words;
    } else if (k === 'read' && kw(i + 1) === 'only') {
      m.readOnly = true;
      m.readWrite = false;
      i += 2;
    } else if (k === 'read' && kw(i + 1) === 'write') {
      m.readWrite = true;
      m.readOnly = false;
      i += 2;
    } else if (k === 'not' && kw(i + 1) === 'deferrable') i += 2;
    else if (k === 'deferrable') i++;
    else return false;
  }
  return true;
}

export function transaction(f: Facts, k: Keyword, s: number, b: number): void {
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
