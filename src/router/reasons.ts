/**
 * Why a unit runs where it runs: a bounded set of numeric codes. The label of a code is the
 * `pgproxy_routed_total{reason}` metric label; the code indexes a counter array (REASON_COUNT entries). Names
 * of functions or relations never go into a label: reasonDetail() (policy.ts) builds that text on demand.
 *
 * The policy (decide) returns the codes from Read to ReadWriteCharacteristics; the session decides the rest
 * itself (FunctionCall and below).
 */

export const enum Reason {
  /** A read a standby can serve. */
  Read = 0,
  /** Runs on any node: SET, RESET, DISCARD, an empty unit. */
  Any,
  Write,
  Ddl,
  /** LOCK, CALL, DO, LISTEN, NOTIFY, COPY ... FROM ... and other utility commands. */
  Utility,
  NotUnderstood,
  /** A leading /*NO LOAD BALANCE*\/ or /* pgproxy: primary *\/ comment. */
  Hint,
  /** COMMIT, ROLLBACK, SAVEPOINT ... outside a transaction the session routes. */
  TransactionControl,
  ReadWriteTransaction,
  /** A serializable transaction (or a read in a session whose default is serializable): standbys refuse it. */
  Serializable,
  /** A repeatable-read transaction that may write, in split mode: its snapshot cannot move to the primary. */
  RepeatableRead,
  LockingRead,
  WritableCte,
  SelectInto,
  NeverOnStandbyFunction,
  WriteFunction,
  /** read_only_functions is set and the function is not in it. */
  UnlistedFunction,
  /** No function lists: the catalog says VOLATILE (or does not know the function). */
  VolatileFunction,
  /** Statistics and activity views: every node has its own. */
  NodeLocalRelation,
  UnloggedRelation,
  /** SET TRANSACTION READ WRITE, SET default_transaction_read_only = off ... */
  ReadWriteCharacteristics,
  /** A FunctionCall protocol message. */
  FunctionCall,
  /** Inside a transaction: where the transaction is. */
  InTransaction,
  /** The session made something that lives in one backend (temp table, LISTEN, ...). */
  Pinned,
  /** A routing.redirect rule chose the node. */
  Redirect,
  /** Every standby lags beyond the limits. */
  Lag,
  /** Read-your-writes: no standby has replayed the session's last write yet. */
  ReadYourWrites,
  /** No standby is up (or every weight is 0). */
  NoStandby,
}

/** Index = Reason code. */
export const REASON_LABELS: readonly string[] = Object.freeze([
  'read',
  'any',
  'write',
  'ddl',
  'utility',
  'not_understood',
  'hint',
  'transaction_control',
  'read_write_transaction',
  'serializable',
  'repeatable_read',
  'locking_read',
  'writable_cte',
  'select_into',
  'never_on_standby_function',
  'write_function',
  'unlisted_function',
  'volatile_function',
  'node_local_relation',
  'unlogged_relation',
  'read_write_characteristics',
  'function_call',
  'in_transaction',
  'pinned',
  'redirect',
  'lag',
  'read_your_writes',
  'no_standby',
]);

export const REASON_COUNT: number = REASON_LABELS.length;

export function reasonLabel(r: Reason): string {
  return REASON_LABELS[r] as string;
}

export type Target = 'read' | 'primary' | 'any';

/**
 * Where a reason sends the unit: a standby ('read'), the primary, or wherever the session is ('any').
 * InTransaction is 'any' (the transaction's node), Redirect and ReadYourWrites are 'read' (the session picks
 * among the nodes they allow, which may be the primary).
 */
export function targetOf(r: Reason): Target {
  switch (r) {
    case Reason.Read:
    case Reason.Redirect:
    case Reason.ReadYourWrites:
      return 'read';
    case Reason.Any:
    case Reason.InTransaction:
      return 'any';
    default:
      return 'primary';
  }
}
