/** Checks a cleartext password (the `password` method, over TLS only) against any stored form of the secret. */
import { timingSafeEqual } from 'node:crypto';
import { parseScramVerifier, secretKind } from '../../config/secrets.js';
import { md5PasswordHash } from './md5.js';
import { passwordMatchesVerifier } from './scram/verifier.js';

/** True when `password` is the one `secret` stores (plaintext, md5 hash or SCRAM verifier); timing-safe. */
export function verifyCleartextPassword(user: string, secret: string, password: string): boolean {
  if (secret === '') return false;
  switch (secretKind(secret)) {
    case 'scram':
      return passwordMatchesVerifier(password, parseScramVerifier(secret)!);
    case 'md5':
      return sameText(secret, md5PasswordHash(user, password));
    case 'plain':
      return sameText(secret, password);
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
