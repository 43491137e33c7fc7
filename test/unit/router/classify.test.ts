import { describe, expect, it } from 'vitest';
import {
  classify,
  classifyCacheStats,
  classifyUncached,
  clearClassifyCache,
  setClassifyCacheSize,
  type StatementFacts,
} from '../../../src/router/classify/index.js';
import { CLASSIFIER_TABLES, MULTI_STATEMENT_ROWS, read, type Row } from './fixtures/classifier-cases.js';

function only(sql: string): StatementFacts {
  const c = classifyUncached(sql);
  expect(c.statements.length, `statements of ${JSON.stringify(sql)}`).toBe(1);
  return c.statements[0] as StatementFacts;
}

function table(name: string, rows: Row[]): void {
  describe(name, () => {
    it.each(rows)('%s', (sql, expected) => {
      expect(only(sql)).toMatchObject(expected);
    });
  });
}

for (const [name, rows] of CLASSIFIER_TABLES) table(name, rows);

describe('multi-statement strings', () => {
  const rows = MULTI_STATEMENT_ROWS;
  it.each(rows)('%s', (sql, expected) => {
    const c = classifyUncached(sql);
    expect(c.statements.length).toBe(expected.length);
    expected.forEach((e, i) => expect(c.statements[i]).toMatchObject(e));
  });

  it.each(['', '   ', ';', ' ; ;; ', '-- only a comment', '/* only */ /* comments */;', '\n\t\r'])('%j has no statements', (sql) => {
    expect(classifyUncached(sql).statements).toEqual([]);
  });
});

describe('robustness', () => {
  const nasty = [
    "'", '"', '$', '$$', '$a$', '$a', '/*', '/* /* */', '--', 'E\'\\', "E'\\'", 'U&', 'U&"', "U&'", '::', ':', '(', ')', '((((', '))))',
    '$1', '$1$', 'x$$', '\\', '\u0000', '\uffff', '😀', 'SELECT 😀()', '.', '..', '1..2', '1e', '1e+', '0x', '.e1', 'B', "B'", "X'", "N'",
    'SET', 'SET x', 'SET x =', 'RESET', 'BEGIN ISOLATION', 'BEGIN ISOLATION LEVEL', 'ROLLBACK TO', 'PREPARE', 'PREPARE p', 'PREPARE p AS',
    'EXECUTE', 'DECLARE', 'DECLARE c CURSOR FOR', 'FETCH', 'CLOSE', 'COPY', 'COPY (', 'COPY (SELECT 1', 'COPY t', 'EXPLAIN (', 'EXPLAIN (ANALYZE',
    'WITH', 'WITH x', 'WITH x AS', 'WITH x AS (', 'WITH x AS (SELECT 1)', 'SELECT set_config(', "SELECT set_config('a',", 'CREATE', 'ALTER', 'DEALLOCATE',
    'SELECT * INTO', 'SELECT * FROM', 'SELECT f(', 'SELECT a.', 'LOCK', 'TRUNCATE', 'INSERT INTO', 'SAVEPOINT', 'COMMIT PREPARED', 'SELECT 1 FOR',
  ];
  it.each(nasty)('never throws on %j', (sql) => {
    const c = classifyUncached(sql);
    expect(Array.isArray(c.statements)).toBe(true);
    for (const s of c.statements) expect(typeof s.kind).toBe('string');
  });

  it('never throws on random input', () => {
    const alphabet = ["'", '"', '$', '$$', '/*', '*/', '--', '\n', ';', '(', ')', 'E', 'U&', 'SELECT', 'INSERT', 'INTO', 'FOR', 'UPDATE', 'WITH', 'AS', 'f', '.', ',', ' ', '::', '1', '\\', 'x$y$', '$x$'];
    let seed = 12345;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let n = 0; n < 3000; n++) {
      let sql = '';
      const len = Math.floor(rnd() * 30);
      for (let k = 0; k < len; k++) sql += alphabet[Math.floor(rnd() * alphabet.length)];
      expect(() => classifyUncached(sql)).not.toThrow();
    }
  });

  it('handles very long statements (IN lists)', () => {
    const list = Array.from({ length: 20_000 }, (_, i) => i).join(',');
    const s = only(`SELECT * FROM t WHERE id IN (${list})`);
    expect(s).toMatchObject(read('SELECT', { relations: ['t'], functions: [] }));
  });

  it('handles deep nesting', () => {
    const sql = 'SELECT ' + '('.repeat(500) + 'nextval(1)' + ')'.repeat(500);
    expect(only(sql)).toMatchObject(read('SELECT', { functions: ['nextval'] }));
  });

  it('returns frozen facts', () => {
    const s = only('SELECT f(1) FROM t');
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.functions)).toBe(true);
  });
});

describe('cache', () => {
  it('returns the same classification for the same text', () => {
    clearClassifyCache();
    const a = classify('SELECT 42 FROM cache_test');
    const b = classify('SELECT 42 FROM cache_test');
    expect(b).toBe(a);
    expect(classify('select 42 from cache_test')).not.toBe(a);
  });

  it('evicts the least recently used entry', () => {
    clearClassifyCache();
    setClassifyCacheSize(2);
    try {
      const a = classify('SELECT 1 AS a');
      classify('SELECT 1 AS b');
      classify('SELECT 1 AS a'); // a is now the most recent
      classify('SELECT 1 AS c'); // evicts b
      expect(classify('SELECT 1 AS a')).toBe(a);
      expect(classifyCacheStats().size).toBe(2);
      const before = classifyCacheStats().misses;
      classify('SELECT 1 AS b');
      expect(classifyCacheStats().misses).toBe(before + 1);
    } finally {
      setClassifyCacheSize(10_000);
    }
  });

  it('can be disabled', () => {
    setClassifyCacheSize(0);
    try {
      const a = classify('SELECT 7');
      expect(classify('SELECT 7')).not.toBe(a);
      expect(classify('SELECT 7')).toEqual(a);
    } finally {
      setClassifyCacheSize(10_000);
    }
  });
});
