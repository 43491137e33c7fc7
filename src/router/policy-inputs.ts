/** What the policy reads besides a classification and the rules: the session's routing state, the catalog's facts. */
import type { Isolation } from './classify/index.js';

/**
 * The session state that changes routing: its defaults for new transactions, as settings that took effect
 * left them (policy.ts applyDefaults). A plain BEGIN in a read-only session is a read-only transaction; a
 * session whose default isolation is serializable cannot use a standby at all.
 */
export interface SessionRouting {
  /** default_transaction_read_only. */
  defaultReadOnly: boolean;
  /** default_transaction_isolation. */
  defaultIsolation: Isolation;
}

/** Catalog facts of the session's database, when known. */
export interface CatalogFacts {
  isVolatile(name: string): boolean;
  isUnlogged(relation: string): boolean;
}
