/**
 * SCRAM-SHA-256 verifiers: PostgreSQL's stored form of a SCRAM password
 * (pg_authid.rolpassword), made from a password, parsed from a configured
 * secret, or mocked for users that do not exist.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { parseScramVerifier, secretKind, type ScramVerifier } from '../../../config/secrets.js';
import { BoundedCache, deriveKeys, keysFromPassword, processDigest, SCRAM_KEY_LENGTH, storedKeyOf } from './keys.js';

export { parseScramVerifier, type ScramVerifier };

/** PostgreSQL's defaults for new verifiers (scram_iterations, SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
export const SCRAM_DEFAULT_SALT_LENGTH = 16;
const MAX_INT32 = 2 ** 31 - 1;

export function formatScramVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

function verifierFromPassword(password: string, iterations: number, salt: Buffer): ScramVerifier {
  const { clientKey, serverKey } = deriveKeys(password, salt, iterations);
  return { iterations, salt, storedKey: storedKeyOf(clientKey), serverKey };
}

/**
 * A verifier string in PostgreSQL's format, as `CREATE ROLE ... PASSWORD` with
 * password_encryption = scram-sha-256 would store it.
 * @throws TypeError for iterations that are not an integer in 1..2^31-1 or an empty salt.
 */
export function makeScramVerifier(password: string, opts: { iterations?: number; salt?: Buffer } = {}): string {
  const iterations = opts.iterations ?? SCRAM_DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_INT32) {
    throw new TypeError('SCRAM iterations must be an integer between 1 and 2^31-1');
  }
  const salt = opts.salt ?? randomBytes(SCRAM_DEFAULT_SALT_LENGTH);
  if (salt.length === 0) throw new TypeError('SCRAM salt must not be empty');
  return formatScramVerifier(verifierFromPassword(password, iterations, Buffer.from(salt)));
}

const verifiersFromPlaintext = new BoundedCache<ScramVerifier>(1024);

/**
 * The verifier to check a client against, from a configured secret:
 * a SCRAM verifier string is parsed; a plaintext password is derived once per
 * process (random salt, 4096 iterations) and cached, so clients see a stable
 * salt and logins cost no PBKDF2; an md5 hash cannot make one (null).
 * The result is shared: do not mutate its buffers.
 */
export function scramVerifierFromSecret(secret: string): ScramVerifier | null {
  const kind = secretKind(secret);
  if (kind === 'md5') return null;
  if (kind === 'scram') return parseScramVerifier(secret);
  const id = processDigest('plaintext', secret).toString('base64');
  const hit = verifiersFromPlaintext.get(id);
  if (hit) return hit;
  const v = Object.freeze(verifierFromPassword(secret, SCRAM_DEFAULT_ITERATIONS, randomBytes(SCRAM_DEFAULT_SALT_LENGTH)));
  verifiersFromPlaintext.set(id, v);
  return v;
}

/**
 * A verifier no proof can match, for a user that does not exist or cannot do
 * SCRAM: run the exchange against it and fail at the end, as PostgreSQL's
 * "mock authentication" does, so that a client cannot tell unknown users from
 * wrong passwords. The salt is stable per user name within the process.
 */
export function mockScramVerifier(username: string): ScramVerifier {
  return {
    iterations: SCRAM_DEFAULT_ITERATIONS,
    salt: processDigest('mock', username).subarray(0, SCRAM_DEFAULT_SALT_LENGTH),
    // Random, so that no ClientKey hashes to it.
    storedKey: randomBytes(SCRAM_KEY_LENGTH),
    serverKey: randomBytes(SCRAM_KEY_LENGTH),
  };
}

/** True when `password` is the one `v` was made from (timing-safe): the `password` method against a SCRAM secret. */
export function passwordMatchesVerifier(password: string, v: ScramVerifier): boolean {
  const { clientKey } = keysFromPassword(password, v.salt, v.iterations);
  return timingSafeEqual(storedKeyOf(clientKey), v.storedKey);
}

/** @throws TypeError when `v` could not have come from {@link parseScramVerifier}. */
export function checkVerifier(v: ScramVerifier): void {
  if (!Number.isInteger(v.iterations) || v.iterations < 1 || v.salt.length === 0) {
    throw new TypeError('invalid SCRAM verifier');
  }
  if (v.storedKey.length !== SCRAM_KEY_LENGTH || v.serverKey.length !== SCRAM_KEY_LENGTH) throw new TypeError('invalid SCRAM verifier');
}
