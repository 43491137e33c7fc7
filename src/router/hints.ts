/**
 * Routing hints written as comments in front of a statement: pgpool's `/*NO LOAD BALANCE*\/` and our
 * `/* pgproxy: primary *\/`. A hint comment is read with its whitespace dropped and ASCII letters
 * lowercased; it is either a whole known phrase or `pgproxy:` followed by comma-separated directives
 * (`name` or `name=value`; unknown directives are ignored, so that a newer client works with an older proxy).
 *
 * Hints are bits of a number, so that the common case (no comment) costs nothing and allocates nothing.
 * Valued directives (a later `min_lsn=0/1A2B3C`, `max_lag_ms=500`) are meant to leave their values in a
 * reused module-level record next to their bit; add the bit to Hint and a case to `directive()`.
 *
 * A comment longer than MAX_HINT_COMMENT, or with a non-ASCII character, carries no hint (so that the limit
 * means the same in bytes and in characters).
 */

export const enum Hint {
  None = 0,
  /** Run on the primary (`/*NO LOAD BALANCE*\/`, `pgproxy: primary`, `pgproxy: route=primary`). */
  Primary = 1,
  /** Run on a standby (`pgproxy: route=standby`); a statement that needs the primary is refused. */
  Standby = 2,
  /** Read only from a node that has replayed HINT_VALUES.minLsn (`pgproxy: min_lsn=0/1A2B3C`). */
  MinLsn = 4,
  /** Read only from a node at most HINT_VALUES.maxLagMs behind (`pgproxy: max_lag_ms=500`). */
  MaxLagMs = 8,
}

/**
 * The values of the valued hints found by the last leadingHints() call (valid until the next call; read at once).
 */
export const HINT_VALUES = { minLsn: 0n, maxLagMs: 0 };

/** The hint bits the classifier reports as statement facts (StatementFacts.hint); the cache keys on them. */
export const CLASSIFIER_HINTS: number = Hint.Primary;

/** Longest comment, delimiters included, that is read for hints. */
export const MAX_HINT_COMMENT = 200;

const squashed = new Uint8Array(MAX_HINT_COMMENT);

const PHRASE_NO_LOAD_BALANCE = ascii('noloadbalance');
const PREFIX_PGPROXY = ascii('pgproxy:');
const DIRECTIVE_PRIMARY = ascii('primary');
const DIRECTIVE_ROUTE = ascii('route');
const DIRECTIVE_STANDBY = ascii('standby');
const DIRECTIVE_MIN_LSN = ascii('min_lsn');
const DIRECTIVE_MAX_LAG_MS = ascii('max_lag_ms');

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

/** Hints of a comment whose body (between the delimiters) is buf[s, e). */
export function commentHintBytes(buf: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let k = s; k < e; k++) {
    let c = buf[k] as number;
    if (c === 32 || (c >= 9 && c <= 13)) continue;
    if (c >= 128 || n === squashed.length) return Hint.None;
    if (c >= 65 && c <= 90) c |= 0x20;
    squashed[n++] = c;
  }
  return hintOfSquashed(n);
}

/** Hints of a comment whose body (between the delimiters) is src[s, e). */
export function commentHintText(src: string, s: number, e: number): number {
  let n = 0;
  for (let k = s; k < e; k++) {
    let c = src.charCodeAt(k);
    if (c === 32 || (c >= 9 && c <= 13)) continue;
    if (c >= 128 || n === squashed.length) return Hint.None;
    if (c >= 65 && c <= 90) c |= 0x20;
    squashed[n++] = c;
  }
  return hintOfSquashed(n);
}

function matchAt(at: number, end: number, word: Uint8Array): boolean {
  if (end - at !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (squashed[at + k] !== word[k]) return false;
  return true;
}

function startsWith(n: number, word: Uint8Array): boolean {
  if (n < word.length) return false;
  for (let k = 0; k < word.length; k++) if (squashed[k] !== word[k]) return false;
  return true;
}

function hintOfSquashed(n: number): number {
  if (matchAt(0, n, PHRASE_NO_LOAD_BALANCE)) return Hint.Primary;
  if (!startsWith(n, PREFIX_PGPROXY)) return Hint.None;
  let hints = Hint.None;
  let at = PREFIX_PGPROXY.length;
  while (at < n) {
    let end = at;
    let eq = -1;
    while (end < n && squashed[end] !== 44) {
      if (squashed[end] === 61 && eq < 0) eq = end;
      end++;
    }
    hints |= directive(at, eq < 0 ? end : eq, eq < 0 ? -1 : eq + 1, end);
    at = end + 1;
  }
  return hints;
}

/** One `name[=value]` directive: squashed[nameStart, nameEnd), value squashed[valueStart, end) or valueStart -1. */
function directive(nameStart: number, nameEnd: number, valueStart: number, end: number): number {
  if (valueStart < 0) return matchAt(nameStart, nameEnd, DIRECTIVE_PRIMARY) ? Hint.Primary : Hint.None;
  if (matchAt(nameStart, nameEnd, DIRECTIVE_ROUTE)) {
    if (matchAt(valueStart, end, DIRECTIVE_PRIMARY)) return Hint.Primary;
    if (matchAt(valueStart, end, DIRECTIVE_STANDBY)) return Hint.Standby;
    return Hint.None;
  }
  if (matchAt(nameStart, nameEnd, DIRECTIVE_MIN_LSN)) {
    const lsn = lsnOfSquashed(valueStart, end);
    if (lsn === null) return Hint.None;
    HINT_VALUES.minLsn = lsn;
    return Hint.MinLsn;
  }
  if (matchAt(nameStart, nameEnd, DIRECTIVE_MAX_LAG_MS)) {
    let v = 0;
    if (end === valueStart || end - valueStart > 12) return Hint.None;
    for (let k = valueStart; k < end; k++) {
      const c = squashed[k]!;
      if (c < 48 || c > 57) return Hint.None;
      v = v * 10 + (c - 48);
    }
    HINT_VALUES.maxLagMs = v;
    return Hint.MaxLagMs;
  }
  return Hint.None;
}

/** An LSN `X/Y` (hexadecimal, lowercased) in squashed[s, e), or null. */
function lsnOfSquashed(s: number, e: number): bigint | null {
  let hi = 0;
  let lo = 0;
  let slash = -1;
  for (let k = s; k < e; k++) {
    const c = squashed[k]!;
    if (c === 47) {
      if (slash >= 0 || k === s) return null;
      slash = k;
      continue;
    }
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return null;
    if (slash < 0) hi = hi * 16 + d;
    else lo = lo * 16 + d;
    if ((slash < 0 ? k - s : k - slash) > 8) return null;
  }
  if (slash < 0 || slash === e - 1) return null;
  return (BigInt(hi) << 32n) + BigInt(lo);
}

/**
 * Hints of the first statement of the SQL text buf[start, end) (a Query's or Parse's text as it arrived):
 * its leading comments, read the way the lexer reads them. A `;` before the first token ends an empty
 * statement, whose hints go with it.
 */
export function leadingHints(buf: Uint8Array, start: number, end: number): number {
  let hints = Hint.None;
  let i = start;
  while (i < end) {
    const c = buf[i] as number;
    if (c === 32 || (c >= 9 && c <= 13)) {
      i++;
      continue;
    }
    const c1 = i + 1 < end ? (buf[i + 1] as number) : -1;
    if (c === 45 && c1 === 45) {
      i += 2;
      while (i < end) {
        const d = buf[i++] as number;
        if (d === 10 || d === 13) break;
      }
      continue;
    }
    if (c === 47 && c1 === 42) {
      const s = i;
      let depth = 1;
      i += 2;
      while (i < end && depth > 0) {
        const d = buf[i] as number;
        const d1 = i + 1 < end ? (buf[i + 1] as number) : -1;
        if (d === 42 && d1 === 47) {
          depth--;
          i += 2;
        } else if (d === 47 && d1 === 42) {
          depth++;
          i += 2;
        } else i++;
      }
      if (depth > 0) return hints; // unterminated: the statement is not understood anyway
      if (i - s <= MAX_HINT_COMMENT) hints |= commentHintBytes(buf, s + 2, i - 2);
      continue;
    }
    if (c === 59) {
      hints = Hint.None;
      i++;
      continue;
    }
    break;
  }
  return hints;
}
