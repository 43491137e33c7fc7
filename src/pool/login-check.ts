/**
 * Refuses configurations in which pgproxy could authenticate a client but then not log in to a backend as
 * that user: a SCRAM verifier can check a client's password but can never answer a backend, and an md5 hash
 * can answer only backends that ask for md5.
 */
import type { Config } from '../config/types.js';
import { secretKind } from '../config/secrets.js';
import { BackendConnection, type NodeAddress } from './backend.js';
import { BackendError } from '../errors.js';

/**
 * Problems visible from the configuration alone. A SCRAM verifier is accepted: clients authenticate against it
 * and backends are logged in to by SCRAM pass-through, which works when it is the backend's own verifier.
 */
export function staticSecretProblems(_config: Config): string[] {
  return [];
}

/** Tries each user whose secret is an md5 hash against `node`: a backend asking for SCRAM cannot be answered. */
export async function backendSecretProblems(config: Config, node: NodeAddress, tls?: import('./backend.js').BackendTls): Promise<string[]> {
  const problems: string[] = [];
  for (const u of config.auth.users) {
    if (secretKind(u.password) !== 'md5') continue;
    try {
      const conn = await BackendConnection.connect(node, { user: u.name, database: config.health_check.database, secret: u.password, connectTimeoutMs: config.pool.connect_timeout_ms, ...(tls ? { tls } : {}) });
      conn.terminate();
    } catch (err) {
      if (err instanceof BackendError && /only an md5 hash is configured|no plaintext password is configured/.test(err.message)) {
        problems.push(`auth.users "${u.name}": ${err.message}`);
      }
    }
  }
  return problems;
}
