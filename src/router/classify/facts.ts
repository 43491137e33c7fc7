/**
 * What the classifier reports about SQL text: one StatementFacts per statement, and a UnitSummary of them all
 * computed once per classification. Types only.
 *
 * Conventions (the session codes against these):
 * - A string with no statement (empty, only whitespace/comments/semicolons) has ZERO statements; empty
 *   statements between semicolons are dropped. A statement that is only an unterminated comment is kept, as
 *   kind 'unknown', understood false. So kind 'empty' is never produced today (kept in the type for callers).
 * - VACUUM, ANALYZE, CHECKPOINT, REINDEX, CLUSTER are kind 'ddl' (they cannot or should not run on a standby).
 * - SET TRANSACTION, SET CONSTRAINTS are session kind with local = true (they last for the transaction only).
 * - Plain EXPLAIN is kind 'read' but carries the explained statement's facts (functions, relations, locking,
 *   writableCte, selectInto, prepared): a policy that looks at them errs towards the primary. EXPLAIN of a
 *   transaction or session command is not understood (PostgreSQL only explains queries).
 * - For DDL, locking/writableCte/selectInto are always false (a CREATE POLICY ... FOR UPDATE is not a lock).
 * - GUC names are lowercased even when quoted (PostgreSQL compares them case-insensitively); function and
 *   relation names keep a quoted part's case.
 * - Facts are frozen and may be shared: a cached classification is returned to every caller whose text has
 *   the same shape (see cache.ts).
 */

export type StatementKind = 'read' | 'write' | 'ddl' | 'transaction' | 'session' | 'utility' | 'empty' | 'unknown';

/** A transaction isolation level, as PostgreSQL names it. */
export type Isolation = 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';

export type TxOp =
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'release'
  | 'rollback_to'
  | 'prepare_transaction'
  | 'commit_prepared'
  | 'rollback_prepared';

export interface TxFacts {
  op: TxOp;
  readOnly: boolean;
  readWrite: boolean;
  serializable: boolean;
  /** BEGIN / START TRANSACTION ISOLATION LEVEL x; null when the statement names none (the session default applies). */
  isolation: Isolation | null;
  /** Savepoint name for savepoint / release / rollback_to (lowercased unless quoted). */
  savepoint: string | null;
  /** COMMIT/END/ROLLBACK/ABORT AND CHAIN: a new transaction starts at once, with the same characteristics. */
  chain: boolean;
  /** Global transaction id for prepare_transaction / commit_prepared / rollback_prepared. */
  gid: string | null;
}

export type SessionOp = 'set' | 'reset' | 'reset_all' | 'discard' | 'set_session_characteristics';

export interface SessionFacts {
  op: SessionOp;
  /** SET LOCAL (and SET TRANSACTION / SET CONSTRAINTS, which only last for the transaction). */
  local: boolean;
  /**
   * Lowercased GUC name ('timezone' for TIME ZONE, 'client_encoding' for NAMES, 'search_path' for SCHEMA,
   * 'role', 'session_authorization', 'xmloption', 'constraints', 'transaction_isolation' for RESET TRANSACTION
   * ISOLATION LEVEL); 'transaction' for SET TRANSACTION and SET SESSION CHARACTERISTICS; null for RESET ALL
   * and DISCARD.
   */
  name: string | null;
  /**
   * SET: raw text of the value part ("'UTC'", "DEFAULT", "\"$user\", public"), null for SET x FROM CURRENT.
   * DISCARD: what is discarded, lowercased ('all' | 'plans' | 'sequences' | 'temp'). RESET: null.
   */
  value: string | null;
}

/**
 * Transaction characteristics a session statement asks for: SET TRANSACTION, SET SESSION CHARACTERISTICS,
 * SET [default_]transaction_read_only / [default_]transaction_isolation with a known value.
 */
export interface TxCharacteristics {
  readOnly: boolean;
  readWrite: boolean;
  serializable: boolean;
  /** The isolation level asked for, or null when the statement names none. */
  isolation: Isolation | null;
}

/**
 * What a statement does to the session's defaults for new transactions, once it has taken effect. A field is
 * absent when the statement leaves it alone. RESET, SET ... TO DEFAULT, RESET ALL and DISCARD ALL give the
 * server defaults: read-write, read committed (a value set in postgresql.conf, ALTER ROLE / DATABASE SET or
 * the startup packet is not known here).
 */
export interface SessionDefaults {
  /** default_transaction_read_only (SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY | READ WRITE). */
  readonly readOnly?: boolean;
  /** default_transaction_isolation (SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL ...). */
  readonly isolation?: Isolation;
}

export interface SetConfigCall {
  /** The setting's name when it is a string constant (lowercased), else null. */
  name: string | null;
  /** The third argument when it is a constant, else null (unknown). */
  isLocal: boolean | null;
}

export interface CursorFacts {
  op: 'declare' | 'fetch' | 'move' | 'close';
  name: string | null;
  withHold: boolean;
}

export interface PreparedFacts {
  op: 'prepare' | 'execute' | 'deallocate';
  name: string | null;
}

export interface StatementFacts {
  kind: StatementKind;
  command: string;
  functions: readonly string[];
  relations: readonly string[];
  locking: boolean;
  writableCte: boolean;
  selectInto: boolean;
  createsTemp: boolean;
  explainAnalyze: boolean;
  copy: 'from' | 'to' | null;
  /** A leading /*NO LOAD BALANCE*\/ or /* pgproxy: primary *\/ comment (see router/hints.ts). */
  hint: 'primary' | null;
  tx: TxFacts | null;
  txCharacteristics: TxCharacteristics | null;
  session: SessionFacts | null;
  setConfigCalls: readonly SetConfigCall[];
  /** What the statement does to the session's transaction defaults once it took effect; null: nothing. */
  defaults: SessionDefaults | null;
  listen: 'listen' | 'unlisten' | 'notify' | null;
  cursor: CursorFacts | null;
  prepared: PreparedFacts | null;
  /** PREPARE p AS <stmt>: the kind of <stmt> (the statement itself is 'utility'). */
  preparedKind: StatementKind | null;
  /** SHOW name: the parameter it names, lowercased ('all' for SHOW ALL); null for other statements. */
  show: string | null;
  understood: boolean;
  /**
   * The facts come from PostgreSQL's own parser (parser.ts), the fallback for a statement the classifier does not
   * understand; false for the classifier's own.
   */
  parsed: boolean;
}

/** Why a unit ties the session to one backend session. */
export const enum Pin {
  None = 0,
  TempTable = 1,
  Listen = 2,
  WithHoldCursor = 3,
  SqlPrepare = 4,
  AdvisoryLock = 5,
}

/** Index = Pin code. */
export const PIN_LABELS: readonly string[] = ['', 'temporary table', 'LISTEN', 'WITH HOLD cursor', 'SQL PREPARE', 'advisory lock'];

/** How the settings a unit carries are replayed on the session's other backends. */
export const enum Replay {
  /** No session setting. */
  None = 0,
  /** Replay the unit's text as it is (only persistent settings, or one SELECT set_config(..., false)). */
  Text = 1,
  /** Settings mixed with other statements: replay settingsToReplay()'s rebuilt text. */
  Rebuild = 2,
}

/** Facts of a whole unit (one Query string, or one Parse), session-independent, computed once per classification. */
export interface UnitSummary {
  /** Statements of kind 'read'. */
  readonly reads: number;
  /** The unit may change data (a write, DDL, utility, unknown statement, or a COMMIT). */
  readonly writes: boolean;
  /** The unit opens a transaction (BEGIN / START TRANSACTION). */
  readonly begins: boolean;
  /** The unit rolls back (ROLLBACK, ABORT, or ROLLBACK TO a savepoint). */
  readonly rollsBack: boolean;
  /** The first thing in the unit that lives in one backend session, or Pin.None. */
  readonly pin: Pin;
  /** Statements neither the classifier nor the parser fallback could understand (they go to the primary). */
  readonly notUnderstood: number;
  /** Statements the classifier did not understand and PostgreSQL's parser did: routed on the parser's facts. */
  readonly parsed: number;
  /** The unit changes the schema (DDL, or a statement not understood): cached catalog facts are stale after it. */
  readonly ddl: boolean;
  /** Some statement carries a leading primary hint. */
  readonly hint: boolean;
  /** Session settings to replay on the session's other backends. */
  readonly settings: Replay;
  /** RESET ALL or DISCARD ALL: every setting (startup parameters included) goes back to its default. */
  readonly resetsAll: boolean;
  /** DISCARD ALL: prepared statements, cursors, temp tables, LISTENs and advisory locks go too. */
  readonly discardsAll: boolean;
  /** The statements' effects on the session's transaction defaults, in order; null when none. */
  readonly defaults: SessionDefaults | null;
}

export interface Classification {
  readonly statements: readonly StatementFacts[];
  readonly summary: UnitSummary;
}
