import { describe, expect, it } from 'vitest';
import { compileFunctionRules, isNeverOnStandby, neverOnStandbyFunctions } from '../../../src/router/functions.js';

describe('built-in functions that never run on a standby', () => {
  it.each([
    ['nextval', true],
    ['setval', true],
    ['currval', true],
    ['lastval', true],
    ['pg_catalog.nextval', true],
    ['public.nextval', false], // a user function that happens to share the name
    ['my_nextval2', false],
    ['NEXTVAL', false], // only a quoted "NEXTVAL" keeps its case, and that is another function
    ['pg_advisory_lock', true],
    ['pg_try_advisory_lock_shared', true],
    ['pg_advisory_xact_lock', true],
    ['pg_advisory_unlock_all', true],
    ['txid_current', true],
    ['txid_current_if_assigned', true],
    ['pg_current_xact_id', true],
    ['pg_current_wal_lsn', true],
    ['pg_current_wal_insert_lsn', true],
    ['pg_current_wal_flush_lsn', true],
    ['pg_switch_wal', true],
    ['pg_create_restore_point', true],
    ['pg_backup_start', true],
    ['pg_stop_backup', true],
    ['pg_create_logical_replication_slot', true],
    ['pg_drop_replication_slot', true],
    ['pg_logical_slot_get_changes', true],
    ['pg_promote', true],
    ['pg_notify', true],
    ['lo_create', true],
    ['lo_unlink', true],
    ['lo_from_bytea', true],
    ['pg_terminate_backend', true],
    ['pg_cancel_backend', true],
    ['brin_summarize_range', true],
    ['set_config', false],
    ['current_setting', false],
    ['now', false],
    ['pg_last_wal_replay_lsn', false],
    ['pg_is_in_recovery', false],
    ['lo_get', false],
  ] as [string, boolean][])('%s -> %s', (name, expected) => {
    expect(isNeverOnStandby(name)).toBe(expected);
  });

  it('lists them', () => {
    expect(neverOnStandbyFunctions()).toContain('nextval');
    expect(neverOnStandbyFunctions()).not.toContain('set_config');
  });
});

describe('compileFunctionRules', () => {
  const rules = compileFunctionRules({
    writeFunctions: ['nextval', 'audit_.*', 'public\\.touch', 'Make_Order'],
    readOnlyFunctions: ['get_.*', 'reporting\\.[a-z_]+'],
  });

  it.each([
    ['nextval', true],
    ['my_nextval2', false], // anchored at both ends
    ['nextval2', false],
    ['xnextval', false],
    ['audit_log', true],
    ['AUDIT_LOG', true], // case-insensitive
    ['audit', false],
    ['public.audit_log', true], // qualified call matches the bare entry
    ['other.audit_log', true],
    ['public.touch', true], // and the qualified entry
    ['touch', false], // a bare call is not assumed to be in public
    ['other.touch', false],
    ['make_order', true],
    ['get_user', false],
  ] as [string, boolean][])('isWrite(%s) -> %s', (name, expected) => {
    expect(rules.isWrite(name)).toBe(expected);
    // the memo answers the same the second time
    expect(rules.isWrite(name)).toBe(expected);
  });

  it.each([
    ['get_user', true],
    ['GET_USER', true],
    ['app.get_user', true],
    ['reporting.daily', true],
    ['daily', false],
    ['nextval', false],
    ['forget_user', false],
  ] as [string, boolean][])('isReadOnly(%s) -> %s', (name, expected) => {
    expect(rules.isReadOnly(name)).toBe(expected);
  });

  it('empty lists match nothing', () => {
    const r = compileFunctionRules({ writeFunctions: [], readOnlyFunctions: [] });
    expect(r.isWrite('nextval')).toBe(false);
    expect(r.isReadOnly('anything')).toBe(false);
  });

  it('an alternation stays inside its anchors', () => {
    const r = compileFunctionRules({ writeFunctions: ['a|b'], readOnlyFunctions: [] });
    expect(r.isWrite('a')).toBe(true);
    expect(r.isWrite('b')).toBe(true);
    expect(r.isWrite('ab')).toBe(false);
    expect(r.isWrite('xb')).toBe(false);
  });

  it('names the invalid entry', () => {
    expect(() => compileFunctionRules({ writeFunctions: ['ok', 'bad(['], readOnlyFunctions: [] })).toThrow(/write_functions.*"bad\(\["/);
    expect(() => compileFunctionRules({ writeFunctions: [], readOnlyFunctions: ['*x'] })).toThrow(/read_only_functions.*"\*x"/);
  });
});
