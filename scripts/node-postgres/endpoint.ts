/** The endpoint the suites connect to, and where their SELECTs ran (SHOW POOL_NODES select_cnt). */
import pg from 'pg';

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  scramUser: string | null;
  scramPassword: string | null;
  scramUnicodeUser: string | null;
  scramUnicodePassword: string | null;
}

export interface NodeSelects {
  name: string;
  role: string;
  selects: number;
}

/** select_cnt per node from SHOW POOL_NODES, or null when the endpoint does not answer it (a plain server). */
export async function poolNodeSelects(e: Endpoint): Promise<NodeSelects[] | null> {
  const client = new pg.Client({ host: e.host, port: e.port, user: e.user, password: e.password, database: e.database, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    const r = await client.query<{ node_id: string; hostname: string; port: string; role: string; select_cnt: string }>('SHOW POOL_NODES');
    return r.rows.map((row) => ({ name: `node${row.node_id} ${row.hostname}:${row.port}`, role: row.role, selects: Number(row.select_cnt) }));
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The difference of two select_cnt readings, as one line with the standbys' share. */
export function selectShareLine(label: string, before: readonly NodeSelects[], after: readonly NodeSelects[]): string {
  const during = after.map((n) => ({ ...n, selects: n.selects - (before.find((b) => b.name === n.name)?.selects ?? 0) }));
  return shareLine(label, during);
}

export function shareLine(label: string, nodes: readonly NodeSelects[]): string {
  const total = nodes.reduce((s, n) => s + n.selects, 0);
  const standby = nodes.filter((n) => n.role === 'standby').reduce((s, n) => s + n.selects, 0);
  const share = total > 0 ? `${((100 * standby) / total).toFixed(1)}%` : 'n/a (no SELECTs counted)';
  return `${label}: ${nodes.map((n) => `${n.name} (${n.role}) ${n.selects}`).join(', ')}; standbys ran ${standby} of ${total} SELECTs: ${share}`;
}
