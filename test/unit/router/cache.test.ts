// The shape cache: classifyBytes() must give exactly the facts classifyUncached() gives, for every text, while
// texts that differ only in their literals share one entry.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  classify,
  classifyBytes,
  classifyCacheStats,
  classifyUncached,
  clearClassifyCache,
  setClassifyCacheSize,
  type Classification,
} from '../../../src/router/classify/index.js';
import { copyShape, fingerprint, shapeBytes } from '../../../src/router/classify/shape.js';
import { Lexer, TokenType } from '../../../src/router/lexer.js';
import { prng } from '../../prng.js';
import { CLASSIFIER_TABLES, MULTI_STATEMENT_ROWS, TRICKY_TEXTS } from './fixtures/classifier-cases.js';
import { routingTableCorpus } from './fixtures/routing-table-sql.js';

const bytes = (sql: string): Buffer => Buffer.from(sql, 'utf8');
const cached = (sql: string): Classification => {
  const b = bytes(sql);
  return classifyBytes(b, 0, b.length);
};
const shapeOf = (sql: string): string | null => {
  const b = bytes(sql);
  return fingerprint(b, 0, b.length) < 0 ? null : Buffer.from(shapeBytes(copyShape())).toString('latin1');
};

beforeEach(() => {
  setClassifyCacheSize(10_000);
  clearClassifyCache();
});
afterEach(() => {
  setClassifyCacheSize(10_000);
  clearClassifyCache();
});

// ---------------------------------------------------------------------------------------------------------
// Property: literals replaced by other values, spacing and comments varied


function corpus(): string[] {
  const out = new Set<string>(TRICKY_TEXTS);
  for (const [, rows] of CLASSIFIER_TABLES) for (const [sql] of rows) out.add(sql);
  for (const [sql] of MULTI_STATEMENT_ROWS) out.add(sql);
  for (const sql of routingTableCorpus()) out.add(sql);
  return [...out];
}

const STRING_PIECES = ['a', "''", ';', '*/', '/*', '--', '$$', '"', ' ', 'é', 'on', 'off', 'DELETE FROM x', 'serializable', '\\'];
const E_PIECES = ['a', "\\'", "''", '\\\\', ';', '*/', '\\n', 'on'];
const DOLLAR_PIECES = ['a', "'", ';', '*/', '--', ' ', '"', 'x'];

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const join = (rnd: () => number, pieces: readonly string[]): string => {
  let s = '';
  const n = Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) s += pick(rnd, pieces);
  return s;
};
const isIdentChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);

/** Another literal that lexes as one token of the same type in the same place. */
function otherLiteral(rnd: () => number, type: number, original: string, before: string | undefined): string {
  if (type === TokenType.Number) {
    const digits = String(Math.floor(rnd() * 100_000));
    if (original.startsWith('.')) return `.${digits}`;
    return pick(rnd, [digits, `${digits}.${Math.floor(rnd() * 100)}`, `${digits}e3`, '1_000', '0']);
  }
  if (type === TokenType.DollarString) {
    const tag = pick(rnd, ['', 'q', 'body', 'a1']);
    return `$${tag}$${join(rnd, DOLLAR_PIECES)}$${tag}$`;
  }
  // after an identifier character, only a plain string stays a separate token
  const prefix = isIdentChar(before) ? '' : pick(rnd, ['', '', 'E', 'e', 'U&', 'N', 'B']);
  if (prefix === 'E' || prefix === 'e') return `${prefix}'${join(rnd, E_PIECES)}'`;
  return `${prefix}'${join(rnd, STRING_PIECES)}'`;
}

/** `sql` with its literals replaced and (when `spacing`) its inner spacing varied. */
function variant(sql: string, rnd: () => number, spacing: boolean): string {
  const lx = new Lexer();
  lx.lex(sql);
  let out = '';
  let at = 0;
  for (let s = 0; s < lx.stmtCount; s++) {
    for (let i = lx.stmtFirst[s]!; i < lx.stmtEnd[s]!; i++) {
      const start = lx.starts[i]!;
      const end = lx.ends[i]!;
      const gap = sql.slice(at, start);
      if (spacing && i > lx.stmtFirst[s]! && /^[ \t\n]+$/.test(gap)) out += pick(rnd, [' ', '\n\t ', '   ', ' /* c; */ ', ' -- c\n']);
      else out += gap;
      const t = lx.types[i]!;
      const text = sql.slice(start, end);
      if ((t === TokenType.String || t === TokenType.DollarString || t === TokenType.Number) && rnd() < 0.8) out += otherLiteral(rnd, t, text, out[out.length - 1]);
      else out += text;
      at = end;
    }
  }
  return out + sql.slice(at);
}

describe('cached facts equal uncached facts', () => {
  const texts = corpus();

  it('has a corpus', () => {
    expect(texts.length).toBeGreaterThan(600);
  });

  it('for the classifier tables and the routing table, their literals varied (seeded)', () => {
    const rnd = prng(424242);
    let variants = 0;
    let sameShape = 0;
    for (const sql of texts) {
      expect(cached(sql), sql).toEqual(classifyUncached(sql));
      const shape = shapeOf(sql);
      for (let k = 0; k < 6; k++) {
        const v = variant(sql, rnd, k >= 3);
        variants++;
        // the variant must lex like the original but for literals (else it tests nothing about the cache)
        expect(classifyUncached(v).statements.length, `${sql} -> ${v}`).toBe(classifyUncached(sql).statements.length);
        expect(cached(v), `${sql} -> ${v}`).toEqual(classifyUncached(v));
        if (k < 3 && shape !== null) {
          expect(shapeOf(v), `${sql} -> ${v}`).toBe(shape);
          sameShape++;
        }
      }
    }
    expect(variants).toBeGreaterThan(3000);
    expect(sameShape).toBeGreaterThan(1500);
    const stats = classifyCacheStats();
    expect(stats.hits).toBeGreaterThan(1500);
  });

  it('for texts a wrong key would confuse', () => {
    const pairs: [string, string][] = [
      ['SELECT * FROM t1', 'SELECT * FROM t2'],
      ['SELECT $1 FROM t WHERE x = $1', 'SELECT $1 FROM u WHERE x = $1'],
      ['SELECT $$ FROM t WHERE x = $$', 'SELECT $1 FROM t WHERE x = $1'],
      ["SELECT E'a\\'b' AS x FROM t1 WHERE y = 'z' -- '", "SELECT E'a\\'b' AS x FROM t2 WHERE y = 'z' -- '"],
      ["SELECT 'a\\' FROM t1 WHERE y = 'z' -- '", "SELECT 'a\\' FROM t2 WHERE y = 'z' -- '"],
      ['SELECT 1 /* /* */ FROM t1 */ FROM t2', 'SELECT 1 /* x */ FROM t1 */ FROM t2'],
      ['SELECT a -- x\nFROM t1', 'SELECT a -- x FROM t1\nFROM t2'],
      ["SELECT '*/' FROM t1", "SELECT '*/' FROM t2"],
      ["SELECT 'a;b' FROM t1", "SELECT 'a' ; DELETE FROM t1"],
      ["SELECT 'x' FROM t1 -- ;'\n", "SELECT 'x' FROM t1 ; DELETE FROM t2 --'\n"],
      ['SELECT 1; SELECT 2', 'SELECT 1; /*NO LOAD BALANCE*/ SELECT 2'],
      ['/*NO LOAD BALANCE*/ SELECT 1', 'SELECT 1'],
      ['/* pgproxy: primary */ SELECT 1', '/* pgproxy: secondary */ SELECT 1'],
      ["SET default_transaction_read_only = 'on'", "SET default_transaction_read_only = 'off'"],
      ["SELECT set_config('a.b', 'x', false)", "SELECT set_config('default_transaction_isolation', 'serializable', false)"],
      ["COMMIT PREPARED 'g1'", "COMMIT PREPARED 'g2'"],
      ['EXPLAIN (ANALYZE 1) DELETE FROM t', 'EXPLAIN (ANALYZE 0) DELETE FROM t'],
      ['SET search_path TO a,   b', 'SET search_path TO a, b'],
    ];
    for (const [a, b] of pairs) {
      for (const [x, y] of [
        [a, b],
        [b, a],
      ] as const) {
        clearClassifyCache();
        expect(cached(x), x).toEqual(classifyUncached(x));
        expect(cached(y), `${y} after ${x}`).toEqual(classifyUncached(y));
        expect(cached(x), `${x} again`).toEqual(classifyUncached(x));
      }
    }
    expect(cached('SELECT * FROM t1').statements[0]!.relations).toEqual(['t1']);
    expect(cached('SELECT * FROM t2').statements[0]!.relations).toEqual(['t2']);
    expect(cached("SET default_transaction_read_only = 'off'").summary.defaults).toEqual({ readOnly: false });
    expect(cached("SET default_transaction_read_only = 'on'").summary.defaults).toEqual({ readOnly: true });
  });

  it('when two shapes collide on the hash', () => {
    // Find two table names whose texts' shapes share a hash (a 30-bit hash: a collision within ~100k tries).
    const byHash = new Map<number, string>();
    let pair: [string, string] | null = null;
    for (let n = 0; pair === null && n < 2_000_000; n++) {
      const sql = `SELECT * FROM t${n}`;
      const b = bytes(sql);
      const h = fingerprint(b, 0, b.length);
      const other = byHash.get(h);
      if (other !== undefined) pair = [other, sql];
      else byHash.set(h, sql);
    }
    expect(pair).not.toBeNull();
    const [a, b] = pair!;
    const ca = cached(a);
    const cb = cached(b);
    expect(ca.statements[0]!.relations).not.toEqual(cb.statements[0]!.relations);
    expect(cached(a)).toBe(ca);
    expect(cached(b)).toBe(cb);
    expect(classifyCacheStats().size).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Behaviour

describe('classifyBytes', () => {
  it('serves texts of one shape from one entry, and the same object', () => {
    const a = cached('SELECT abalance FROM pgbench_accounts WHERE aid = 1');
    const before = classifyCacheStats();
    for (let aid = 2; aid < 100; aid++) expect(cached(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid * 7919}`)).toBe(a);
    const after = classifyCacheStats();
    expect(after.hits - before.hits).toBe(98);
    expect(after.misses).toBe(before.misses);
    expect(after.size).toBe(1);
  });

  it('reads the text where it sits in a message', () => {
    const sql = "SELECT * FROM t WHERE a = 'x'";
    const frame = Buffer.concat([Buffer.from('Q\0\0\0\0'), bytes(sql), Buffer.from('\0S\0\0\0\x04')]);
    const c = classifyBytes(frame, 5, 5 + Buffer.byteLength(sql));
    expect(c).toEqual(classifyUncached(sql));
    expect(cached("SELECT * FROM t WHERE a = 'other'")).toBe(c);
  });

  it('shares the cache with classify(sql)', () => {
    const c = classify('SELECT * FROM shared_t WHERE id = 1');
    expect(cached('SELECT * FROM shared_t WHERE id = 2')).toBe(c);
    expect(classify('SELECT * FROM shared_t WHERE id = 3')).toBe(c);
  });

  it('keys on the leading hint, not on the leading comment', () => {
    const plain = cached('SELECT 1');
    expect(cached('/* controller=a */ SELECT 2')).toBe(plain);
    expect(cached('/* traceparent=00-1234 */ SELECT 3')).toBe(plain);
    const hinted = cached('/*NO LOAD BALANCE*/ SELECT 1');
    expect(hinted).not.toBe(plain);
    expect(hinted.statements[0]!.hint).toBe('primary');
    expect(cached('/* pgproxy: primary */ SELECT 4')).toBe(hinted);
    expect(cached('SELECT 5').statements[0]!.hint).toBeNull();
    expect(classifyCacheStats().size).toBe(2);
  });

  it('classifies text-sensitive shapes every time', () => {
    cached("SET application_name = 'a'");
    const before = classifyCacheStats();
    const c = cached("SET application_name = 'discard all'");
    expect(c.statements[0]!.session).toEqual({ op: 'set', local: false, name: 'application_name', value: "'discard all'" });
    expect(c.summary.resetsAll).toBe(false);
    const after = classifyCacheStats();
    expect(after.textSensitive - before.textSensitive).toBe(1);
    expect(after.hits).toBe(before.hits);
  });

  it('caches literal-free session commands', () => {
    const a = cached('DISCARD ALL');
    expect(cached('discard all')).not.toBe(a); // other spelling, other shape
    expect(cached('DISCARD ALL')).toBe(a);
    expect(cached('RESET ALL').summary.resetsAll).toBe(true);
  });

  it('never caches texts without a shape, and still classifies them', () => {
    const before = classifyCacheStats();
    expect(cached("SELECT 'unterminated").statements[0]!.understood).toBe(false);
    expect(cached('SELECT \x01').statements[0]!.understood).toBe(true);
    const after = classifyCacheStats();
    expect(after.uncacheable - before.uncacheable).toBe(2);
    expect(after.size).toBe(before.size);
  });

  it('handles texts that are not valid UTF-8 like their decoded text', () => {
    for (const raw of [Buffer.from([0x53, 0x45, 0x4c, 0x45, 0x43, 0x54, 0x20, 0xff, 0x28, 0x31, 0x29]), Buffer.from("SELECT '\xff' FROM t\xc3", 'latin1')]) {
      expect(classifyBytes(raw, 0, raw.length)).toEqual(classifyUncached(raw.toString('utf8')));
    }
  });
});

describe('bounds', () => {
  it('keeps at most `capacity` entries, least recently used out', () => {
    setClassifyCacheSize(3);
    const a = cached('SELECT * FROM a1');
    cached('SELECT * FROM a2');
    cached('SELECT * FROM a3');
    expect(cached('SELECT * FROM a1 WHERE true AND true')).not.toBe(a);
    expect(classifyCacheStats().size).toBe(3);
    expect(cached('SELECT * FROM a1')).not.toBe(a); // a1 was the oldest: evicted
    const misses = classifyCacheStats().misses;
    cached('SELECT * FROM a1 WHERE true AND true'); // still there
    expect(classifyCacheStats().misses).toBe(misses);
  });

  it('keeps at most 16 MiB of shapes', () => {
    const cols = Array.from({ length: 9000 }, (_, i) => `c${i}`).join(', ');
    for (let n = 0; n < 300; n++) cached(`SELECT ${cols} FROM big_${n}`);
    const s = classifyCacheStats();
    expect(s.bytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(s.size).toBeLessThan(300);
    expect(s.size).toBeGreaterThan(200);
  });

  it('does not cache texts longer than 64 KiB', () => {
    const sql = `SELECT ${'x, '.repeat(30_000)}1`;
    const c = cached(sql);
    expect(cached(sql)).not.toBe(c);
    expect(classifyCacheStats().size).toBe(0);
  });

  it('can be disabled', () => {
    setClassifyCacheSize(0);
    const c = cached('SELECT 1');
    expect(cached('SELECT 1')).not.toBe(c);
    expect(cached('SELECT 1')).toEqual(c);
  });
});
