/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, both sides:
 * {@link ScramServer} checks clients logging in to pgproxy, {@link ScramClient}
 * logs pgproxy in to a backend. Pure computation, no sockets: the caller moves
 * the payloads of AuthenticationSASL/SASLContinue/SASLFinal, SASLInitialResponse
 * and SASLResponse.
 *
 * As in PostgreSQL: no channel binding (we offer SCRAM-SHA-256, never -PLUS),
 * the user name inside the SCRAM messages is ignored (the startup packet's user
 * counts), and passwords go through SASLprep, falling back to the raw bytes
 * when SASLprep refuses the password (see {@link saslprep}).
 *
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html
 * @see https://www.rfc-editor.org/rfc/rfc5802  https://www.rfc-editor.org/rfc/rfc7677
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { isMd5Hash } from './md5.js';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';
/** PostgreSQL's defaults for new verifiers (scram_iterations, SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
export const SCRAM_DEFAULT_SALT_LENGTH = 16;
/**
 * The client refuses a server-first asking for more PBKDF2 rounds than this:
 * the derivation is synchronous, and a hostile or broken backend must not be
 * able to stall the event loop (node-postgres uses the same default).
 */
export const SCRAM_DEFAULT_MAX_ITERATIONS = 100_000;

const KEY_LENGTH = 32; // SHA-256 output
const NONCE_BYTES = 18; // PostgreSQL's SCRAM_RAW_NONCE_LEN; base64 of it is 24 printable chars
const MAX_INT32 = 2 ** 31 - 1;

export type ScramErrorCode = 'SCRAM_PROTOCOL' | 'SCRAM_SERVER_SIGNATURE';

/** Everything the client side rejects. Messages never contain passwords or keys. */
export class ScramError extends Error {
  override readonly name = 'ScramError';
  readonly code: ScramErrorCode;
  constructor(code: ScramErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------
// Primitives

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (padding required); null when `text` is not. */
function decodeBase64(text: string): Buffer | null {
  return BASE64_RE.test(text) ? Buffer.from(text, 'base64') : null;
}

/** printable = %x21-2B / %x2D-7E (RFC 5802), i.e. visible ASCII except ','. */
function isPrintable(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

function parseIterations(text: string): number | null {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_INT32 ? n : null;
}

/**
 * Splits `a=value,b=value,...` into [name, value] pairs. SCRAM values never
 * contain ',' (names escape it as =2C, base64 has none, nonces exclude it), so a
 * plain split is exact. Null when a part is not `<letter>=...`.
 */
function splitAttributes(text: string): Array<[string, string]> | null {
  const out: Array<[string, string]> = [];
  for (const part of text.split(',')) {
    if (part.length < 2 || part.charCodeAt(1) !== 0x3d /* = */ || !/^[A-Za-z]$/.test(part[0]!)) return null;
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

/** RFC 5802 saslname: ',' and '=' escaped. */
function encodeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64');
}

function checkNonceArgument(nonce: string): string {
  if (!isPrintable(nonce)) throw new TypeError('SCRAM nonce must be non-empty printable ASCII without commas');
  return nonce;
}

/** Small insertion-ordered LRU; keys are HMACs of secrets, never the secrets. */
class BoundedCache<V> {
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

/** Per-process key so cache keys and mock salts reveal nothing about secrets or users. */
const PROCESS_KEY = randomBytes(32);

function secretId(...parts: Array<string | Buffer>): string {
  const h = createHmac('sha256', PROCESS_KEY);
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(b.length);
    h.update(len).update(b);
  }
  return h.digest('base64');
}

// ---------------------------------------------------------------------------
// Keys and verifiers

interface ScramKeys {
  clientKey: Buffer;
  serverKey: Buffer;
}

const derivedKeys = new BoundedCache<ScramKeys>(256);

/**
 * SaltedPassword = PBKDF2-SHA-256(SASLprep(password), salt, iterations) and the
 * two keys from it. Cached per (password, salt, iterations): backends keep one
 * salt per role, so every new pooled connection would otherwise redo ~ms of PBKDF2.
 */
function deriveKeys(password: string, salt: Buffer, iterations: number): ScramKeys {
  const id = secretId(password, salt, String(iterations));
  const hit = derivedKeys.get(id);
  if (hit) return hit;
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, KEY_LENGTH, 'sha256');
  const keys = { clientKey: hmac(salted, 'Client Key'), serverKey: hmac(salted, 'Server Key') };
  salted.fill(0);
  derivedKeys.set(id, keys);
  return keys;
}

/** What PostgreSQL stores for a SCRAM-SHA-256 role (pg_authid.rolpassword). */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  /** H(ClientKey) */
  storedKey: Buffer;
  serverKey: Buffer;
}

const VERIFIER_RE = /^SCRAM-SHA-256\$([^$:]+):([^$:]+)\$([^$:]+):([^$:]+)$/;

/** Parses `SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>`; null if it is not one. */
export function parseScramVerifier(s: string): ScramVerifier | null {
  const m = VERIFIER_RE.exec(s);
  if (!m) return null;
  const iterations = parseIterations(m[1]!);
  const salt = decodeBase64(m[2]!);
  const storedKey = decodeBase64(m[3]!);
  const serverKey = decodeBase64(m[4]!);
  if (iterations === null || !salt || salt.length === 0) return null;
  if (storedKey?.length !== KEY_LENGTH || serverKey?.length !== KEY_LENGTH) return null;
  return { iterations, salt, storedKey, serverKey };
}

export function formatScramVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

function verifierFromPassword(password: string, iterations: number, salt: Buffer): ScramVerifier {
  const { clientKey, serverKey } = deriveKeys(password, salt, iterations);
  return { iterations, salt, storedKey: sha256(clientKey), serverKey };
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

export type SecretKind = 'plaintext' | 'md5' | 'scram-sha-256';

/** How PostgreSQL would read a stored secret (get_password_type): md5 hash, SCRAM verifier, or plaintext. */
export function secretKind(secret: string): SecretKind {
  if (isMd5Hash(secret)) return 'md5';
  if (parseScramVerifier(secret)) return 'scram-sha-256';
  return 'plaintext';
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
  if (kind === 'scram-sha-256') return parseScramVerifier(secret);
  const id = secretId('plaintext', secret);
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
  const seed = createHmac('sha256', PROCESS_KEY).update('mock\0').update(username, 'utf8').digest();
  return {
    iterations: SCRAM_DEFAULT_ITERATIONS,
    salt: seed.subarray(0, SCRAM_DEFAULT_SALT_LENGTH),
    // Random, so that no ClientKey hashes to it.
    storedKey: randomBytes(KEY_LENGTH),
    serverKey: randomBytes(KEY_LENGTH),
  };
}

function checkVerifier(v: ScramVerifier): void {
  if (!Number.isInteger(v.iterations) || v.iterations < 1 || v.salt.length === 0) {
    throw new TypeError('invalid SCRAM verifier');
  }
  if (v.storedKey.length !== KEY_LENGTH || v.serverKey.length !== KEY_LENGTH) throw new TypeError('invalid SCRAM verifier');
}

// ---------------------------------------------------------------------------
// Client side: pgproxy logging in to a backend

export interface ScramClientOptions {
  /**
   * User name put in client-first-message. PostgreSQL ignores it and uses the
   * startup packet's user; libpq sends it empty (`n=,`), node-postgres sends `n=*`.
   * Default ''.
   */
  username?: string;
  /** Refuse a server-first with more PBKDF2 iterations than this. Default {@link SCRAM_DEFAULT_MAX_ITERATIONS}. */
  maxIterations?: number;
}

/**
 * Keys for SCRAM pass-through (as PgBouncer does): log in to a backend with the
 * ClientKey recovered by {@link ScramServer.handleClientFinal} instead of a password.
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

type ClientState = 'initial' | 'first-sent' | 'final-sent' | 'done' | 'failed';

const GS2_HEADER = 'n,,'; // no channel binding, no authzid
const GS2_HEADER_B64 = Buffer.from(GS2_HEADER).toString('base64'); // 'biws'

/**
 * One SCRAM-SHA-256 exchange as a client, for a backend that sent
 * AuthenticationSASL listing {@link SCRAM_MECHANISM}:
 * `clientFirstMessage()` -> SASLInitialResponse; SASLContinue data ->
 * `handleServerFirst()` -> SASLResponse; SASLFinal data -> `verifyServerFinal()`.
 * Every rejection is a {@link ScramError}; after one, the instance is spent.
 */
export class ScramClient {
  #password: string | null;
  #keys: ScramClientKeys | null = null;
  readonly #nonce: string;
  readonly #bare: Buffer;
  readonly #maxIterations: number;
  #state: ClientState = 'initial';
  #serverSignature: Buffer | null = null;

  /**
   * @param nonce client nonce (tests); default 18 random bytes in base64, like PostgreSQL.
   * @throws TypeError for an invalid nonce or maxIterations.
   */
  constructor(password: string, nonce?: string, options: ScramClientOptions = {}) {
    this.#password = password;
    this.#nonce = nonce === undefined ? newNonce() : checkNonceArgument(nonce);
    const max = options.maxIterations ?? SCRAM_DEFAULT_MAX_ITERATIONS;
    if (!(max >= 1)) throw new TypeError('maxIterations must be at least 1');
    this.#maxIterations = max;
    this.#bare = Buffer.from(`n=${encodeSaslName(options.username ?? '')},r=${this.#nonce}`, 'utf8');
  }

  /**
   * A client that proves knowledge of ClientKey without the password (SCRAM
   * pass-through): the backend's server-first supplies salt and iterations, the
   * proof is ClientKey XOR HMAC(H(ClientKey), AuthMessage), and ServerKey checks
   * the backend's final signature. See {@link ScramClientKeys} for when it works.
   */
  static fromKeys(keys: ScramClientKeys, nonce?: string, options: ScramClientOptions = {}): ScramClient {
    if (keys.clientKey.length !== KEY_LENGTH || keys.serverKey.length !== KEY_LENGTH) {
      throw new TypeError(`SCRAM keys must be ${KEY_LENGTH} bytes`);
    }
    const client = new ScramClient('', nonce, options);
    client.#password = null;
    client.#keys = {
      clientKey: Buffer.from(keys.clientKey),
      serverKey: Buffer.from(keys.serverKey),
      ...(keys.salt ? { salt: Buffer.from(keys.salt) } : {}),
      ...(keys.iterations !== undefined ? { iterations: keys.iterations } : {}),
    };
    return client;
  }

  /** Payload of SASLInitialResponse (after the mechanism name and length): `n,,n=<user>,r=<nonce>`. */
  clientFirstMessage(): Buffer {
    if (this.#state !== 'initial' && this.#state !== 'first-sent') this.#fail('SCRAM_PROTOCOL', 'client-first-message requested out of order');
    this.#state = 'first-sent';
    return Buffer.concat([Buffer.from(GS2_HEADER), this.#bare]);
  }

  /** Takes AuthenticationSASLContinue's data, returns the SASLResponse payload (client-final-message). */
  handleServerFirst(serverFirst: Buffer): Buffer {
    if (this.#state !== 'first-sent') this.#fail('SCRAM_PROTOCOL', 'server-first-message arrived out of order');
    const attrs = splitAttributes(serverFirst.toString('latin1'));
    if (attrs?.[0]?.[0] === 'm') this.#fail('SCRAM_PROTOCOL', 'server requires an unsupported SCRAM extension');
    if (!attrs || attrs.length !== 3 || attrs[0]![0] !== 'r' || attrs[1]![0] !== 's' || attrs[2]![0] !== 'i') {
      this.#fail('SCRAM_PROTOCOL', 'malformed SCRAM server-first-message');
    }
    const nonce = attrs[0]![1];
    const salt = decodeBase64(attrs[1]![1]);
    const iterations = parseIterations(attrs[2]![1]);
    if (!isPrintable(nonce)) this.#fail('SCRAM_PROTOCOL', 'malformed SCRAM server-first-message: invalid nonce');
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      this.#fail('SCRAM_PROTOCOL', 'SCRAM server nonce does not extend the client nonce');
    }
    if (!salt || salt.length === 0) this.#fail('SCRAM_PROTOCOL', 'malformed SCRAM server-first-message: invalid salt');
    if (iterations === null) this.#fail('SCRAM_PROTOCOL', 'malformed SCRAM server-first-message: invalid iteration count');
    if (iterations > this.#maxIterations) {
      this.#fail('SCRAM_PROTOCOL', `SCRAM iteration count ${iterations} exceeds the maximum of ${this.#maxIterations}`);
    }

    let keys: ScramKeys;
    if (this.#keys) {
      const k = this.#keys;
      if ((k.salt && !k.salt.equals(salt)) || (k.iterations !== undefined && k.iterations !== iterations)) {
        this.#fail('SCRAM_PROTOCOL', "the backend's SCRAM salt or iteration count differs from the verifier the client key came from");
      }
      keys = k;
    } else {
      keys = deriveKeys(this.#password!, salt, iterations);
    }

    const withoutProof = Buffer.from(`c=${GS2_HEADER_B64},r=${nonce}`, 'latin1');
    const authMessage = Buffer.concat([this.#bare, COMMA, serverFirst, COMMA, withoutProof]);
    const proof = xor(keys.clientKey, hmac(sha256(keys.clientKey), authMessage));
    this.#serverSignature = hmac(keys.serverKey, authMessage);
    this.#state = 'final-sent';
    return Buffer.concat([withoutProof, Buffer.from(`,p=${proof.toString('base64')}`, 'latin1')]);
  }

  /**
   * Takes AuthenticationSASLFinal's data. Returns when the backend proved it
   * knows the verifier; throws SCRAM_SERVER_SIGNATURE when it did not, and
   * SCRAM_PROTOCOL for `e=` errors and malformed messages.
   */
  verifyServerFinal(serverFinal: Buffer): void {
    if (this.#state !== 'final-sent') this.#fail('SCRAM_PROTOCOL', 'server-final-message arrived out of order');
    const attrs = splitAttributes(serverFinal.toString('latin1'));
    if (attrs?.[0]?.[0] === 'e') {
      const detail = attrs[0]![1].replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
      this.#fail('SCRAM_PROTOCOL', `SCRAM server error: ${detail}`);
    }
    if (!attrs || attrs.length !== 1 || attrs[0]![0] !== 'v') this.#fail('SCRAM_PROTOCOL', 'malformed SCRAM server-final-message');
    const signature = decodeBase64(attrs[0]![1]);
    const expected = this.#serverSignature!;
    if (!signature || signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      this.#fail('SCRAM_SERVER_SIGNATURE', 'SCRAM server signature does not match');
    }
    this.#state = 'done';
  }

  #fail(code: ScramErrorCode, message: string): never {
    this.#state = 'failed';
    throw new ScramError(code, message);
  }
}

const COMMA = Buffer.from(',');

// ---------------------------------------------------------------------------
// Server side: clients logging in to pgproxy

/**
 * Why an exchange failed, with the SQLSTATE PostgreSQL uses: 08P01 for a
 * malformed or out-of-order message, 28P01 for a wrong password.
 */
export interface ScramServerFailure {
  ok: false;
  reason: string;
  sqlstate: '08P01' | '28P01';
}

type ServerState = 'initial' | 'first-done' | 'done' | 'failed';

/**
 * One SCRAM-SHA-256 exchange as a server. Offer {@link SCRAM_MECHANISM} in
 * AuthenticationSASL; SASLInitialResponse -> `handleClientFirst()` ->
 * SASLContinue; SASLResponse -> `handleClientFinal()` -> SASLFinal, then
 * AuthenticationOk. Never throws on client input; the payloads given are copied
 * where kept, so borrowed views are fine. After a failure the instance is spent.
 */
export class ScramServer {
  readonly #verifier: ScramVerifier;
  readonly #serverNonce: string;
  #state: ServerState = 'initial';
  #gs2Header: Buffer | null = null;
  #clientFirstBare: Buffer | null = null;
  #serverFirst: Buffer | null = null;
  #nonce = '';

  /**
   * @param nonce server part of the nonce (tests); default 18 random bytes in base64.
   * @throws TypeError for an invalid verifier or nonce.
   */
  constructor(verifier: ScramVerifier, nonce?: string) {
    checkVerifier(verifier);
    this.#verifier = verifier;
    this.#serverNonce = nonce === undefined ? newNonce() : checkNonceArgument(nonce);
  }

  /** `mechanism` and `data` from SASLInitialResponse. On success send `serverFirst` in AuthenticationSASLContinue. */
  handleClientFirst(mechanism: string, data: Buffer): { ok: true; serverFirst: Buffer } | ScramServerFailure {
    if (this.#state !== 'initial') return this.#fail('08P01', 'unexpected SCRAM client-first-message');
    if (mechanism !== SCRAM_MECHANISM) return this.#fail('08P01', 'client selected an invalid SASL authentication mechanism');
    const text = data.toString('latin1');
    if (text.includes('\0')) return this.#fail('08P01', 'malformed SCRAM message');
    const flag = text[0];
    if (flag === 'p') {
      return this.#fail('08P01', 'client requested SCRAM channel binding, which is not supported (SCRAM-SHA-256-PLUS is not offered)');
    }
    // 'y' = the client supports channel binding but thinks we do not: true, we offer no -PLUS.
    if ((flag !== 'n' && flag !== 'y') || text[1] !== ',') return this.#fail('08P01', 'malformed SCRAM message: unexpected channel-binding flag');
    if (text[2] === 'a') return this.#fail('08P01', 'client uses authorization identity, but it is not supported');
    if (text[2] !== ',') return this.#fail('08P01', 'malformed SCRAM message');
    const bare = text.slice(3);
    const attrs = splitAttributes(bare);
    if (attrs?.[0]?.[0] === 'm') return this.#fail('08P01', 'client requires an unsupported SCRAM extension');
    // n=<user> is ignored, like PostgreSQL: the startup packet named the user.
    if (!attrs || attrs.length < 2 || attrs[0]![0] !== 'n' || attrs[1]![0] !== 'r') return this.#fail('08P01', 'malformed SCRAM message');
    const clientNonce = attrs[1]![1];
    if (!isPrintable(clientNonce)) return this.#fail('08P01', 'malformed SCRAM message: invalid client nonce');
    // Any further attributes are extensions, ignored as PostgreSQL does.

    this.#gs2Header = Buffer.from(data.subarray(0, 3));
    this.#clientFirstBare = Buffer.from(data.subarray(3));
    this.#nonce = clientNonce + this.#serverNonce;
    const v = this.#verifier;
    this.#serverFirst = Buffer.from(`r=${this.#nonce},s=${v.salt.toString('base64')},i=${v.iterations}`, 'latin1');
    this.#state = 'first-done';
    return { ok: true, serverFirst: Buffer.from(this.#serverFirst) };
  }

  /**
   * SASLResponse data. On success send `serverFinal` in AuthenticationSASLFinal,
   * then AuthenticationOk. `clientKey` is recovered from the proof for SCRAM
   * pass-through ({@link ScramClient.fromKeys}); it is password-equivalent for
   * this verifier: keep it in memory only, never log it.
   */
  handleClientFinal(data: Buffer): { ok: true; serverFinal: Buffer; clientKey: Buffer } | ScramServerFailure {
    if (this.#state !== 'first-done') return this.#fail('08P01', 'unexpected SCRAM client-final-message');
    const text = data.toString('latin1');
    if (text.includes('\0')) return this.#fail('08P01', 'malformed SCRAM message');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) return this.#fail('08P01', 'malformed SCRAM message: proof missing');
    const attrs = splitAttributes(text.slice(0, proofAt));
    if (!attrs || attrs.length < 2 || attrs[0]![0] !== 'c' || attrs[1]![0] !== 'r') return this.#fail('08P01', 'malformed SCRAM message');
    const binding = decodeBase64(attrs[0]![1]);
    if (!binding || !binding.equals(this.#gs2Header!)) return this.#fail('08P01', 'SCRAM channel binding check failed');
    if (attrs[1]![1] !== this.#nonce) return this.#fail('08P01', 'SCRAM nonce does not match');
    const proof = decodeBase64(text.slice(proofAt + 3));
    if (!proof || proof.length !== KEY_LENGTH) return this.#fail('08P01', 'malformed SCRAM message: invalid proof');

    const v = this.#verifier;
    const authMessage = Buffer.concat([this.#clientFirstBare!, COMMA, this.#serverFirst!, COMMA, data.subarray(0, proofAt)]);
    const clientKey = xor(proof, hmac(v.storedKey, authMessage));
    if (!timingSafeEqual(sha256(clientKey), v.storedKey)) return this.#fail('28P01', 'password authentication failed');
    this.#state = 'done';
    return { ok: true, serverFinal: Buffer.from(`v=${hmac(v.serverKey, authMessage).toString('base64')}`, 'latin1'), clientKey };
  }

  #fail(sqlstate: '08P01' | '28P01', reason: string): ScramServerFailure {
    this.#state = 'failed';
    return { ok: false, reason, sqlstate };
  }
}

// ---------------------------------------------------------------------------
// SASLprep (RFC 4013), exactly as PostgreSQL's pg_saslprep (src/common/saslprep.c)

/**
 * The password as PostgreSQL feeds it to PBKDF2 (server and libpq alike):
 * - pure ASCII: unchanged (even control characters);
 * - map non-ASCII spaces (RFC 3454 C.1.2) to ' ' and drop "commonly mapped to
 *   nothing" characters (B.1); nothing left -> the raw password;
 * - if the mapped string has a prohibited (C.1.2-C.9) or unassigned-in-Unicode-3.2
 *   (A.1) code point, or breaks the bidi rule (RandALCat with LCat, or not
 *   starting and ending with RandALCat) -> the raw password. Like PostgreSQL,
 *   these checks look at the mapped string before normalisation;
 * - otherwise NFKC of the mapped string.
 * "Raw password" is PostgreSQL's fallback when SASLprep fails; a password with
 * an emoji (unassigned in 3.2) is therefore never normalised.
 * Lone UTF-16 surrogates count as prohibited (their UTF-8 bytes are U+FFFD).
 */
export function saslprep(password: string): string {
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const mapped: number[] = [];
  for (const ch of password) {
    const cp = ch.codePointAt(0)!;
    if (inTable(NON_ASCII_SPACE, cp)) mapped.push(0x20);
    else if (!inTable(MAPPED_TO_NOTHING, cp)) mapped.push(cp);
  }
  if (mapped.length === 0) return password;
  let hasRandAL = false;
  for (const cp of mapped) {
    if (inTable(PROHIBITED_OR_UNASSIGNED, cp)) return password;
    if (inTable(RAND_AL_CAT, cp)) hasRandAL = true;
  }
  if (hasRandAL) {
    if (!inTable(RAND_AL_CAT, mapped[0]!) || !inTable(RAND_AL_CAT, mapped[mapped.length - 1]!)) return password;
    for (const cp of mapped) if (inTable(L_CAT, cp)) return password;
  }
  let out = '';
  for (const cp of mapped) out += String.fromCodePoint(cp);
  return out.normalize('NFKC');
}

/** Code point tables as sorted inclusive [first, last] pairs, written as hex `a-b` or `a`. */
function ranges(...parts: string[]): Uint32Array {
  const items = parts.join('').split(',');
  const out = new Uint32Array(items.length * 2);
  items.forEach((item, i) => {
    const [a, b = a] = item.split('-') as [string, string?];
    out[2 * i] = parseInt(a, 16);
    out[2 * i + 1] = parseInt(b, 16);
  });
  return out;
}

function inTable(table: Uint32Array, cp: number): boolean {
  let lo = 0;
  let hi = table.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (cp < table[2 * mid]!) hi = mid - 1;
    else if (cp > table[2 * mid + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

// Tables from RFC 3454 (stringprep), generated with Python's stdlib `stringprep`
// module (which carries the Unicode 3.2 database the RFC is defined on) and
// checked against libpq 15's pg_saslprep. PostgreSQL tests C.1.2 before B.1, so
// U+200B (in both) becomes a space.
/** C.1.2 non-ASCII space characters, mapped to U+0020. */
const NON_ASCII_SPACE = ranges('a0,1680,2000-200b,202f,205f,3000');
/** B.1 commonly mapped to nothing. */
const MAPPED_TO_NOTHING = ranges('ad,34f,1806,180b-180d,200b-200d,2060,fe00-fe0f,feff');
/** Union of A.1 (unassigned in Unicode 3.2) and C.1.2, C.2.1, C.2.2, C.3-C.9 (prohibited output). */
const PROHIBITED_OR_UNASSIGNED = ranges(
  '0-1f,7f-a0,221,234-24f,2ae-2af,2ef-2ff,340-341,350-35f,370-373,376-379,37b-37d,37f-383,38b,38d,' +
  '3a2,3cf,3f7-3ff,487,4cf,4f6-4f7,4fa-4ff,510-530,557-558,560,588,58b-590,5a2,5ba,5c5-5cf,5eb-5ef,' +
  '5f5-60b,60d-61a,61c-61e,620,63b-63f,656-65f,6dd,6ee-6ef,6ff,70e-70f,72d-72f,74b-77f,7b2-900,904,' +
  '93a-93b,94e-94f,955-957,971-980,984,98d-98e,991-992,9a9,9b1,9b3-9b5,9ba-9bb,9bd,9c5-9c6,9c9-9ca,' +
  '9ce-9d6,9d8-9db,9de,9e4-9e5,9fb-a01,a03-a04,a0b-a0e,a11-a12,a29,a31,a34,a37,a3a-a3b,a3d,a43-a46,' +
  'a49-a4a,a4e-a58,a5d,a5f-a65,a75-a80,a84,a8c,a8e,a92,aa9,ab1,ab4,aba-abb,ac6,aca,ace-acf,ad1-adf,' +
  'ae1-ae5,af0-b00,b04,b0d-b0e,b11-b12,b29,b31,b34-b35,b3a-b3b,b44-b46,b49-b4a,b4e-b55,b58-b5b,b5e,' +
  'b62-b65,b71-b81,b84,b8b-b8d,b91,b96-b98,b9b,b9d,ba0-ba2,ba5-ba7,bab-bad,bb6,bba-bbd,bc3-bc5,bc9,' +
  'bce-bd6,bd8-be6,bf3-c00,c04,c0d,c11,c29,c34,c3a-c3d,c45,c49,c4e-c54,c57-c5f,c62-c65,c70-c81,c84,' +
  'c8d,c91,ca9,cb4,cba-cbd,cc5,cc9,cce-cd4,cd7-cdd,cdf,ce2-ce5,cf0-d01,d04,d0d,d11,d29,d3a-d3d,' +
  'd44-d45,d49,d4e-d56,d58-d5f,d62-d65,d70-d81,d84,d97-d99,db2,dbc,dbe-dbf,dc7-dc9,dcb-dce,dd5,dd7,' +
  'de0-df1,df5-e00,e3b-e3e,e5c-e80,e83,e85-e86,e89,e8b-e8c,e8e-e93,e98,ea0,ea4,ea6,ea8-ea9,eac,eba,' +
  'ebe-ebf,ec5,ec7,ece-ecf,eda-edb,ede-eff,f48,f6b-f70,f8c-f8f,f98,fbd,fcd-fce,fd0-fff,1022,1028,' +
  '102b,1033-1035,103a-103f,105a-109f,10c6-10cf,10f9-10fa,10fc-10ff,115a-115e,11a3-11a7,11fa-11ff,' +
  '1207,1247,1249,124e-124f,1257,1259,125e-125f,1287,1289,128e-128f,12af,12b1,12b6-12b7,12bf,12c1,' +
  '12c6-12c7,12cf,12d7,12ef,130f,1311,1316-1317,131f,1347,135b-1360,137d-139f,13f5-1400,1677-1680,' +
  '169d-169f,16f1-16ff,170d,1715-171f,1737-173f,1754-175f,176d,1771,1774-177f,17dd-17df,17ea-17ff,' +
  '180e-180f,181a-181f,1878-187f,18aa-1dff,1e9c-1e9f,1efa-1eff,1f16-1f17,1f1e-1f1f,1f46-1f47,' +
  '1f4e-1f4f,1f58,1f5a,1f5c,1f5e,1f7e-1f7f,1fb5,1fc5,1fd4-1fd5,1fdc,1ff0-1ff1,1ff5,1fff-200f,' +
  '2028-202f,2053-2056,2058-206f,2072-2073,208f-209f,20b2-20cf,20eb-20ff,213b-213c,214c-2152,' +
  '2184-218f,23cf-23ff,2427-243f,244b-245f,24ff,2614-2615,2618,267e-267f,268a-2700,2705,270a-270b,' +
  '2728,274c,274e,2753-2755,2757,275f-2760,2795-2797,27b0,27bf-27cf,27ec-27ef,2b00-2e7f,2e9a,' +
  '2ef4-2eff,2fd6-3000,3040,3097-3098,3100-3104,312d-3130,318f,31b8-31ef,321d-321f,3244-3250,' +
  '327c-327e,32cc-32cf,32ff,3377-337a,33de-33df,33ff,4db6-4dff,9fa6-9fff,a48d-a48f,a4c7-abff,' +
  'd7a4-f8ff,fa2e-fa2f,fa6b-faff,fb07-fb12,fb18-fb1c,fb37,fb3d,fb3f,fb42,fb45,fbb2-fbd2,fd40-fd4f,' +
  'fd90-fd91,fdc8-fdef,fdfd-fdff,fe10-fe1f,fe24-fe2f,fe47-fe48,fe53,fe67,fe6c-fe6f,fe75,fefd-ff00,' +
  'ffbf-ffc1,ffc8-ffc9,ffd0-ffd1,ffd8-ffd9,ffdd-ffdf,ffe7,ffef-102ff,1031f,10324-1032f,1034b-103ff,' +
  '10426-10427,1044e-1cfff,1d0f6-1d0ff,1d127-1d129,1d173-1d17a,1d1de-1d3ff,1d455,1d49d,1d4a0-1d4a1,' +
  '1d4a3-1d4a4,1d4a7-1d4a8,1d4ad,1d4ba,1d4bc,1d4c1,1d4c4,1d506,1d50b-1d50c,1d515,1d51d,1d53a,1d53f,' +
  '1d545,1d547-1d549,1d551,1d6a4-1d6a7,1d7ca-1d7cd,1d800-1ffff,2a6d7-2f7ff,2fa1e-10ffff',
);
/** D.1 characters with bidirectional property R or AL. */
const RAND_AL_CAT = ranges(
  '5be,5c0,5c3,5d0-5ea,5f0-5f4,61b,61f,621-63a,640-64a,66d-66f,671-6d5,6dd,6e5-6e6,6fa-6fe,700-70d,' +
  '710,712-72c,780-7a5,7b1,200f,fb1d,fb1f-fb28,fb2a-fb36,fb38-fb3c,fb3e,fb40-fb41,fb43-fb44,' +
  'fb46-fbb1,fbd3-fd3d,fd50-fd8f,fd92-fdc7,fdf0-fdfc,fe70-fe74,fe76-fefc',
);
/** D.2 characters with bidirectional property L. */
const L_CAT = ranges(
  '41-5a,61-7a,aa,b5,ba,c0-d6,d8-f6,f8-220,222-233,250-2ad,2b0-2b8,2bb-2c1,2d0-2d1,2e0-2e4,2ee,37a,' +
  '386,388-38a,38c,38e-3a1,3a3-3ce,3d0-3f5,400-482,48a-4ce,4d0-4f5,4f8-4f9,500-50f,531-556,559-55f,' +
  '561-587,589,903,905-939,93d-940,949-94c,950,958-961,964-970,982-983,985-98c,98f-990,993-9a8,' +
  '9aa-9b0,9b2,9b6-9b9,9be-9c0,9c7-9c8,9cb-9cc,9d7,9dc-9dd,9df-9e1,9e6-9f1,9f4-9fa,a05-a0a,a0f-a10,' +
  'a13-a28,a2a-a30,a32-a33,a35-a36,a38-a39,a3e-a40,a59-a5c,a5e,a66-a6f,a72-a74,a83,a85-a8b,a8d,' +
  'a8f-a91,a93-aa8,aaa-ab0,ab2-ab3,ab5-ab9,abd-ac0,ac9,acb-acc,ad0,ae0,ae6-aef,b02-b03,b05-b0c,' +
  'b0f-b10,b13-b28,b2a-b30,b32-b33,b36-b39,b3d-b3e,b40,b47-b48,b4b-b4c,b57,b5c-b5d,b5f-b61,b66-b70,' +
  'b83,b85-b8a,b8e-b90,b92-b95,b99-b9a,b9c,b9e-b9f,ba3-ba4,ba8-baa,bae-bb5,bb7-bb9,bbe-bbf,bc1-bc2,' +
  'bc6-bc8,bca-bcc,bd7,be7-bf2,c01-c03,c05-c0c,c0e-c10,c12-c28,c2a-c33,c35-c39,c41-c44,c60-c61,' +
  'c66-c6f,c82-c83,c85-c8c,c8e-c90,c92-ca8,caa-cb3,cb5-cb9,cbe,cc0-cc4,cc7-cc8,cca-ccb,cd5-cd6,cde,' +
  'ce0-ce1,ce6-cef,d02-d03,d05-d0c,d0e-d10,d12-d28,d2a-d39,d3e-d40,d46-d48,d4a-d4c,d57,d60-d61,' +
  'd66-d6f,d82-d83,d85-d96,d9a-db1,db3-dbb,dbd,dc0-dc6,dcf-dd1,dd8-ddf,df2-df4,e01-e30,e32-e33,' +
  'e40-e46,e4f-e5b,e81-e82,e84,e87-e88,e8a,e8d,e94-e97,e99-e9f,ea1-ea3,ea5,ea7,eaa-eab,ead-eb0,' +
  'eb2-eb3,ebd,ec0-ec4,ec6,ed0-ed9,edc-edd,f00-f17,f1a-f34,f36,f38,f3e-f47,f49-f6a,f7f,f85,f88-f8b,' +
  'fbe-fc5,fc7-fcc,fcf,1000-1021,1023-1027,1029-102a,102c,1031,1038,1040-1057,10a0-10c5,10d0-10f8,' +
  '10fb,1100-1159,115f-11a2,11a8-11f9,1200-1206,1208-1246,1248,124a-124d,1250-1256,1258,125a-125d,' +
  '1260-1286,1288,128a-128d,1290-12ae,12b0,12b2-12b5,12b8-12be,12c0,12c2-12c5,12c8-12ce,12d0-12d6,' +
  '12d8-12ee,12f0-130e,1310,1312-1315,1318-131e,1320-1346,1348-135a,1361-137c,13a0-13f4,1401-1676,' +
  '1681-169a,16a0-16f0,1700-170c,170e-1711,1720-1731,1735-1736,1740-1751,1760-176c,176e-1770,' +
  '1780-17b6,17be-17c5,17c7-17c8,17d4-17da,17dc,17e0-17e9,1810-1819,1820-1877,1880-18a8,1e00-1e9b,' +
  '1ea0-1ef9,1f00-1f15,1f18-1f1d,1f20-1f45,1f48-1f4d,1f50-1f57,1f59,1f5b,1f5d,1f5f-1f7d,1f80-1fb4,' +
  '1fb6-1fbc,1fbe,1fc2-1fc4,1fc6-1fcc,1fd0-1fd3,1fd6-1fdb,1fe0-1fec,1ff2-1ff4,1ff6-1ffc,200e,2071,' +
  '207f,2102,2107,210a-2113,2115,2119-211d,2124,2126,2128,212a-212d,212f-2131,2133-2139,213d-213f,' +
  '2145-2149,2160-2183,2336-237a,2395,249c-24e9,3005-3007,3021-3029,3031-3035,3038-303c,3041-3096,' +
  '309d-309f,30a1-30fa,30fc-30ff,3105-312c,3131-318e,3190-31b7,31f0-321c,3220-3243,3260-327b,' +
  '327f-32b0,32c0-32cb,32d0-32fe,3300-3376,337b-33dd,33e0-33fe,3400-4db5,4e00-9fa5,a000-a48c,' +
  'ac00-d7a3,d800-fa2d,fa30-fa6a,fb00-fb06,fb13-fb17,ff21-ff3a,ff41-ff5a,ff66-ffbe,ffc2-ffc7,' +
  'ffca-ffcf,ffd2-ffd7,ffda-ffdc,10300-1031e,10320-10323,10330-1034a,10400-10425,10428-1044d,' +
  '1d000-1d0f5,1d100-1d126,1d12a-1d166,1d16a-1d172,1d183-1d184,1d18c-1d1a9,1d1ae-1d1dd,1d400-1d454,' +
  '1d456-1d49c,1d49e-1d49f,1d4a2,1d4a5-1d4a6,1d4a9-1d4ac,1d4ae-1d4b9,1d4bb,1d4bd-1d4c0,1d4c2-1d4c3,' +
  '1d4c5-1d505,1d507-1d50a,1d50d-1d514,1d516-1d51c,1d51e-1d539,1d53b-1d53e,1d540-1d544,1d546,' +
  '1d54a-1d550,1d552-1d6a3,1d6a8-1d7c9,20000-2a6d6,2f800-2fa1d,f0000-ffffd,100000-10fffd',
);
