/**
 * One authentication exchange with a client, behind one interface whatever
 * the method: the startup step machine sends `start()`, feeds each 'p' message
 * to `next()`, and acts on the step it returns. createAuthFlow (create-flow.ts) picks the flow. A flow decides nothing about
 * TLS, hba or the failure limiter; those are the caller's.
 */
import type { ScramClientKeys } from './scram/keys.js';

export type { ScramClientKeys };

export type AuthStep =
  /** Send `message` to the client and wait for its next authentication message. */
  | { readonly kind: 'reply'; readonly message: Buffer }
  /** Authenticated. Send `message` first when not null (SCRAM's AuthenticationSASLFinal), then AuthenticationOk
   *  (the caller sends AuthenticationOk). `scramKeys`: SCRAM pass-through keys when the stored secret was a SCRAM
   *  verifier (lets pgproxy log in to backends with the client's own proof), else null. */
  | { readonly kind: 'done'; readonly message: Buffer | null; readonly scramKeys: ScramClientKeys | null }
  /** Wrong password or unknown user: the caller answers FATAL 28P01 and counts a failed login. */
  | { readonly kind: 'fail' };

export interface AuthFlow {
  /** The method actually run: md5 with a stored SCRAM verifier runs 'scram-sha-256'. */
  readonly method: 'md5' | 'scram-sha-256' | 'password';
  /** The authentication request to send the client first. */
  start(): Buffer;
  /** Handles the body of the client's next 'p' message (PasswordMessage, SASLInitialResponse or SASLResponse).
   *  Throws MessageError (src/wire/frontend.ts) for a malformed message. */
  next(body: Buffer): AuthStep;
}
