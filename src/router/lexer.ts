/**
 * (Over 500 lines on purpose: one scanner state machine and its keyword table; split up, its branches would
 * share their per-statement state across modules.)
 *
 * PostgreSQL-compatible SQL lexer: one pass over char codes, tokens written into reused typed arrays (no object
 * per token), statements split at `;` the way psql splits them.
 *
 * What it knows (scan.l, psqlscan.l): whitespace; `--` line comments; nested block comments; '...' with '';
 * E'...' with backslash escapes; U&'...', B'...', X'...', N'...'; $$...$$ and $tag$...$tag$ ($1 is a parameter);
 * "quoted" identifiers with ""; U&"..."; `::` casts; numbers; $n parameters; operator runs (which end before
 * `--` or `/*`, as in PostgreSQL).
 *
 * Statement splitting follows psql: a `;` ends a statement only outside parentheses (CREATE RULE ... DO ALSO
 * (stmt; stmt) is one statement) and outside the BEGIN ... END of a CREATE [OR REPLACE] FUNCTION|PROCEDURE
 * body (BEGIN ATOMIC). The server parses a simple Query string as a whole, so a stray `(` only makes the
 * string a syntax error there; we mark such a statement UNBALANCED so that it is not trusted.
 *
 * Assumes standard_conforming_strings = on (the default since 9.1): a backslash in '...' is an ordinary char.
 * Never throws and never loops: every branch advances the position, unterminated constructs end at EOF and
 * set UNTERMINATED on the statement they are in.
 *
 * classify/shape.ts scans the UTF-8 bytes the same way (for the classification cache): a change to how text is
 * split into tokens here must be made there too (test/unit/router/shape.test.ts checks that they agree).
 */

import { Hint, MAX_HINT_COMMENT, commentHintText } from './hints.js';

export const enum TokenType {
  Ident = 1, // unquoted identifier or keyword (KEYWORDS id in `kws`)
  QuotedIdent = 2, // "..." or U&"..."
  String = 3, // '...', E'...', U&'...', B'...', X'...', N'...'
  DollarString = 4, // $$...$$, $tag$...$tag$
  Number = 5,
  Param = 6, // $1
  Op = 7, // operator run: + - * / < > = ~ ! @ # % ^ & | ` ? and :=
  LParen = 8,
  RParen = 9,
  Comma = 10,
  Dot = 11,
  LBracket = 12,
  RBracket = 13,
  Cast = 14, // ::
  Colon = 15,
  Semicolon = 16, // only inside parentheses or a BEGIN ATOMIC body; elsewhere `;` ends the statement
  Other = 17, // anything else, one char (a lone `$`, `\`, ...)
}

/** Statement flags (`stmtFlags`). */
export const enum StmtFlag {
  Unterminated = 1, // EOF inside a string, quoted identifier, dollar quote or comment
  HintPrimary = 2, // a leading /*NO LOAD BALANCE*/ or /* pgproxy: primary */
  Unbalanced = 4, // parentheses do not balance
}

/** Keyword flags (`KEYWORD_FLAGS`). */
export const enum KwFlag {
  /** Followed by `(` it is syntax (IN (, CAST(, varchar(10), OVER (...), not a function call. */
  NotFunction = 1,
}

/**
 * Words the classifier looks at, and words that are never function names. Index = keyword id (0 = not a
 * keyword). A word here is still a valid identifier where PostgreSQL allows it; the classifier only treats it
 * as a keyword in the positions where it expects one.
 */
const KEYWORD_SPEC = [
  // statement starts
  ['select', 1], ['insert', 1], ['update', 1], ['delete', 1], ['merge', 1], ['with', 1], ['values', 1], ['table', 1],
  ['show', 0], ['explain', 1], ['copy', 1], ['create', 1], ['alter', 0], ['drop', 0], ['truncate', 0],
  ['comment', 0], ['grant', 1], ['revoke', 0], ['security', 0], ['label', 0], ['refresh', 0], ['reindex', 1],
  ['cluster', 1], ['vacuum', 1], ['analyze', 1], ['analyse', 1], ['checkpoint', 0], ['begin', 0], ['start', 0],
  ['commit', 0], ['end', 1], ['rollback', 0], ['abort', 0], ['savepoint', 0], ['release', 0], ['prepare', 0],
  ['prepared', 0], ['set', 1], ['reset', 1], ['discard', 0], ['lock', 0], ['call', 0], ['do', 1], ['listen', 0],
  ['notify', 0], ['unlisten', 0], ['execute', 0], ['deallocate', 0], ['declare', 0], ['fetch', 1], ['move', 0],
  ['close', 0], ['load', 0], ['import', 0], ['reassign', 0], ['owned', 0], ['system', 0],
  // transaction and session words
  ['transaction', 0], ['work', 0], ['read', 0], ['write', 0], ['only', 1], ['isolation', 0], ['level', 0],
  ['serializable', 0], ['repeatable', 1], ['committed', 0], ['uncommitted', 0], ['deferrable', 1], ['not', 1],
  ['chain', 0], ['and', 1], ['no', 0], ['to', 1], ['session', 0], ['local', 0], ['characteristics', 0], ['as', 1],
  ['time', 1], ['zone', 1], ['names', 0], ['schema', 0], ['role', 0], ['authorization', 1], ['from', 1],
  ['current', 0], ['all', 1], ['plans', 0], ['sequences', 0], ['temp', 0], ['temporary', 0], ['xml', 0],
  ['option', 0], ['constraints', 0], ['snapshot', 0],
  // query structure
  ['into', 1], ['for', 1], ['key', 1], ['share', 0], ['nowait', 0], ['of', 1], ['on', 1], ['in', 1], ['hold', 0],
  ['without', 0], ['cursor', 0], ['binary', 1], ['scroll', 0], ['insensitive', 0], ['asensitive', 0], ['or', 1],
  ['replace', 0], ['unique', 1], ['unlogged', 0], ['global', 0], ['materialized', 1], ['view', 0], ['index', 0],
  ['sequence', 0], ['function', 0], ['procedure', 0], ['aggregate', 0], ['routine', 0], ['trigger', 0],
  ['type', 0], ['domain', 0], ['foreign', 1], ['event', 0], ['access', 0], ['text', 0], ['search', 0],
  ['user', 1], ['mapping', 0], ['operator', 1], ['class', 0], ['family', 0], ['recursive', 0], ['cycle', 0],
  ['join', 1], ['lateral', 1], ['using', 1], ['where', 1], ['group', 1], ['having', 1], ['order', 1],
  ['limit', 1], ['offset', 1], ['window', 1], ['union', 1], ['intersect', 1], ['except', 1], ['returning', 1],
  ['by', 1], ['partition', 1], ['distinct', 1], ['references', 1], ['tablesample', 1], ['if', 0], ['exists', 1],
  ['verbose', 1], ['true', 1], ['false', 1], ['default', 1], ['conflict', 1], ['statistics', 0],
  ['collation', 1], ['then', 1], ['matched', 0], ['rule', 0], ['policy', 0], ['concurrently', 1],
  ['trusted', 0], ['procedural', 0], ['large', 0], ['object', 0], ['data', 0], ['wrapper', 0], ['privileges', 0],
  ['method', 0], ['conversion', 0], ['after', 0], ['before', 0], ['instead', 1], ['rows', 0], ['range', 0], ['groups', 0],
  // never function names when followed by '(' (reserved and col_name keywords, typmod types, syntax words)
  ['any', 1], ['array', 1], ['asc', 1], ['asymmetric', 1], ['both', 1], ['case', 1], ['cast', 1], ['check', 1],
  ['collate', 1], ['column', 1], ['constraint', 1], ['current_catalog', 1], ['current_date', 1],
  ['current_role', 1], ['current_time', 1], ['current_timestamp', 1], ['current_user', 1], ['desc', 1],
  ['else', 1], ['initially', 1], ['leading', 1], ['localtime', 1], ['localtimestamp', 1], ['null', 1],
  ['placing', 1], ['primary', 1], ['session_user', 1], ['some', 1], ['symmetric', 1], ['system_user', 1],
  ['trailing', 1], ['variadic', 1], ['when', 1], ['between', 1], ['bigint', 1], ['bit', 1], ['boolean', 1],
  ['char', 1], ['character', 1], ['coalesce', 1], ['dec', 1], ['decimal', 1], ['extract', 1], ['float', 1],
  ['greatest', 1], ['grouping', 1], ['inout', 1], ['int', 1], ['integer', 1], ['interval', 1], ['json', 1],
  ['json_array', 1], ['json_arrayagg', 1], ['json_exists', 1], ['json_object', 1], ['json_objectagg', 1],
  ['json_query', 1], ['json_scalar', 1], ['json_serialize', 1], ['json_table', 1], ['json_value', 1],
  ['least', 1], ['merge_action', 1], ['national', 1], ['nchar', 1], ['none', 1], ['normalize', 1],
  ['nullif', 1], ['numeric', 1], ['out', 1], ['overlay', 1], ['position', 1], ['precision', 1], ['real', 1],
  ['row', 1], ['setof', 1], ['smallint', 1], ['substring', 1], ['timestamp', 1], ['treat', 1], ['trim', 1],
  ['varchar', 1], ['xmlattributes', 1], ['xmlconcat', 1], ['xmlelement', 1], ['xmlexists', 1],
  ['xmlforest', 1], ['xmlnamespaces', 1], ['xmlparse', 1], ['xmlpi', 1], ['xmlroot', 1], ['xmlserialize', 1],
  ['xmltable', 1], ['over', 1], ['filter', 1], ['within', 1], ['include', 1], ['rollup', 1], ['cube', 1],
  ['sets', 1], ['options', 1], ['exclude', 1], ['enum', 1], ['identity', 1], ['varying', 1], ['like', 1],
  ['ilike', 1], ['similar', 1], ['is', 1], ['isnull', 1], ['notnull', 1], ['overlaps', 1], ['cross', 1],
  ['inner', 1], ['outer', 1], ['natural', 1], ['full', 1], ['also', 1], ['columns', 1], ['nested', 1], ['first', 1], ['next', 1], ['second', 1],
] as const satisfies readonly (readonly [string, 0 | 1])[];

export type Keyword = (typeof KEYWORD_SPEC)[number][0];

/** Keyword by id; id 0 is '' (not a keyword). */
export const KEYWORDS: readonly (Keyword | '')[] = ['', ...KEYWORD_SPEC.map((k) => k[0])];
export const KEYWORD_FLAGS: Uint8Array = Uint8Array.from([0, ...KEYWORD_SPEC.map((k) => k[1])]);

const KW_TABLE_BITS = 10;
const KW_TABLE_MASK = (1 << KW_TABLE_BITS) - 1;
const kwTable = new Uint16Array(1 << KW_TABLE_BITS); // slot -> keyword id (0 = empty)
let kwMaxLen = 0;

function hashStep(h: number, lowerCode: number): number {
  return (Math.imul(h, 31) + lowerCode) | 0;
}
function slotOf(h: number): number {
  return (h ^ (h >>> KW_TABLE_BITS) ^ (h >>> 20)) & KW_TABLE_MASK;
}

for (let id = 1; id < KEYWORDS.length; id++) {
  const w = KEYWORDS[id] as string;
  if (w.length > kwMaxLen) kwMaxLen = w.length;
  let h = 0;
  for (let i = 0; i < w.length; i++) h = hashStep(h, w.charCodeAt(i));
  let s = slotOf(h);
  while (kwTable[s] !== 0) s = (s + 1) & KW_TABLE_MASK;
  kwTable[s] = id;
}

/** Keyword id of src[start, end) (ASCII case-insensitive) given its lowercased hash, or 0. */
function lookupKeyword(src: string, start: number, end: number, h: number): number {
  const len = end - start;
  let s = slotOf(h);
  for (;;) {
    const id = kwTable[s] as number;
    if (id === 0) return 0;
    const w = KEYWORDS[id] as string;
    if (w.length === len) {
      let k = 0;
      while (k < len) {
        let c = src.charCodeAt(start + k);
        if (c >= 65 && c <= 90) c |= 0x20;
        if (c !== w.charCodeAt(k)) break;
        k++;
      }
      if (k === len) return id;
    }
    s = (s + 1) & KW_TABLE_MASK;
  }
}

/** Keyword id of a lowercase word, for code that needs ids (0 if not a keyword). */
export function keywordId(word: Keyword): number {
  return KEYWORDS.indexOf(word);
}

const KW_BEGIN = keywordId('begin');
const KW_CASE = keywordId('case');
const KW_END = keywordId('end');
const KW_CREATE = keywordId('create');
const KW_FUNCTION = keywordId('function');
const KW_PROCEDURE = keywordId('procedure');
const KW_OR = keywordId('or');
const KW_REPLACE = keywordId('replace');

// ASCII character classes (non-ASCII chars are identifier chars in PostgreSQL).
const C_IDENT_START = 1;
const C_IDENT_CONT = 2;
const C_DIGIT = 4;
const C_OP = 8;
const C_SPACE = 16;
const CHAR_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  let k = 0;
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95) k |= C_IDENT_START | C_IDENT_CONT;
  if (c >= 48 && c <= 57) k |= C_DIGIT | C_IDENT_CONT;
  if (c === 36) k |= C_IDENT_CONT;
  if ('+-*/<>=~!@#%^&|`?'.includes(String.fromCharCode(c))) k |= C_OP;
  if (c === 32 || (c >= 9 && c <= 13)) k |= C_SPACE;
  CHAR_CLASS[c] = k;
}

function isIdentStart(c: number): boolean {
  return c >= 128 || ((CHAR_CLASS[c] as number) & C_IDENT_START) !== 0;
}
function isIdentCont(c: number): boolean {
  return c >= 128 || ((CHAR_CLASS[c] as number) & C_IDENT_CONT) !== 0;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
/** PostgreSQL operator characters: + - * / < > = ~ ! @ # % ^ & | ` ? */
function isOpChar(c: number): boolean {
  return c < 128 && ((CHAR_CLASS[c] as number) & C_OP) !== 0;
}
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

export class Lexer {
  src = '';
  /** Tokens: type, [start, end) in src, keyword id (Ident only). */
  count = 0;
  types = new Uint8Array(256);
  starts = new Int32Array(256);
  ends = new Int32Array(256);
  kws = new Uint16Array(256);
  /** Statements: token range [stmtFirst, stmtEnd), flags, text range [stmtTextStart, stmtTextEnd). */
  stmtCount = 0;
  stmtFirst = new Int32Array(8);
  stmtEnd = new Int32Array(8);
  stmtFlags = new Uint8Array(8);
  stmtTextStart = new Int32Array(8);
  stmtTextEnd = new Int32Array(8);

  // per-statement state
  private stFirst = 0;
  private stFlags = 0;
  private stParen = 0;
  private stBeginDepth = 0;
  private stIdentCount = 0;
  private stRoutine = 0; // psql's CREATE [OR REPLACE] FUNCTION|PROCEDURE detector, one code per leading word

  private push(type: number, start: number, end: number, kw: number): void {
    const n = this.count;
    if (n === this.types.length) this.growTokens();
    this.types[n] = type;
    this.starts[n] = start;
    this.ends[n] = end;
    this.kws[n] = kw;
    this.count = n + 1;
  }

  private growTokens(): void {
    const cap = this.types.length * 2;
    const t = new Uint8Array(cap);
    t.set(this.types);
    this.types = t;
    const s = new Int32Array(cap);
    s.set(this.starts);
    this.starts = s;
    const e = new Int32Array(cap);
    e.set(this.ends);
    this.ends = e;
    const k = new Uint16Array(cap);
    k.set(this.kws);
    this.kws = k;
  }

  private endStatement(): void {
    const first = this.stFirst;
    const last = this.count;
    if (this.stParen !== 0) this.stFlags |= StmtFlag.Unbalanced;
    // Empty statements are dropped, except one that is only an unterminated comment (not to be trusted).
    if (last > first || (this.stFlags & StmtFlag.Unterminated) !== 0) {
      const n = this.stmtCount;
      if (n === this.stmtFirst.length) this.growStatements();
      this.stmtFirst[n] = first;
      this.stmtEnd[n] = last;
      this.stmtFlags[n] = this.stFlags;
      this.stmtTextStart[n] = last > first ? (this.starts[first] as number) : 0;
      this.stmtTextEnd[n] = last > first ? (this.ends[last - 1] as number) : 0;
      this.stmtCount = n + 1;
    }
    this.stFirst = last;
    this.stFlags = 0;
    this.stParen = 0;
    this.stBeginDepth = 0;
    this.stIdentCount = 0;
    this.stRoutine = 0;
  }

  private growStatements(): void {
    const cap = this.stmtFirst.length * 2;
    const a = new Int32Array(cap);
    a.set(this.stmtFirst);
    this.stmtFirst = a;
    const b = new Int32Array(cap);
    b.set(this.stmtEnd);
    this.stmtEnd = b;
    const f = new Uint8Array(cap);
    f.set(this.stmtFlags);
    this.stmtFlags = f;
    const s = new Int32Array(cap);
    s.set(this.stmtTextStart);
    this.stmtTextStart = s;
    const e = new Int32Array(cap);
    e.set(this.stmtTextEnd);
    this.stmtTextEnd = e;
  }

  /** psql's BEGIN ... END tracking inside CREATE [OR REPLACE] FUNCTION|PROCEDURE (for BEGIN ATOMIC bodies). */
  private trackIdent(kw: number): void {
    const n = this.stIdentCount++;
    if (n < 4) {
      const code = kw === KW_CREATE ? 1 : kw === KW_FUNCTION || kw === KW_PROCEDURE ? 2 : kw === KW_OR ? 3 : kw === KW_REPLACE ? 4 : 0;
      this.stRoutine |= code << (n * 4);
    }
    const r = this.stRoutine;
    // create function|procedure (0x21) or create or replace function|procedure (0x2431)
    if (this.stParen === 0 && ((r & 0xff) === 0x21 || (r & 0xffff) === 0x2431)) {
      if (kw === KW_BEGIN) this.stBeginDepth++;
      else if (kw === KW_CASE) {
        if (this.stBeginDepth >= 1) this.stBeginDepth++;
      } else if (kw === KW_END) {
        if (this.stBeginDepth > 0) this.stBeginDepth--;
      }
    }
  }

  lex(src: string): void {
    this.src = src;
    this.count = 0;
    this.stmtCount = 0;
    this.stFirst = 0;
    this.stFlags = 0;
    this.stParen = 0;
    this.stBeginDepth = 0;
    this.stIdentCount = 0;
    this.stRoutine = 0;
    const n = src.length;
    let i = 0;
    while (i < n) {
      const c = src.charCodeAt(i);
      if (isSpace(c)) {
        i++;
        continue;
      }
      const c1 = i + 1 < n ? src.charCodeAt(i + 1) : -1;

      // comments
      if (c === 45 && c1 === 45) {
        i = this.skipLineComment(i + 2);
        continue;
      }
      if (c === 47 && c1 === 42) {
        i = this.skipBlockComment(i);
        continue;
      }

      // identifiers, keywords, prefixed strings
      if (isIdentStart(c)) {
        if (c1 === 39) {
          // E'..' B'..' X'..' N'..'
          const lc = c | 0x20;
          if (lc === 101) {
            i = this.scanString(i, i + 1, true);
            continue;
          }
          if (lc === 98 || lc === 120 || lc === 110) {
            i = this.scanString(i, i + 1, false);
            continue;
          }
        } else if ((c | 0x20) === 117 && c1 === 38 && i + 2 < n) {
          // U&'..' U&".."
          const c2 = src.charCodeAt(i + 2);
          if (c2 === 39) {
            i = this.scanString(i, i + 2, false);
            continue;
          }
          if (c2 === 34) {
            i = this.scanQuotedIdent(i, i + 2);
            continue;
          }
        }
        let h = 0;
        let ascii = true;
        let j = i;
        while (j < n) {
          let d = src.charCodeAt(j);
          if (!isIdentCont(d)) break;
          if (d >= 128) ascii = false;
          else if (d >= 65 && d <= 90) d |= 0x20;
          h = hashStep(h, d);
          j++;
        }
        const kw = ascii && j - i <= kwMaxLen ? lookupKeyword(src, i, j, h) : 0;
        this.push(TokenType.Ident, i, j, kw);
        this.trackIdent(kw);
        i = j;
        continue;
      }

      switch (c) {
        case 39: // '
          i = this.scanString(i, i, false);
          continue;
        case 34: // "
          i = this.scanQuotedIdent(i, i);
          continue;
        case 36: // $
          i = this.scanDollar(i);
          continue;
        case 40: // (
          this.stParen++;
          this.push(TokenType.LParen, i, i + 1, 0);
          i++;
          continue;
        case 41: // )
          if (this.stParen > 0) this.stParen--;
          else this.stFlags |= StmtFlag.Unbalanced;
          this.push(TokenType.RParen, i, i + 1, 0);
          i++;
          continue;
        case 44:
          this.push(TokenType.Comma, i, i + 1, 0);
          i++;
          continue;
        case 91:
          this.push(TokenType.LBracket, i, i + 1, 0);
          i++;
          continue;
        case 93:
          this.push(TokenType.RBracket, i, i + 1, 0);
          i++;
          continue;
        case 59: // ;
          if (this.stParen > 0 || this.stBeginDepth > 0) this.push(TokenType.Semicolon, i, i + 1, 0);
          else this.endStatement();
          i++;
          continue;
        case 46: // .
          if (isDigit(c1)) {
            i = this.scanNumber(i);
          } else if (c1 === 46) {
            this.push(TokenType.Op, i, i + 2, 0); // `..` (PL/pgSQL ranges)
            i += 2;
          } else {
            this.push(TokenType.Dot, i, i + 1, 0);
            i++;
          }
          continue;
        case 58: // :
          if (c1 === 58) {
            this.push(TokenType.Cast, i, i + 2, 0);
            i += 2;
          } else if (c1 === 61) {
            this.push(TokenType.Op, i, i + 2, 0);
            i += 2;
          } else {
            this.push(TokenType.Colon, i, i + 1, 0);
            i++;
          }
          continue;
      }

      if (isDigit(c)) {
        i = this.scanNumber(i);
        continue;
      }

      if (isOpChar(c)) {
        let j = i + 1;
        while (j < n) {
          const d = src.charCodeAt(j);
          if (!isOpChar(d)) break;
          // a comment start ends the operator
          const d1 = j + 1 < n ? src.charCodeAt(j + 1) : -1;
          if ((d === 45 && d1 === 45) || (d === 47 && d1 === 42)) break;
          j++;
        }
        // PostgreSQL: a multi-char operator may not end in + or - unless it has one of ~ ! @ # ^ & | ` ? %
        // (so `=-1` is `=` `-` `1`).
        if (j - i > 1) {
          const last = src.charCodeAt(j - 1);
          if (last === 43 || last === 45) {
            let k = j - 2;
            for (; k >= i; k--) {
              const d = src.charCodeAt(k);
              if (d === 126 || d === 33 || d === 64 || d === 35 || d === 94 || d === 38 || d === 124 || d === 96 || d === 63 || d === 37) break;
            }
            if (k < i) {
              do j--;
              while (j - i > 1 && (src.charCodeAt(j - 1) === 43 || src.charCodeAt(j - 1) === 45));
            }
          }
        }
        this.push(TokenType.Op, i, j, 0);
        i = j;
        continue;
      }

      this.push(TokenType.Other, i, i + 1, 0);
      i++;
    }
    this.endStatement();
  }

  private skipLineComment(i: number): number {
    const src = this.src;
    const n = src.length;
    while (i < n) {
      const c = src.charCodeAt(i);
      if (c === 10 || c === 13) return i + 1;
      i++;
    }
    return n;
  }

  private skipBlockComment(start: number): number {
    const src = this.src;
    const n = src.length;
    let depth = 1;
    let i = start + 2;
    while (i < n) {
      const c = src.charCodeAt(i);
      if (c === 42 && i + 1 < n && src.charCodeAt(i + 1) === 47) {
        i += 2;
        if (--depth === 0) {
          // A leading comment: pgpool's hint, or ours (router/hints.ts).
          if (this.count === this.stFirst && i - start <= MAX_HINT_COMMENT && (commentHintText(src, start + 2, i - 2) & Hint.Primary) !== 0) {
            this.stFlags |= StmtFlag.HintPrimary;
          }
          return i;
        }
        continue;
      }
      if (c === 47 && i + 1 < n && src.charCodeAt(i + 1) === 42) {
        depth++;
        i += 2;
        continue;
      }
      i++;
    }
    this.stFlags |= StmtFlag.Unterminated;
    return n;
  }

  /** A string whose opening quote is at `q` (token starts at `start`, before any prefix). */
  private scanString(start: number, q: number, backslashEscapes: boolean): number {
    const src = this.src;
    const n = src.length;
    let i = q + 1;
    if (!backslashEscapes) {
      for (;;) {
        const k = src.indexOf("'", i);
        if (k < 0) break;
        if (k + 1 < n && src.charCodeAt(k + 1) === 39) {
          i = k + 2;
          continue;
        }
        this.push(TokenType.String, start, k + 1, 0);
        return k + 1;
      }
    } else {
      while (i < n) {
        const c = src.charCodeAt(i);
        if (c === 92) {
          i += 2;
          continue;
        }
        if (c === 39) {
          if (i + 1 < n && src.charCodeAt(i + 1) === 39) {
            i += 2;
            continue;
          }
          this.push(TokenType.String, start, i + 1, 0);
          return i + 1;
        }
        i++;
      }
    }
    this.stFlags |= StmtFlag.Unterminated;
    this.push(TokenType.String, start, n, 0);
    return n;
  }

  private scanQuotedIdent(start: number, q: number): number {
    const src = this.src;
    const n = src.length;
    let i = q + 1;
    for (;;) {
      const k = src.indexOf('"', i);
      if (k < 0) break;
      if (k + 1 < n && src.charCodeAt(k + 1) === 34) {
        i = k + 2;
        continue;
      }
      this.push(TokenType.QuotedIdent, start, k + 1, 0);
      return k + 1;
    }
    this.stFlags |= StmtFlag.Unterminated;
    this.push(TokenType.QuotedIdent, start, n, 0);
    return n;
  }

  private scanDollar(i: number): number {
    const src = this.src;
    const n = src.length;
    const c1 = i + 1 < n ? src.charCodeAt(i + 1) : -1;
    if (isDigit(c1)) {
      let j = i + 2;
      while (j < n && isDigit(src.charCodeAt(j))) j++;
      this.push(TokenType.Param, i, j, 0);
      return j;
    }
    let tagEnd = -1; // index of the closing '$' of the opening delimiter
    if (c1 === 36) tagEnd = i + 1;
    else if (c1 !== -1 && isIdentStart(c1)) {
      let j = i + 2;
      while (j < n) {
        const d = src.charCodeAt(j);
        if (d === 36) {
          tagEnd = j;
          break;
        }
        if (!isIdentCont(d)) break;
        j++;
      }
    }
    if (tagEnd < 0) {
      this.push(TokenType.Other, i, i + 1, 0);
      return i + 1;
    }
    const bodyStart = tagEnd + 1;
    const k = tagEnd === i + 1 ? src.indexOf('$$', bodyStart) : src.indexOf(src.slice(i, tagEnd + 1), bodyStart);
    if (k < 0) {
      this.stFlags |= StmtFlag.Unterminated;
      this.push(TokenType.DollarString, i, n, 0);
      return n;
    }
    const end = k + (tagEnd + 1 - i);
    this.push(TokenType.DollarString, i, end, 0);
    return end;
  }

  private scanNumber(i: number): number {
    const src = this.src;
    const n = src.length;
    let j = i;
    const c = src.charCodeAt(j);
    if (c === 48 && j + 1 < n) {
      const p = src.charCodeAt(j + 1) | 0x20;
      if (p === 120 || p === 111 || p === 98) {
        // 0x.. 0o.. 0b..
        j += 2;
        while (j < n && isIdentCont(src.charCodeAt(j))) j++;
        this.push(TokenType.Number, i, j, 0);
        return j;
      }
    }
    let d = j < n ? src.charCodeAt(j) : -1;
    while (isDigit(d) || d === 95) d = ++j < n ? src.charCodeAt(j) : -1;
    // fraction, but not the `..` of a range (1..10)
    if (d === 46 && !(j + 1 < n && src.charCodeAt(j + 1) === 46)) {
      d = ++j < n ? src.charCodeAt(j) : -1;
      while (isDigit(d) || d === 95) d = ++j < n ? src.charCodeAt(j) : -1;
    }
    if ((d | 0x20) === 101) {
      let k = j + 1;
      const s = k < n ? src.charCodeAt(k) : -1;
      if (s === 43 || s === 45) k++;
      if (k < n && isDigit(src.charCodeAt(k))) {
        j = k;
        while (j < n && isDigit(src.charCodeAt(j))) j++;
      }
      d = j < n ? src.charCodeAt(j) : -1;
    }
    // trailing junk (123abc) belongs to the number, as PostgreSQL 15+ reports it
    while (d !== -1 && d !== 36 && isIdentCont(d)) d = ++j < n ? src.charCodeAt(j) : -1;
    this.push(TokenType.Number, i, j, 0);
    return j;
  }
}

export interface Token {
  type: TokenType;
  text: string;
  /** Lowercase keyword, '' when the token is not one. */
  keyword: Keyword | '';
}

/** All tokens of `sql` as objects (for tests and tools; the classifier reads the Lexer's arrays). */
export function tokenize(sql: string): Token[] {
  const lx = new Lexer();
  lx.lex(sql);
  const out: Token[] = [];
  for (let i = 0; i < lx.count; i++) {
    out.push({ type: lx.types[i] as TokenType, text: sql.slice(lx.starts[i], lx.ends[i]), keyword: KEYWORDS[lx.kws[i] as number] as Keyword | '' });
  }
  return out;
}

/** The statements of `sql` as text (first token to last token; leading comments and the `;` left out). */
export function splitStatements(sql: string): string[] {
  const lx = new Lexer();
  lx.lex(sql);
  const out: string[] = [];
  for (let s = 0; s < lx.stmtCount; s++) out.push(sql.slice(lx.stmtTextStart[s], lx.stmtTextEnd[s]));
  return out;
}
