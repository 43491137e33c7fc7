/** Relations whose contents differ per node: statistics and activity views. */

const NODE_LOCAL_PREFIXES = ['pg_stat_', 'pg_statio_'];
const NODE_LOCAL_NAMES = ['pg_locks', 'pg_replication_slots', 'pg_prepared_xacts', 'pg_stat_activity', 'pg_stat_replication'];
const NODE_LOCAL_RELATIONS: ReadonlySet<string> = new Set([...NODE_LOCAL_NAMES, ...NODE_LOCAL_NAMES.map((n) => `pg_catalog.${n}`)]);

/** Node-local statistics and activity: each node has its own, and the primary's are the ones that matter. */
export function isNodeLocalRelation(name: string): boolean {
  if (NODE_LOCAL_RELATIONS.has(name)) return true;
  const at = name.startsWith('pg_catalog.') ? 11 : 0;
  for (let i = 0; i < NODE_LOCAL_PREFIXES.length; i++) if (name.startsWith(NODE_LOCAL_PREFIXES[i] as string, at)) return true;
  return false;
}
