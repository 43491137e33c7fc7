import { describe, expect, it } from 'vitest';
import type { HbaRule } from '../../../../src/config/types.js';
import { compileHba, hbaMethod, type ConnectionFacts } from '../../../../src/wire/auth/hba.js';

function rule(partial: Partial<HbaRule> & Pick<HbaRule, 'method'>): HbaRule {
  return { type: 'host', database: ['all'], user: ['all'], address: 'all', ...partial };
}

function method(rules: HbaRule[], facts: Partial<ConnectionFacts>): string | null {
  return hbaMethod(compileHba(rules), { database: 'app', user: 'alice', address: '127.0.0.1', tls: false, ...facts });
}

describe('hba: connection type', () => {
  it.each([
    ['host', false, 'md5'],
    ['host', true, 'md5'],
    ['hostssl', true, 'md5'],
    ['hostssl', false, null],
    ['hostnossl', false, 'md5'],
    ['hostnossl', true, null],
  ] as const)('%s with tls=%s -> %s', (type, tls, expected) => {
    expect(method([rule({ type, method: 'md5' })], { tls })).toBe(expected);
  });
});

describe('hba: addresses', () => {
  it.each([
    ['10.0.0.0/8', '10.1.2.3', true],
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['10.0.0.0/8', '9.255.255.255', false],
    ['192.168.1.7/32', '192.168.1.7', true],
    ['192.168.1.7/32', '192.168.1.8', false],
    ['192.168.1.7', '192.168.1.7', true], // no prefix: the single address
    ['0.0.0.0/0', '203.0.113.9', true],
    ['::1/128', '::1', true],
    ['::1/128', '::2', false],
    ['2001:db8::/32', '2001:db8:1::5', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['::/0', 'fe80::1', true],
    // IPv4 clients on a dual-stack socket show up as IPv4-mapped IPv6 addresses.
    ['127.0.0.0/8', '::ffff:127.0.0.1', true],
    ['10.0.0.0/8', '::ffff:10.9.8.7', true],
    ['127.0.0.0/8', '::ffff:10.9.8.7', false],
    // Families do not mix, as in PostgreSQL: an IPv6 block never matches an IPv4 client, mapped or not.
    ['127.0.0.1/32', '::1', false],
    ['::1/128', '127.0.0.1', false],
    ['::/0', '127.0.0.1', false],
    ['::/0', '::ffff:127.0.0.1', false],
    ['::ffff:0:0/96', '127.0.0.1', false],
    ['0.0.0.0/0', '::1', false],
    ['all', '::1', true],
    ['all', '::ffff:127.0.0.1', true],
    ['all', '198.51.100.1', true],
  ] as const)('%s matches %s: %s', (address, client, matches) => {
    expect(method([rule({ address, method: 'trust' })], { address: client })).toBe(matches ? 'trust' : null);
  });
});

describe('hba: database and user names', () => {
  it("'all' matches any name", () => {
    expect(method([rule({ method: 'md5' })], { database: 'whatever', user: 'anyone' })).toBe('md5');
  });

  it('a list matches any of its names, exactly (case-sensitive)', () => {
    const rules = [rule({ database: ['app', 'reports'], user: ['alice', 'bob'], method: 'scram-sha-256' })];
    expect(method(rules, { database: 'app', user: 'alice' })).toBe('scram-sha-256');
    expect(method(rules, { database: 'reports', user: 'bob' })).toBe('scram-sha-256');
    expect(method(rules, { database: 'other', user: 'alice' })).toBeNull();
    expect(method(rules, { database: 'app', user: 'carol' })).toBeNull();
    expect(method(rules, { database: 'App', user: 'alice' })).toBeNull();
    expect(method(rules, { database: 'app', user: 'Alice' })).toBeNull();
  });

  it("'sameuser' as a database matches the database named after the user", () => {
    const rules = [rule({ database: ['sameuser'], method: 'md5' })];
    expect(method(rules, { database: 'alice', user: 'alice' })).toBe('md5');
    expect(method(rules, { database: 'app', user: 'alice' })).toBeNull();
  });
});

describe('hba: rule order', () => {
  it('the first matching rule wins, including reject', () => {
    const rules = [
      rule({ user: ['mallory'], method: 'reject' }),
      rule({ type: 'hostssl', method: 'scram-sha-256' }),
      rule({ address: '10.0.0.0/8', method: 'trust' }),
      rule({ method: 'md5' }),
      rule({ method: 'password' }),
    ];
    expect(method(rules, { user: 'mallory', tls: true })).toBe('reject');
    expect(method(rules, { address: '10.0.0.1', tls: true })).toBe('scram-sha-256');
    expect(method(rules, { address: '10.0.0.1', tls: false })).toBe('trust');
    expect(method(rules, { address: '127.0.0.1', tls: false })).toBe('md5');
  });

  it('a rule that does not match on every field is skipped', () => {
    const rules = [
      rule({ type: 'hostssl', database: ['app'], user: ['alice'], address: '127.0.0.0/8', method: 'trust' }),
      rule({ method: 'md5' }),
    ];
    expect(method(rules, { tls: true })).toBe('trust');
    expect(method(rules, { tls: false })).toBe('md5');
    expect(method(rules, { tls: true, database: 'other' })).toBe('md5');
    expect(method(rules, { tls: true, user: 'bob' })).toBe('md5');
    expect(method(rules, { tls: true, address: '10.0.0.1' })).toBe('md5');
  });

  it('no matching rule (or no rules) gives null', () => {
    expect(method([], {})).toBeNull();
    expect(method([rule({ address: '10.0.0.0/8', method: 'md5' }), rule({ user: ['bob'], method: 'md5' })], {})).toBeNull();
  });
});
