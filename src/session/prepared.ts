/**
 * The statements a client prepared, as pgproxy needs them to run each on any node: its classification and route
 * (decided once, at Parse), the setting it makes, and the client's own Parse message to re-prepare it on a backend
 * that has not seen it. A backend holding another statement under the same name (an earlier client's, or one the
 * client closed elsewhere) gets a Close first.
 *
 * The unnamed statement is replaced by every unnamed Parse (extended-protocol clients send one per unit). Its Parse
 * is copied into a buffer reused from one to the next, so the common case allocates nothing; only when it must be
 * re-prepared on another backend is a copy of that copy sent (the reused buffer may change before the write).
 * Links know which unnamed statement they hold by its generation.
 */
import type { Classification } from '../router/classify/index.js';
import type { Reason } from '../router/reasons.js';
import type { Framer } from '../wire/framer.js';
import { closeStatement } from '../wire/frontend.js';
import type { Link } from './link.js';
import { OWED } from './reply-queue.js';
import type { SegmentSetting } from './segment.js';
import { settingOf } from './settings.js';

/** What the routing loop needs of a prepared statement when it is used. */
export interface PreparedStatement {
  readonly classification: Classification;
  /** leadingHints() of its text. */
  readonly hints: number;
  /** Its route, decided at Parse; UNDECIDED for one answered locally so far (decided if it ever runs on a node). */
  readonly reason: Reason | typeof UNDECIDED;
  /** The session setting it makes, replayed elsewhere once it succeeded. */
  readonly setting: SegmentSetting | null;
  /** Its text (for the unnamed statement, only when the slow-statement log wants it). */
  readonly sql: string;
}

interface NamedStatement extends PreparedStatement {
  /** A copy of the client's Parse message. */
  readonly parse: Buffer;
}

export const UNDECIDED = -1;

interface UnnamedStatement {
  generation: number;
  classification: Classification | null;
  /** leadingHints() of its text. */
  hints: number;
  reason: Reason | typeof UNDECIDED;
  setting: SegmentSetting | null;
  sql: string;
  parse: Buffer;
  parseLength: number;
}

export class PreparedStatements {
  private readonly named = new Map<string, NamedStatement>();
  private readonly unnamed: UnnamedStatement = { generation: 0, classification: null, hints: 0, reason: 0, setting: null, sql: '', parse: Buffer.alloc(0), parseLength: 0 };

  /**
   * The framer's current frame is an unnamed Parse byte for byte equal to the last one (extended-protocol clients
   * send the same text and types every time): its statement, whose classification and hints still hold; else null.
   */
  unnamedRepeat(f: Framer): { readonly classification: Classification; readonly hints: number } | null {
    const u = this.unnamed;
    if (u.classification === null || u.parseLength !== f.end - f.start) return null;
    return f.buf.compare(u.parse, 0, u.parseLength, f.start, f.end) === 0 ? (u as { classification: Classification; hints: number }) : null;
  }

  /**
   * The unnamed Parse that unnamedRepeat() found equal goes to `link`, routed for `reason`: the statement stays the
   * same (links holding it keep it; nothing is copied).
   */
  parsedAgain(link: Link, reason: Reason): void {
    this.unnamed.reason = reason;
    link.unnamedGeneration = this.unnamed.generation;
  }

  /**
   * The client's Parse (the framer's current frame: name ending at `nameEnd`, text at [start, end)) goes to `link`.
   * `withText`: keep the unnamed statement's text (the slow-statement log wants it). Returns true when the
   * backend now holds state the next client must not see (a named statement).
   */
  parsed(f: Framer, nameEnd: number, start: number, end: number, link: Link, c: Classification, hints: number, reason: Reason, withText: boolean): boolean {
    const buf = f.buf;
    if (nameEnd === f.bodyStart) {
      const sql = withText || c.summary.settings !== 0 ? buf.toString('utf8', start, end) : '';
      this.keepUnnamed(f, c, hints, reason, sql, c.summary.settings !== 0 ? settingOf(sql, c) : null);
      link.unnamedGeneration = this.unnamed.generation;
      return false;
    }
    const name = buf.toString('utf8', f.bodyStart, nameEnd);
    const sql = buf.toString('utf8', start, end);
    this.named.set(name, { sql, classification: c, hints, reason, setting: settingOf(sql, c), parse: Buffer.from(buf.subarray(f.start, f.end)) });
    const prepared = link.conn.prepared;
    if (prepared.has(name)) link.inject(closeStatement(name), OWED.injectedClose);
    prepared.set(name, sql);
    return true;
  }

  /** A new unnamed statement: its Parse copied into the reused buffer, a new generation. */
  private keepUnnamed(f: Framer, c: Classification, hints: number, reason: Reason | typeof UNDECIDED, sql: string, setting: SegmentSetting | null): void {
    const u = this.unnamed;
    const length = f.end - f.start;
    if (u.parse.length < length) u.parse = Buffer.allocUnsafe(Math.max(length, 2 * u.parse.length, 256));
    f.buf.copy(u.parse, 0, f.start, f.end);
    u.parseLength = length;
    u.generation++;
    u.classification = c;
    u.hints = hints;
    u.reason = reason;
    u.sql = sql;
    u.setting = setting;
  }

  /**
   * The client's Parse of a statement pgproxy answers itself (its own settings, a BEGIN it defers): kept like any
   * other, on no backend yet (it is prepared on one, from this copy, only if it ever has to run there).
   */
  parsedLocally(f: Framer, nameEnd: number, start: number, end: number, c: Classification, hints: number): void {
    const buf = f.buf;
    const sql = buf.toString('utf8', start, end);
    if (nameEnd === f.bodyStart) return this.keepUnnamed(f, c, hints, UNDECIDED, sql, null);
    this.named.set(buf.toString('utf8', f.bodyStart, nameEnd), { sql, classification: c, hints, reason: UNDECIDED, setting: null, parse: Buffer.from(buf.subarray(f.start, f.end)) });
  }

  /** The statement of that name, or null when the session never prepared it. */
  get(name: string): PreparedStatement | null {
    if (name !== '') return this.named.get(name) ?? null;
    const u = this.unnamed;
    return u.classification === null ? null : (u as PreparedStatement);
  }

  /**
   * Makes `link`'s backend hold the statement `name` before it is used there (re-prepared from the client's
   * Parse). Returns true when that left state the next client must not see (a named statement).
   */
  ensureOn(link: Link, name: string): boolean {
    if (name === '') {
      const u = this.unnamed;
      if (link.unnamedGeneration !== u.generation) {
        link.inject(Buffer.from(u.parse.subarray(0, u.parseLength)), OWED.injectedParse);
        link.unnamedGeneration = u.generation;
      }
      return false;
    }
    const stmt = this.named.get(name)!;
    const prepared = link.conn.prepared;
    if (prepared.get(name) === stmt.sql) return false;
    if (prepared.has(name)) link.inject(closeStatement(name), OWED.injectedClose);
    link.inject(stmt.parse, OWED.injectedParse);
    prepared.set(name, stmt.sql);
    return true;
  }

  /**
   * The client uses a statement it never prepared: whatever an earlier client left under that name on `link`'s
   * backend is closed, so that the backend answers as PostgreSQL would (26000).
   */
  unknownOn(link: Link, name: string): void {
    if (name === '' || link.conn.prepared.delete(name)) link.inject(closeStatement(name), OWED.injectedClose);
  }

  /** The client closes statement `name` on `link` (null: none); the session's other links close it when next used. */
  closed(name: string, link: Link | null, others: Iterable<Link>): void {
    if (name === '') {
      this.unnamed.classification = null;
      this.unnamed.generation++;
      return;
    }
    this.named.delete(name);
    link?.conn.prepared.delete(name);
    for (const other of others) {
      if (other !== link && other.conn.prepared.delete(name)) (other.pendingCloses ??= []).push(name);
    }
  }

  /** DISCARD ALL took effect: every prepared statement is gone. */
  clear(): void {
    this.named.clear();
    this.unnamed.classification = null;
    this.unnamed.generation++;
  }
}
