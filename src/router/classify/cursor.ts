/**
 * The classifier's shared token cursor: one lexer and one set of scratch arrays, reused (classification is
 * synchronous and not re-entrant), plus the helpers every command family reads tokens with.
 *
 * `lim` bounds every look-ahead to the statement (or sub-statement) being analysed, because the typed arrays
 * hold stale tokens past the lexer's count. Other modules read the state through live bindings and change
 * `lim` only through setLim().
 *
 * Text sensitivity: a helper that hands out a literal's value or raw source text (which includes the spacing
 * and comments between tokens) sets `textRead`. Statements whose facts were built that way are never served
 * from the shape cache (cache.ts), because texts of one shape differ exactly there.
 */
import { KEYWORDS, Lexer, TokenType, type Keyword } from '../lexer.js';
import type { SetConfigCall, StatementFacts } from './facts.js';

export const lx = new Lexer();
export let src = '';
export let T: Uint8Array = lx.types;
export let S: Int32Array = lx.starts;
export let E: Int32Array = lx.ends;
export let KW: Uint16Array = lx.kws;
export let lim = 0;
/**
 * Per-token marks set by structural parsing: a token is marked "not a function name" when its entry equals
 * the current generation (bumped per statement, so nothing needs clearing).
 */
export let marks = new Uint32Array(256);
export let markGen = 1;
/** A fact came from a literal's value or from raw source text since the last load(). */
export let textRead = false;

/** Lexes `sql` and points the cursor at its tokens. */
export function load(sql: string): void {
  lx.lex(sql);
  src = sql;
  T = lx.types;
  S = lx.starts;
  E = lx.ends;
  KW = lx.kws;
  textRead = false;
  if (marks.length < lx.count) {
    marks = new Uint32Array(lx.types.length);
    markGen = 0;
  }
}

/** Forgets the text (so that a long string is not kept alive by the cursor). */
export function unload(): void {
  src = '';
}

/** A new statement: marks and CTEs of the previous one no longer count. */
export function nextStatement(): void {
  if (++markGen === 0xffffffff) {
    marks.fill(0);
    markGen = 1;
  }
  cteNames.length = 0;
}

/** CTEs of the statement: name, and the tokens [from, to) where a reference to it is not a relation. */
const cteNames: string[] = [];
const cteFrom: number[] = [];
const cteTo: number[] = [];

export function addCte(name: string, from: number, to: number): void {
  const n = cteNames.length;
  cteNames.push(name);
  cteFrom[n] = from;
  cteTo[n] = to;
}

/** Is `name` at token i a reference to a CTE in scope? */
export function isCteAt(name: string, i: number): boolean {
  for (let k = 0; k < cteNames.length; k++) if (cteNames[k] === name && i > (cteFrom[k] as number) && i < (cteTo[k] as number)) return true;
  return false;
}

/** Sets the look-ahead bound; returns the previous one (to restore). */
export function setLim(n: number): number {
  const prev = lim;
  lim = n;
  return prev;
}

export function mark(i: number): void {
  marks[i] = markGen;
}

export function isMarked(i: number): boolean {
  return marks[i] === markGen;
}

export function tt(i: number): number {
  return i < lim ? (T[i] as number) : 0;
}

export function kw(i: number): Keyword | '' {
  return i < lim ? (KEYWORDS[KW[i] as number] as Keyword | '') : '';
}

export function isName(i: number): boolean {
  const t = tt(i);
  return t === TokenType.Ident || t === TokenType.QuotedIdent;
}

function isLiteral(t: number): boolean {
  return t === TokenType.String || t === TokenType.DollarString || t === TokenType.Number;
}

/** Source text of token i. */
export function text(i: number): string {
  if (isLiteral(T[i] as number)) textRead = true;
  return src.slice(S[i], E[i]);
}

/** Raw source text of tokens [i, end), or null when empty. */
export function rawFrom(i: number, end: number): string | null {
  if (i >= end) return null;
  textRead = true;
  return src.slice(S[i], E[end - 1]);
}

/** Is token i the one-character operator `c`? */
export function isOpChar(i: number, c: number): boolean {
  return tt(i) === TokenType.Op && (S[i] as number) + 1 === E[i] && src.charCodeAt(S[i] as number) === c;
}

/** PostgreSQL's downcase_identifier: ASCII letters only. */
export function asciiLower(s: string): string {
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
export function identName(i: number): string {
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
export function stringValue(i: number): string | null {
  if (tt(i) !== TokenType.String) return null;
  textRead = true;
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

/** A setting value token as text: a string's value, or a name's or number's text; null otherwise. */
export function settingText(i: number): string | null {
  const t = tt(i);
  if (t === TokenType.String) return stringValue(i);
  if (t === TokenType.Ident || t === TokenType.Number) return text(i);
  return null;
}

/**
 * PostgreSQL's parse_bool: on/off, true/false, yes/no (and unique prefixes of those three pairs), 1/0,
 * case-insensitive. Null when `v` is none of them.
 */
export function parseBool(v: string): boolean | null {
  const s = asciiLower(v.trim());
  if (s.length === 0) return null;
  switch (s[0]) {
    case 't':
      return 'true'.startsWith(s) ? true : null;
    case 'f':
      return 'false'.startsWith(s) ? false : null;
    case 'y':
      return 'yes'.startsWith(s) ? true : null;
    case 'n':
      return 'no'.startsWith(s) ? false : null;
    case 'o':
      // "o" alone is ambiguous
      if (s.length >= 2 && 'on'.startsWith(s)) return true;
      if (s.length >= 2 && 'off'.startsWith(s)) return false;
      return null;
    case '1':
      return s === '1' ? true : null;
    case '0':
      return s === '0' ? false : null;
    default:
      return null;
  }
}

/** A boolean-ish setting value token (on/off, true/false, yes/no, 1/0, quoted or not), or null. */
export function boolValue(i: number): boolean | null {
  const v = settingText(i);
  return v === null ? null : parseBool(v);
}

/** Index after the `)` matching the `(` at i (or lim when unbalanced). */
export function skipGroup(i: number): number {
  let depth = 0;
  for (let j = i; j < lim; j++) {
    const t = T[j];
    if (t === TokenType.LParen) depth++;
    else if (t === TokenType.RParen && --depth === 0) return j + 1;
  }
  return lim;
}

/** End index (inclusive) of a dotted name chain starting at i: a, a.b, "A".b.c */
export function chainEnd(i: number): number {
  let j = i;
  while (j + 2 < lim && T[j + 1] === TokenType.Dot && (T[j + 2] === TokenType.Ident || T[j + 2] === TokenType.QuotedIdent)) j += 2;
  return j;
}

export function chainName(i: number, j: number): string {
  if (i === j) return identName(i);
  let out = identName(i);
  for (let k = i + 2; k <= j; k += 2) out += '.' + identName(k);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Facts under construction

export type Facts = {
  -readonly [K in keyof StatementFacts]: StatementFacts[K];
} & { functions: string[]; relations: string[]; setConfigCalls: SetConfigCall[] };

export const EMPTY: never[] = Object.freeze([]) as unknown as never[];

export function newFacts(): Facts {
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
    defaults: null,
    listen: null,
    cursor: null,
    prepared: null,
    preparedKind: null,
    show: null,
    understood: true,
    parsed: false,
  };
}

export function freezeFacts(f: Facts): StatementFacts {
  if (f.functions !== EMPTY) Object.freeze(f.functions);
  if (f.relations !== EMPTY) Object.freeze(f.relations);
  if (f.setConfigCalls !== EMPTY) Object.freeze(f.setConfigCalls);
  return Object.freeze(f);
}

/** Analyses the statement in tokens [a, b) into f (dispatch.ts; passed down to commands that nest one). */
export type Analyze = (f: Facts, a: number, b: number) => void;

export function addUnique(list: string[], v: string): string[] {
  if (list === EMPTY) return [v];
  if (!list.includes(v)) list.push(v);
  return list;
}

export function unknown(f: Facts): void {
  f.kind = 'unknown';
  f.understood = false;
}
