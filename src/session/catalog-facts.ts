/**
 * The catalog facts of a session's database (volatile functions, unlogged relations), as the policy reads them.
 * The first load for a database is awaited (the session holds its input meanwhile); when it fails, routing goes on
 * without them and tries again later.
 */
import type { Logger } from 'pino';
import type { CatalogCache, CatalogSnapshot } from '../router/catalog.js';
import type { CatalogFacts } from '../router/policy.js';

const RETRY_MS = 5_000;

export class SessionCatalog {
  private loading = false;
  private failedAt = 0;

  constructor(
    private readonly cache: CatalogCache,
    private readonly database: string,
    private readonly log: () => Logger,
    /** Called when a load the session waited for has ended. */
    private readonly loaded: () => void,
  ) {}

  /** The facts; null when they cannot be had (route without them); undefined while the first load runs (wait). */
  facts(): CatalogFacts | null | undefined {
    const snapshot = this.cache.get(this.database);
    if (snapshot !== undefined) return factsOf(this.cache, snapshot);
    if (this.failedAt !== 0 && Date.now() - this.failedAt < RETRY_MS) return null;
    if (this.loading) return undefined;
    this.loading = true;
    this.cache.load(this.database).then(
      () => {
        this.loading = false;
        this.loaded();
      },
      (err: Error) => {
        this.loading = false;
        this.failedAt = Date.now();
        this.log().warn({ err: err.message }, 'catalog facts unavailable; routing without volatility and unlogged-table checks');
        this.loaded();
      },
    );
    return undefined;
  }

  /** The session changed the schema: the facts are stale. */
  invalidate(): void {
    this.cache.invalidate(this.database);
  }
}

const adapters = new WeakMap<CatalogSnapshot, CatalogFacts>();

/**
 * The policy's view of a snapshot. A function the catalog does not know (created after the snapshot was taken, or
 * not a function at all) counts as volatile: the primary can run anything.
 */
function factsOf(cache: CatalogCache, snapshot: CatalogSnapshot): CatalogFacts {
  let facts = adapters.get(snapshot);
  if (facts === undefined) {
    facts = {
      isVolatile: (name) => cache.isVolatile(snapshot, name) || !cache.isKnownFunction(snapshot, name),
      isUnlogged: (relation) => cache.isUnlogged(snapshot, relation),
    };
    adapters.set(snapshot, facts);
  }
  return facts;
}
