/**
 * The shape of SQL text: its bytes with every literal masked, for the classification cache. One pass over the
 * UTF-8 bytes, no decoding, no allocation (the shape goes into a reused scratch array).
 *
 * The scan mirrors router/lexer.ts token for token, so that two texts with the same shape lex to the same
 * tokens but for the values of their literals:
 * - string constants ('...', E'...' with backslash escapes, U&'...', B'...', X'...', N'...') become one
 *   byte LIT_STRING, dollar-quoted strings ($$...$$, $tag$...$tag$) LIT_DOLLAR, numbers LIT_NUMBER;
 * - identifiers (digits included: t1 and t2 differ), keywords, "quoted" identifiers, parameters ($1),
 *   operators and punctuation are kept byte for byte;
 * - a run of whitespace and comments becomes one SEP byte (none at the start or the end); comments right
 *   after a `;` are kept byte for byte instead, because a later statement's leading comment may be a hint.
 *   The first statement's leading hint is not in the shape: the cache keys on leadingHints() beside it.
 * Bytes >= 0x80 are identifier characters, as non-ASCII characters are for the lexer, and every delimiter
 * searched for is ASCII, so the byte scan and the lexer's scan of the decoded text agree even on invalid
 * UTF-8 (which decodes to U+FFFD, never to ASCII).
 *
 * Some texts have no shape (fingerprint() returns -1) and are classified every time: an unterminated string,
 * quoted identifier, dollar quote or comment (the statement is not understood anyway), a control character
 * outside literals (it could be mistaken for a mask byte), a non-ASCII dollar-quote tag.
 */

/** Mask bytes: below any byte kept verbatim outside a quoted identifier or comment. */
const LIT_STRING = 0x01;
const LIT_DOLLAR = 0x02;
const LIT_NUMBER = 0x03;
const SEP = 0x20;

const C_IDENT_START = 1;
const C_IDENT_CONT = 2;
const C_DIGIT = 4;
const C_OP = 8;
const C_SPACE = 16;
const C_CONTROL = 32;
const CLS = new Uint8Array(256);
/** 1 for identifier characters: the innermost loop's table. */
const IDENT_CONT = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  let k = 0;
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128) k |= C_IDENT_START | C_IDENT_CONT;
  if (c >= 48 && c <= 57) k |= C_DIGIT | C_IDENT_CONT;
  if (c === 36) k |= C_IDENT_CONT;
  if (c < 128 && '+-*/<>=~!@#%^&|`?'.includes(String.fromCharCode(c))) k |= C_OP;
  if (c === 32 || (c >= 9 && c <= 13)) k |= C_SPACE;
  else if (c < 32) k |= C_CONTROL;
  CLS[c] = k;
  IDENT_CONT[c] = (k & C_IDENT_CONT) !== 0 ? 1 : 0;
}

/**
 * The last shape computed: shape[0, shapeLength), zero-padded to whole 32-bit words so that hashing and
 * comparing go a word at a time (shapeWords views the same memory). Valid until the next fingerprint() call.
 */
let shape = new Uint8Array(1024);
let shapeWords = new Uint32Array(shape.buffer);
let shapeLength = 0;

/**
 * Computes the shape of buf[start, end) into `shape` and returns its hash (a non-negative 30-bit integer, a
 * V8 small integer as a Map key), or -1 when the text has no shape.
 */
export function fingerprint(buf: Uint8Array, start: number, end: number): number {
  if (shape.length < end - start + 4) {
    shape = new Uint8Array(Math.max(end - start + 4, shape.length * 2) & ~3);
    shapeWords = new Uint32Array(shape.buffer);
  }
  const out = shape;
  let o = 0;
  let sep = false;
  let afterSemi = false;
  let i = start;
  while (i < end) {
    const c = buf[i] as number;
    const cls = CLS[c] as number;
    // identifiers and keywords first: most of the bytes
    if ((cls & C_IDENT_START) !== 0) {
      const c1 = i + 1 < end ? (buf[i + 1] as number) : -1;
      if (c1 === 39 || c1 === 38) {
        // E'..' B'..' X'..' N'..' U&'..', or U&"..."
        const e = prefixedString(buf, i, end, c, c1);
        const q = e === NONE && c1 === 38 && (c | 0x20) === 117 && i + 2 < end && buf[i + 2] === 34 ? quotedEnd(buf, i + 2, end) : NONE;
        if (e === UNTERMINATED || q === UNTERMINATED) return -1;
        if (e !== NONE || q !== NONE) {
          if (sep && o > 0) out[o++] = SEP;
          sep = false;
          afterSemi = false;
          if (e !== NONE) {
            out[o++] = LIT_STRING;
            i = e;
          } else while (i < q) out[o++] = buf[i++] as number;
          continue;
        }
      }
      if (sep && o > 0) out[o++] = SEP;
      sep = false;
      afterSemi = false;
      out[o++] = c;
      i++;
      while (i < end) {
        const d = buf[i] as number;
        if (IDENT_CONT[d] === 0) break;
        out[o++] = d;
        i++;
      }
      continue;
    }
    if ((cls & C_SPACE) !== 0) {
      sep = true;
      i++;
      continue;
    }
    const c1 = i + 1 < end ? (buf[i + 1] as number) : -1;
    if (c === 45 && c1 === 45) {
      // -- comment, to the end of the line
      i += 2;
      while (i < end) {
        const d = buf[i++] as number;
        if (d === 10 || d === 13) break;
      }
      sep = true;
      continue;
    }
    if (c === 47 && c1 === 42) {
      const e = commentEnd(buf, i, end);
      if (e < 0) return -1;
      if (afterSemi) {
        if (sep && o > 0) out[o++] = SEP;
        sep = false;
        for (let k = i; k < e; k++) out[o++] = buf[k] as number;
      } else sep = true;
      i = e;
      continue;
    }
    if (sep) {
      if (o > 0) out[o++] = SEP;
      sep = false;
    }
    afterSemi = false;

    switch (c) {
      case 39: // '
        i = stringEnd(buf, i, end, false);
        if (i < 0) return -1;
        out[o++] = LIT_STRING;
        continue;
      case 34: {
        // "
        const e = quotedEnd(buf, i, end);
        if (e < 0) return -1;
        while (i < e) out[o++] = buf[i++] as number;
        continue;
      }
      case 36: {
        // $
        if (c1 >= 48 && c1 <= 57) {
          // $1: a parameter
          out[o++] = c;
          i++;
          while (i < end && (buf[i] as number) >= 48 && (buf[i] as number) <= 57) out[o++] = buf[i++] as number;
          continue;
        }
        const e = dollarEnd(buf, i, end);
        if (e === UNTERMINATED) return -1;
        if (e === NONE) {
          out[o++] = c; // a lone $
          i++;
        } else {
          out[o++] = LIT_DOLLAR;
          i = e;
        }
        continue;
      }
      case 59: // ;
        out[o++] = c;
        i++;
        afterSemi = true;
        continue;
      case 40:
      case 41:
      case 44:
      case 91:
      case 93:
        out[o++] = c;
        i++;
        continue;
      case 46: // .
        if (c1 >= 48 && c1 <= 57) {
          i = numberEnd(buf, i, end);
          out[o++] = LIT_NUMBER;
        } else if (c1 === 46) {
          out[o++] = 46;
          out[o++] = 46;
          i += 2;
        } else {
          out[o++] = 46;
          i++;
        }
        continue;
      case 58: // :  (:: and := are two bytes either way)
        out[o++] = c;
        i++;
        if (c1 === 58 || c1 === 61) {
          out[o++] = c1;
          i++;
        }
        continue;
      default:
        break;
    }

    if ((cls & C_DIGIT) !== 0) {
      i = numberEnd(buf, i, end);
      out[o++] = LIT_NUMBER;
      continue;
    }
    if ((cls & C_OP) !== 0) {
      const e = operatorEnd(buf, i, end);
      while (i < e) out[o++] = buf[i++] as number;
      continue;
    }
    if ((cls & C_CONTROL) !== 0) return -1;
    out[o++] = c; // anything else, one byte (the lexer's Other)
    i++;
  }
  shapeLength = o;
  while ((o & 3) !== 0) out[o++] = 0;
  return hashWords(o >>> 2);
}

/** Hash of shapeWords[0, n) (FNV-1a over words, then an avalanche), folded to 30 bits. */
function hashWords(n: number): number {
  const w = shapeWords;
  let h = 0x811c9dc5 ^ shapeLength;
  for (let k = 0; k < n; k++) h = Math.imul(h ^ (w[k] as number), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h & 0x3fffffff;
}

/** A kept shape: its words (zero-padded) and its length in bytes. */
export interface StoredShape {
  readonly words: Uint32Array;
  readonly length: number;
}

/** Does the last shape equal `other`? */
export function shapeEquals(other: StoredShape): boolean {
  if (other.length !== shapeLength) return false;
  const a = shapeWords;
  const b = other.words;
  for (let k = 0; k < b.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** A copy of the last shape, to keep. */
export function copyShape(): StoredShape {
  return { words: shapeWords.slice(0, (shapeLength + 3) >>> 2), length: shapeLength };
}

/** The bytes of a stored shape (tests, debugging). */
export function shapeBytes(s: StoredShape): Uint8Array {
  return new Uint8Array(s.words.buffer, s.words.byteOffset, s.length);
}

/** Scan results besides an end index: the construct runs past the text; there is no such construct here. */
const UNTERMINATED = -1;
const NONE = -2;

/**
 * The end of a string constant written with a prefix at i (identifier start c, then c1 = `'` or `&`): E'..'
 * (backslash escapes), B'..', X'..', N'..', U&'..'. NONE when there is none there, UNTERMINATED.
 */
function prefixedString(buf: Uint8Array, i: number, end: number, c: number, c1: number): number {
  const lc = c | 0x20;
  if (c1 === 39) return lc === 101 || lc === 98 || lc === 120 || lc === 110 ? stringEnd(buf, i + 1, end, lc === 101) : NONE;
  return lc === 117 && i + 2 < end && buf[i + 2] === 39 ? stringEnd(buf, i + 2, end, false) : NONE;
}

/** End of the block comment at i (nested comments included), or -1 when unterminated. */
function commentEnd(buf: Uint8Array, i: number, end: number): number {
  let depth = 1;
  i += 2;
  while (i < end) {
    const d = buf[i] as number;
    if (d === 42 && i + 1 < end && buf[i + 1] === 47) {
      i += 2;
      if (--depth === 0) return i;
      continue;
    }
    if (d === 47 && i + 1 < end && buf[i + 1] === 42) {
      depth++;
      i += 2;
      continue;
    }
    i++;
  }
  return -1;
}

/** End of the string whose opening quote is at q, or -1 when unterminated. */
function stringEnd(buf: Uint8Array, q: number, end: number, backslashEscapes: boolean): number {
  let i = q + 1;
  while (i < end) {
    const d = buf[i] as number;
    if (d === 92 && backslashEscapes) {
      i += 2;
      continue;
    }
    if (d === 39) {
      if (i + 1 < end && buf[i + 1] === 39) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return -1;
}

/** End of the quoted identifier whose opening quote is at q, or -1 when unterminated. */
function quotedEnd(buf: Uint8Array, q: number, end: number): number {
  let i = q + 1;
  while (i < end) {
    if (buf[i] === 34) {
      if (i + 1 < end && buf[i + 1] === 34) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return -1;
}

/**
 * End of the dollar-quoted string at i ($$...$$ or $tag$...$tag$); NONE when the `$` starts none (a lone `$`),
 * UNTERMINATED when it is unterminated or its tag is not ASCII (see the header).
 */
function dollarEnd(buf: Uint8Array, i: number, end: number): number {
  const c1 = i + 1 < end ? (buf[i + 1] as number) : -1;
  let tagEnd = -1; // index of the closing '$' of the opening delimiter
  if (c1 === 36) tagEnd = i + 1;
  else if (c1 !== -1 && ((CLS[c1] as number) & C_IDENT_START) !== 0) {
    for (let j = i + 2; j < end; j++) {
      const d = buf[j] as number;
      if (d === 36) {
        tagEnd = j;
        break;
      }
      if (((CLS[d] as number) & C_IDENT_CONT) === 0) break;
    }
  }
  if (tagEnd < 0) return NONE;
  for (let j = i + 1; j < tagEnd; j++) if ((buf[j] as number) >= 128) return UNTERMINATED;
  const len = tagEnd + 1 - i;
  for (let k = tagEnd + 1; k + len <= end; k++) {
    if (buf[k] !== 36) continue;
    let m = 1;
    while (m < len && buf[k + m] === buf[i + m]) m++;
    if (m === len) return k + len;
  }
  return UNTERMINATED;
}

/** End of the number at i: the lexer's scanNumber. */
function numberEnd(buf: Uint8Array, i: number, end: number): number {
  let j = i;
  if (buf[j] === 48 && j + 1 < end) {
    const p = (buf[j + 1] as number) | 0x20;
    if (p === 120 || p === 111 || p === 98) {
      // 0x.. 0o.. 0b..
      j += 2;
      while (j < end && ((CLS[buf[j] as number] as number) & C_IDENT_CONT) !== 0) j++;
      return j;
    }
  }
  let d = j < end ? (buf[j] as number) : -1;
  while ((d >= 48 && d <= 57) || d === 95) d = ++j < end ? (buf[j] as number) : -1;
  // fraction, but not the `..` of a range (1..10)
  if (d === 46 && !(j + 1 < end && buf[j + 1] === 46)) {
    d = ++j < end ? (buf[j] as number) : -1;
    while ((d >= 48 && d <= 57) || d === 95) d = ++j < end ? (buf[j] as number) : -1;
  }
  if ((d | 0x20) === 101) {
    let k = j + 1;
    const s = k < end ? (buf[k] as number) : -1;
    if (s === 43 || s === 45) k++;
    if (k < end && (buf[k] as number) >= 48 && (buf[k] as number) <= 57) {
      j = k;
      while (j < end && (buf[j] as number) >= 48 && (buf[j] as number) <= 57) j++;
    }
    d = j < end ? (buf[j] as number) : -1;
  }
  // trailing junk (123abc) belongs to the number, as PostgreSQL 15+ reports it
  while (d !== -1 && d !== 36 && ((CLS[d] as number) & C_IDENT_CONT) !== 0) d = ++j < end ? (buf[j] as number) : -1;
  return j;
}

/** End of the operator at i: the lexer's operator run, cut before a comment and before a trailing + or -. */
function operatorEnd(buf: Uint8Array, i: number, end: number): number {
  let j = i + 1;
  while (j < end) {
    const d = buf[j] as number;
    if (((CLS[d] as number) & C_OP) === 0) break;
    const d1 = j + 1 < end ? (buf[j + 1] as number) : -1;
    if ((d === 45 && d1 === 45) || (d === 47 && d1 === 42)) break;
    j++;
  }
  if (j - i > 1) {
    const last = buf[j - 1] as number;
    if (last === 43 || last === 45) {
      let k = j - 2;
      for (; k >= i; k--) {
        const d = buf[k] as number;
        if (d === 126 || d === 33 || d === 64 || d === 35 || d === 94 || d === 38 || d === 124 || d === 96 || d === 63 || d === 37) break;
      }
      if (k < i) {
        do j--;
        while (j - i > 1 && (buf[j - 1] === 43 || buf[j - 1] === 45));
      }
    }
  }
  return j;
}
