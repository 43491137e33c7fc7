/**
 * The catalog facts' source on a live cluster: a short-lived node-postgres connection per load, to the node
 * `target()` names (normally the current primary; null when there is none). Pool-level I/O: the router only
 * sees the CatalogSource interface.
 */
import pg from 'pg';
import type { CatalogSource } from '../router/catalog.js';
import { OWN_APPLICATION_NAMES, type OwnConnections } from './own-connections.js';

export interface CatalogTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  ssl?: false | { rejectUnauthorized: boolean; ca?: Buffer };
}

/**
 * A CatalogSource that opens a short-lived node-postgres connection per load to the node `target()` names
 * (normally the current primary; null when there is none), bounded by `timeoutMs` for connecting and for
 * the query. Each connection is listed in `own` (SHOW SERVERS) while it is open.
 */
export function pgCatalogSource(target: () => CatalogTarget | null, timeoutMs = 10_000, own: OwnConnections | null = null): CatalogSource {
  return {
    async query(database: string, sql: string) {
      const t = target();
      if (t === null) throw new Error(`no node to read the catalog of database "${database}" from`);
      const client = new pg.Client({
        host: t.host,
        port: t.port,
        user: t.user,
        password: t.password,
        ssl: t.ssl ?? false,
        database,
        application_name: OWN_APPLICATION_NAMES.catalog,
        connectionTimeoutMillis: timeoutMs,
        query_timeout: timeoutMs,
        statement_timeout: timeoutMs,
      });
      // An error event after connect (server gone) must not become an uncaught exception.
      client.on('error', () => undefined);
      const untrack = own?.track('catalog', client);
      try {
        await client.connect();
        const r = await client.query(sql);
        return { rows: r.rows as Record<string, unknown>[] };
      } finally {
        await client.end().catch(() => undefined);
        untrack?.();
      }
    },
  };
}
