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
 *
 * A statement the classifier does not understand falls back to PostgreSQL's own parser (parser.ts, loaded on
 * demand or by loadParser()), whose tree gives the same facts (parser-facts.ts).
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
export { loadParser, parserReady, parserStats, type ParserStats } from './parser.js';
export { SERVER_DEFAULTS } from './session.js';
export { settingsToReplay } from './summary.js';
