import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { isMd5Hash, md5PasswordHash, md5SaltedResponse, randomSalt, verifyMd5Response } from '../../../../src/wire/auth/md5.js';
import { makeScramVerifier } from '../../../../src/wire/auth/scram.js';

// node-postgres' own md5 code, the client side every pg user runs.
const require = createRequire(import.meta.url);
const pgCrypto = require('pg/lib/crypto/utils') as {
  postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string>;
};

const md5hex = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** The string inside a PasswordMessage frame: 'p', int32 length, string, NUL. */
function passwordFromFrame(frame: Buffer): string {
  expect(frame[0]).toBe(0x70);
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  expect(frame[frame.length - 1]).toBe(0);
  return frame.subarray(5, frame.length - 1).toString('utf8');
}

describe('isMd5Hash', () => {
  it.each([
    ['md553f48b7c4b76a86ce72276c5755f217d', true],
    ['md553F48B7C4B76A86CE72276C5755F217D', false], // PostgreSQL stores lower case only
    ['md553f48b7c4b76a86ce72276c5755f217', false],
    ['md553f48b7c4b76a86ce72276c5755f217d0', false],
    ['xx553f48b7c4b76a86ce72276c5755f217d', false],
    ['secret', false],
    ['', false],
  ])('%s -> %s', (s, expected) => {
    expect(isMd5Hash(s)).toBe(expected);
  });
});

describe('md5PasswordHash', () => {
  it('matches vectors made by libpq 15 PQencryptPasswordConn(..., "md5")', () => {
    // Generated with the installed libpq.so.5.15, not typed by hand.
    expect(md5PasswordHash('postgres', 'secret')).toBe('md553f48b7c4b76a86ce72276c5755f217d');
    expect(md5PasswordHash('alice', 'päss')).toBe('md54c6aa9e1582a107a28cd27f2ceddf4c6'); // UTF-8 bytes
  });

  it('is md5(password + user) computed by hand', () => {
    expect(md5PasswordHash('bob', 'hunter2')).toBe('md5' + md5hex('hunter2bob'));
    expect(isMd5Hash(md5PasswordHash('bob', 'hunter2'))).toBe(true);
  });
});

describe('md5SaltedResponse', () => {
  const salt = Buffer.from([0x01, 0xff, 0x00, 0x7f]);

  it('follows the documented formula, computed by hand', () => {
    const inner = md5hex('secretpostgres');
    const expected = 'md5' + md5hex(Buffer.concat([Buffer.from(inner), salt]));
    expect(md5SaltedResponse('postgres', 'secret', salt)).toBe(expected);
  });

  it("equals node-postgres' postgresMd5PasswordHash for plaintext and for the stored hash", async () => {
    for (const [user, password] of [
      ['postgres', 'secret'],
      ['alice', 'päss wörd'],
      ['', ''],
      ['user with spaces', 'p@ss,w=rd'],
    ] as const) {
      for (const s of [salt, randomSalt(), randomSalt()]) {
        const fromPg = await pgCrypto.postgresMd5PasswordHash(user, password, s);
        expect(md5SaltedResponse(user, password, s)).toBe(fromPg);
        expect(md5SaltedResponse(user, md5PasswordHash(user, password), s)).toBe(fromPg);
      }
    }
  });

  it('rejects a salt that is not 4 bytes and a SCRAM verifier, without echoing the secret', () => {
    expect(() => md5SaltedResponse('u', 'topsecret', Buffer.alloc(3))).toThrow(TypeError);
    const scram = makeScramVerifier('topsecret', { iterations: 1 });
    let error: unknown;
    try {
      md5SaltedResponse('u', scram, salt);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect(String((error as Error).message)).not.toContain('topsecret');
    expect(String((error as Error).message)).not.toContain(scram);
  });
});

describe('verifyMd5Response', () => {
  const user = 'alice';
  const password = 'correct horse';

  it("accepts what node-postgres sends in its PasswordMessage (plaintext and hash secrets)", async () => {
    const salt = randomSalt();
    const frame = serialize.password(await pgCrypto.postgresMd5PasswordHash(user, password, salt));
    const response = passwordFromFrame(frame);
    expect(verifyMd5Response(user, password, salt, response)).toBe(true);
    expect(verifyMd5Response(user, md5PasswordHash(user, password), salt, response)).toBe(true);
  });

  it('rejects a wrong password, user, salt, or a mangled response', async () => {
    const salt = randomSalt();
    const good = md5SaltedResponse(user, password, salt);
    expect(verifyMd5Response(user, 'wrong', salt, good)).toBe(false);
    expect(verifyMd5Response('bob', password, salt, good)).toBe(false);
    const otherSalt = Buffer.from(salt.map((b) => b ^ 1));
    expect(verifyMd5Response(user, password, otherSalt, good)).toBe(false);
    expect(verifyMd5Response(user, password, salt, good.toUpperCase())).toBe(false);
    expect(verifyMd5Response(user, password, salt, good.slice(0, -1))).toBe(false);
    expect(verifyMd5Response(user, password, salt, good + '0')).toBe(false);
    expect(verifyMd5Response(user, password, salt, '')).toBe(false);
    expect(verifyMd5Response(user, password, salt, password)).toBe(false); // a cleartext answer is not an md5 answer
    expect(verifyMd5Response(user, password, salt, 'é'.repeat(35))).toBe(false); // same char length, other byte length
    expect(verifyMd5Response(user, password, Buffer.alloc(5), good)).toBe(false);
  });

  it('never accepts against a SCRAM verifier (it cannot do md5), even the verifier as password', () => {
    const scram = makeScramVerifier(password, { iterations: 1 });
    const salt = randomSalt();
    expect(verifyMd5Response(user, scram, salt, md5SaltedResponse(user, password, salt))).toBe(false);
    const asPlaintext = 'md5' + md5hex(Buffer.concat([Buffer.from(md5hex(scram + user)), salt]));
    expect(verifyMd5Response(user, scram, salt, asPlaintext)).toBe(false);
  });
});

describe('randomSalt', () => {
  it('is 4 fresh bytes', () => {
    const a = randomSalt();
    const b = randomSalt();
    expect(a.length).toBe(4);
    expect(b.length).toBe(4);
    const seen = new Set(Array.from({ length: 64 }, () => randomSalt().toString('hex')));
    expect(seen.size).toBeGreaterThan(60);
  });
});
