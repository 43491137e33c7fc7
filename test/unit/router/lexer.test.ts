import { describe, expect, it } from 'vitest';
import { Lexer, StmtFlag, TokenType, splitStatements, tokenize } from '../../../src/router/lexer.js';

const NAMES: Record<number, string> = {
  [TokenType.Ident]: 'ident',
  [TokenType.QuotedIdent]: 'qident',
  [TokenType.String]: 'string',
  [TokenType.DollarString]: 'dollar',
  [TokenType.Number]: 'number',
  [TokenType.Param]: 'param',
  [TokenType.Op]: 'op',
  [TokenType.LParen]: '(',
  [TokenType.RParen]: ')',
  [TokenType.Comma]: ',',
  [TokenType.Dot]: '.',
  [TokenType.LBracket]: '[',
  [TokenType.RBracket]: ']',
  [TokenType.Cast]: '::',
  [TokenType.Colon]: ':',
  [TokenType.Semicolon]: ';',
  [TokenType.Other]: 'other',
};

/** Tokens as 'type:text' strings. */
function toks(sql: string): string[] {
  return tokenize(sql).map((t) => `${NAMES[t.type]}:${t.text}`);
}

function flags(sql: string): number[] {
  const lx = new Lexer();
  lx.lex(sql);
  return Array.from(lx.stmtFlags.subarray(0, lx.stmtCount));
}

describe('tokens', () => {
  const rows: [string, string[]][] = [
    ['SELECT 1', ['ident:SELECT', 'number:1']],
    ['a.b', ['ident:a', '.:.', 'ident:b']],
    ['"Ab""c".d', ['qident:"Ab""c"', '.:.', 'ident:d']],
    ['U&"d\\0061t"', ['qident:U&"d\\0061t"']],
    ["'it''s'", ["string:'it''s'"]],
    ["'a\\' c'", ["string:'a\\'", 'ident:c', "string:'"]], // standard_conforming_strings: backslash is literal
    ["E'a\\'b' c", ["string:E'a\\'b'", 'ident:c']],
    ["e'\\\\' x", ["string:e'\\\\'", 'ident:x']],
    ["E'a''b'", ["string:E'a''b'"]],
    ["U&'d\\0061t\\+000061'", ["string:U&'d\\0061t\\+000061'"]],
    ["u&'x'", ["string:u&'x'"]],
    ["B'1010' X'FF' N'abc' b'0'", ["string:B'1010'", "string:X'FF'", "string:N'abc'", "string:b'0'"]],
    ["ex'1'", ['ident:ex', "string:'1'"]],
    ['$$a;b$$', ['dollar:$$a;b$$']],
    ['$tag$ $$ inner $$ ; $tag$', ['dollar:$tag$ $$ inner $$ ; $tag$']],
    ['$a$x$b$y$b$z$a$', ['dollar:$a$x$b$y$b$z$a$']],
    ['$_1$ body $_1$', ['dollar:$_1$ body $_1$']],
    ['$1 $23', ['param:$1', 'param:$23']],
    ['$1$ x', ['param:$1', 'other:$', 'ident:x']],
    ['a$b$c', ['ident:a$b$c']],
    ['x$$y', ['ident:x$$y']],
    ['$ a', ['other:$', 'ident:a']],
    ['$9abc$', ['param:$9', 'ident:abc$']],
    ['a::int', ['ident:a', ':::::', 'ident:int']],
    ['a[1:2]', ['ident:a', '[:[', 'number:1', ':::', 'number:2', ']:]']],
    ['x := 1', ['ident:x', 'op::=', 'number:1']],
    ['a<>b', ['ident:a', 'op:<>', 'ident:b']],
    ['a>=-1', ['ident:a', 'op:>=', 'op:-', 'number:1']],
    ['x=-1', ['ident:x', 'op:=', 'op:-', 'number:1']],
    ['a @- b', ['ident:a', 'op:@-', 'ident:b']],
    ['a <+- b', ['ident:a', 'op:<', 'op:+', 'op:-', 'ident:b']],
    ['a+--c\nb', ['ident:a', 'op:+', 'ident:b']],
    ['a*/*c*/b', ['ident:a', 'op:*', 'ident:b']],
    ['a--b', ['ident:a']],
    ['1.5e10 .5 1. 0x1F 0o17 0b101 1_000', ['number:1.5e10', 'number:.5', 'number:1.', 'number:0x1F', 'number:0o17', 'number:0b101', 'number:1_000']],
    ['1..10', ['number:1', 'op:..', 'number:10']],
    ['1e+5 2E-3', ['number:1e+5', 'number:2E-3']],
    ['/* a /* nested */ still */ x', ['ident:x']],
    ['/* a /* b /* c */ */ */ y', ['ident:y']],
    ['-- comment\nx', ['ident:x']],
    ['-- comment\r\nx', ['ident:x']],
    ['x -- /* not a block', ['ident:x']],
    ['/* -- not a line */ x', ['ident:x']],
    ['café', ['ident:café']],
    ['SELECT\u00a0x', ['ident:SELECT\u00a0x']], // a non-ASCII char is an identifier char in PostgreSQL
    ['f(a, b)', ['ident:f', '(:(', 'ident:a', ',:,', 'ident:b', '):)']],
    ['\\x', ['other:\\', 'ident:x']],
  ];
  it.each(rows)('%j', (sql, expected) => {
    expect(toks(sql)).toEqual(expected);
  });

  it('marks keywords case-insensitively, never quoted ones', () => {
    const t = tokenize('SeLeCt "select" selected');
    expect(t.map((x) => x.keyword)).toEqual(['select', '', '']);
  });
});

describe('statement splitting', () => {
  const rows: [string, string[]][] = [
    ['SELECT 1; SELECT 2', ['SELECT 1', 'SELECT 2']],
    ['SELECT 1;', ['SELECT 1']],
    [';;; SELECT 1 ;;; ', ['SELECT 1']],
    ["SELECT ';'; SELECT 2", ["SELECT ';'", 'SELECT 2']],
    ["SELECT E'\\';'; SELECT 2", ["SELECT E'\\';'", 'SELECT 2']],
    ['SELECT ";"; SELECT 2', ['SELECT ";"', 'SELECT 2']],
    ['SELECT $$;$$; SELECT 2', ['SELECT $$;$$', 'SELECT 2']],
    ['SELECT $f$ ; $$ ; $f$; SELECT 2', ['SELECT $f$ ; $$ ; $f$', 'SELECT 2']],
    ['SELECT 1 -- ;\n; SELECT 2', ['SELECT 1', 'SELECT 2']],
    ['SELECT 1 /* ; /* ; */ ; */; SELECT 2', ['SELECT 1', 'SELECT 2']],
    ['SELECT (1; 2); SELECT 3', ['SELECT (1; 2)', 'SELECT 3']], // psql: no split inside parentheses
    ['CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1', [
      'CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))',
      'SELECT 1',
    ]],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3', [
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END',
      'SELECT 3',
    ]],
    ['create or replace procedure p() begin atomic select case when true then 1 end; end; select 2', [
      'create or replace procedure p() begin atomic select case when true then 1 end; end',
      'select 2',
    ]],
    ['BEGIN; SELECT 1; END; SELECT 2', ['BEGIN', 'SELECT 1', 'END', 'SELECT 2']],
    ['CREATE TABLE t (a int); BEGIN; SELECT 1', ['CREATE TABLE t (a int)', 'BEGIN', 'SELECT 1']],
    ['', []],
    ['  -- nothing\n /* at all */ ', []],
  ];
  it.each(rows)('%j', (sql, expected) => {
    expect(splitStatements(sql)).toEqual(expected);
  });
});

describe('statement flags', () => {
  it.each([
    ["SELECT 'abc", [StmtFlag.Unterminated]],
    ["SELECT E'abc\\'", [StmtFlag.Unterminated]],
    ['SELECT "abc', [StmtFlag.Unterminated]],
    ['SELECT $$abc', [StmtFlag.Unterminated]],
    ['SELECT $t$abc$$', [StmtFlag.Unterminated]],
    ['SELECT 1 /* abc', [StmtFlag.Unterminated]],
    ['SELECT 1 /* a /* b */', [StmtFlag.Unterminated]],
    ["SELECT 1; SELECT 'x", [0, StmtFlag.Unterminated]],
    ['SELECT 1; /* x', [0, StmtFlag.Unterminated]],
    ['SELECT (1', [StmtFlag.Unbalanced]],
    ['SELECT 1)', [StmtFlag.Unbalanced]],
    ['SELECT 1 -- unterminated line comment is fine', [0]],
    ['/*NO LOAD BALANCE*/ SELECT 1', [StmtFlag.HintPrimary]],
    ['SELECT 1; /*NO LOAD BALANCE*/ SELECT 2', [0, StmtFlag.HintPrimary]],
    ['/* pgproxy: primary */SELECT 1', [StmtFlag.HintPrimary]],
    ['SELECT /*NO LOAD BALANCE*/ 1', [0]],
  ] as [string, number[]][])('%j', (sql, expected) => {
    expect(flags(sql)).toEqual(expected);
  });
});

describe('robustness', () => {
  it('terminates and covers the input on every prefix of a tricky string', () => {
    const sql = "SELECT E'a\\'b', $x$ ; $x$, \"q\"\"\", U&'u', /* /* */ */ 1.5e3::numeric(3,1) -- c\n; $1 :: x[1:2] <> 'it''s'";
    for (let n = 0; n <= sql.length; n++) {
      const part = sql.slice(0, n);
      const lx = new Lexer();
      lx.lex(part);
      for (let i = 0; i < lx.count; i++) {
        expect(lx.starts[i]).toBeLessThan(lx.ends[i] as number);
        expect(lx.ends[i]).toBeLessThanOrEqual(part.length);
        if (i > 0) expect(lx.starts[i]).toBeGreaterThanOrEqual(lx.ends[i - 1] as number);
      }
    }
  });

  it('reuses its arrays across calls and grows them', () => {
    const lx = new Lexer();
    lx.lex('SELECT ' + 'a,'.repeat(5000) + 'b; ' + 'SELECT 1;'.repeat(100));
    expect(lx.stmtCount).toBe(101);
    lx.lex('SELECT 1');
    expect(lx.count).toBe(2);
    expect(lx.stmtCount).toBe(1);
  });
});
