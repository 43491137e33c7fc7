/**
 * The scram-sha-256 method (also md5 when the stored secret is a SCRAM
 * verifier): AuthenticationSASL offering SCRAM-SHA-256 only, SASLInitialResponse
 * -> AuthenticationSASLContinue, SASLResponse -> AuthenticationSASLFinal.
 * A user without a usable secret (unknown, or an md5 hash) runs the whole
 * exchange against a mock verifier and fails at its end, revealing nothing.
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { parseScramVerifier, type ScramVerifier } from '../../config/secrets.js';
import { authSaslContinue, authSaslRequest } from '../backend.js';
import type { AuthFlow, AuthStep } from './flow.js';
import { saslInitialResponse } from './messages.js';
import { SCRAM_MECHANISM } from './scram/messages.js';
import { ScramServer } from './scram/server.js';
import { mockScramVerifier, scramVerifierFromSecret } from './scram/verifier.js';
import { AUTH_FAIL } from './steps.js';

const SASL_REQUEST = authSaslRequest([SCRAM_MECHANISM]);

const enum Step {
  ClientFirst,
  ClientFinal,
  Ended,
}

export class ScramFlow implements AuthFlow {
  readonly method = 'scram-sha-256';
  readonly #server: ScramServer;
  /** The stored verifier when the secret is one: its keys let pgproxy log in to backends as the client. */
  readonly #stored: ScramVerifier | null;
  #step = Step.ClientFirst;

  /** `secret`: plaintext, md5 hash or SCRAM verifier; null: unknown user. */
  constructor(user: string, secret: string | null) {
    this.#stored = secret !== null ? parseScramVerifier(secret) : null;
    const verifier = this.#stored ?? (secret !== null ? scramVerifierFromSecret(secret) : null);
    this.#server = new ScramServer(verifier ?? mockScramVerifier(user));
  }

  start(): Buffer {
    return SASL_REQUEST;
  }

  next(body: Buffer): AuthStep {
    switch (this.#step) {
      case Step.ClientFirst: {
        const { mechanism, data } = saslInitialResponse(body);
        const r = this.#server.handleClientFirst(mechanism, data);
        if (!r.ok) return this.#fail();
        this.#step = Step.ClientFinal;
        return { kind: 'reply', message: authSaslContinue(r.serverFirst) };
      }
      case Step.ClientFinal: {
        const r = this.#server.handleClientFinal(body);
        if (!r.ok) return this.#fail();
        this.#step = Step.Ended;
        const v = this.#stored;
        const scramKeys = v === null ? null : { clientKey: r.clientKey, serverKey: v.serverKey, salt: v.salt, iterations: v.iterations };
        return { kind: 'done', message: authSaslContinue(r.serverFinal, true), scramKeys };
      }
      case Step.Ended:
        return AUTH_FAIL;
    }
  }

  #fail(): AuthStep {
    this.#step = Step.Ended;
    return AUTH_FAIL;
  }
}
