/**
 * The unit summary: what the session needs to know about a whole unit (a Query string, or a Parse), computed
 * once per classification from its statements' facts, independent of any session.
 */
import { Pin, Replay, type Classification, type SessionDefaults, type StatementFacts, type UnitSummary } from './facts.js';

export function summarize(statements: readonly StatementFacts[]): UnitSummary {
  let reads = 0;
  let writes = false;
  let begins = false;
  let rollsBack = false;
  let pin = Pin.None;
  let notUnderstood = 0;
  let parsed = 0;
  let ddl = false;
  let hint = false;
  let anySetting = false;
  let onlySettings = true;
  let resetsAll = false;
  let discardsAll = false;
  let defaults: SessionDefaults | null = null;
  let setConfig = false;
  for (let i = 0; i < statements.length; i++) {
    const f = statements[i] as StatementFacts;
    const kind = f.kind;
    if (kind === 'empty') continue;
    if (kind === 'read') reads++;
    else if (kind === 'write' || kind === 'ddl' || kind === 'utility' || kind === 'unknown') writes = true;
    if (kind === 'transaction' && f.tx !== null) {
      const op = f.tx.op;
      if (op === 'begin') begins = true;
      else if (op === 'rollback' || op === 'rollback_to') rollsBack = true;
      else if (op === 'commit' || op === 'commit_prepared') writes = true;
    }
    if (!f.understood) notUnderstood++;
    if (f.parsed) parsed++;
    if (kind === 'ddl' || kind === 'unknown') ddl = true;
    if (pin === Pin.None) pin = pinOf(f);
    if (f.hint === 'primary') hint = true;
    const s = f.session;
    if (kind === 'session' && s !== null && !s.local) {
      anySetting = true;
      // (one PostgreSQL refuses resets nothing)
      if (f.understood && s.op === 'reset_all') resetsAll = true;
      else if (f.understood && s.op === 'discard' && s.value === 'all') {
        resetsAll = true;
        discardsAll = true;
      }
    } else onlySettings = false;
    for (let k = 0; k < f.setConfigCalls.length; k++) if (f.setConfigCalls[k]!.isLocal !== true) setConfig = true;
    if (f.defaults !== null) defaults = combine(defaults, f.defaults);
  }
  // One SELECT set_config(name, value, false) is a session setting too: replay the statement itself.
  const settings = statements.length === 1 && setConfig ? Replay.Text : !anySetting ? Replay.None : onlySettings ? Replay.Text : Replay.Rebuild;
  return Object.freeze({ reads, writes, begins, rollsBack, pin, notUnderstood, parsed, ddl, hint, settings, resetsAll, discardsAll, defaults });
}

/** The defaults after `earlier` then `later` took effect. */
function combine(earlier: SessionDefaults | null, later: SessionDefaults): SessionDefaults {
  return earlier === null ? later : Object.freeze({ ...earlier, ...later });
}

/** What about this statement ties the session to one backend session, if anything. */
export function pinOf(f: StatementFacts): Pin {
  if (f.createsTemp) return Pin.TempTable;
  if (f.listen === 'listen') return Pin.Listen;
  if (f.cursor !== null && f.cursor.op === 'declare' && f.cursor.withHold) return Pin.WithHoldCursor;
  if (f.prepared !== null && f.prepared.op === 'prepare') return Pin.SqlPrepare;
  for (let i = 0; i < f.functions.length; i++) if (isSessionAdvisoryLock(f.functions[i] as string)) return Pin.AdvisoryLock;
  return Pin.None;
}

/** Session-level advisory locks outlive the statement and live in one backend session. */
function isSessionAdvisoryLock(fn: string): boolean {
  const at = fn.startsWith('pg_catalog.') ? 11 : 0;
  return (fn.startsWith('pg_advisory_lock', at) || fn.startsWith('pg_try_advisory_lock', at)) && !fn.includes('xact', at);
}

/**
 * The session settings of a unit (`sql`, classified as `c`), as SQL to replay on the session's other
 * backends, or null. SET LOCAL and SET TRANSACTION stay with their transaction and are never replayed. For
 * Replay.Rebuild the settings are rebuilt from the facts (their values are raw text, so such a unit is never
 * served from the shape cache).
 */
export function settingsToReplay(sql: string, c: Classification): string | null {
  const mode = c.summary.settings;
  if (mode === Replay.None) return null;
  if (mode === Replay.Text) return sql;
  const parts: string[] = [];
  for (const st of c.statements) {
    const s = st.session;
    if (st.kind !== 'session' || s === null || s.local) continue;
    if (s.op === 'set' && s.name && s.value !== null) parts.push(`SET ${s.name} TO ${s.value}`);
    else if (s.op === 'reset' && s.name) parts.push(`RESET ${s.name}`);
    else if (s.op === 'reset_all') parts.push('RESET ALL');
    else if (s.op === 'discard') parts.push(`DISCARD ${s.value ?? 'ALL'}`);
    else if (s.op === 'set_session_characteristics') return sql; // rebuilding it is not worth it: replay the whole text
  }
  return parts.length > 0 ? parts.join('; ') : null;
}
