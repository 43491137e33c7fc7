/**
 * The md5 method: AuthenticationMD5Password with a fresh salt, then one
 * PasswordMessage. An unknown user gets a salt too and fails only when its
 * answer arrives, like a wrong password.
 * @see https://www.postgresql.org/docs/current/auth-password.html
 */
import { authMd5Request } from '../backend.js';
import type { AuthFlow, AuthStep } from './flow.js';
import { randomSalt, verifyMd5Response } from './md5.js';
import { passwordFromMessage } from './messages.js';
import { AUTH_DONE, AUTH_FAIL } from './steps.js';

export class Md5Flow implements AuthFlow {
  readonly method = 'md5';
  readonly #user: string;
  /** Plaintext or md5 hash; null: unknown user. */
  readonly #secret: string | null;
  readonly #salt = randomSalt();
  #answered = false;

  constructor(user: string, secret: string | null) {
    this.#user = user;
    this.#secret = secret;
  }

  start(): Buffer {
    return authMd5Request(this.#salt);
  }

  next(body: Buffer): AuthStep {
    const response = passwordFromMessage(body);
    if (this.#answered) return AUTH_FAIL;
    this.#answered = true;
    const ok = this.#secret !== null && verifyMd5Response(this.#user, this.#secret, this.#salt, response);
    return ok ? AUTH_DONE : AUTH_FAIL;
  }
}
