/** The authentication flow for a method and a stored secret. */
import { secretKind } from '../../config/secrets.js';
import { CleartextFlow } from './cleartext-flow.js';
import type { AuthFlow } from './flow.js';
import { Md5Flow } from './md5-flow.js';
import { ScramFlow } from './scram-flow.js';

/** The flow for a configured or hba-chosen method ('trust' and 'reject' have none), for `user` whose stored
 *  secret is `secret` (null: no such user). */
export function createAuthFlow(method: 'md5' | 'scram-sha-256' | 'password', user: string, secret: string | null): AuthFlow {
  // PostgreSQL keeps "no password" as NULL; an empty secret can only mean the same.
  const stored = secret === '' ? null : secret;
  switch (method) {
    case 'password':
      return new CleartextFlow(user, stored);
    case 'md5':
      // Like PostgreSQL: md5 with a stored SCRAM verifier authenticates with SCRAM.
      return stored !== null && secretKind(stored) === 'scram' ? new ScramFlow(user, stored) : new Md5Flow(user, stored);
    case 'scram-sha-256':
      return new ScramFlow(user, stored);
  }
}
