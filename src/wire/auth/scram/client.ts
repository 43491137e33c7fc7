/**
 * SCRAM-SHA-256 as a client: pgproxy logging in to a backend, with the
 * password it holds or, for SCRAM pass-through, with the keys recovered from a
 * client's proof. Pure computation: the caller moves the payloads of
 * AuthenticationSASLContinue/SASLFinal and SASLInitialResponse/SASLResponse.
 *
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { timingSafeEqual } from 'node:crypto';
import { clientProof, deriveKeys, SCRAM_KEY_LENGTH, serverSignature, storedKeyOf, type ScramClientKeys, type ScramKeys } from './keys.js';
import {
  checkNonceArgument,
  COMMA,
  decodeBase64,
  encodeSaslName,
  GS2_HEADER,
  GS2_HEADER_B64,
  isPrintable,
  newNonce,
  parseIterations,
  splitAttributes,
} from './messages.js';

/**
 * The client refuses a server-first asking for more PBKDF2 rounds than this:
 * the derivation is synchronous, and a hostile or broken backend must not be
 * able to stall the event loop (node-postgres uses the same default).
 */
export const SCRAM_DEFAULT_MAX_ITERATIONS = 100_000;

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

type ClientState = 'initial' | 'first-sent' | 'final-sent' | 'done' | 'failed';

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
    if (keys.clientKey.length !== SCRAM_KEY_LENGTH || keys.serverKey.length !== SCRAM_KEY_LENGTH) {
      throw new TypeError(`SCRAM keys must be ${SCRAM_KEY_LENGTH} bytes`);
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
    const proof = clientProof(keys.clientKey, storedKeyOf(keys.clientKey), authMessage);
    this.#serverSignature = serverSignature(keys.serverKey, authMessage);
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
