/**
 * Statements pgproxy answers itself, with what PostgreSQL would send: SET / RESET / SHOW of its own `pgproxy.*`
 * settings (proxy-settings.ts), and the replies that go with them in the extended protocol. Frames only; the routing
 * loop decides when they are due.
 */
import { ProxyError } from '../errors.js';
import type { Classification, StatementFacts } from '../router/classify/index.js';
import { NO_DATA, commandComplete, errorResponse, resultSet, rowDescription, textColumn } from '../wire/backend.js';
import { SqlState } from '../wire/codes.js';
import { isProxySetting, showable, unknownSetting, type ProxySettings } from './proxy-settings.js';

/** Whether a unit names pgproxy's settings: not at all, only them, or mixed with other statements. */
export const enum ProxyUnit {
  None,
  Only,
  Mixed,
}

/** A statement about pgproxy's own settings. */
export function isProxyStatement(st: StatementFacts): boolean {
  if (st.show !== null) return isProxySetting(st.show);
  const s = st.session;
  return s !== null && (s.op === 'set' || s.op === 'reset') && isProxySetting(s.name);
}

export function proxyUnitOf(c: Classification): ProxyUnit {
  let proxy = 0;
  for (const st of c.statements) if (isProxyStatement(st)) proxy++;
  return proxy === 0 ? ProxyUnit.None : proxy === c.statements.length ? ProxyUnit.Only : ProxyUnit.Mixed;
}

export const MIXED_UNIT_ERROR = new ProxyError(SqlState.FeatureNotSupported, 'pgproxy.* settings cannot be combined with other statements in one query', 'ERROR', 'Send SET, RESET or SHOW of pgproxy.* as a statement of its own.');

/** What SHOW pgproxy.* reports besides the settings themselves. */
export interface ShowSource {
  readonly proxy: ProxySettings;
  lastCommitLsn(): string;
  lastRoute(): string;
}

/**
 * Runs one pgproxy.* statement: the frames PostgreSQL would send for it (without ReadyForQuery), an ErrorResponse
 * when it fails. `withDescription`: SHOW sends its RowDescription (a simple Query, or Execute of a portal that was
 * not described).
 */
export function runProxyStatement(st: StatementFacts, src: ShowSource, inTransaction: boolean, withDescription: boolean): { frames: Buffer; failed: boolean } {
  if (st.show !== null) {
    const name = st.show;
    if (!showable(name)) return failure(unknownSetting(name));
    const value = name === 'pgproxy.last_commit_lsn' ? src.lastCommitLsn() : name === 'pgproxy.last_route' ? src.lastRoute() : src.proxy.show(name);
    return { frames: resultSet([textColumn(name)], [[value]], 'SHOW', withDescription), failed: false };
  }
  const s = st.session!;
  if (s.op === 'reset') {
    const err = src.proxy.reset(s.name!, inTransaction);
    return err === null ? { frames: commandComplete('RESET'), failed: false } : failure(err);
  }
  const result = src.proxy.set(s.name!, s.value, s.local, inTransaction);
  if (result instanceof ProxyError) return failure(result);
  const done = commandComplete('SET');
  if (typeof result === 'string') return { frames: Buffer.concat([notice('WARNING', '25P01', result), done]), failed: false };
  return { frames: done, failed: false };
}

/** The error of a Parse of a pgproxy.* statement: SHOW of an unknown name fails there, as in PostgreSQL. */
export function parseProblem(st: StatementFacts): ProxyError | null {
  return st.show !== null && isProxySetting(st.show) && !showable(st.show) ? unknownSetting(st.show) : null;
}

/** Describe of a pgproxy.* statement or its portal: the columns SHOW returns, or none. */
export function describeProxyStatement(st: StatementFacts): Buffer {
  return st.show !== null ? rowDescription([textColumn(st.show)]) : NO_DATA;
}

export function notice(severity: 'WARNING' | 'NOTICE', code: string, message: string): Buffer {
  return errorResponse({ severity, code, message }, true);
}

function failure(err: ProxyError): { frames: Buffer; failed: boolean } {
  return { frames: err.toFrame(), failed: true };
}
