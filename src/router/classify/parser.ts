/**
 * PostgreSQL's own parser (libpg-query: the server's grammar built to WebAssembly) as the classifier's fallback.
 * A statement the classifier does not understand is parsed here and routed on the facts of its real tree
 * (parser-facts.ts) instead of going to the primary as "not understood". It stays off the hot path: only a
 * statement the classifier gives up on reaches it, once per shape (the result is cached like any other).
 *
 * The WebAssembly module loads asynchronously (about 0.1 s and some 60 MB of resident memory per process), while
 * classification is synchronous. So it is loaded on demand: the first statement that needs it starts the load and
 * stays "not understood" (primary), as does every statement until the load is done; such a classification is not
 * cached (uncached.ts), so the same statement is parsed once the module is there. loadParser() loads it ahead of
 * time, for a process that wants the fallback from its first statement.
 */
import type { StatementFacts } from './facts.js';
import { factsFromTree, treeTextSensitive } from './parser-facts.js';

type ParseSync = (sql: string) => unknown;

let parseSync: ParseSync | null = null;
let loading: Promise<void> | null = null;
let loadError: Error | null = null;
let enabled = true;

let parsedCount = 0;
let failedCount = 0;
let pendingCount = 0;

/** Loads the parser (once; later calls share the load). Rejects if libpg-query cannot be loaded. */
export function loadParser(): Promise<void> {
  if (loading === null) {
    loading = import('libpg-query').then(
      async (lib) => {
        await lib.loadModule();
        parseSync = lib.parseSync as ParseSync;
      },
      (err: unknown) => {
        loadError = err instanceof Error ? err : new Error(String(err));
        throw loadError;
      },
    );
  }
  return loading;
}

/** Whether the fallback can answer now. */
export function parserReady(): boolean {
  return parseSync !== null;
}

/**
 * Turns the fallback on (the default) or off. Off, a statement the classifier does not understand stays "not
 * understood" (the differential test compares the classifier alone this way).
 */
export function setParserFallback(on: boolean): void {
  enabled = on;
}

/** Outcome of the last parsedStatement() call besides its facts. */
export const enum ParseOutcome {
  Parsed = 0,
  /** The parser rejects the text, or it holds other than exactly one statement. */
  Failed = 1,
  /** The parser is not loaded yet (its load is started). */
  Pending = 2,
}

export let lastOutcome: ParseOutcome = ParseOutcome.Failed;
/** After a Parsed outcome: whether the facts depend on more than the text's shape (see parser-facts.ts). */
export let lastParsedTextSensitive = false;

/**
 * The facts of `sql`, one statement's text, from PostgreSQL's parser; null when it is not loaded yet or cannot
 * parse the text as exactly one statement. Never throws.
 */
export function parsedStatement(sql: string): StatementFacts | null {
  if (!enabled) {
    lastOutcome = ParseOutcome.Failed;
    return null;
  }
  const parse = parseSync;
  if (parse === null) {
    lastOutcome = ParseOutcome.Pending;
    pendingCount++;
    if (loading === null) loadParser().catch(() => undefined);
    return null;
  }
  try {
    const tree = parse(sql) as { stmts?: readonly { stmt?: unknown }[] };
    const stmts = tree.stmts ?? [];
    if (stmts.length !== 1 || stmts[0]?.stmt === undefined) throw new Error('not one statement');
    const facts = factsFromTree(stmts[0].stmt, sql);
    lastOutcome = ParseOutcome.Parsed;
    lastParsedTextSensitive = treeTextSensitive;
    parsedCount++;
    return facts;
  } catch {
    lastOutcome = ParseOutcome.Failed;
    failedCount++;
    return null;
  }
}

export interface ParserStats {
  /** Whether the parser is loaded; the error when its load failed. */
  ready: boolean;
  loadError: string | null;
  /** Statements the fallback classified (each shape once while it stays cached). */
  parsed: number;
  /** Statements the parser could not read either (they stay "not understood"). */
  failed: number;
  /** Statements that needed the parser before it was loaded. */
  pending: number;
}

export function parserStats(): ParserStats {
  return { ready: parseSync !== null, loadError: loadError?.message ?? null, parsed: parsedCount, failed: failedCount, pending: pendingCount };
}
