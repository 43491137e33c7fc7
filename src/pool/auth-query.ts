/**
 * auth.query (like PgBouncer's auth_query): the stored password of a user that is not in auth.users, read from
 * the primary through a configured role, so operators can keep only verifiers in PostgreSQL. Answers are
 * cached briefly; a missing user is cached too, so a flood of unknown names costs one query per name.
 */
import pg from 'pg';
import { OWN_APPLICATION_NAMES, type OwnConnections } from './own-connections.js';

export interface AuthQuerySettings {
  sql: string;
  user: string;
  password: string;
  database: string;
  timeoutMs: number;
  ssl: false | { rejectUnauthorized: boolean; ca?: Buffer };
}

const TTL_MS = 10_000;
const MAX_ENTRIES = 10_000;

export class AuthQuery {
  private readonly cache = new Map<string, { secret: string | null; at: number }>();

  constructor(
    private readonly settings: AuthQuerySettings,
    private readonly target: () => { host: string; port: number } | null,
    /** Where its connections are listed while open (SHOW SERVERS). */
    private readonly own: OwnConnections | null = null,
  ) {}

  /** The user's stored secret (md5 hash or SCRAM verifier), or null when there is no such user or no password. */
  async lookup(user: string): Promise<string | null> {
    const hit = this.cache.get(user);
    if (hit !== undefined && Date.now() - hit.at < TTL_MS) return hit.secret;
    const t = this.target();
    if (t === null) throw new Error('no primary to run auth.query on');
    const s = this.settings;
    const client = new pg.Client({ host: t.host, port: t.port, user: s.user, password: s.password, database: s.database, ssl: s.ssl, connectionTimeoutMillis: s.timeoutMs, query_timeout: s.timeoutMs, application_name: OWN_APPLICATION_NAMES.auth_query });
    const untrack = this.own?.track('auth_query', client);
    try {
      await client.connect();
      const r = await client.query<Record<string, unknown>>(s.sql, [user]);
      const row = r.rows[0];
      const value = row === undefined ? null : (row.passwd ?? row.rolpassword ?? row.password ?? Object.values(row)[1] ?? null);
      const secret = typeof value === 'string' && value !== '' ? value : null;
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
      this.cache.set(user, { secret, at: Date.now() });
      return secret;
    } finally {
      await client.end().catch(() => {});
      untrack?.();
    }
  }
}
