import { describe, expect, it } from 'vitest';
import { passwordKind } from '../../../src/config/load.js';
import { parseScramVerifier, secretKind } from '../../../src/config/secrets.js';
import { isMd5Hash, md5PasswordHash } from '../../../src/wire/auth/md5.js';
import { makeScramVerifier } from '../../../src/wire/auth/scram.js';

// Made by libpq 15 (PQencryptPasswordConn) for the password 'secret'.
const LIBPQ = 'SCRAM-SHA-256$4096:4wcQfPuoe7w8DWTIwZ0ZuA==$j4s1OcQ1epJysvu4fEc/5UC1810GXExjTSEqxugdt/w=:jt2f/4fN56TsGF3amlzvlpQoAh96W7nQiqhT8JHzXzk=';
const KEY = Buffer.alloc(32, 1).toString('base64');
const SALT = Buffer.from('salt').toString('base64'); // c2FsdA==

describe('secretKind reads a stored password as PostgreSQL does', () => {
  it.each([
    ['secret', 'plain'],
    ['', 'plain'],
    ['md5', 'plain'],
    ['md553f48b7c4b76a86ce72276c5755f217d', 'md5'],
    [md5PasswordHash('u', 'p'), 'md5'],
    ['md5' + 'a'.repeat(32), 'md5'], // looks like a hash, so it is one
    ['md553F48B7C4B76A86CE72276C5755F217D', 'plain'], // PostgreSQL stores lower case only
    ['md553f48b7c4b76a86ce72276c5755f217', 'plain'], // 31 digits
    ['md553f48b7c4b76a86ce72276c5755f217d0', 'plain'], // 33 digits
    [' md553f48b7c4b76a86ce72276c5755f217d', 'plain'],
    ['MD553f48b7c4b76a86ce72276c5755f217d', 'plain'],
    [LIBPQ, 'scram'],
    [`SCRAM-SHA-256$1:${SALT}$${KEY}:${KEY}`, 'scram'],
    [`SCRAM-SHA-256$2147483647:${SALT}$${KEY}:${KEY}`, 'scram'],
    // Malformed verifiers are plaintext passwords to PostgreSQL.
    ['SCRAM-SHA-256$garbage', 'plain'],
    [`SCRAM-SHA-256$0:${SALT}$${KEY}:${KEY}`, 'plain'],
    [`SCRAM-SHA-256$2147483648:${SALT}$${KEY}:${KEY}`, 'plain'],
    [`SCRAM-SHA-256$04096:${SALT}$${KEY}:${KEY}`, 'plain'],
    [`SCRAM-SHA-256$-1:${SALT}$${KEY}:${KEY}`, 'plain'],
    [`SCRAM-SHA-256$4096:$${KEY}:${KEY}`, 'plain'], // empty salt
    [`SCRAM-SHA-256$4096:c2FsdA$${KEY}:${KEY}`, 'plain'], // unpadded base64
    [`SCRAM-SHA-256$4096:${SALT}$${KEY}`, 'plain'], // no ServerKey
    [`SCRAM-SHA-256$4096:${SALT}$${KEY}:${Buffer.alloc(31).toString('base64')}`, 'plain'], // 31-byte key
    [`SCRAM-SHA-256$4096:${SALT}$${Buffer.alloc(33).toString('base64')}:${KEY}`, 'plain'], // 33-byte key
    ['SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5c3RvcmVka2V5:c2VydmVya2V5c2VydmVya2V5', 'plain'], // 18-byte keys
    [`SCRAM-SHA-256$4096:${SALT}$${KEY}:${KEY}$`, 'plain'],
    [` SCRAM-SHA-256$4096:${SALT}$${KEY}:${KEY}`, 'plain'],
    [`SCRAM-SHA-1$4096:${SALT}$${KEY}:${KEY}`, 'plain'],
    [`scram-sha-256$4096:${SALT}$${KEY}:${KEY}`, 'plain'],
  ])('%j -> %s', (secret, kind) => {
    expect(secretKind(secret)).toBe(kind);
    // The older names ask the same function.
    expect(passwordKind(secret)).toBe(kind);
    expect(isMd5Hash(secret)).toBe(kind === 'md5');
    expect(parseScramVerifier(secret) !== null).toBe(kind === 'scram');
  });

  it('every verifier makeScramVerifier writes is read back as one', () => {
    for (const password of ['', 'x', 'p\u00e4ss', 'with,comma=equals']) {
      for (const iterations of [1, 4096]) expect(secretKind(makeScramVerifier(password, { iterations }))).toBe('scram');
    }
  });
});

describe('parseScramVerifier', () => {
  it("decodes the parts of libpq's verifier", () => {
    const v = parseScramVerifier(LIBPQ)!;
    expect(v.iterations).toBe(4096);
    expect(v.salt.toString('base64')).toBe('4wcQfPuoe7w8DWTIwZ0ZuA==');
    expect(v.storedKey.toString('base64')).toBe('j4s1OcQ1epJysvu4fEc/5UC1810GXExjTSEqxugdt/w=');
    expect(v.serverKey.toString('base64')).toBe('jt2f/4fN56TsGF3amlzvlpQoAh96W7nQiqhT8JHzXzk=');
  });
});
