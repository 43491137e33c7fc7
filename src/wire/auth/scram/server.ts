/**
 * SCRAM-SHA-256 as a server: checks a client logging in to pgproxy against a
 * verifier. As in PostgreSQL: no channel binding (SCRAM-SHA-256 is offered,
 * never -PLUS), and the user name inside the SCRAM messages is ignored (the
 * startup packet's user counts). Pure computation, no sockets.
 *
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html
 * @see https://www.rfc-editor.org/rfc/rfc5802  https://www.rfc-editor.org/rfc/rfc7677
 */
import { timingSafeEqual } from 'node:crypto';
import { clientKeyFromProof, SCRAM_KEY_LENGTH, serverSignature, storedKeyOf } from './keys.js';
import { checkNonceArgument, COMMA, decodeBase64, isPrintable, newNonce, SCRAM_MECHANISM, splitAttributes } from './messages.js';
import { checkVerifier, type ScramVerifier } from './verifier.js';

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
    if (!proof || proof.length !== SCRAM_KEY_LENGTH) return this.#fail('08P01', 'malformed SCRAM message: invalid proof');

    const v = this.#verifier;
    const authMessage = Buffer.concat([this.#clientFirstBare!, COMMA, this.#serverFirst!, COMMA, data.subarray(0, proofAt)]);
    const clientKey = clientKeyFromProof(proof, v.storedKey, authMessage);
    if (!timingSafeEqual(storedKeyOf(clientKey), v.storedKey)) return this.#fail('28P01', 'password authentication failed');
    this.#state = 'done';
    return { ok: true, serverFinal: Buffer.from(`v=${serverSignature(v.serverKey, authMessage).toString('base64')}`, 'latin1'), clientKey };
  }

  #fail(sqlstate: '08P01' | '28P01', reason: string): ScramServerFailure {
    this.#state = 'failed';
    return { ok: false, reason, sqlstate };
  }
}
