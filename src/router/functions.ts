/**
 * Function-name rules: the built-in functions that must run on the primary, and the configured
 * write_functions / read_only_functions patterns.
 *
 * Names are as the classifier reports them: lowercased unless quoted, schema-qualified as 'schema.name'.
 */

/**
 * Built-in functions that can never (usefully) run on a standby. Sources: PostgreSQL 15-17 functions that
 * refuse during recovery ("recovery is in progress" / "cannot execute ... during recovery" / "cannot assign
 * TransactionIds during recovery" / read-only transaction errors), plus node-local state that a later
 * statement of the session must find where it was made (currval/lastval after nextval, advisory locks,
 * backup sessions, exported snapshots, replication slots, backend pids).
 */
const NEVER_ON_STANDBY: ReadonlySet<string> = new Set([
  // sequences: currval/lastval read the value nextval set in this session, so they go where nextval went
  'nextval', 'setval', 'currval', 'lastval',
  // advisory locks: a lock on a standby excludes nobody on the primary
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
  'pg_advisory_unlock', 'pg_advisory_unlock_shared', 'pg_advisory_unlock_all',
  'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
  // transaction ids
  'txid_current', 'txid_current_if_assigned', 'pg_current_xact_id', 'pg_current_xact_id_if_assigned',
  // WAL control and position (xlogfuncs.c: refused during recovery)
  'pg_current_wal_lsn', 'pg_current_wal_insert_lsn', 'pg_current_wal_flush_lsn', 'pg_switch_wal',
  'pg_create_restore_point', 'pg_walfile_name', 'pg_walfile_name_offset', 'pg_log_standby_snapshot',
  'pg_logical_emit_message',
  // the same before PostgreSQL 10
  'pg_current_xlog_location', 'pg_current_xlog_insert_location', 'pg_current_xlog_flush_location', 'pg_switch_xlog',
  'pg_xlogfile_name', 'pg_xlogfile_name_offset',
  // backups: start and stop must run in the same backend session
  'pg_start_backup', 'pg_stop_backup', 'pg_backup_start', 'pg_backup_stop',
  // replication slots and origins
  'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot', 'pg_drop_replication_slot',
  'pg_copy_physical_replication_slot', 'pg_copy_logical_replication_slot', 'pg_replication_slot_advance',
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes', 'pg_logical_slot_get_binary_changes',
  'pg_logical_slot_peek_binary_changes',
  'pg_replication_origin_create', 'pg_replication_origin_drop', 'pg_replication_origin_advance',
  'pg_replication_origin_session_setup', 'pg_replication_origin_session_reset',
  'pg_replication_origin_xact_setup', 'pg_replication_origin_xact_reset',
  // promotion (it only works on a standby, but it is an administrative act on a chosen node, never a read)
  'pg_promote',
  // notifications are delivered by the node that commits them
  'pg_notify',
  // large-object writes
  'lo_creat', 'lo_create', 'lo_import', 'lo_unlink', 'lo_put', 'lo_from_bytea', 'lowrite', 'lo_truncate', 'lo_truncate64',
  // index maintenance (brin.c, ginfast.c: refused during recovery)
  'brin_summarize_new_values', 'brin_summarize_range', 'brin_desummarize_range', 'gin_clean_pending_list',
  // catalog writes
  'pg_import_system_collations',
  // node-local: a pid or a snapshot means something on one node only
  'pg_terminate_backend', 'pg_cancel_backend', 'pg_export_snapshot',
]);

const NEVER_ON_STANDBY_QUALIFIED: ReadonlySet<string> = new Set([...NEVER_ON_STANDBY].map((n) => `pg_catalog.${n}`));

/** Built-ins that must run on the primary: matched on the bare name, or qualified as pg_catalog.name. */
export function isNeverOnStandby(name: string): boolean {
  return NEVER_ON_STANDBY.has(name) || NEVER_ON_STANDBY_QUALIFIED.has(name);
}

/** The built-in list, for documentation and `pgproxy check`. */
export function neverOnStandbyFunctions(): readonly string[] {
  return [...NEVER_ON_STANDBY];
}

export interface FunctionRules {
  /** Matches an entry of write_functions. */
  isWrite(name: string): boolean;
  /** Matches an entry of read_only_functions. */
  isReadOnly(name: string): boolean;
}

export interface FunctionRuleConfig {
  writeFunctions: readonly string[];
  readOnlyFunctions: readonly string[];
}

/**
 * Compile pgpool-style function lists. Each entry is a regular expression anchored at both ends
 * (`^(?:entry)$`) and case-insensitive. A schema-qualified call 'public.f' is tested as 'public.f' and as 'f',
 * so an entry 'f' covers every schema and an entry 'public\.f' only that one. A bare call 'f' is tested as 'f'
 * only (its schema depends on search_path, which we do not know). Throws an Error naming an invalid entry.
 */
export function compileFunctionRules(cfg: FunctionRuleConfig): FunctionRules {
  const write = compileList(cfg.writeFunctions, 'write_functions');
  const readOnly = compileList(cfg.readOnlyFunctions, 'read_only_functions');
  return {
    isWrite: write,
    isReadOnly: readOnly,
  };
}

const MEMO_LIMIT = 4096;

function compileList(entries: readonly string[], what: string): (name: string) => boolean {
  const res: RegExp[] = [];
  for (const entry of entries) {
    try {
      res.push(new RegExp(`^(?:${entry})$`, 'i'));
    } catch (err) {
      throw new Error(`${what}: invalid regular expression ${JSON.stringify(entry)}: ${(err as Error).message}`);
    }
  }
  if (res.length === 0) return () => false;
  // Names repeat (the same few functions in every statement): remember answers, bounded.
  const memo = new Map<string, boolean>();
  const test = (s: string): boolean => {
    for (const re of res) if (re.test(s)) return true;
    return false;
  };
  return (name: string): boolean => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    let hit = test(name);
    if (!hit) {
      const dot = name.lastIndexOf('.');
      if (dot >= 0) hit = test(name.slice(dot + 1));
    }
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(name, hit);
    return hit;
  };
}
