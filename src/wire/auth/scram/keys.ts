/**
 * The SCRAM-SHA-256 key math of RFC 5802, once, for the server, the client and
 * verifier creation:
 *   SaltedPassword = Hi(SASLprep(password), salt, i)   (PBKDF2-HMAC-SHA-256)
 *   ClientKey = HMAC(SaltedPassword, "Client Key")     StoredKey = H(ClientKey)
 *   ServerKey = HMAC(SaltedPassword, "Server Key")
 *   ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 *
 * @see https://www.rfc-editor.org/rfc/rfc5802#section-3
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { SCRAM_KEY_LENGTH } from '../../../config/secrets.js';
import { saslprep } from './saslprep.js';

export { SCRAM_KEY_LENGTH };

/** ClientKey and ServerKey: what a password (or a recovered proof) gives for one salt and iteration count. */
export interface ScramKeys {
  clientKey: Buffer;
  serverKey: Buffer;
}

/**
 * Keys for SCRAM pass-through: log in to a backend with the ClientKey
 * recovered by ScramServer.handleClientFinal instead of a password.
 * This works only when the backend's verifier is the one the client was checked
 * against (same salt and iterations, hence the same keys): configure pgproxy
 * with the backend's own `SCRAM-SHA-256$...` string for that user.
 */
export interface ScramClientKeys {
  clientKey: Buffer;
  /** Needed to check the backend's signature (proves the backend knows the verifier). */
  serverKey: Buffer;
  /** When given, a backend announcing another salt/iteration count is refused up front with a clear error. */
  salt?: Buffer;
  iterations?: number;
}

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** H() of RFC 5802. */
export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** ClientKey and ServerKey from a password; no cache (see {@link deriveKeys}). */
export function keysFromPassword(password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, SCRAM_KEY_LENGTH, 'sha256');
  const keys = { clientKey: hmac(salted, 'Client Key'), serverKey: hmac(salted, 'Server Key') };
  salted.fill(0);
  return keys;
}

/** StoredKey = H(ClientKey). */
export function storedKeyOf(clientKey: Buffer): Buffer {
  return sha256(clientKey);
}

/** ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage). */
export function clientProof(clientKey: Buffer, storedKey: Buffer, authMessage: Buffer): Buffer {
  return xor(clientKey, hmac(storedKey, authMessage));
}

/** The ClientKey inside a proof (the same XOR undone); the proof is right when H(ClientKey) = StoredKey. */
export function clientKeyFromProof(proof: Buffer, storedKey: Buffer, authMessage: Buffer): Buffer {
  return xor(proof, hmac(storedKey, authMessage));
}

/** ServerSignature = HMAC(ServerKey, AuthMessage). */
export function serverSignature(serverKey: Buffer, authMessage: Buffer): Buffer {
  return hmac(serverKey, authMessage);
}

/** Per-process key so cache keys and mock salts reveal nothing about secrets or users. */
const PROCESS_KEY = randomBytes(32);

/** HMAC under the process key of length-prefixed parts: a stable, secret-free identifier within this process. */
export function processDigest(...parts: Array<string | Buffer>): Buffer {
  const h = createHmac('sha256', PROCESS_KEY);
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(b.length);
    h.update(len).update(b);
  }
  return h.digest();
}

/** Small insertion-ordered LRU; keys are process digests of secrets, never the secrets. */
export class BoundedCache<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as string);
  }
}

const derivedKeys = new BoundedCache<ScramKeys>(256);

/**
 * {@link keysFromPassword}, cached per (password, salt, iterations) for
 * passwords pgproxy holds itself: backends keep one salt per role, so every new
 * pooled connection would otherwise redo ~ms of PBKDF2. Not for passwords
 * clients send (wrong ones would evict the entries that matter).
 */
export function deriveKeys(password: string, salt: Buffer, iterations: number): ScramKeys {
  const id = processDigest(password, salt, String(iterations)).toString('base64');
  const hit = derivedKeys.get(id);
  if (hit) return hit;
  const keys = keysFromPassword(password, salt, iterations);
  derivedKeys.set(id, keys);
  return keys;
}
