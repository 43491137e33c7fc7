/** Checks a cleartext password (the `password` method, over TLS only) against any stored form of the secret. */
import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { isMd5Hash, md5PasswordHash } from './md5.js';
import { parseScramVerifier, saslprep } from './scram.js';

export function verifyCleartextPassword(user: string, secret: string, password: string): boolean {
  if (secret === '') return false;
  const verifier = secret.startsWith('SCRAM-SHA-256$') ? parseScramVerifier(secret) : null;
  if (verifier !== null) {
    const salted = pbkdf2Sync(saslprep(password), verifier.salt, verifier.iterations, 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
    return timingSafeEqual(storedKey, verifier.storedKey);
  }
  return isMd5Hash(secret) ? sameText(secret, md5PasswordHash(user, password)) : sameText(secret, password);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
