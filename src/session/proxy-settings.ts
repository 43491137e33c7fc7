/**
 * pgproxy's own settings, `pgproxy.*`, intercepted exactly: PostgreSQL would accept `SET pgproxy.x` as a
 * placeholder, do nothing with it, and the setting would then be replayed everywhere. They follow PostgreSQL's
 * rules for settings: SET lasts for the session (undone if its transaction rolls back), SET LOCAL until the
 * transaction ends (outside a transaction it only warns), RESET / RESET ALL / DISCARD ALL go back to the session's
 * defaults (which `-c pgproxy.x=...` in the startup options sets).
 *
 *   pgproxy.route        auto | primary | standby: where reads go (standby still refuses what needs the primary)
 *   pgproxy.min_lsn      an LSN ('0/1A2B3C') reads must see: only nodes that have replayed it serve them
 *   pgproxy.max_lag_ms   a staleness bound for reads (0: fully replayed, the primary's current position)
 *   pgproxy.explain      on | off: a NOTICE per routed unit saying where it went and why
 *   pgproxy.last_commit_lsn, pgproxy.last_route   read-only, for SHOW
 *
 * set_config() and current_setting() on pgproxy.* are not intercepted (they would reach a backend): unsupported.
 */
import { ProxyError } from '../errors.js';
import { formatLsn, parseLsn } from '../nodes/topology.js';

export type RouteOverride = 'auto' | 'primary' | 'standby';

export interface ProxyValues {
  route: RouteOverride;
  minLsn: bigint | null;
  /** null: no bound of the session's own. */
  maxLagMs: number | null;
  explain: boolean;
}

const DEFAULTS: ProxyValues = Object.freeze({ route: 'auto', minLsn: null, maxLagMs: null, explain: false });

export const PROXY_PREFIX = 'pgproxy.';
const SETTABLE = new Set(['pgproxy.route', 'pgproxy.min_lsn', 'pgproxy.max_lag_ms', 'pgproxy.explain']);
const READ_ONLY = new Set(['pgproxy.last_commit_lsn', 'pgproxy.last_route']);

/** Whether a setting name (lowercased, as the classifier gives it) is one of pgproxy's own. */
export function isProxySetting(name: string | null): boolean {
  return name !== null && name.startsWith(PROXY_PREFIX);
}

export class ProxySettings {
  /** What RESET goes back to: the defaults, with the startup options' pgproxy.* values. */
  private readonly defaults: ProxyValues;
  private session: ProxyValues;
  /** SET LOCAL values of the open transaction. */
  private local: Partial<ProxyValues> | null = null;
  /** The session values when the open transaction first changed them (restored if it rolls back). */
  private beforeTx: ProxyValues | null = null;

  constructor(startup: readonly [string, string][]) {
    const values = { ...DEFAULTS };
    for (const [name, raw] of startup) {
      const err = assign(values, name.toLowerCase(), raw, false);
      if (err !== null) throw new ProxyError(err.sqlstate, err.message, 'FATAL');
    }
    this.defaults = Object.freeze(values);
    this.session = { ...values };
  }

  get route(): RouteOverride {
    return this.local?.route ?? this.session.route;
  }

  get minLsn(): bigint | null {
    return this.local !== null && 'minLsn' in this.local ? this.local.minLsn! : this.session.minLsn;
  }

  get maxLagMs(): number | null {
    return this.local !== null && 'maxLagMs' in this.local ? this.local.maxLagMs! : this.session.maxLagMs;
  }

  get explain(): boolean {
    return this.local?.explain ?? this.session.explain;
  }

  /**
   * SET name = raw (raw null: DEFAULT). `inTransaction` decides what LOCAL does and whether a rollback undoes it.
   * Returns an error for the client, or a warning text (SET LOCAL outside a transaction), or null.
   */
  set(name: string, raw: string | null, local: boolean, inTransaction: boolean): ProxyError | string | null {
    const known = this.check(name);
    if (known !== null) return known;
    if (local) {
      if (!inTransaction) {
        const probe = { ...this.session };
        return assign(probe, name, raw, true, this.defaults) ?? 'SET LOCAL can only be used in transaction blocks';
      }
      const values = { ...this.session, ...this.local };
      const err = assign(values, name, raw, true, this.defaults);
      if (err !== null) return err;
      this.local = { ...this.local, [fieldOf(name)]: values[fieldOf(name)] };
      return null;
    }
    const next = { ...this.session };
    const err = assign(next, name, raw, true, this.defaults);
    if (err !== null) return err;
    if (inTransaction) this.beforeTx ??= { ...this.session };
    this.session = next;
    // A session SET also ends what SET LOCAL did to it in this transaction (as in PostgreSQL).
    if (this.local !== null) delete this.local[fieldOf(name)];
    return null;
  }

  reset(name: string, inTransaction: boolean): ProxyError | null {
    const known = this.check(name);
    if (known !== null) return known;
    if (inTransaction) this.beforeTx ??= { ...this.session };
    const field = fieldOf(name);
    (this.session as unknown as Record<string, unknown>)[field] = this.defaults[field];
    if (this.local !== null) delete this.local[field];
    return null;
  }

  /** RESET ALL or DISCARD ALL took effect. */
  resetAll(inTransaction: boolean): void {
    if (inTransaction) this.beforeTx ??= { ...this.session };
    this.session = { ...this.defaults };
    this.local = null;
  }

  /** The transaction ended: SET LOCAL values go; a rollback also undoes the session values it set. */
  transactionEnded(committed: boolean): void {
    if (!committed && this.beforeTx !== null) this.session = this.beforeTx;
    this.beforeTx = null;
    this.local = null;
  }

  /** The value SHOW reports, for a settable name. */
  show(name: string): string {
    switch (name) {
      case 'pgproxy.route':
        return this.route;
      case 'pgproxy.min_lsn': {
        const lsn = this.minLsn;
        return lsn === null ? '' : formatLsn(lsn);
      }
      case 'pgproxy.max_lag_ms': {
        const ms = this.maxLagMs;
        return ms === null ? '' : String(ms);
      }
      case 'pgproxy.explain':
        return this.explain ? 'on' : 'off';
      default:
        return '';
    }
  }

  /** An error for names pgproxy does not have, or that cannot be set. */
  private check(name: string): ProxyError | null {
    if (READ_ONLY.has(name)) return new ProxyError(CANT_CHANGE, `parameter "${name}" cannot be changed`);
    if (!SETTABLE.has(name)) return unknownSetting(name);
    return null;
  }
}

/** Whether SHOW knows the name (settable or read-only). */
export function showable(name: string): boolean {
  return SETTABLE.has(name) || READ_ONLY.has(name);
}

export function unknownSetting(name: string): ProxyError {
  return new ProxyError(UNDEFINED_OBJECT, `unrecognized configuration parameter "${name}"`);
}

const UNDEFINED_OBJECT = '42704';
const INVALID_VALUE = '22023';
const CANT_CHANGE = '55P02';

function fieldOf(name: string): keyof ProxyValues {
  switch (name) {
    case 'pgproxy.route':
      return 'route';
    case 'pgproxy.min_lsn':
      return 'minLsn';
    case 'pgproxy.max_lag_ms':
      return 'maxLagMs';
    default:
      return 'explain';
  }
}

/**
 * Sets `values`' field for `name` from the raw SET value; an error for a bad value or name. DEFAULT (raw null, or
 * the keyword unquoted) means the session's default, `defaults` (as RESET does); a quoted 'default' is a value.
 */
function assign(values: ProxyValues, name: string, raw: string | null, quoted: boolean, defaults: ProxyValues = DEFAULTS): ProxyError | null {
  if (!SETTABLE.has(name)) return READ_ONLY.has(name) ? new ProxyError(CANT_CHANGE, `parameter "${name}" cannot be changed`) : unknownSetting(name);
  const field = fieldOf(name);
  if (raw === null || raw.trim().toLowerCase() === 'default') {
    (values as unknown as Record<string, unknown>)[field] = defaults[field];
    return null;
  }
  const text = quoted ? unquote(raw) : raw;
  const bad = (hint: string): ProxyError => new ProxyError(INVALID_VALUE, `invalid value for parameter "${name}": "${text}"`, 'ERROR', hint);
  switch (field) {
    case 'route': {
      const v = text.toLowerCase();
      if (v !== 'auto' && v !== 'primary' && v !== 'standby') return bad('Available values: auto, primary, standby.');
      values.route = v;
      return null;
    }
    case 'minLsn': {
      if (text === '') {
        values.minLsn = null;
        return null;
      }
      const lsn = /^[0-9a-fA-F]{1,8}\/[0-9a-fA-F]{1,8}$/.test(text) ? parseLsn(text) : null;
      if (lsn === null) return bad("Expected an LSN such as '0/1A2B3C' (from SHOW pgproxy.last_commit_lsn).");
      values.minLsn = lsn;
      return null;
    }
    case 'maxLagMs': {
      if (!/^\d{1,12}$/.test(text)) return bad('Expected a number of milliseconds (0: fully replayed).');
      values.maxLagMs = Number(text);
      return null;
    }
    case 'explain': {
      const v = text.toLowerCase();
      if (v === 'on' || v === 'true' || v === 'yes' || v === '1') values.explain = true;
      else if (v === 'off' || v === 'false' || v === 'no' || v === '0') values.explain = false;
      else return bad('Available values: on, off.');
      return null;
    }
  }
}

/**
 * A SET value as written (the classifier gives raw text): one 'string constant' (with '' for a quote), one
 * identifier or number, else the text as it is.
 */
function unquote(raw: string): string {
  const t = raw.trim();
  if (t.length >= 2 && t.startsWith("'") && t.endsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/""/g, '"');
  return t;
}
