/**
 * The password method: AuthenticationCleartextPassword, then one
 * PasswordMessage checked against the stored secret in whatever form it is
 * (plaintext, md5 hash, SCRAM verifier). The caller allows it over TLS only.
 * @see https://www.postgresql.org/docs/current/auth-password.html
 */
import { AUTH_CLEARTEXT } from '../backend.js';
import type { AuthFlow, AuthStep } from './flow.js';
import { passwordFromMessage } from './messages.js';
import { AUTH_DONE, AUTH_FAIL } from './steps.js';
import { verifyCleartextPassword } from './password.js';

export class CleartextFlow implements AuthFlow {
  readonly method = 'password';
  readonly #user: string;
  /** Null: unknown user. */
  readonly #secret: string | null;
  #answered = false;

  constructor(user: string, secret: string | null) {
    this.#user = user;
    this.#secret = secret;
  }

  start(): Buffer {
    return AUTH_CLEARTEXT;
  }

  next(body: Buffer): AuthStep {
    const password = passwordFromMessage(body);
    if (this.#answered) return AUTH_FAIL;
    this.#answered = true;
    const ok = this.#secret !== null && verifyCleartextPassword(this.#user, this.#secret, password);
    return ok ? AUTH_DONE : AUTH_FAIL;
  }
}
