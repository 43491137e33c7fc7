// pgproxy's own settings (pgproxy.*) as values: parsing of every value form, PostgreSQL's rules for SET, SET LOCAL,
// RESET, DEFAULT and transactions, the startup defaults, and the errors (SQLSTATEs as PostgreSQL's).
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../../src/errors.js';
import { isProxySetting, ProxySettings, showable } from '../../../src/session/proxy-settings.js';

/** SET in autocommit: the error's SQLSTATE, or null. */
function set(p: ProxySettings, name: string, raw: string | null): string | null {
  const r = p.set(name, raw, false, false);
  if (typeof r === 'string') throw new Error(`unexpected warning ${r}`);
  return r === null ? null : r.sqlstate;
}

function values(p: ProxySettings): Record<string, string> {
  return Object.fromEntries(['pgproxy.route', 'pgproxy.min_lsn', 'pgproxy.max_lag_ms', 'pgproxy.explain'].map((n) => [n.slice(8), p.show(n)]));
}

describe('values', () => {
  it('route: auto | primary | standby, in any case, quoted or not', () => {
    const p = new ProxySettings([]);
    for (const [raw, v] of [['primary', 'primary'], ['PRIMARY', 'primary'], [`'standby'`, 'standby'], [`'Auto'`, 'auto'], ['"standby"', 'standby']] as const) {
      expect(set(p, 'pgproxy.route', raw), raw).toBeNull();
      expect(p.route, raw).toBe(v);
    }
    for (const raw of ['sideways', `'prim ary'`, `''`, '1']) expect(set(p, 'pgproxy.route', raw), raw).toBe('22023');
    expect(p.route).toBe('standby');
  });

  it('min_lsn: an LSN X/Y in hexadecimal, either case; empty clears it', () => {
    const p = new ProxySettings([]);
    expect(set(p, 'pgproxy.min_lsn', `'0/1A2B3C'`)).toBeNull();
    expect(p.minLsn).toBe(0x1a2b3cn);
    expect(set(p, 'pgproxy.min_lsn', `'ff/ffffffff'`)).toBeNull();
    expect(p.minLsn).toBe((0xffn << 32n) + 0xffffffffn);
    expect(p.show('pgproxy.min_lsn')).toBe('FF/FFFFFFFF');
    for (const raw of [`'1A2B3C'`, `'0/'`, `'/1'`, `'0/1/2'`, `'0/123456789'`, `'g/1'`, `' 0/1'`, '0']) expect(set(p, 'pgproxy.min_lsn', raw), raw).toBe('22023');
    expect(set(p, 'pgproxy.min_lsn', `''`)).toBeNull();
    expect(p.minLsn).toBeNull();
    expect(p.show('pgproxy.min_lsn')).toBe('');
  });

  it('max_lag_ms: a whole number of milliseconds, 0 allowed (fully replayed)', () => {
    const p = new ProxySettings([]);
    for (const [raw, v] of [['500', 500], [`'30000'`, 30_000], ['0', 0]] as const) {
      expect(set(p, 'pgproxy.max_lag_ms', raw), raw).toBeNull();
      expect(p.maxLagMs).toBe(v);
    }
    for (const raw of ['-1', '1.5', `'soon'`, `'1e3'`, '1234567890123']) expect(set(p, 'pgproxy.max_lag_ms', raw), raw).toBe('22023');
    expect(p.show('pgproxy.max_lag_ms')).toBe('0');
  });

  it('explain: the boolean spellings PostgreSQL takes', () => {
    const p = new ProxySettings([]);
    for (const [raw, v] of [['on', true], ['off', false], ['TRUE', true], [`'false'`, false], ['yes', true], ['no', false], ['1', true], ['0', false]] as const) {
      expect(set(p, 'pgproxy.explain', raw), raw).toBeNull();
      expect(p.explain, raw).toBe(v);
    }
    expect(set(p, 'pgproxy.explain', 'loudly')).toBe('22023');
  });

  it('the error for a bad value names the parameter and the value, with a hint', () => {
    const r = new ProxySettings([]).set('pgproxy.route', 'sideways', false, false);
    expect(r).toBeInstanceOf(ProxyError);
    expect((r as ProxyError).message).toBe('invalid value for parameter "pgproxy.route": "sideways"');
    expect((r as ProxyError).detail).toMatch(/auto, primary, standby/);
  });
});

describe('names', () => {
  it('unknown pgproxy.* names are 42704, read-only ones 55P02, for SET and RESET', () => {
    const p = new ProxySettings([]);
    expect(set(p, 'pgproxy.nope', '1')).toBe('42704');
    expect(p.reset('pgproxy.nope', false)?.sqlstate).toBe('42704');
    for (const name of ['pgproxy.last_commit_lsn', 'pgproxy.last_route']) {
      expect(set(p, name, `'0/1'`)).toBe('55P02');
      expect(p.reset(name, false)?.sqlstate).toBe('55P02');
      expect(showable(name)).toBe(true);
    }
    expect(showable('pgproxy.nope')).toBe(false);
    expect(isProxySetting('pgproxy.route')).toBe(true);
    expect(isProxySetting('pgproxyx.route')).toBe(false);
    expect(isProxySetting(null)).toBe(false);
  });
});

describe('SET, SET LOCAL, RESET, DEFAULT and transactions', () => {
  it('startup options set the session defaults; RESET, DEFAULT and RESET ALL go back to them', () => {
    const p = new ProxySettings([
      ['pgproxy.route', 'primary'],
      ['pgproxy.max_lag_ms', '900'],
    ]);
    expect(values(p)).toEqual({ route: 'primary', min_lsn: '', max_lag_ms: '900', explain: 'off' });
    set(p, 'pgproxy.route', 'standby');
    set(p, 'pgproxy.max_lag_ms', '5');
    set(p, 'pgproxy.explain', 'on');
    expect(p.reset('pgproxy.route', false)).toBeNull();
    expect(p.route).toBe('primary');
    // DEFAULT is the session's default too (as in PostgreSQL), not the built-in one.
    expect(set(p, 'pgproxy.max_lag_ms', 'DEFAULT')).toBeNull();
    expect(p.maxLagMs).toBe(900);
    expect(set(p, 'pgproxy.route', null)).toBeNull();
    expect(p.route).toBe('primary');
    // A quoted 'default' is a value, not the keyword.
    expect(set(p, 'pgproxy.route', `'default'`)).toBe('22023');
    p.resetAll(false);
    expect(values(p)).toEqual({ route: 'primary', min_lsn: '', max_lag_ms: '900', explain: 'off' });
  });

  it('bad startup values fail with a FATAL error', () => {
    const err = (() => {
      try {
        new ProxySettings([['pgproxy.route', 'sideways']]);
      } catch (e) {
        return e as ProxyError;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ProxyError);
    expect(err!.severity).toBe('FATAL');
    expect(err!.sqlstate).toBe('22023');
    expect(() => new ProxySettings([['pgproxy.nope', '1']])).toThrow(/unrecognized configuration parameter "pgproxy.nope"/);
  });

  it('SET LOCAL outside a transaction only warns (the value is still checked)', () => {
    const p = new ProxySettings([]);
    expect(p.set('pgproxy.route', 'primary', true, false)).toBe('SET LOCAL can only be used in transaction blocks');
    expect(p.route).toBe('auto');
    expect((p.set('pgproxy.route', 'sideways', true, false) as ProxyError).sqlstate).toBe('22023');
  });

  it('SET LOCAL lasts until the transaction ends, committed or not; it hides the session value meanwhile', () => {
    for (const committed of [true, false]) {
      const p = new ProxySettings([]);
      set(p, 'pgproxy.max_lag_ms', '700');
      expect(p.set('pgproxy.max_lag_ms', '50', true, true)).toBeNull();
      expect(p.set('pgproxy.min_lsn', `'0/10'`, true, true)).toBeNull();
      expect(p.maxLagMs).toBe(50);
      expect(p.minLsn).toBe(16n);
      p.transactionEnded(committed);
      expect(p.maxLagMs).toBe(700);
      expect(p.minLsn).toBeNull();
    }
  });

  it('a session SET inside a transaction stays if it commits, is undone if it rolls back; so are RESET and RESET ALL', () => {
    const p = new ProxySettings([]);
    set(p, 'pgproxy.route', 'standby');
    expect(p.set('pgproxy.route', 'primary', false, true)).toBeNull();
    expect(p.set('pgproxy.explain', 'on', false, true)).toBeNull();
    p.transactionEnded(false);
    expect(values(p)).toEqual({ route: 'standby', min_lsn: '', max_lag_ms: '', explain: 'off' });
    expect(p.reset('pgproxy.route', true)).toBeNull();
    expect(p.route).toBe('auto');
    p.transactionEnded(false);
    expect(p.route).toBe('standby');
    p.resetAll(true);
    expect(p.route).toBe('auto');
    p.transactionEnded(false);
    expect(p.route).toBe('standby');
    expect(p.set('pgproxy.route', 'primary', false, true)).toBeNull();
    p.transactionEnded(true);
    expect(p.route).toBe('primary');
    // The next transaction's rollback goes back to what the committed one left.
    expect(p.set('pgproxy.route', 'auto', false, true)).toBeNull();
    p.transactionEnded(false);
    expect(p.route).toBe('primary');
  });

  it('a session SET after SET LOCAL of the same name in one transaction replaces it for the rest of the transaction', () => {
    const p = new ProxySettings([]);
    expect(p.set('pgproxy.route', 'primary', true, true)).toBeNull();
    expect(p.set('pgproxy.route', 'standby', false, true)).toBeNull();
    expect(p.route).toBe('standby');
    p.transactionEnded(true);
    expect(p.route).toBe('standby');
  });
});
