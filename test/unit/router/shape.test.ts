// The shape of SQL text (literals masked) must be the same exactly for texts the lexer reads as the same
// tokens but for their literals' values, and must never be shared by texts it reads differently.
import { describe, expect, it } from 'vitest';
import { copyShape, fingerprint, shapeBytes } from '../../../src/router/classify/shape.js';
import { Hint, leadingHints } from '../../../src/router/hints.js';
import { KEYWORDS, Lexer, TokenType } from '../../../src/router/lexer.js';
import { prng } from '../../prng.js';

/** The shape as a printable string, or null when the text has none. */
function shapeOf(sql: string): string | null {
  const b = Buffer.from(sql, 'utf8');
  if (fingerprint(b, 0, b.length) < 0) return null;
  return Buffer.from(shapeBytes(copyShape())).toString('latin1').replace(/\x01/g, '<s>').replace(/\x02/g, '<d>').replace(/\x03/g, '<n>');
}

describe('texts that share a shape', () => {
  it.each([
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 1;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 9876543;'],
    ["SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = 'it''s; -- */ here'"],
    ["SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = E'\\'; \\\\'"],
    ["SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = U&'d\\0061t'"],
    ["SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = N'x'"],
    ["SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = B'1010'"],
    ['SELECT $$a$$', 'SELECT $fn$ DELETE FROM t; $$ $fn$'],
    ['SELECT 1.5e10, .5, 0x1F, 1_000', 'SELECT 2, .25, 7, 3'],
    ['SELECT   a\n\tFROM  t', 'SELECT a FROM t'],
    ['SELECT a /* c */ FROM t -- x', 'SELECT a FROM t'],
    ['SELECT a /* outer /* nested */ still */ FROM t', 'SELECT a FROM t'],
    ['/* app=1 */ SELECT 1', '/* app=2, trace=abc */ SELECT 2'],
    ['SELECT f(1)::int[]', 'SELECT f(22)::int[]'],
    ['SELECT 1..2', 'SELECT 3..4'],
    ['SELECT x=-1', 'SELECT x=-22'],
  ])('%j ~ %j', (a, b) => {
    expect(shapeOf(a)).not.toBeNull();
    expect(shapeOf(a)).toBe(shapeOf(b));
  });
});

describe('texts that do not', () => {
  it.each([
    ['SELECT * FROM t1', 'SELECT * FROM t2'],
    ['SELECT * FROM t1', 'SELECT * FROM T1'],
    ['SELECT $1 FROM t', 'SELECT $2 FROM t'],
    ['SELECT $1 FROM t', 'SELECT $$1$$ FROM t'],
    ["SELECT 'x'", 'SELECT $$x$$'],
    ["SELECT '1'", 'SELECT 1'],
    ['SELECT "a b"', 'SELECT "a c"'],
    ['SELECT "x"', "SELECT 'x'"],
    ['SELECT a FROM t', 'SELECT a FROMt'],
    ['SELECT 1abc', 'SELECT 1 abc'],
    ["SELECT x'1'", "SELECT x '1'"],
    ["SELECT U&'x'", "SELECT U& 'x'"],
    ['SELECT 1; SELECT 2', 'SELECT 1; /*NO LOAD BALANCE*/ SELECT 2'],
    ['SELECT 1; /* a */ SELECT 2', 'SELECT 1; /* b */ SELECT 2'],
    ['SELECT (1; 2)', 'SELECT (1, 2)'],
    ['SELECT a-- x\n, b', 'SELECT a, b'],
    ['SELECT a+-b', 'SELECT a+ -b'],
  ])('%j !~ %j', (a, b) => {
    expect(shapeOf(a)).not.toBe(shapeOf(b));
  });
});

describe('texts without a shape', () => {
  it.each(["SELECT 'x", 'SELECT "x', 'SELECT $$x', 'SELECT $a$ x $b$', 'SELECT 1 /* x', 'SELECT 1 /* /* */', "SELECT E'\\'", 'SELECT \x01', 'SELECT $é$ x $é$'])('%j', (sql) => {
    expect(shapeOf(sql)).toBeNull();
  });

  it('an unterminated line comment is fine', () => {
    expect(shapeOf('SELECT 1 -- x')).toBe('SELECT <n>');
  });
});

it('masks literals, keeps everything else', () => {
  expect(shapeOf("  SELECT a, 'x', $$y$$, 42, $1, \"Q\"  FROM t1 -- c\n WHERE b = E'\\''; /* h */ SELECT 2  ")).toBe(
    'SELECT a, <s>, <d>, <n>, $1, "Q" FROM t1 WHERE b = <s>; /* h */ SELECT <n>',
  );
});

it('reads only [start, end) of a larger buffer', () => {
  const b = Buffer.from("Q\0\0\0\x1fSELECT * FROM t WHERE a = 'x'\0garbage");
  const h = fingerprint(b, 5, b.indexOf(0, 5));
  const s = Buffer.from(shapeBytes(copyShape())).toString('latin1');
  const alone = Buffer.from("SELECT * FROM t WHERE a = 'yy'");
  expect(fingerprint(alone, 0, alone.length)).toBe(h);
  expect(Buffer.from(shapeBytes(copyShape())).toString('latin1')).toBe(s);
});

/**
 * What the classifier can see of a text besides its literals' values and its spacing: statements (flags,
 * hints), tokens (type, keyword, text unless a literal).
 */
function lexerSignature(sql: string): string {
  const lx = new Lexer();
  lx.lex(sql);
  const parts: string[] = [];
  for (let s = 0; s < lx.stmtCount; s++) {
    parts.push(`|${lx.stmtFlags[s]}|`);
    for (let i = lx.stmtFirst[s]!; i < lx.stmtEnd[s]!; i++) {
      const t = lx.types[i]!;
      const literal = t === TokenType.String || t === TokenType.DollarString || t === TokenType.Number;
      parts.push(`${t}:${KEYWORDS[lx.kws[i]!]}:${literal ? '' : sql.slice(lx.starts[i], lx.ends[i])}`);
    }
  }
  return parts.join(' ');
}

describe('the byte scan mirrors the lexer', () => {
  const pieces = [
    "'", '"', '$', '$$', '$a$', '$1', '/*', '*/', '--', '\n', ' ', ';', '(', ')', 'E', 'e', 'U&', 'x', 'b', 'N', 'n', '1', '0x', '0',
    '.', '..', 'e5', '_', '\\', '+', '-', '*', '/', '=', '::', ':', ',', '[', ']', 'SELECT', 'FROM', 't1', 't2', 'é', '😀', 'NO LOAD BALANCE',
    '@', '#', '%', '!', '~', '?', '&', '|', '`', '^', '<', '>', '{', '\t', '\r', 'begin', 'atomic', 'end', 'create', 'function',
  ];

  it('same shape and leading hint => same tokens and statements (random texts, many collisions)', () => {
    const rnd = prng(7);
    const seen = new Map<string, { sql: string; sig: string }>();
    let shared = 0;
    for (let n = 0; n < 60_000; n++) {
      let sql = '';
      const len = 1 + Math.floor(rnd() * 8);
      for (let k = 0; k < len; k++) sql += pieces[Math.floor(rnd() * pieces.length)];
      const b = Buffer.from(sql, 'utf8');
      const lx = new Lexer();
      lx.lex(sql);
      let unterminated = false;
      for (let s = 0; s < lx.stmtCount; s++) if ((lx.stmtFlags[s]! & 1) !== 0) unterminated = true;
      if (fingerprint(b, 0, b.length) < 0) continue;
      // A text the lexer finds unterminated must have no shape.
      expect(unterminated, JSON.stringify(sql)).toBe(false);
      const key = `${leadingHints(b, 0, b.length) & Hint.Primary}:${Buffer.from(shapeBytes(copyShape())).toString('latin1')}`;
      const sig = lexerSignature(sql);
      const before = seen.get(key);
      if (before === undefined) seen.set(key, { sql, sig });
      else {
        shared++;
        expect(sig, `${JSON.stringify(before.sql)} and ${JSON.stringify(sql)} share a shape`).toBe(before.sig);
      }
    }
    expect(shared).toBeGreaterThan(10_000);
  });
});
