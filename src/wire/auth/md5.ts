/**
 * MD5 password authentication, both sides: checking a client's PasswordMessage
 * (pgproxy as a server) and answering a backend's AuthenticationMD5Password
 * (pgproxy as a client). Pure functions, no sockets.
 *
 * A stored md5 secret is `'md5' + md5hex(password + user)` (what PostgreSQL keeps
 * in pg_authid and pgpool's pg_md5 prints); the wire response to a 4-byte salt is
 * `'md5' + md5hex(md5hex(password + user) + salt)`, so the stored hash is enough
 * to answer (it is password-equivalent for md5 and must be kept as secret).
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { secretKind } from '../../config/secrets.js';

export const MD5_SALT_LENGTH = 4;

/**
 * True when `secret` is a stored md5 hash rather than a plaintext password
 * (`secretKind(secret) === 'md5'`). Like PostgreSQL, a plaintext password that
 * happens to look like one is taken as a hash.
 */
export function isMd5Hash(secret: string): boolean {
  return secretKind(secret) === 'md5';
}

function md5hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** `'md5' + md5hex(password + user)`, UTF-8 — the form PostgreSQL and pgpool's pg_md5 store. */
export function md5PasswordHash(user: string, password: string): string {
  return 'md5' + md5hex(password + user);
}

/**
 * What a client puts in PasswordMessage (without the terminating NUL) for an
 * AuthenticationMD5Password with `salt`. `secret` is a plaintext password or an
 * md5 hash from {@link md5PasswordHash}.
 * @throws TypeError when the salt is not 4 bytes or the secret is a SCRAM verifier
 *   (programming errors; the message never contains the secret).
 */
export function md5SaltedResponse(user: string, secret: string, salt: Buffer): string {
  if (salt.length !== MD5_SALT_LENGTH) throw new TypeError(`md5 salt must be ${MD5_SALT_LENGTH} bytes, got ${salt.length}`);
  const kind = secretKind(secret);
  if (kind === 'scram') throw new TypeError('a SCRAM-SHA-256 verifier cannot answer an md5 challenge');
  const inner = kind === 'md5' ? secret.slice(3) : md5hex(secret + user);
  return 'md5' + md5hex(Buffer.concat([Buffer.from(inner, 'latin1'), salt]));
}

/**
 * Checks a client's md5 response in constant time. False for a response of the
 * wrong length, a salt that is not 4 bytes, or a secret that cannot do md5
 * (a SCRAM verifier). `response` is the PasswordMessage string without its NUL.
 */
export function verifyMd5Response(user: string, secret: string, salt: Buffer, response: string): boolean {
  if (salt.length !== MD5_SALT_LENGTH || secretKind(secret) === 'scram') return false;
  const expected = Buffer.from(md5SaltedResponse(user, secret, salt), 'latin1');
  const actual = Buffer.from(response, 'utf8');
  // The expected length (35) is public; only the content must not leak through timing.
  if (actual.length !== expected.length) return false;
  return timingSafeEqual(actual, expected);
}

/** A fresh 4-byte salt for AuthenticationMD5Password. */
export function randomSalt(): Buffer {
  return randomBytes(MD5_SALT_LENGTH);
}
