/**
 * What only the primary's catalog knows, per database: which functions are VOLATILE (with no function lists
 * configured, pgpool sends statements calling them to the primary) and which relations are UNLOGGED (a standby
 * cannot read them: "cannot access temporary or unlogged relations during recovery").
 *
 * Routing is synchronous per message, so answers come from an in-memory snapshot; loading is async, once per
 * database, deduplicated, and repeated in the background when the snapshot is older than `maxAgeMs` or was
 * invalidated (after DDL). A stale snapshot keeps being served while its reload runs: answering from slightly
 * old facts (a function created a moment ago is unknown, hence not volatile, until the reload lands) is better
 * than routing every statement as if nothing were known, and the client whose DDL caused the invalidation
 * normally waits for its own COMMIT long enough for the reload to finish.
 *
 * Names are compared lowercased on both sides. The classifier keeps the case of quoted names, the catalog
 * stores exact names; folding both means "MyFunc" and myfunc share one answer, the union of their facts,
 * which can only err towards the primary. A bare name stands for every schema's function or relation of that
 * name (search_path is not known here): volatile if any of them is. That is also how built-in pg_catalog
 * names resolve unqualified.
 */
export interface CatalogSnapshot {
  /** Lowercased function names (bare 'f' and qualified 'schema.f') for which ANY overload is volatile ('v'). */
  readonly volatileFunctions: ReadonlySet<string>;
  /** Every function name known at all (bare and qualified), so unknown names can be told apart from stable ones. */
  readonly knownFunctions: ReadonlySet<string>;
  /**
   * Relations a standby cannot read, lowercased, bare and 'schema.name': unlogged tables, materialized views
   * and sequences (relpersistence 'u'), plus every inheritance/partition parent and every view that reads one
   * of those (a scan of the parent or view touches the unlogged relation).
   */
  readonly unloggedRelations: ReadonlySet<string>;
  readonly loadedAt: number;
  /** Addition: the lookups below, so that a snapshot serves directly as the policy's `CatalogFacts`. */
  isVolatile(name: string): boolean;
  isUnlogged(relation: string): boolean;
}

export interface CatalogSource {
  query(database: string, sql: string): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface CatalogCacheOptions {
  /** Reload in the background (on the next get()) once a snapshot is this old. Default 60 000. */
  maxAgeMs?: number;
  /** After a failed background reload, wait this long before the next attempt. Default 5 000. */
  retryMs?: number;
  /** Failed background reloads (the previous snapshot stays in use). */
  onError?: (database: string, err: Error) => void;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * One round trip, catalog tables only. Rows are ('f', schema, name, volatile) per distinct function name and
 * ('r', schema, name, null) per relation a standby cannot read. The recursive part walks up from unlogged
 * relations to inheritance/partition parents (pg_inherits) and to plain views over them (pg_depend of the
 * views' SELECT rules), so `SELECT * FROM parent` or `FROM view` is caught too. A materialized view has its
 * own storage and is not caught by what it was built from.
 */
export const CATALOG_SQL = `WITH RECURSIVE unlogged(oid) AS (
  SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relpersistence = 'u' AND c.relkind IN ('r', 'p', 'm', 'S')
  UNION
  SELECT up.parent FROM (
    SELECT i.inhrelid AS child, i.inhparent AS parent FROM pg_catalog.pg_inherits i
    UNION ALL
    SELECT d.refobjid, r.ev_class FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND r.ev_type = '1'
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
    WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  ) up JOIN unlogged u ON u.oid = up.child
)
SELECT 'f' AS k, n.nspname AS schema, p.proname AS name, pg_catalog.bool_or(p.provolatile = 'v') AS volatile
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
GROUP BY n.nspname, p.proname
UNION ALL
SELECT 'r', n.nspname, c.relname, NULL
FROM unlogged u JOIN pg_catalog.pg_class c ON c.oid = u.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`;

const DEFAULT_MAX_AGE_MS = 60_000;
const DEFAULT_RETRY_MS = 5_000;

interface Entry {
  snapshot: CatalogSnapshot | undefined;
  loading: Promise<CatalogSnapshot> | null;
  /** Bumped by invalidate(): a load that started before the bump is stale when it lands. */
  generation: number;
  /** The generation the current snapshot reflects. */
  loadedGeneration: number;
  /** No background reload before this time (after a failure). */
  retryAt: number;
}

export class CatalogCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxAgeMs: number;
  private readonly retryMs: number;
  private readonly onError: ((database: string, err: Error) => void) | undefined;
  private readonly now: () => number;

  constructor(
    private readonly source: CatalogSource,
    opts: CatalogCacheOptions = {},
  ) {
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.retryMs = opts.retryMs ?? DEFAULT_RETRY_MS;
    this.onError = opts.onError;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The database's snapshot, or undefined when none was loaded yet (get() never starts a first load: the
   * caller decides when, with load()). A snapshot that is too old or invalidated is still returned, and a
   * background reload is started.
   */
  get(database: string): CatalogSnapshot | undefined {
    const e = this.entries.get(database);
    if (e === undefined || e.snapshot === undefined) return undefined;
    if (e.loading === null && (e.loadedGeneration !== e.generation || this.now() - e.snapshot.loadedAt >= this.maxAgeMs) && this.now() >= e.retryAt) {
      this.background(database, e);
    }
    return e.snapshot;
  }

  /**
   * A current snapshot: the one held when it is neither invalidated nor too old, else the load under way or
   * a new one. Concurrent calls share one load. Rejects when the catalog cannot be read (the caller decides:
   * route without catalog facts, or fail).
   */
  load(database: string): Promise<CatalogSnapshot> {
    const e = this.entry(database);
    if (e.loading !== null) return e.loading;
    if (e.snapshot !== undefined && e.loadedGeneration === e.generation && this.now() - e.snapshot.loadedAt < this.maxAgeMs) {
      return Promise.resolve(e.snapshot);
    }
    return this.start(database, e);
  }

  /**
   * After DDL: the current snapshot stays in use but is stale, and a reload starts in the background
   * (a load already under way may predate the DDL, so another follows it).
   */
  invalidate(database: string): void {
    const e = this.entries.get(database);
    if (e === undefined) return;
    e.generation++;
    e.retryAt = 0;
    if (e.snapshot !== undefined && e.loading === null) this.background(database, e);
  }

  /** `name` as the classifier reports it ('f' or 'schema.f'). Unknown names are not volatile; see isKnownFunction. */
  isVolatile(snapshot: CatalogSnapshot, name: string): boolean {
    return snapshot.isVolatile(name);
  }

  isUnlogged(snapshot: CatalogSnapshot, relation: string): boolean {
    return snapshot.isUnlogged(relation);
  }

  /** Addition: whether the catalog knows a function of that name at all (else it was created after the load, or is not a function). */
  isKnownFunction(snapshot: CatalogSnapshot, name: string): boolean {
    return snapshot.knownFunctions.has(normalizeName(name));
  }

  /** Addition: forget a database (dropped, or no longer served). */
  delete(database: string): void {
    this.entries.delete(database);
  }

  private entry(database: string): Entry {
    let e = this.entries.get(database);
    if (e === undefined) {
      e = { snapshot: undefined, loading: null, generation: 0, loadedGeneration: -1, retryAt: 0 };
      this.entries.set(database, e);
    }
    return e;
  }

  private start(database: string, e: Entry): Promise<CatalogSnapshot> {
    const generation = e.generation;
    const p = this.source.query(database, CATALOG_SQL).then(
      (result) => {
        const snapshot = buildSnapshot(result.rows, this.now());
        if (this.entries.get(database) === e) {
          e.loading = null;
          e.snapshot = snapshot;
          e.loadedGeneration = generation;
          e.retryAt = 0;
          // Invalidated while loading: what we read may predate the DDL.
          if (e.generation !== generation) this.background(database, e);
        }
        return snapshot;
      },
      (err: unknown) => {
        if (this.entries.get(database) === e) {
          e.loading = null;
          e.retryAt = this.now() + this.retryMs;
          if (e.snapshot === undefined) this.entries.delete(database);
        }
        throw err instanceof Error ? err : new Error(String(err));
      },
    );
    e.loading = p;
    return p;
  }

  private background(database: string, e: Entry): void {
    this.start(database, e).catch((err: Error) => this.onError?.(database, err));
  }
}

/** Lowercased, and at most 'schema.name' (a 'database.schema.name' keeps its last two parts). */
function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  const last = lower.lastIndexOf('.');
  if (last < 0) return lower;
  const prev = lower.lastIndexOf('.', last - 1);
  return prev < 0 ? lower : lower.slice(prev + 1);
}

function isTrue(v: unknown): boolean {
  return v === true || v === 't' || v === 'true';
}

/** A snapshot from CATALOG_SQL's rows. Exported for tests. */
export function buildSnapshot(rows: readonly Record<string, unknown>[], loadedAt: number): CatalogSnapshot {
  const volatileFunctions = new Set<string>();
  const knownFunctions = new Set<string>();
  const unloggedRelations = new Set<string>();
  for (const row of rows) {
    const schema = String(row.schema).toLowerCase();
    const name = String(row.name).toLowerCase();
    if (row.k === 'f') {
      knownFunctions.add(name);
      knownFunctions.add(`${schema}.${name}`);
      if (isTrue(row.volatile)) {
        volatileFunctions.add(name);
        volatileFunctions.add(`${schema}.${name}`);
      }
    } else if (row.k === 'r') {
      unloggedRelations.add(name);
      unloggedRelations.add(`${schema}.${name}`);
    }
  }
  return {
    volatileFunctions,
    knownFunctions,
    unloggedRelations,
    loadedAt,
    isVolatile: (fn: string) => volatileFunctions.has(normalizeName(fn)),
    isUnlogged: (relation: string) => unloggedRelations.size > 0 && unloggedRelations.has(normalizeName(relation)),
  };
}
