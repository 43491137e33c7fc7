/**
 * What a stored password is. A configured `auth.users[].password`, an
 * auth.query answer or a health-check password is read exactly as PostgreSQL
 * reads pg_authid.rolpassword (get_password_type): an md5 hash, a SCRAM
 * verifier, or else plaintext. This module is the one place that decides.
 *
 * @see https://www.postgresql.org/docs/current/catalog-pg-authid.html
 */

export type SecretKind = 'plain' | 'md5' | 'scram';

/** SHA-256 output: the length of StoredKey and ServerKey in a verifier. */
export const SCRAM_KEY_LENGTH = 32;

/** What PostgreSQL stores for a SCRAM-SHA-256 role (pg_authid.rolpassword), decoded. */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  /** H(ClientKey) */
  storedKey: Buffer;
  serverKey: Buffer;
}

const MD5_HASH = /^md5[0-9a-f]{32}$/;
const VERIFIER = /^SCRAM-SHA-256\$([^$:]+):([^$:]+)\$([^$:]+):([^$:]+)$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_INT32 = 2 ** 31 - 1;

/**
 * `md5` + 32 lowercase hex digits is an md5 hash (a plaintext password that
 * happens to look like one is taken as a hash, as PostgreSQL does); a
 * well-formed `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` is a
 * verifier (a malformed one is plaintext, again as in PostgreSQL); anything
 * else is plaintext.
 */
export function secretKind(secret: string): SecretKind {
  if (MD5_HASH.test(secret)) return 'md5';
  if (parseScramVerifier(secret) !== null) return 'scram';
  return 'plain';
}

/**
 * Decodes `SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>`,
 * with PostgreSQL's checks (parse_scram_secret): a positive 32-bit iteration
 * count, strict base64, a non-empty salt, 32-byte keys. Null if it is not one.
 */
export function parseScramVerifier(secret: string): ScramVerifier | null {
  const m = VERIFIER.exec(secret);
  if (m === null) return null;
  const iterations = parseIterationCount(m[1]!);
  const salt = decodeBase64Strict(m[2]!);
  const storedKey = decodeBase64Strict(m[3]!);
  const serverKey = decodeBase64Strict(m[4]!);
  if (iterations === null || salt === null || salt.length === 0) return null;
  if (storedKey?.length !== SCRAM_KEY_LENGTH || serverKey?.length !== SCRAM_KEY_LENGTH) return null;
  return { iterations, salt, storedKey, serverKey };
}

/** Strict base64 (padding required), as in verifiers and SCRAM messages; null when `text` is not. */
export function decodeBase64Strict(text: string): Buffer | null {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

/** A SCRAM iteration count: decimal digits without a leading zero, 1 to 2^31-1; null otherwise. */
export function parseIterationCount(text: string): number | null {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_INT32 ? n : null;
}
