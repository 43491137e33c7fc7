/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, both sides; one
 * module per job under scram/:
 * - keys.ts      the key math (Hi, ClientKey, StoredKey, ServerKey, proof, signature)
 * - server.ts    ScramServer: clients logging in to pgproxy
 * - client.ts    ScramClient: pgproxy logging in to a backend (password or pass-through keys)
 * - verifier.ts  verifiers: make, parse (config/secrets.ts), from a configured secret, mock
 * - messages.ts  attribute lists, nonces, names
 * - saslprep.ts  SASLprep with its RFC 3454 tables
 * This module gathers the public names, for the callers that import them from here.
 */
export { SCRAM_KEY_LENGTH, type ScramClientKeys } from './scram/keys.js';
export { SCRAM_MECHANISM } from './scram/messages.js';
export { saslprep } from './scram/saslprep.js';
export { ScramServer, type ScramServerFailure } from './scram/server.js';
export { SCRAM_DEFAULT_MAX_ITERATIONS, ScramClient, ScramError, type ScramClientOptions, type ScramErrorCode } from './scram/client.js';
export {
  formatScramVerifier,
  makeScramVerifier,
  mockScramVerifier,
  parseScramVerifier,
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_DEFAULT_SALT_LENGTH,
  scramVerifierFromSecret,
  type ScramVerifier,
} from './scram/verifier.js';
export { secretKind, type SecretKind } from '../../config/secrets.js';
