/**
 * The checks across keys and the defaults that depend on other keys (backend names, health-check and failover
 * credentials, the TLS mode), on top of the per-key schema: together the schema whose output type is Config.
 */
import type { z } from 'zod';
import type { PathSegment } from './errors.js';
import { functionPattern, parseCidr } from './formats.js';
import { rawSchema, type RawConfig } from './schema.js';
import { secretKind } from './secrets.js';

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

  if (raw.routing.read_your_writes === 'database' && raw.workers > 1) {
    // Each worker would know only the commits it acknowledged itself.
    issue(['routing', 'read_your_writes'], 'read_your_writes: database needs a single process (workers: 1): each worker knows only its own commits');
  }

  // With workers each process gets an equal share of every limit (pool/limits.ts): a share of 0 would refuse all.
  for (const key of ['max_connections_per_node', 'max_connections_per_user', 'max_connections_per_database'] as const) {
    const limit = raw.limits[key];
    if (limit > 0 && limit < raw.workers) issue(['limits', key], `${limit} is less than workers (${raw.workers}): each worker gets an equal share; use at least ${raw.workers}, or 0 for no limit`);
  }

  const users = new Map<string, number>();
  raw.auth.users.forEach((user, i) => {
    const seen = users.get(user.name);
    if (seen !== undefined) {
      issue(['auth', 'users', i, 'name'], `duplicate user name "${user.name}" (also auth.users[${seen}])`);
    } else {
      users.set(user.name, i);
    }
    // PostgreSQL would take it as a plaintext password; here it is surely a mistake.
    if (user.password.startsWith('SCRAM-SHA-256$') && secretKind(user.password) !== 'scram') {
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
    } else if (secretKind(raw.auth.users[index]!.password) === 'scram') {
      issue(
        ['health_check', 'password'],
        `missing required key (the password of auth.users[${index}] is a SCRAM verifier, which cannot log in to a backend)`,
      );
    }
  } else if (secretKind(hc.password) === 'scram') {
    issue(['health_check', 'password'], 'a SCRAM verifier cannot log in to a backend; give the plaintext password');
  }
}

/** Fills the defaults that depend on other keys. Its result type is the Config type (types.ts). */
function finalize(raw: RawConfig) {
  const user = raw.health_check.user ?? raw.auth.users[0]!.name;
  const password = raw.health_check.password ?? raw.auth.users.find((u) => u.name === user)!.password;
  // Key order is the order SHOW CONFIG lists.
  return {
    workers: raw.workers,
    admin: raw.admin,
    metrics: raw.metrics,
    shutdown: raw.shutdown,
    listen: raw.listen,
    backends: raw.backends.map((b, i) => ({ name: b.name ?? `node${i}`, host: b.host, port: b.port, weight: b.weight })),
    auth: {
      ...raw.auth,
      /** SQL returning the stored password of a user not in `users` ($1 = user name), run on the primary; null = off. */
      query: raw.auth.query ?? null,
      query_user: raw.auth.query_user ?? null,
      query_password: raw.auth.query_password ?? '',
    },
    tls: {
      /** disable: SSLRequest answered N; allow: TLS when the client asks; require: plaintext clients are refused. */
      mode: raw.tls.mode ?? (raw.tls.cert_file !== undefined ? ('allow' as const) : ('disable' as const)),
      cert_file: raw.tls.cert_file ?? null,
      key_file: raw.tls.key_file ?? null,
    },
    backend_tls: { mode: raw.backend_tls.mode, ca_file: raw.backend_tls.ca_file ?? null },
    routing: raw.routing,
    pool: raw.pool,
    limits: raw.limits,
    health_check: {
      ...raw.health_check,
      /** The first auth.users entry when not configured. */
      user,
      /** From auth.users when not configured; never a SCRAM verifier. */
      password,
    },
    failover: {
      auto_promote: raw.failover.auto_promote,
      after_ms: raw.failover.after_ms,
      /** A role allowed to run pg_promote(); the health-check credentials unless configured. */
      user: raw.failover.user ?? user,
      password: raw.failover.password ?? (raw.failover.user === undefined ? password : ''),
    },
    log: raw.log,
  };
}

/** The whole schema: plain object in, Config out (not yet frozen). */
export const configSchema = rawSchema.superRefine(crossCheck).transform(finalize);

