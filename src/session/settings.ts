/**
 * The session's own settings, kept consistent on every backend connection it uses: the client's startup
 * parameters, and each SET / RESET / DISCARD / set_config(…, false) once it took effect (at once in autocommit, at
 * COMMIT inside a transaction, never after ROLLBACK or an error). A connection that has not seen the latest ones
 * gets them replayed, in one injected Query, before the session's next statement there.
 *
 * Also who may see a backend connection's state: `BackendConnection.stateTag` is null while the connection is as a
 * new one would be, the startup-parameter signature while only the startup parameters were applied (equal
 * signatures mean equal state, so such a connection serves any session with the same parameters as it is), and the
 * session's own tag once anything else may have changed. A connection with another tag is reset (DISCARD ALL)
 * before this session uses it.
 */
import { classify, Replay, settingsToReplay, type Classification, type SessionDefaults } from '../router/classify/index.js';
import { applyDefaults, type SessionRouting } from '../router/policy.js';
import { TxStatus } from '../wire/codes.js';
import { queryMessage } from '../wire/frontend.js';
import type { Link } from './link.js';
import type { SegmentSetting } from './segment.js';
import { OWED } from './reply-queue.js';

/** Startup parameters that are not settings (or are handled by pgproxy itself). */
const NOT_SETTINGS = new Set(['user', 'database', 'replication', 'options']);

interface Entry extends SegmentSetting {
  readonly seq: number;
}

/** The reset pgproxy injects before using a connection that carries someone else's state. */
const DISCARD_ALL = queryMessage('DISCARD ALL');

export class SessionSettings {
  /** SET statements that give a backend the client's startup parameters ('' when there are none). */
  readonly startupSql: string;
  private readonly startupFrame: Buffer | null;
  /** Session defaults that change routing (read-only or serializable transactions by default). */
  readonly routing: SessionRouting = { defaultReadOnly: false, defaultIsolation: 'read committed' };
  /** Settings that took effect, oldest first, without entries a later one made redundant. */
  private entries: Entry[] = [];
  private lastSeq = 0;
  /** Settings made inside the open transaction: recorded at COMMIT, dropped at ROLLBACK. */
  private pending: SegmentSetting[] = [];
  /**
   * Per backend connection this session gave back to a pool (transaction pooling): the last setting it applied,
   * valid while the connection still carries this session's tag. Links in use keep it in `appliedSettings`.
   */
  private applied: WeakMap<object, number> | null = null;
  /** The session's own state tag (compared by identity). */
  readonly tag: object = {};

  constructor(startupParams: ReadonlyMap<string, string>) {
    this.startupSql = startupSettingsSql(startupParams);
    this.startupFrame = this.startupSql === '' ? null : queryMessage(this.startupSql);
    this.startupDefaults = this.startupSql === '' ? null : classify(this.startupSql).summary.defaults;
    applyDefaults(this.routing, this.startupDefaults);
  }

  /**
   * What the startup parameters do to the default transaction mode. The classifier reports RESET ALL and
   * DISCARD ALL as the server defaults; PostgreSQL goes back to these instead, so they are applied after.
   */
  private readonly startupDefaults: SessionDefaults | null;

  /** A link on a connection the session just acquired: brings the connection to this session's state. */
  adopt(link: Link): void {
    const conn = link.conn;
    const tag = conn.stateTag;
    if (tag === this.tag) {
      // Our own (transaction pooling): `applied` knows how far it is.
      link.appliedSettings = this.applied?.get(conn) ?? 0;
      return;
    }
    if (tag !== null && tag !== this.startupSql) {
      link.inject(DISCARD_ALL, INJECTED_QUERY);
      conn.prepared.clear();
      conn.stateTag = null;
    }
    if (conn.stateTag === null && this.startupFrame !== null) {
      link.inject(this.startupFrame, INJECTED_QUERY);
      conn.stateTag = this.startupSql;
    }
    link.appliedSettings = 0;
  }

  /** `link` goes back to its pool with this session's state on it (transaction pooling). */
  released(link: Link): void {
    (this.applied ??= new WeakMap()).set(link.conn, link.appliedSettings);
  }

  /** Whether `link` has every recorded setting. */
  upToDate(link: Link): boolean {
    return link.appliedSettings === this.lastSeq;
  }

  /** Replays the settings `link` has not applied yet (call when !upToDate). */
  replay(link: Link): void {
    const conn = link.conn;
    const from = link.appliedSettings;
    const parts: string[] = [];
    let resets = false;
    for (const e of this.entries) {
      if (e.seq <= from) continue;
      parts.push(e.sql);
      if (e.discardsAll) conn.prepared.clear();
      if (e.resetsAll) resets = true;
    }
    link.appliedSettings = this.lastSeq;
    conn.stateTag = this.tag;
    if (parts.length > 0) link.inject(queryMessage(parts.join(';\n')), INJECTED_QUERY);
    // RESET ALL and DISCARD ALL also undid the startup parameters, which PostgreSQL keeps as session defaults.
    if (resets && this.startupFrame !== null) link.inject(this.startupFrame, INJECTED_QUERY);
  }

  /**
   * The client's segment on `link` ended with ReadyForQuery `after` (was `before`): keeps what took effect.
   * Returns RESET_ALL when a RESET ALL or DISCARD ALL took effect, with DISCARD_ALL for a DISCARD ALL (the
   * session's prepared statements are gone).
   */
  segmentEnded(link: Link, before: number, after: number): number {
    const list = link.segmentError ? null : link.segmentSettings;
    let discardedAll = 0;
    if (before === IDLE && after === IDLE) {
      if (list !== null && !link.segmentRollback) discardedAll = this.record(link, list);
    } else {
      if (list !== null) for (const s of list) this.pending.push(s);
      if (after === IDLE) {
        // The transaction ended: COMMIT keeps what it set, ROLLBACK (or a failed transaction) drops it.
        if (before === IN_TX && !link.segmentRollback && !link.segmentError) discardedAll = this.record(link, this.pending);
        this.pending = [];
      }
    }
    return discardedAll;
  }

  /** Bits segmentEnded() returns: a RESET ALL (or DISCARD ALL) took effect; a DISCARD ALL took effect. */
  static readonly RESET_ALL = 1;
  static readonly DISCARD_ALL = 2;

  /** Settings that succeeded on `link`: recorded, and known to be applied there. Returns RESET_ALL / DISCARD_ALL bits. */
  private record(link: Link, list: readonly SegmentSetting[]): number {
    if (list.length === 0) return 0;
    const conn = link.conn;
    const upToDate = link.appliedSettings === this.lastSeq;
    let discarded = false;
    let resets = false;
    for (const s of list) {
      const seq = ++this.lastSeq;
      if (s.resetsAll) this.entries = [];
      else if (s.name !== null) this.entries = this.entries.filter((e) => e.name !== s.name);
      this.entries.push({ ...s, seq });
      if (s.discardsAll) discarded = true;
      if (s.resetsAll) resets = true;
      applyDefaults(this.routing, s.defaults);
      if (s.resetsAll) applyDefaults(this.routing, this.startupDefaults);
    }
    if (discarded) conn.prepared.clear();
    if (upToDate) link.appliedSettings = this.lastSeq;
    conn.stateTag = this.tag;
    if (resets && this.startupFrame !== null) {
      // Restore what RESET ALL / DISCARD ALL undid here (the client connected with these as its defaults).
      link.inject(this.startupFrame, INJECTED_QUERY);
    }
    return (resets ? SessionSettings.RESET_ALL : 0) | (discarded ? SessionSettings.DISCARD_ALL : 0);
  }
}

const INJECTED_QUERY = OWED.injectedQuery;
const IDLE: number = TxStatus.Idle;
const IN_TX: number = TxStatus.InTransaction;

/**
 * The session setting a unit (`sql`, classified as `c`) makes, as SQL to replay elsewhere and what it does to the
 * rest, or null. SET LOCAL and SET TRANSACTION stay with their transaction and are never replayed.
 */
export function settingOf(sql: string, c: Classification): SegmentSetting | null {
  const summary = c.summary;
  if (summary.settings === Replay.None) return null;
  const replay = settingsToReplay(sql, c);
  if (replay === null) return null;
  return { sql: replay, name: singleSettingName(c), resetsAll: summary.resetsAll, discardsAll: summary.discardsAll, defaults: summary.defaults };
}

/** The parameter a unit of one plain SET or RESET changes (a later one of the same name replaces it), else null. */
function singleSettingName(c: Classification): string | null {
  if (c.statements.length !== 1) return null;
  const st = c.statements[0]!;
  const s = st.session;
  return st.understood && s !== null && (s.op === 'set' || s.op === 'reset') ? s.name : null;
}

function startupStatements(params: ReadonlyMap<string, string>): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const [k, v] of params) {
    if (NOT_SETTINGS.has(k) || k.startsWith('_pq_.') || isProxyName(k)) continue;
    out.push({ name: k, value: v });
  }
  const options = params.get('options');
  if (options) for (const [k, v] of parseOptions(options)) if (!isProxyName(k)) out.push({ name: k, value: v });
  return out;
}

/** pgproxy's own settings among the startup parameters and `-c` options: pgproxy's, never sent to a backend. */
export function proxyStartupEntries(params: ReadonlyMap<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of params) if (isProxyName(k)) out.push([k.toLowerCase(), v]);
  const options = params.get('options');
  if (options) for (const [k, v] of parseOptions(options)) if (isProxyName(k)) out.push([k.toLowerCase(), v]);
  return out;
}

function isProxyName(name: string): boolean {
  return name.toLowerCase().startsWith('pgproxy.');
}

/** SET statements that give a backend connection the client's startup parameters. */
export function startupSettingsSql(params: ReadonlyMap<string, string>): string {
  return startupStatements(params)
    .map((s) => `SET ${quoteIdent(s.name)} = ${quoteLiteral(s.value)}`)
    .join('; ');
}

/** `options` startup parameter: `-c name=value` and `--name=value`, with backslash-escaped spaces. */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      inWord = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let setting: string | undefined;
    const w = words[i]!;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    if (!setting) continue;
    const eq = setting.indexOf('=');
    if (eq <= 0) continue;
    out.push([setting.slice(0, eq).replace(/-/g, '_'), setting.slice(eq + 1)]);
  }
  return out;
}

function quoteIdent(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}

function quoteLiteral(s: string): string {
  return "'" + s.replace(/'/g, "''") + "'";
}

