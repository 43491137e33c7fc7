/**
 * The pgproxy.yaml schema: types, defaults, cross-field checks, and the one
 * normaliser (`validateConfig`) that turns a plain object into a frozen Config.
 *
 * Config keys keep the YAML spelling (snake_case) so that the file, error
 * paths, SHOW CONFIG and the code all use one name for each setting.
 *
 * Reading YAML, ${ENV} substitution and line numbers live in load.ts; this
 * module never sees text, so `defaultConfigForCluster` runs the very same
 * schema on an object built in code.
 */
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';

// ---------------------------------------------------------------------------
// Types (what the rest of the proxy reads; deeply readonly and frozen)

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const AUTH_METHODS = ['md5', 'scram-sha-256', 'password', 'trust'] as const;
export const HBA_METHODS = ['md5', 'scram-sha-256', 'password', 'trust', 'reject'] as const;
export type HbaMethod = (typeof HBA_METHODS)[number];
export const LOAD_BALANCE_MODES = ['session', 'statement'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];
export type AuthMethod = (typeof AUTH_METHODS)[number];
export type LoadBalanceMode = (typeof LOAD_BALANCE_MODES)[number];

export interface ListenConfig {
  readonly host: string;
  readonly port: number;
  readonly max_clients: number;
  /** Close a client idle (outside a transaction) this long; 0 = never. */
  readonly client_idle_timeout_ms: number;
  /** Close a client idle inside a transaction this long (its transaction is rolled back); 0 = never. */
  readonly idle_in_transaction_timeout_ms: number;
  /** Largest message a client may send, in bytes. */
  readonly max_message_bytes: number;
  /** A client must finish startup and authentication within this time. */
  readonly auth_timeout_ms: number;
}

export interface TlsConfig {
  /** disable: SSLRequest answered N; allow: TLS when the client asks; require: plaintext clients are refused. */
  readonly mode: 'disable' | 'allow' | 'require';
  readonly cert_file: string | null;
  readonly key_file: string | null;
}

export interface BackendTlsConfig {
  readonly mode: 'disable' | 'prefer' | 'require' | 'verify-full';
  readonly ca_file: string | null;
}

export interface HbaRule {
  /** host: TLS or not; hostssl: TLS only; hostnossl: plaintext only. */
  readonly type: 'host' | 'hostssl' | 'hostnossl';
  /** Database names, or 'all'. */
  readonly database: readonly string[];
  /** User names, or 'all'. */
  readonly user: readonly string[];
  /** CIDR (e.g. 10.0.0.0/8, ::1/128), or 'all'. */
  readonly address: string;
  readonly method: HbaMethod;
}

export interface BackendConfig {
  /** `node<index>` unless configured; unique. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Share of reads, not normalised (0 = takes no load-balanced reads). */
  readonly weight: number;
}

export interface UserConfig {
  readonly name: string;
  /** Plaintext, an `md5…` hash, or a `SCRAM-SHA-256$…` verifier; see passwordKind(). */
  readonly password: string;
}

export interface AuthConfig {
  readonly method: AuthMethod;
  readonly users: readonly UserConfig[];
  /** Rules like pg_hba.conf, first match wins; when empty, `method` applies to everyone. */
  readonly hba: readonly HbaRule[];
  /** Failed logins allowed per client address per minute before further attempts are refused; 0 = no limit. */
  readonly max_failures_per_minute: number;
  /** SQL returning the stored password of a user not in `users` ($1 = user name), run on the primary; null = off. */
  readonly query: string | null;
  readonly query_user: string | null;
  readonly query_password: string;
  readonly query_database: string;
}

export interface RedirectRule {
  /** Regexes (anchored) on the session's application_name, database and user; every one given must match. */
  readonly application_name?: string;
  readonly database?: string;
  readonly user?: string;
  /** Where the session's reads go: 'primary', 'standby' (any, by weight), or a node id. */
  readonly to: 'primary' | 'standby' | number;
}

export interface RoutingConfig {
  /** Regex sources, anchored when compiled: use functionPattern(). */
  readonly write_functions: readonly string[];
  readonly read_only_functions: readonly string[];
  readonly load_balance: LoadBalanceMode;
  /** A standby more than this many bytes of WAL behind takes no reads (0 = no limit). */
  readonly max_lag_bytes: number;
  /** A standby more than this many milliseconds behind takes no reads (0 = no limit). */
  readonly max_lag_ms: number;
  /** After a session's write commits, its reads go only to standbys that have replayed it. */
  readonly read_your_writes: boolean;
  /** First matching rule decides a session's read target. */
  readonly redirect: readonly RedirectRule[];
  /** primary: explicit transactions run wholly on the primary (unless READ ONLY); split: reads on the load-balance node until the first write (pgpool). */
  readonly transactions: 'primary' | 'split';
}

export interface PoolConfig {
  /** session: a client keeps its backend connections; transaction: they return to the pool after each transaction. */
  readonly mode: 'session' | 'transaction';
  readonly max_per_node: number;
  /** Warm idle connections kept per pool that has been used. */
  readonly min_idle: number;
  readonly acquire_timeout_ms: number;
  /** 0 = never. */
  readonly idle_timeout_ms: number;
  /** 0 = never. */
  readonly max_lifetime_ms: number;
  readonly connect_timeout_ms: number;
}

export interface LimitsConfig {
  /** Backend connections of one user across all nodes and databases; 0 = no limit. */
  readonly max_connections_per_user: number;
  /** Backend connections to one database across all nodes and users; 0 = no limit. */
  readonly max_connections_per_database: number;
}

export interface FailoverConfig {
  /** Promote the most advanced standby when the primary has been down for after_ms (one pgproxy instance only). */
  readonly auto_promote: boolean;
  readonly after_ms: number;
  /** A role allowed to run pg_promote() (superuser, or granted EXECUTE); defaults to the health-check credentials. */
  readonly user: string;
  readonly password: string;
}

export interface HealthCheckConfig {
  /** A connection error a session sees on a node counts as a failed health check at once. */
  readonly fail_on_backend_error: boolean;
  readonly period_ms: number;
  readonly timeout_ms: number;
  readonly max_retries: number;
  readonly retry_delay_ms: number;
  /** Filled from the first auth.users entry when not configured. */
  readonly user: string;
  /** Filled from auth.users when not configured; never a SCRAM verifier. */
  readonly password: string;
  readonly database: string;
}

export interface LogConfig {
  readonly level: LogLevel;
  /** Human-readable lines (pino-pretty) instead of JSON. */
  readonly pretty: boolean;
  /** Statements slower than this are logged with node and duration; 0 = off. */
  readonly slow_ms: number;
}

export interface AdminConfig {
  /** auth.users names allowed to connect to the virtual database `pgproxy` (the admin console). */
  readonly users: readonly string[];
}

export interface MetricsConfig {
  readonly host: string;
  /** HTTP port for /metrics, /health and /ready; 0 = off. */
  readonly port: number;
}

export interface ShutdownConfig {
  /** SIGTERM: how long in-flight transactions may run before clients are closed with 57P01. */
  readonly timeout_ms: number;
}

export interface Config {
  /** Processes serving the port (node:cluster); 1 = a single process. */
  readonly workers: number;
  readonly admin: AdminConfig;
  readonly metrics: MetricsConfig;
  readonly shutdown: ShutdownConfig;
  readonly listen: ListenConfig;
  readonly tls: TlsConfig;
  readonly backend_tls: BackendTlsConfig;
  readonly limits: LimitsConfig;
  readonly failover: FailoverConfig;
  /** List order = node id. Roles are discovered by the health checker. */
  readonly backends: readonly BackendConfig[];
  readonly auth: AuthConfig;
  readonly routing: RoutingConfig;
  readonly pool: PoolConfig;
  readonly health_check: HealthCheckConfig;
  readonly log: LogConfig;
}

// ---------------------------------------------------------------------------
// Errors

export interface ConfigIssue {
  /** Key path as written in messages, e.g. `backends[1].port`; '' for the file as a whole. */
  path: string;
  /** 1-based line in the file, or null when unknown (config built in code, key absent at top level). */
  line: number | null;
  message: string;
}

/**
 * Every problem found in one pass, one per line:
 * `pgproxy.yaml:14: backends[1].port: expected an integer from 1 to 65535`.
 * Messages name keys, never values, so passwords cannot leak through them.
 */
export class ConfigError extends Error {
  readonly code = 'PGPROXY_CONFIG';
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => formatIssue(file, issue)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === null ? file : `${file}:${issue.line}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

export type PathSegment = string | number;

/** `['backends', 1, 'port']` -> `backends[1].port` */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Field helpers

/** Largest delay Node's timers accept; larger values silently become 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/** An empty YAML value (`key:` with nothing after it) means "use the default". */
const emptyToUndefined = (value: unknown): unknown => (value === null ? undefined : value);

const DECIMAL = /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;

/**
 * Numeric fields accept a decimal string too. This is how `port: ${PORT:-9999}`
 * validates: substitution yields the string "9999" and the numeric field reads it.
 * (A quoted `"9999"` is accepted for the same reason; no harm in that.)
 * String fields never coerce, so a password of digits from an env var stays a string.
 */
const numberFromText = (value: unknown): unknown => {
  if (value === null) return undefined;
  if (typeof value === 'string' && DECIMAL.test(value.trim())) return Number(value.trim());
  return value;
};

function intField(min: number, max: number, unit = '') {
  const message =
    max >= Number.MAX_SAFE_INTEGER
      ? `expected an integer >= ${min}${unit}`
      : `expected an integer from ${min} to ${max}${unit}`;
  return z
    .number({ error: message })
    .int({ error: message })
    .min(min, { error: message })
    .max(max, { error: message });
}

function int(min: number, max: number, def: number, unit = '') {
  return z.preprocess(numberFromText, intField(min, max, unit).default(def));
}

function ms(min: number, def: number) {
  return int(min, MAX_TIMER_MS, def, ' (milliseconds)');
}

const requiredPort = z.preprocess(numberFromText, intField(1, 65535));

const nonEmptyString = (what = 'a non-empty string') =>
  z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

function str(def: string) {
  return z.preprocess(emptyToUndefined, nonEmptyString().default(def));
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T, def: T[number]) {
  return z.preprocess(
    emptyToUndefined,
    z.enum(values, { error: `expected one of: ${values.join(', ')}` }).default(def as never),
  );
}

function bool(def: boolean) {
  return z.preprocess(
    (v: unknown) => (v === null ? undefined : v === 'true' ? true : v === 'false' ? false : v),
    z.boolean({ error: 'expected true or false' }).default(def),
  );
}

function list<T extends z.ZodType>(item: T) {
  return z.preprocess(
    emptyToUndefined,
    z.array(item, { error: 'expected a list' }).default([] as never),
  );
}

/** A section of keys; unknown keys are rejected; absent or empty = all defaults. */
function section<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.preprocess(
    emptyToUndefined,
    z.strictObject(shape, { error: 'expected a mapping of keys' }).prefault({} as never),
  );
}

// ---------------------------------------------------------------------------
// Shapes. Key lists are exported through KEYS_BY_SECTION for "did you mean".

const listenShape = {
  host: str('127.0.0.1'),
  // 0 = any free port (tests).
  port: int(0, 65535, 9999),
  max_clients: int(1, Number.MAX_SAFE_INTEGER, 10_000),
  client_idle_timeout_ms: ms(0, 0),
  idle_in_transaction_timeout_ms: ms(0, 0),
  max_message_bytes: int(1024, 1 << 30, 1 << 30),
  auth_timeout_ms: ms(1, 60_000),
};

const optionalPath = z.preprocess(emptyToUndefined, nonEmptyString('a file path').optional());

const tlsShape = {
  mode: z.preprocess(emptyToUndefined, z.enum(['disable', 'allow', 'require'], { error: 'expected one of: disable, allow, require' }).optional()),
  cert_file: optionalPath,
  key_file: optionalPath,
};

const backendTlsShape = {
  mode: oneOf(['disable', 'prefer', 'require', 'verify-full'] as const, 'prefer'),
  ca_file: optionalPath,
};

const nameList = z.preprocess(
  (v: unknown) => (v === null ? undefined : typeof v === 'string' ? [v] : v),
  z.array(nonEmptyString('a name'), { error: "expected a name, a list of names, or 'all'" }).min(1).default(['all']),
);

const hbaShape = {
  type: oneOf(['host', 'hostssl', 'hostnossl'] as const, 'host'),
  database: nameList,
  user: nameList,
  address: str('all'),
  method: z.enum(HBA_METHODS, { error: `expected one of: ${HBA_METHODS.join(', ')}` }),
};

const backendShape = {
  name: z.preprocess(
    emptyToUndefined,
    z
      .string({ error: "expected a name of letters, digits, '_', '.' or '-'" })
      .regex(/^[A-Za-z0-9_.-]+$/, { error: "expected a name of letters, digits, '_', '.' or '-'" })
      .optional(),
  ),
  host: str('127.0.0.1'),
  port: requiredPort,
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
  password: nonEmptyString('a non-empty string (plaintext, md5 hash or SCRAM-SHA-256 verifier)'),
};

const authShape = {
  method: oneOf(AUTH_METHODS, 'md5'),
  users: list(z.strictObject(userShape, { error: 'expected a mapping with name and password' })),
  hba: list(z.strictObject(hbaShape, { error: 'expected a mapping with type, database, user, address and method' })),
  max_failures_per_minute: int(0, Number.MAX_SAFE_INTEGER, 20),
  query: z.preprocess(emptyToUndefined, nonEmptyString('an SQL query').optional()),
  query_user: z.preprocess(emptyToUndefined, nonEmptyString('a user name').optional()),
  query_password: z.preprocess(emptyToUndefined, z.string({ error: 'expected a string' }).optional()),
  query_database: str('postgres'),
};

const functionList = list(nonEmptyString('a non-empty regular expression'));

const redirectShape = {
  application_name: z.preprocess(emptyToUndefined, nonEmptyString('a regular expression').optional()),
  database: z.preprocess(emptyToUndefined, nonEmptyString('a regular expression').optional()),
  user: z.preprocess(emptyToUndefined, nonEmptyString('a regular expression').optional()),
  to: z.preprocess(
    numberFromText,
    z.union([z.literal('primary'), z.literal('standby'), z.number().int().min(0)], { error: "expected 'primary', 'standby' or a node id" }),
  ),
};

const routingShape = {
  write_functions: functionList,
  read_only_functions: functionList,
  load_balance: oneOf(LOAD_BALANCE_MODES, 'session'),
  max_lag_bytes: int(0, Number.MAX_SAFE_INTEGER, 0),
  max_lag_ms: ms(0, 0),
  read_your_writes: bool(false),
  transactions: oneOf(['primary', 'split'] as const, 'primary'),
  redirect: list(z.strictObject(redirectShape, { error: 'expected a mapping with to and application_name, database or user' })),
};

const poolShape = {
  mode: oneOf(['session', 'transaction'] as const, 'session'),
  max_per_node: int(1, Number.MAX_SAFE_INTEGER, 50),
  min_idle: int(0, Number.MAX_SAFE_INTEGER, 0),
  acquire_timeout_ms: ms(1, 10_000),
  idle_timeout_ms: ms(0, 600_000),
  max_lifetime_ms: ms(0, 3_600_000),
  connect_timeout_ms: ms(1, 5_000),
};

const limitsShape = {
  max_connections_per_user: int(0, Number.MAX_SAFE_INTEGER, 0),
  max_connections_per_database: int(0, Number.MAX_SAFE_INTEGER, 0),
};

const failoverShape = {
  auto_promote: bool(false),
  after_ms: ms(0, 5_000),
  user: z.preprocess(emptyToUndefined, nonEmptyString('a non-empty user name').optional()),
  password: z.preprocess(emptyToUndefined, z.string({ error: 'expected a string' }).optional()),
};

const healthCheckShape = {
  fail_on_backend_error: bool(true),
  period_ms: ms(1, 1_000),
  timeout_ms: ms(1, 1_000),
  max_retries: int(0, Number.MAX_SAFE_INTEGER, 0),
  retry_delay_ms: ms(0, 1_000),
  user: z.preprocess(emptyToUndefined, nonEmptyString('a non-empty user name').optional()),
  // An explicit '' is allowed (backends that trust the monitor role).
  password: z.preprocess(emptyToUndefined, z.string({ error: 'expected a string' }).optional()),
  database: str('postgres'),
};

const logShape = {
  level: oneOf(LOG_LEVELS, 'info'),
  pretty: bool(false),
  slow_ms: ms(0, 0),
};

const adminShape = {
  users: list(nonEmptyString('a user name')),
};

const metricsShape = {
  host: str('127.0.0.1'),
  port: int(0, 65535, 0),
};

const shutdownShape = {
  timeout_ms: ms(0, 30_000),
};

const workersField = z.preprocess(
  (v: unknown) => (v === null || v === undefined ? 1 : v === 'auto' ? availableParallelism() : numberFromText(v)),
  intField(1, 64),
);

const rootShape = {
  workers: workersField,
  admin: section(adminShape),
  metrics: section(metricsShape),
  shutdown: section(shutdownShape),
  listen: section(listenShape),
  tls: section(tlsShape),
  backend_tls: section(backendTlsShape),
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

const rawSchema = z.strictObject(rootShape, { error: 'expected a mapping of keys' });
type RawConfig = z.output<typeof rawSchema>;

// ---------------------------------------------------------------------------
// Passwords and function patterns (shared with auth, router and `pgproxy check`)

export type PasswordKind = 'plain' | 'md5' | 'scram';

const MD5_HASH = /^md5[0-9a-f]{32}$/;
const SCRAM_VERIFIER = /^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*$/;

/**
 * How PostgreSQL itself reads a stored password (get_password_type):
 * `md5` + 32 lowercase hex digits is an md5 hash, a well-formed
 * `SCRAM-SHA-256$iter:salt$stored:server` is a verifier, anything else is plaintext.
 */
export function passwordKind(password: string): PasswordKind {
  if (MD5_HASH.test(password)) return 'md5';
  if (SCRAM_VERIFIER.test(password)) return 'scram';
  return 'plain';
}

/**
 * The matcher for a routing.write_functions / read_only_functions entry.
 * Anchored at both ends, as pgpool-II anchors write_function_list entries.
 */
export function functionPattern(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

/** A CIDR block as (address, prefix length, family), or null when malformed. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return null;
  const max = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

// ---------------------------------------------------------------------------
// Cross-field checks and defaults that depend on other keys

function crossCheck(raw: RawConfig, ctx: z.core.$RefinementCtx<RawConfig>): void {
  const issue = (path: PathSegment[], message: string): void => {
    ctx.addIssue({ code: 'custom', path, message });
  };

  const names = new Map<string, number>();
  const endpoints = new Map<string, number>();
  raw.backends.forEach((backend, i) => {
    const name = backend.name ?? `node${i}`;
    const seen = names.get(name);
    if (seen !== undefined) {
      issue(['backends', i, 'name'], `duplicate backend name "${name}" (also backends[${seen}])`);
    } else {
      names.set(name, i);
    }
    const endpoint = `${backend.host}:${backend.port}`;
    const same = endpoints.get(endpoint);
    if (same !== undefined) {
      issue(['backends', i], `same host and port as backends[${same}]`);
    } else {
      endpoints.set(endpoint, i);
    }
  });

  const users = new Map<string, number>();
  raw.auth.users.forEach((user, i) => {
    const seen = users.get(user.name);
    if (seen !== undefined) {
      issue(['auth', 'users', i, 'name'], `duplicate user name "${user.name}" (also auth.users[${seen}])`);
    } else {
      users.set(user.name, i);
    }
    if (user.password.startsWith('SCRAM-SHA-256$') && passwordKind(user.password) !== 'scram') {
      issue(['auth', 'users', i, 'password'], 'malformed SCRAM-SHA-256 verifier');
    }
  });

  for (const key of ['write_functions', 'read_only_functions'] as const) {
    raw.routing[key].forEach((source, i) => {
      try {
        functionPattern(source);
      } catch (err) {
        // V8 says "Invalid regular expression: /<pattern>/: <reason>"; keep the reason.
        const reason = (err as Error).message.replace(/^.*\/: /s, '');
        issue(['routing', key, i], `invalid regular expression ${JSON.stringify(source)}: ${reason}`);
      }
    });
  }

  const tlsOn = raw.tls.cert_file !== undefined || raw.tls.key_file !== undefined;
  if ((raw.tls.cert_file === undefined) !== (raw.tls.key_file === undefined)) {
    issue(['tls', raw.tls.cert_file === undefined ? 'cert_file' : 'key_file'], 'cert_file and key_file go together');
  }
  if (raw.tls.mode !== undefined && raw.tls.mode !== 'disable' && !tlsOn) {
    issue(['tls', 'mode'], `tls.mode ${raw.tls.mode} needs tls.cert_file and tls.key_file`);
  }
  if (raw.auth.query !== undefined && raw.auth.query_user === undefined) issue(['auth', 'query_user'], 'auth.query needs auth.query_user (a role that may read the passwords)');

  raw.admin.users.forEach((name, i) => {
    if (!raw.auth.users.some((u) => u.name === name) && raw.auth.query === undefined) issue(['admin', 'users', i], `"${name}" is not in auth.users`);
  });

  raw.auth.hba.forEach((rule, i) => {
    if (rule.address !== 'all' && parseCidr(rule.address) === null) issue(['auth', 'hba', i, 'address'], `expected a CIDR address like 10.0.0.0/8 or ::1/128, or 'all'`);
  });

  raw.routing.redirect.forEach((rule, i) => {
    if (rule.application_name === undefined && rule.database === undefined && rule.user === undefined) {
      issue(['routing', 'redirect', i], 'a rule needs at least one of application_name, database, user');
    }
    for (const key of ['application_name', 'database', 'user'] as const) {
      const source = rule[key];
      if (source === undefined) continue;
      try {
        functionPattern(source);
      } catch {
        issue(['routing', 'redirect', i, key], `invalid regular expression ${JSON.stringify(source)}`);
      }
    }
    if (typeof rule.to === 'number' && rule.to >= raw.backends.length) {
      issue(['routing', 'redirect', i, 'to'], `no backend with node id ${rule.to}`);
    }
  });

  const hc = raw.health_check;
  const user = hc.user ?? raw.auth.users[0]?.name;
  if (user === undefined) {
    issue(['health_check', 'user'], 'missing required key (no auth.users entry to default to)');
    return;
  }
  if (hc.password === undefined) {
    const index = users.get(user);
    if (index === undefined) {
      issue(['health_check', 'password'], `missing required key (health_check.user "${user}" is not in auth.users)`);
    } else if (passwordKind(raw.auth.users[index]!.password) === 'scram') {
      issue(
        ['health_check', 'password'],
        `missing required key (the password of auth.users[${index}] is a SCRAM verifier, which cannot log in to a backend)`,
      );
    }
  } else if (passwordKind(hc.password) === 'scram') {
    issue(['health_check', 'password'], 'a SCRAM verifier cannot log in to a backend; give the plaintext password');
  }
}

function finalize(raw: RawConfig): Config {
  const user = raw.health_check.user ?? raw.auth.users[0]!.name;
  const password = raw.health_check.password ?? raw.auth.users.find((u) => u.name === user)!.password;
  return {
    workers: raw.workers,
    admin: raw.admin,
    metrics: raw.metrics,
    shutdown: raw.shutdown,
    listen: raw.listen,
    backends: raw.backends.map((b, i) => ({ name: b.name ?? `node${i}`, host: b.host, port: b.port, weight: b.weight })),
    auth: { ...raw.auth, query: raw.auth.query ?? null, query_user: raw.auth.query_user ?? null, query_password: raw.auth.query_password ?? '' } as AuthConfig,
    tls: {
      mode: raw.tls.mode ?? (raw.tls.cert_file !== undefined ? 'allow' : 'disable'),
      cert_file: raw.tls.cert_file ?? null,
      key_file: raw.tls.key_file ?? null,
    },
    backend_tls: { mode: raw.backend_tls.mode, ca_file: raw.backend_tls.ca_file ?? null },
    routing: { ...raw.routing, redirect: raw.routing.redirect.map((r) => ({ ...r }) as RedirectRule) },
    pool: raw.pool,
    limits: raw.limits,
    health_check: { ...raw.health_check, user, password },
    failover: {
      auto_promote: raw.failover.auto_promote,
      after_ms: raw.failover.after_ms,
      user: raw.failover.user ?? user,
      password: raw.failover.password ?? (raw.failover.user === undefined ? password : ''),
    },
    log: raw.log,
  };
}

/** The whole schema: plain object in, Config out (not yet frozen). */
export const configSchema = rawSchema.superRefine(crossCheck).transform(finalize);

type DeepPartial<T> = T extends readonly (infer U)[]
  ? readonly DeepPartial<U>[]
  : T extends object
    ? { -readonly [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** What may be written, loosely typed (every key optional); validation decides the rest. */
export type ConfigInput = DeepPartial<Config>;

// ---------------------------------------------------------------------------
// The normaliser

export interface ValidateOptions {
  /** Name used in messages. */
  file?: string;
  /** Maps a key path to its line in the source, when there is a source. */
  locate?: (path: readonly PathSegment[]) => number | null;
}

/** Validate a plain object (e.g. parsed YAML) and return a deeply frozen Config, or throw ConfigError. */
export function validateConfig(raw: unknown, options: ValidateOptions = {}): Config {
  const file = options.file ?? '<config>';
  const locate = options.locate ?? (() => null);
  const result = configSchema.safeParse(raw === null || raw === undefined ? {} : raw);
  if (result.success) return deepFreeze(result.data);

  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  const push = (path: PathSegment[], message: string): void => {
    const issue = { path: formatPath(path), line: locate(path), message };
    const key = `${issue.path}\0${issue.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    issues.push(issue);
  };
  for (const zi of result.error.issues) {
    const path = zi.path.map((seg) => (typeof seg === 'number' ? seg : String(seg)));
    if (zi.code === 'unrecognized_keys') {
      for (const key of zi.keys) push([...path, key], unknownKeyMessage(path, key));
    } else {
      push(path, issueMessage(zi, raw, path));
    }
  }
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  throw new ConfigError(file, issues);
}

function issueMessage(issue: z.core.$ZodIssue, raw: unknown, path: PathSegment[]): string {
  if (issue.code === 'invalid_type' && isAbsent(raw, path)) return 'missing required key';
  // Our schemas give every message; zod's own wording only for codes we never expect.
  return issue.message;
}

function isAbsent(raw: unknown, path: readonly PathSegment[]): boolean {
  let node: unknown = raw;
  for (const seg of path) {
    if (node === null || typeof node !== 'object') return true;
    node = (node as Record<PathSegment, unknown>)[seg];
  }
  return node === undefined;
}

function unknownKeyMessage(path: readonly PathSegment[], key: string): string {
  const section = formatPath(path).replace(/\[\d+\]/g, '[]');
  const allowed = KEYS_BY_SECTION[section];
  if (allowed === undefined) return 'unknown key';
  const near = allowed.filter((k) => editDistance(k, key) <= 2);
  if (near.length > 0) return `unknown key (did you mean ${near.map((k) => `"${k}"`).join(' or ')}?)`;
  return `unknown key (expected one of: ${allowed.join(', ')})`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

// ---------------------------------------------------------------------------
// Helpers for the rest of the proxy

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** A deep copy with every `password` replaced by '***', for SHOW CONFIG and logs. */
export function redactConfig(config: Config): unknown {
  const copy = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(copy);
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      // Every key that holds a secret ends in "password" (password, query_password...).
      for (const [key, child] of Object.entries(value)) out[key] = key.endsWith('password') && child !== null && child !== '' ? '***' : copy(child);
      return out;
    }
    return value;
  };
  return copy(config);
}

export interface ClusterOptions {
  backends: { name: string; host: string; port: number; weight: number }[];
  users: { name: string; password: string }[];
  healthUser: { name: string; password: string };
  listenPort?: number;
  /** Any other keys, merged over the generated object before validation (objects merge, lists replace). */
  overrides?: ConfigInput;
}

/** A validated, frozen Config built in code (pgproxy demo, tests); throws ConfigError like the loader. */
export function defaultConfigForCluster(opts: ClusterOptions): Config {
  const raw: Record<string, unknown> = {
    listen: opts.listenPort === undefined ? {} : { port: opts.listenPort },
    backends: opts.backends.map((b) => ({ ...b })),
    auth: { users: opts.users.map((u) => ({ ...u })) },
    health_check: { user: opts.healthUser.name, password: opts.healthUser.password },
  };
  return validateConfig(opts.overrides ? merge(raw, opts.overrides) : raw, { file: '<defaultConfigForCluster>' });
}

function merge(base: Record<string, unknown>, over: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    const bothObjects =
      value !== null && typeof value === 'object' && !Array.isArray(value) &&
      prev !== null && typeof prev === 'object' && !Array.isArray(prev);
    out[key] = bothObjects ? merge(prev as Record<string, unknown>, value as object) : value;
  }
  return out;
}
