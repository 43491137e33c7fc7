/**
 * Session commands: SET (all its special forms), RESET, DISCARD, and what they do to the session's
 * transaction defaults (also used for set_config(..., false) calls, see scan.ts).
 */
import { TokenType } from '../lexer.js';
import { asciiLower, chainEnd, chainName, isName, isOpChar, kw, parseBool, rawFrom, settingText, tt, type Facts } from './cursor.js';
import type { Isolation, SessionDefaults, SessionFacts, SessionOp, TxCharacteristics } from './facts.js';
import { noCharacteristics, txModes } from './transaction.js';

function sessionFacts(op: SessionOp, local: boolean, name: string | null, value: string | null): SessionFacts {
  return Object.freeze({ op, local, name, value });
}

// ---------------------------------------------------------------------------------------------------------
// Session defaults (one frozen object per outcome: facts share them)

const READ_ONLY: SessionDefaults = Object.freeze({ readOnly: true });
const READ_WRITE: SessionDefaults = Object.freeze({ readOnly: false });
const ISOLATION: Readonly<Record<Isolation, SessionDefaults>> = Object.freeze({
  'read uncommitted': Object.freeze({ isolation: 'read uncommitted' }),
  'read committed': Object.freeze({ isolation: 'read committed' }),
  'repeatable read': Object.freeze({ isolation: 'repeatable read' }),
  serializable: Object.freeze({ isolation: 'serializable' }),
});
/** The server defaults: what RESET ALL and DISCARD ALL come back to. */
export const SERVER_DEFAULTS: SessionDefaults = Object.freeze({ readOnly: false, isolation: 'read committed' });

/** An isolation level as default_transaction_isolation spells it (case-insensitive), or null. */
export function parseIsolation(v: string): Isolation | null {
  switch (asciiLower(v.trim())) {
    case 'serializable':
      return 'serializable';
    case 'repeatable read':
      return 'repeatable read';
    case 'read committed':
      return 'read committed';
    case 'read uncommitted':
      return 'read uncommitted';
    default:
      return null;
  }
}

/**
 * Defaults set by `name = value` taking effect at session level (value null: back to the default, as RESET
 * or SET ... TO DEFAULT). Null for other settings and for values PostgreSQL would reject.
 */
export function defaultsFromSetting(name: string, value: string | null): SessionDefaults | null {
  if (name === 'default_transaction_read_only') {
    if (value === null) return READ_WRITE;
    const on = parseBool(value);
    return on === null ? null : on ? READ_ONLY : READ_WRITE;
  }
  if (name === 'default_transaction_isolation') {
    if (value === null) return ISOLATION['read committed'];
    const level = parseIsolation(value);
    return level === null ? null : ISOLATION[level];
  }
  return null;
}

/** Defaults from SET SESSION CHARACTERISTICS AS TRANSACTION modes. */
function characteristicsDefaults(m: TxCharacteristics): SessionDefaults | null {
  const readOnly = m.readOnly ? true : m.readWrite ? false : undefined;
  if (readOnly === undefined) return m.isolation === null ? null : ISOLATION[m.isolation];
  if (m.isolation === null) return readOnly ? READ_ONLY : READ_WRITE;
  return Object.freeze({ readOnly, isolation: m.isolation });
}

// ---------------------------------------------------------------------------------------------------------
// SET

function isAssign(i: number): boolean {
  return isOpChar(i, 61) || kw(i) === 'to'; // = | TO
}

export function set(f: Facts, s: number, b: number): void {
  f.kind = 'session';
  f.command = 'SET';
  let i = s + 1;
  let local = false;
  let k = kw(i);
  if (k === 'session' && kw(i + 1) === 'characteristics') {
    // SET SESSION CHARACTERISTICS AS TRANSACTION modes
    const m = noCharacteristics();
    if (kw(i + 2) !== 'as' || kw(i + 3) !== 'transaction' || !txModes(m, i + 4, b)) f.understood = false;
    f.txCharacteristics = Object.freeze(m);
    f.session = sessionFacts('set_session_characteristics', false, 'transaction', rawFrom(i + 4, b));
    if (f.understood) f.defaults = characteristicsDefaults(m);
    return;
  }
  if ((k === 'session' || k === 'local') && !(k === 'session' && kw(i + 1) === 'authorization')) {
    local = k === 'local';
    i++;
    k = kw(i);
  }
  // Special forms, unless the word is followed by = / TO (then it is an ordinary GUC of that name).
  if (!isAssign(i + 1)) {
    let name: string | null = null;
    let v = i + 1;
    switch (k) {
      case 'transaction': {
        if (kw(i + 1) === 'snapshot') {
          if (tt(i + 2) !== TokenType.String) f.understood = false;
        } else {
          const m = noCharacteristics();
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
  if (value === null) return;
  gucTxCharacteristics(f, name, j + 2, b);
  if (!local && j + 3 === b) f.defaults = defaultsFromSetting(name, kw(j + 2) === 'default' ? null : settingText(j + 2));
}

/** SET [default_]transaction_read_only / [default_]transaction_isolation: transaction characteristics. */
function gucTxCharacteristics(f: Facts, name: string, v: number, b: number): void {
  if (v + 1 !== b) return;
  if (name === 'transaction_read_only' || name === 'default_transaction_read_only') {
    const text = settingText(v);
    const on = text === null ? null : parseBool(text);
    if (on !== null) f.txCharacteristics = Object.freeze({ readOnly: on, readWrite: !on, serializable: false, isolation: null });
  } else if (name === 'transaction_isolation' || name === 'default_transaction_isolation') {
    const t = tt(v);
    const level = t === TokenType.String || t === TokenType.Ident ? settingText(v) : null;
    if (level === null || asciiLower(level) === 'default') return;
    const isolation = parseIsolation(level);
    f.txCharacteristics = Object.freeze({ readOnly: false, readWrite: false, serializable: isolation === 'serializable', isolation });
  }
}

// ---------------------------------------------------------------------------------------------------------
// RESET, DISCARD

export function reset(f: Facts, s: number, b: number): void {
  f.kind = 'session';
  f.command = 'RESET';
  const i = s + 1;
  const k = kw(i);
  let name: string | null = null;
  if (k === 'all' && i + 1 === b) {
    f.session = sessionFacts('reset_all', false, null, null);
    f.defaults = SERVER_DEFAULTS;
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
  if (name !== null && f.understood) f.defaults = defaultsFromSetting(name, null);
}

export function discard(f: Facts, s: number, b: number): void {
  f.kind = 'session';
  f.command = 'DISCARD';
  const k = kw(s + 1);
  let what: string | null = null;
  if (k === 'all' || k === 'plans' || k === 'sequences' || k === 'temp') what = k;
  else if (k === 'temporary') what = 'temp';
  if (what === null || s + 2 !== b) f.understood = false;
  f.session = sessionFacts('discard', false, null, what);
  if (what === 'all' && f.understood) f.defaults = SERVER_DEFAULTS;
}
