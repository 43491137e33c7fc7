/**
 * Statement facts from SQL text: what kind of statement, which functions it calls, which relations it names,
 * locking clauses, hints, transaction and session effects, and a summary of the whole unit. Facts only;
 * router/policy.ts decides the route.
 *
 * Works on the lexer's token arrays (no token objects): dispatch.ts sends each statement to its command
 * family (query, ddl, transaction, session, utility), which parses a little structure and runs the generic
 * pass (scan.ts) over expressions. Results are cached by shape, literals masked (cache.ts, shape.ts).
 *
 * Entry points:
 * - classifyBytes(buf, start, end): the session's path, straight from a Query's or Parse's bytes;
 * - classify(sql): the same cache, for text already decoded;
 * - classifyUncached(sql): no cache (tests, tools).
 * Leading-comment hints come from router/hints.ts leadingHints(), outside the cache.
 */
export type {
  Classification,
  CursorFacts,
  Isolation,
  PreparedFacts,
  SessionDefaults,
  SessionFacts,
  SessionOp,
  SetConfigCall,
  StatementFacts,
  StatementKind,
  TxCharacteristics,
  TxFacts,
  TxOp,
  UnitSummary,
} from './facts.js';
export { PIN_LABELS, Pin, Replay } from './facts.js';
export { classify, classifyBytes, classifyCacheStats, clearClassifyCache, setClassifyCacheSize, type ClassifyCacheStats } from './cache.js';
export { classifyUncached } from './uncached.js';
export { SERVER_DEFAULTS } from './session.js';
export { settingsToReplay } from './summary.js';
