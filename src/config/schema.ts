/**
 * The pgproxy.yaml schema: every key with its type, default and message, in
 * zod. This is the single source of the config's shape: the types the proxy
 * reads (types.ts) are derived from it, and validate.ts adds the cross-field
 * checks and the normaliser that returns a frozen Config.
 *
 * Config keys keep the YAML spelling (snake_case) so that the file, error
 * paths, SHOW CONFIG and the code all use one name for each setting.
 *
 * Reading YAML, ${ENV} substitution and line numbers live in load.ts; these
 * modules never see text, so `defaultConfigForCluster` runs the very same
 * schema on an object built in code.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import {
  bool,
  emptyToUndefined,
  int,
  intField,
  list,
  ms,
  nameList,
  nonEmptyString,
  numberFromText,
  oneOf,
  optionalAnyString,
  optionalStr,
  requiredPort,
  section,
  str,
} from './fields.js';


export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const AUTH_METHODS = ['md5', 'scram-sha-256', 'password', 'trust'] as const;
export const HBA_METHODS = ['md5', 'scram-sha-256', 'password', 'trust', 'reject'] as const;
export const LOAD_BALANCE_MODES = ['session', 'statement'] as const;

// ---------------------------------------------------------------------------
// Shapes. Key lists are exported through KEYS_BY_SECTION for "did you mean".

const listenShape = {
  host: str('127.0.0.1'),
  /** 0 = any free port (tests). */
  port: int(0, 65535, 9999),
  max_clients: int(1, Number.MAX_SAFE_INTEGER, 10_000),
  /** Close a client idle (outside a transaction) this long; 0 = never. */
  client_idle_timeout_ms: ms(0, 0),
  /** Close a client idle inside a transaction this long (its transaction is rolled back); 0 = never. */
  idle_in_transaction_timeout_ms: ms(0, 0),
  /** Largest message a client may send, in bytes. */
  max_message_bytes: int(1024, 1 << 30, 1 << 30),
  /** A client must finish startup and authentication within this time. */
  auth_timeout_ms: ms(1, 60_000),
};

const optionalPath = optionalStr('a file path');

const tlsShape = {
  /** disable: SSLRequest answered N; allow: TLS when the client asks; require: plaintext clients are refused. */
  mode: z.preprocess(emptyToUndefined, z.enum(['disable', 'allow', 'require'], { error: 'expected one of: disable, allow, require' }).optional()),
  cert_file: optionalPath,
  key_file: optionalPath,
};

const backendTlsShape = {
  mode: oneOf(['disable', 'prefer', 'require', 'verify-full'] as const, 'prefer'),
  ca_file: optionalPath,
};

const hbaShape = {
  /** host: TLS or not; hostssl: TLS only; hostnossl: plaintext only. */
  type: oneOf(['host', 'hostssl', 'hostnossl'] as const, 'host'),
  /** Database names, or 'all'. */
  database: nameList,
  /** User names, or 'all'. */
  user: nameList,
  /** CIDR (e.g. 10.0.0.0/8, ::1/128), or 'all'. */
  address: str('all'),
  method: z.enum(HBA_METHODS, { error: `expected one of: ${HBA_METHODS.join(', ')}` }),
};

const backendShape = {
  /** `node<index>` unless configured; unique. */
  name: z.preprocess(
    emptyToUndefined,
    z
      .string({ error: "expected a name of letters, digits, '_', '.' or '-'" })
      .regex(/^[A-Za-z0-9_.-]+$/, { error: "expected a name of letters, digits, '_', '.' or '-'" })
      .optional(),
  ),
  host: str('127.0.0.1'),
  port: requiredPort,
  /** Share of reads, not normalised (0 = takes no load-balanced reads). */
  weight: z.preprocess(
    numberFromText,
    z
      .number({ error: 'expected a number >= 0' })
      .min(0, { error: 'expected a number >= 0' })
      .default(1),
  ),
};

const userShape = {
  name: nonEmptyString('a non-empty user name'),
  /** Plaintext, an `md5…` hash, or a `SCRAM-SHA-256$…` verifier; see secretKind() in secrets.ts. */
  password: nonEmptyString('a non-empty string (plaintext, md5 hash or SCRAM-SHA-256 verifier)'),
};

const authShape = {
  method: oneOf(AUTH_METHODS, 'md5'),
  users: list(z.strictObject(userShape, { error: 'expected a mapping with name and password' })),
  /** Rules like pg_hba.conf, first match wins; when empty, `method` applies to everyone. */
  hba: list(z.strictObject(hbaShape, { error: 'expected a mapping with type, database, user, address and method' })),
  /** Failed logins allowed per client address per minute before further attempts are refused; 0 = no limit. */
  max_failures_per_minute: int(0, Number.MAX_SAFE_INTEGER, 20),
  /** SQL returning the stored password of a user not in `users` ($1 = user name), run on the primary; null = off. */
  query: optionalStr('an SQL query'),
  query_user: optionalStr('a user name'),
  query_password: optionalAnyString,
  query_database: str('postgres'),
};

const functionList = list(nonEmptyString('a non-empty regular expression'));

const redirectShape = {
  /** Regexes (anchored) on the session's application_name, database and user; every one given must match. */
  application_name: optionalStr('a regular expression'),
  database: optionalStr('a regular expression'),
  user: optionalStr('a regular expression'),
  /** Where the session's reads go: 'primary', 'standby' (any, by weight), or a node id. */
  to: z.preprocess(
    numberFromText,
    z.union([z.literal('primary'), z.literal('standby'), z.number().int().min(0)], { error: "expected 'primary', 'standby' or a node id" }),
  ),
};

const routingShape = {
  /** Regex sources, anchored when compiled: use functionPattern(). */
  write_functions: functionList,
  read_only_functions: functionList,
  load_balance: oneOf(LOAD_BALANCE_MODES, 'session'),
  /** A standby more than this many bytes of WAL behind takes no reads (0 = no limit). */
  max_lag_bytes: int(0, Number.MAX_SAFE_INTEGER, 0),
  /** A standby more than this many milliseconds behind takes no reads (0 = no limit). */
  max_lag_ms: ms(0, 0),
  /**
   * Which acknowledged writes a read must see: off; session (the client connection's own); database (any client's
   * write to the same database through this pgproxy). true means session, false means off.
   */
  read_your_writes: z.preprocess(
    (v: unknown) => (v === null || v === undefined ? undefined : v === true || v === 'true' ? 'session' : v === false || v === 'false' ? 'off' : v),
    z.enum(['off', 'session', 'database'], { error: 'expected one of: off, session, database (or true / false)' }).default('session'),
  ),
  /** How long a read waits for a standby to replay what it must see before it goes to the primary. */
  read_your_writes_wait_ms: ms(0, 20),
  /** Reads go to the least-lagged qualifying standby (weights break ties); pgpool-II's prefer_lower_delay_standby. */
  prefer_lower_delay: bool(false),
  /** primary: explicit transactions run wholly on the primary (unless READ ONLY); split: reads on the load-balance node until the first write (pgpool). */
  transactions: oneOf(['primary', 'split'] as const, 'primary'),
  /** First matching rule decides a session's read target. */
  redirect: list(z.strictObject(redirectShape, { error: 'expected a mapping with to and application_name, database or user' })),
};

const poolShape = {
  /** session: a client keeps its backend connections; transaction: they return to the pool after each transaction. */
  mode: oneOf(['session', 'transaction'] as const, 'session'),
  /** Backend connections of one pool (one node, database and user). */
  max_per_node: int(1, Number.MAX_SAFE_INTEGER, 50),
  /** Warm idle connections kept per pool that has been used. */
  min_idle: int(0, Number.MAX_SAFE_INTEGER, 0),
  /** How long a session waits for a backend connection before ERROR 53300; 0 = as long as it takes. */
  acquire_timeout_ms: ms(0, 120_000),
  /** 0 = never. */
  idle_timeout_ms: ms(0, 600_000),
  /** 0 = never. */
  max_lifetime_ms: ms(0, 3_600_000),
  connect_timeout_ms: ms(1, 5_000),
};

const limitsShape = {
  /**
   * Backend connections to one node across all pools and workers; 0 = no limit. The default fits PostgreSQL's
   * max_connections = 100 (see the sizing rule in pgproxy.yaml).
   */
  max_connections_per_node: int(0, Number.MAX_SAFE_INTEGER, 80),
  /** Backend connections of one user across all nodes and databases; 0 = no limit. */
  max_connections_per_user: int(0, Number.MAX_SAFE_INTEGER, 0),
  /** Backend connections to one database across all nodes and users; 0 = no limit. */
  max_connections_per_database: int(0, Number.MAX_SAFE_INTEGER, 0),
};

const failoverShape = {
  /** Promote the most advanced standby when the primary has been down for after_ms (one pgproxy instance only). */
  auto_promote: bool(false),
  after_ms: ms(0, 5_000),
  /** A role allowed to run pg_promote() (superuser, or granted EXECUTE); defaults to the health-check credentials. */
  user: optionalStr('a non-empty user name'),
  password: optionalAnyString,
};

const healthCheckShape = {
  /** A connection error a session sees on a node triggers a health check of that node at once. */
  fail_on_backend_error: bool(true),
  period_ms: ms(1, 1_000),
  timeout_ms: ms(1, 1_000),
  max_retries: int(0, Number.MAX_SAFE_INTEGER, 0),
  retry_delay_ms: ms(0, 1_000),
  /** Filled from the first auth.users entry when not configured. */
  user: optionalStr('a non-empty user name'),
  /** Filled from auth.users when not configured; never a SCRAM verifier. An explicit '' is allowed (backends that trust the monitor role). */
  password: optionalAnyString,
  database: str('postgres'),
};

const logShape = {
  level: oneOf(LOG_LEVELS, 'info'),
  /** Human-readable lines (pino-pretty) instead of JSON. */
  pretty: bool(false),
  /** Statements slower than this are logged with node and duration; 0 = off. */
  slow_ms: ms(0, 0),
};

const adminShape = {
  /** auth.users names allowed to connect to the virtual database `pgproxy` (the admin console). */
  users: list(nonEmptyString('a user name')),
};

const metricsShape = {
  host: str('127.0.0.1'),
  /** HTTP port for /metrics, /health and /ready; 0 = off. */
  port: int(0, 65535, 0),
};

const shutdownShape = {
  /** SIGTERM: how long in-flight transactions may run before clients are closed with 57P01. */
  timeout_ms: ms(0, 30_000),
};

const rootShape = {
  /** Processes serving the port (node:cluster); 1 = a single process. */
  workers: z.preprocess(
    (v: unknown) => (v === null || v === undefined ? 1 : v === 'auto' ? availableParallelism() : numberFromText(v)),
    intField(1, 64),
  ),
  admin: section(adminShape),
  metrics: section(metricsShape),
  shutdown: section(shutdownShape),
  listen: section(listenShape),
  tls: section(tlsShape),
  backend_tls: section(backendTlsShape),
  /** List order = node id. Roles are discovered by the health checker. */
  backends: z.preprocess(
    emptyToUndefined,
    z
      .array(z.strictObject(backendShape, { error: 'expected a mapping with host and port' }), {
        error: 'expected a list of backends',
      })
      .min(1, { error: 'at least one backend is required' }),
  ),
  auth: section(authShape),
  routing: section(routingShape),
  pool: section(poolShape),
  limits: section(limitsShape),
  health_check: section(healthCheckShape),
  failover: section(failoverShape),
  log: section(logShape),
};

/** Allowed keys per mapping, by path with list indexes written `[]`. */
export const KEYS_BY_SECTION: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(rootShape),
  listen: Object.keys(listenShape),
  'backends[]': Object.keys(backendShape),
  auth: Object.keys(authShape),
  'auth.users[]': Object.keys(userShape),
  'auth.hba[]': Object.keys(hbaShape),
  tls: Object.keys(tlsShape),
  admin: Object.keys(adminShape),
  metrics: Object.keys(metricsShape),
  shutdown: Object.keys(shutdownShape),
  backend_tls: Object.keys(backendTlsShape),
  routing: Object.keys(routingShape),
  'routing.redirect[]': Object.keys(redirectShape),
  pool: Object.keys(poolShape),
  limits: Object.keys(limitsShape),
  health_check: Object.keys(healthCheckShape),
  failover: Object.keys(failoverShape),
  log: Object.keys(logShape),
};

/** Every key checked on its own; validate.ts adds the checks across keys and the defaults that depend on other keys. */
export const rawSchema = z.strictObject(rootShape, { error: 'expected a mapping of keys' });

/** The file's keys after per-key validation and defaults, before cross-field defaults are filled. */
export type RawConfig = z.output<typeof rawSchema>;
