/**
 * The classification cache, keyed by shape (shape.ts): texts that differ only in their literals, spacing or
 * comments share one entry, so pgbench's `... WHERE aid = 12345` hits whatever the number.
 *
 * A hit costs one pass over the bytes (the fingerprint), a Map lookup on its 30-bit hash and a comparison
 * with the entry's stored shape (so a hash collision can never return another statement's facts): no
 * decoding, no allocation. The first statement's leading hint is part of the key beside the shape (the shape
 * leaves leading comments out, so that sqlcommenter-style comments do not make every text new).
 *
 * Facts that depend on a literal's value or on raw text (SET values, set_config names and values, two-phase
 * gids, EXPLAIN option values) are never shared: a shape whose classification read one is remembered as
 * text-sensitive, and its texts are decoded and classified every time (they are rare).
 *
 * Bounded by entries (setClassifyCacheSize, default 10,000) and by bytes (MAX_CACHED_BYTES), least recently
 * used first out; texts longer than MAX_CACHED_TEXT bytes are never cached (long generated IN lists).
 */
import { CLASSIFIER_HINTS, leadingHints } from '../hints.js';
import type { Classification } from './facts.js';
import { copyShape, fingerprint, shapeEquals, type StoredShape } from './shape.js';
import { classifyUncached, lastParserPending, lastTextSensitive } from './uncached.js';

/** Texts longer than this (in UTF-8 bytes) are classified every time. */
const MAX_CACHED_TEXT = 64 * 1024;
/** Shape bytes plus a per-entry estimate; past it the oldest entries go even below the entry limit. */
const MAX_CACHED_BYTES = 16 * 1024 * 1024;
const ENTRY_OVERHEAD = 200;

interface Entry {
  readonly key: number;
  readonly hints: number;
  readonly shape: StoredShape;
  /** null: text-sensitive, classify each text. */
  readonly classification: Classification | null;
  readonly bytes: number;
  /** Next entry with the same key (hash collision). */
  collision: Entry | null;
  newer: Entry | null;
  older: Entry | null;
}

const table = new Map<number, Entry>();
let newest: Entry | null = null;
let oldest: Entry | null = null;
let capacity = 10_000;
let size = 0;
let bytes = 0;
let hits = 0;
let misses = 0;
let sensitiveHits = 0;
let uncacheable = 0;

/** UTF-8 of a string argument, for the same shape code path as wire bytes. */
let scratch = Buffer.allocUnsafe(0);
const isWellFormed = (String.prototype as unknown as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/**
 * Classify the UTF-8 SQL text buf[start, end) (a Query's or Parse's text, without its NUL). `hints` is
 * leadingHints(buf, start, end), when the caller has it already. Never throws.
 */
export function classifyBytes(buf: Buffer, start: number, end: number, hints: number = leadingHints(buf, start, end)): Classification {
  return lookup(buf, start, end, hints & CLASSIFIER_HINTS, null);
}

/** Classify SQL text given as a string (same cache as classifyBytes). Never throws. */
export function classify(sql: string): Classification {
  // A lone surrogate encodes as U+FFFD: two different texts would share one shape.
  if (sql.length > MAX_CACHED_TEXT || capacity === 0 || (isWellFormed !== undefined && !isWellFormed.call(sql))) {
    misses++;
    return classifyUncached(sql);
  }
  if (scratch.length < sql.length * 3) scratch = Buffer.allocUnsafe(Math.min(MAX_CACHED_TEXT * 3, Math.max(sql.length * 3, 1024)));
  const n = scratch.write(sql, 0, 'utf8');
  return lookup(scratch, 0, n, leadingHints(scratch, 0, n) & CLASSIFIER_HINTS, sql);
}

function lookup(buf: Buffer, start: number, end: number, hints: number, text: string | null): Classification {
  if (capacity === 0 || end - start > MAX_CACHED_TEXT) {
    misses++;
    return classifyUncached(text ?? buf.toString('utf8', start, end));
  }
  const h = fingerprint(buf, start, end);
  if (h < 0) {
    uncacheable++;
    return classifyUncached(text ?? buf.toString('utf8', start, end));
  }
  const key = (h ^ Math.imul(hints, 0x2545f491)) & 0x3fffffff;
  let e = table.get(key) ?? null;
  while (e !== null && !(e.hints === hints && shapeEquals(e.shape))) e = e.collision;
  if (e !== null) {
    touch(e);
    if (e.classification !== null) {
      hits++;
      return e.classification;
    }
    sensitiveHits++;
    return classifyUncached(text ?? buf.toString('utf8', start, end));
  }
  misses++;
  const shape = copyShape();
  const c = classifyUncached(text ?? buf.toString('utf8', start, end));
  // A provisional answer (the parser fallback was still loading) is not kept: the next text of the shape asks again.
  if (!lastParserPending) insert(key, hints, shape, lastTextSensitive ? null : c);
  return c;
}

function insert(key: number, hints: number, shape: StoredShape, classification: Classification | null): void {
  const e: Entry = { key, hints, shape, classification, bytes: shape.length + ENTRY_OVERHEAD, collision: table.get(key) ?? null, newer: null, older: newest };
  table.set(key, e);
  if (newest !== null) newest.newer = e;
  newest = e;
  if (oldest === null) oldest = e;
  size++;
  bytes += e.bytes;
  while (size > capacity || bytes > MAX_CACHED_BYTES) evictOldest();
}

/** Makes e the most recently used entry. */
function touch(e: Entry): void {
  if (e === newest) return;
  // unlink (e has a newer entry, since it is not the newest)
  e.newer!.older = e.older;
  if (e.older !== null) e.older.newer = e.newer;
  else oldest = e.newer;
  // link as newest
  e.older = newest;
  e.newer = null;
  newest!.newer = e;
  newest = e;
}

function evictOldest(): void {
  const e = oldest;
  if (e === null) return;
  oldest = e.newer;
  if (oldest !== null) oldest.older = null;
  else newest = null;
  const head = table.get(e.key);
  if (head === e) {
    if (e.collision !== null) table.set(e.key, e.collision);
    else table.delete(e.key);
  } else {
    let p = head ?? null;
    while (p !== null && p.collision !== e) p = p.collision;
    if (p !== null) p.collision = e.collision;
  }
  size--;
  bytes -= e.bytes;
}

/** Set the LRU capacity in entries (0 disables caching); shrinking evicts the oldest entries at once. */
export function setClassifyCacheSize(n: number): void {
  capacity = Math.max(0, Math.floor(n));
  while (size > capacity) evictOldest();
}

export function clearClassifyCache(): void {
  table.clear();
  newest = null;
  oldest = null;
  size = 0;
  bytes = 0;
}

export interface ClassifyCacheStats {
  /** Shapes cached, and the limit. */
  size: number;
  capacity: number;
  /** Bytes accounted to the cached shapes (shape bytes plus a per-entry estimate). */
  bytes: number;
  /** Classifications served from the cache. */
  hits: number;
  /** Texts of a shape not cached yet (or with caching off, or too long). */
  misses: number;
  /** Texts of a known text-sensitive shape: classified again. */
  textSensitive: number;
  /** Texts without a shape (unterminated, control characters): classified every time. */
  uncacheable: number;
}

/** For metrics and tests: counters since start. */
export function classifyCacheStats(): ClassifyCacheStats {
  return { size, capacity, bytes, hits, misses, textSensitive: sensitiveHits, uncacheable };
}
