// Leading-comment hints read from the wire bytes, outside the classification cache: the same answer as the
// lexer gives the first statement, for every text.
import { describe, expect, it } from 'vitest';
import { classifyUncached } from '../../../src/router/classify/index.js';
import { Hint, MAX_HINT_COMMENT, leadingHints } from '../../../src/router/hints.js';
import { prng } from '../../prng.js';

const hintsOf = (sql: string): number => {
  const b = Buffer.from(sql, 'utf8');
  return leadingHints(b, 0, b.length);
};
const lexerHint = (sql: string): boolean => classifyUncached(sql).statements[0]?.hint === 'primary';

describe('leadingHints', () => {
  it.each<[string, number]>([
    ['SELECT 1', Hint.None],
    ['', Hint.None],
    ['/*NO LOAD BALANCE*/ SELECT 1', Hint.Primary],
    ['/*no load balance*/SELECT 1', Hint.Primary],
    ['  \n /*  NO   LOAD\tBALANCE  */\nSELECT 1', Hint.Primary],
    ['/* pgproxy: primary */ SELECT 1', Hint.Primary],
    ['/*PGPROXY:PRIMARY*/ SELECT 1', Hint.Primary],
    ['/* pgproxy: primary, some_future_directive=1 */ SELECT 1', Hint.Primary],
    ['/* pgproxy: future=1, primary */ SELECT 1', Hint.Primary],
    ['/* pgproxy: primary=yes */ SELECT 1', Hint.None],
    ['/* pgproxy: primary please */ SELECT 1', Hint.None],
    ['/* pgproxy */ SELECT 1', Hint.None],
    ['/* app=x */ /*NO LOAD BALANCE*/ SELECT 1', Hint.Primary],
    ['-- first\n/*NO LOAD BALANCE*/ SELECT 1', Hint.Primary],
    ['-- NO LOAD BALANCE\nSELECT 1', Hint.None],
    ['SELECT 1 /*NO LOAD BALANCE*/', Hint.None],
    ['SELECT /*NO LOAD BALANCE*/ 1', Hint.None],
    ["SELECT '/*NO LOAD BALANCE*/'", Hint.None],
    ['/*NO LOAD BALANCING*/ SELECT 1', Hint.None],
    ['/* NO LOAD BALANCE please */ SELECT 1', Hint.None],
    ['/* /*NO LOAD BALANCE*/ */ SELECT 1', Hint.None],
    ['/*NO LOAD BALANCE*/ ; SELECT 1', Hint.None],
    ['; /*NO LOAD BALANCE*/ SELECT 1', Hint.Primary],
    [';;/*NO LOAD BALANCE*/;/* x */ SELECT 1', Hint.None],
    ['/*NO LOAD BALANCE é*/ SELECT 1', Hint.None],
    ['/*NO LOAD BALANCE*/ /* unterminated', Hint.Primary],
    [`/*NO LOAD BALANCE${' '.repeat(MAX_HINT_COMMENT - 19)}*/ SELECT 1`, Hint.Primary],
    [`/*NO LOAD BALANCE${' '.repeat(MAX_HINT_COMMENT - 18)}*/ SELECT 1`, Hint.None],
  ])('%j -> %i, as the lexer sees it', (sql, hints) => {
    expect(hintsOf(sql)).toBe(hints);
    if (classifyUncached(sql).statements.length > 0) expect(lexerHint(sql)).toBe(hints === Hint.Primary);
  });

  it('reads only [start, end) of a larger buffer', () => {
    const b = Buffer.from('xx/*NO LOAD BALANCE*/ SELECT 1\0/*pgproxy:primary*/');
    expect(leadingHints(b, 2, b.indexOf(0))).toBe(Hint.Primary);
    expect(leadingHints(b, 0, b.indexOf(0))).toBe(Hint.None);
    expect(leadingHints(b, 2, 10)).toBe(Hint.None); // the comment does not end within the range
  });

  it('agrees with the lexer on random texts', () => {
    const pieces = ['/*', '*/', '--', '\n', ' ', ';', 'NO LOAD BALANCE', 'pgproxy:', 'primary', ',', 'x', 'SELECT 1', "'", 'é', '\t', '/*NO LOAD BALANCE*/', '/* pgproxy: primary */'];
    const rnd = prng(20240501);
    let hinted = 0;
    for (let n = 0; n < 20_000; n++) {
      let sql = '';
      const len = Math.floor(rnd() * 10);
      for (let k = 0; k < len; k++) sql += pieces[Math.floor(rnd() * pieces.length)];
      const c = classifyUncached(sql);
      if (c.statements.length === 0) continue;
      const h = hintsOf(sql);
      if (h !== Hint.None) hinted++;
      expect(h === Hint.Primary, JSON.stringify(sql)).toBe(c.statements[0]!.hint === 'primary');
    }
    expect(hinted).toBeGreaterThan(100);
  });
});
