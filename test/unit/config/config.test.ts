// The loader end to end: the sample file, defaults, every error with its key and line, ${ENV} substitution,
// redaction. Over 500 lines because it is one table of cases per section of the file; helpers are at the top.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  defaultConfigForCluster,
  functionPattern,
  loadConfigFile,
  parseConfigText,
  passwordKind,
  redactConfig,
  type Config,
} from '../../../src/config/load.js';
import { KEYS_BY_SECTION } from '../../../src/config/schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SAMPLE = join(root, 'pgproxy.yaml');

/** Parse `text` (lines joined with \n) and return the ConfigError it must raise. */
function errorOf(lines: string[], env: Record<string, string | undefined> = {}): ConfigError {
  try {
    parseConfigText(lines.join('\n') + '\n', 'pgproxy.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const MINIMAL = ['backends:', '  - port: 5432', 'auth:', '  users:', '    - { name: app, password: s3cret-pw }'];

describe('sample pgproxy.yaml', () => {
  it('loads as-is with the documented dev-cluster values', () => {
    const config = loadConfigFile(SAMPLE, {});
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9999, max_clients: 10000, client_idle_timeout_ms: 0, idle_in_transaction_timeout_ms: 0, max_message_bytes: 1073741824, auth_timeout_ms: 60000 });
    expect(config.backends).toEqual([
      { name: 'node0', host: '127.0.0.1', port: 15432, weight: 0 },
      { name: 'node1', host: '127.0.0.1', port: 15433, weight: 1 },
      { name: 'node2', host: '127.0.0.1', port: 15434, weight: 1 },
    ]);
    expect(config.auth).toEqual({ method: 'md5', users: [{ name: 'app', password: 'app-secret' }], hba: [], max_failures_per_minute: 20, query: null, query_user: null, query_password: '', query_database: 'postgres' });
    expect(config.health_check).toMatchObject({
      user: 'pgproxy_monitor',
      password: 'monitor-secret',
      database: 'postgres',
    });
    expect(config.routing).toEqual({ write_functions: [], read_only_functions: [], load_balance: 'session', max_lag_bytes: 0, max_lag_ms: 0, read_your_writes: 'session', read_your_writes_wait_ms: 20, prefer_lower_delay: false, transactions: 'primary', redirect: [] });
  });

  it('takes passwords from the environment', () => {
    const config = loadConfigFile(SAMPLE, { APP_PASSWORD: 'from-env', MONITOR_PASSWORD: 'mon-env' });
    expect(config.auth.users[0]!.password).toBe('from-env');
    expect(config.health_check.password).toBe('mon-env');
  });

  it('documents every key, and every key it sets is the default except the dev-cluster ones', () => {
    const config = loadConfigFile(SAMPLE, {});
    const minimal = parseConfigText(MINIMAL.join('\n'), 'x.yaml', {});
    expect(config.pool).toEqual(minimal.pool);
    expect(config.log).toEqual(minimal.log);
    expect(config.listen).toEqual(minimal.listen);
    const { user: _u, password: _p, ...hc } = config.health_check;
    const { user: _u2, password: _p2, ...hcDefault } = minimal.health_check;
    expect(hc).toEqual(hcDefault);
    expect(config.limits).toEqual(minimal.limits);
    // Every key of the schema appears, uncommented, in the sample file.
    const text = readFileSync(SAMPLE, 'utf8');
    for (const [section, keys] of Object.entries(KEYS_BY_SECTION)) {
      if (section.endsWith('[]')) continue;
      for (const key of keys) expect(text, `${section}.${key}`).toMatch(new RegExp(`^\\s*${key}:`, 'm'));
    }
  });

  it('reports an unreadable file as a ConfigError', () => {
    expect(() => loadConfigFile(join(root, 'no-such-file.yaml'))).toThrow(/no-such-file\.yaml: cannot read the file \(ENOENT\)/);
  });
});

describe('defaults', () => {
  it('fills every section', () => {
    const config = parseConfigText(MINIMAL.join('\n'), 'pgproxy.yaml', {});
    expect(config).toEqual({
      workers: 1,
      admin: { users: [] },
      metrics: { host: '127.0.0.1', port: 0 },
      shutdown: { timeout_ms: 30000 },
      listen: { host: '127.0.0.1', port: 9999, max_clients: 10000, client_idle_timeout_ms: 0, idle_in_transaction_timeout_ms: 0, max_message_bytes: 1073741824, auth_timeout_ms: 60000 },
      limits: { max_connections_per_node: 80, max_connections_per_user: 0, max_connections_per_database: 0 },
      failover: { auto_promote: false, after_ms: 5000, user: 'app', password: 's3cret-pw' },
      backends: [{ name: 'node0', host: '127.0.0.1', port: 5432, weight: 1 }],
      auth: { method: 'md5', users: [{ name: 'app', password: 's3cret-pw' }], hba: [], max_failures_per_minute: 20, query: null, query_user: null, query_password: '', query_database: 'postgres' },
      tls: { mode: 'disable', cert_file: null, key_file: null },
      backend_tls: { mode: 'prefer', ca_file: null },
      routing: { write_functions: [], read_only_functions: [], load_balance: 'session', max_lag_bytes: 0, max_lag_ms: 0, read_your_writes: 'session', read_your_writes_wait_ms: 20, prefer_lower_delay: false, transactions: 'primary', redirect: [] },
      pool: {
        mode: 'session',
        max_per_node: 50,
        min_idle: 0,
        acquire_timeout_ms: 120000,
        idle_timeout_ms: 600000,
        max_lifetime_ms: 3600000,
        connect_timeout_ms: 5000,
      },
      health_check: {
        fail_on_backend_error: true,
        period_ms: 1000,
        timeout_ms: 1000,
        max_retries: 0,
        retry_delay_ms: 1000,
        user: 'app',
        password: 's3cret-pw',
        database: 'postgres',
      },
      log: { level: 'info', pretty: false, slow_ms: 0 },
    } satisfies Config);
  });

  it('names backends node<index> and treats empty sections as defaults', () => {
    const config = parseConfigText(
      [
        'listen:',
        'routing:',
        'backends:',
        '  - port: 1',
        '  - { name: replica, port: 2 }',
        '  - port: 3',
        'health_check: { user: mon, password: "" }',
      ].join('\n'),
      'f.yaml',
      {},
    );
    expect(config.backends.map((b) => b.name)).toEqual(['node0', 'replica', 'node2']);
    expect(config.listen.port).toBe(9999);
    expect(config.health_check.password).toBe('');
  });

  it('takes the health-check password from the matching auth.users entry', () => {
    const config = parseConfigText(
      [...MINIMAL, '    - { name: mon, password: mon-pw }', 'health_check:', '  user: mon'].join('\n'),
      'f.yaml',
      {},
    );
    expect(config.health_check).toMatchObject({ user: 'mon', password: 'mon-pw' });
  });

  it('accepts port 0 for listen (any free port)', () => {
    expect(parseConfigText([...MINIMAL, 'listen: { port: 0 }'].join('\n'), 'f', {}).listen.port).toBe(0);
  });
});

describe('error lines and key paths', () => {
  it('rejects an unknown key at depth, on its own line, with a suggestion', () => {
    const err = errorOf([
      'backends:', //            1
      '  - port: 5432', //       2
      '  - host: 10.0.0.2', //   3
      '    prot: 5433', //       4
      'auth:', //                5
      '  users: []', //          6
      '  mehtod: md5', //        7
      'healthcheck: {}', //      8
    ]);
    // Sorted by line; a missing key is reported where its mapping starts.
    expect(err.issues).toEqual([
      { path: 'backends[1].port', line: 3, message: 'missing required key' },
      { path: 'backends[1].prot', line: 4, message: 'unknown key (did you mean "port"?)' },
      { path: 'auth.mehtod', line: 7, message: 'unknown key (did you mean "method"?)' },
      { path: 'healthcheck', line: 8, message: 'unknown key (did you mean "health_check"?)' },
    ]);
    expect(err.message.split('\n')).toContain('pgproxy.yaml:4: backends[1].prot: unknown key (did you mean "port"?)');
  });

  it('lists the allowed keys when nothing is close', () => {
    const err = errorOf([...MINIMAL, 'pool:', '  frobnicate: 1']);
    expect(err.issues[0]).toMatchObject({ path: 'pool.frobnicate', line: 7 });
    expect(err.issues[0]!.message).toMatch(/expected one of: mode, max_per_node, min_idle, acquire_timeout_ms/);
  });

  it('reports a bad port with the line and index', () => {
    const err = errorOf([
      'backends:',
      '  - port: 5432',
      '  - host: db2',
      '    port: 70000',
      ...MINIMAL.slice(2),
    ]);
    expect(err.message).toBe('pgproxy.yaml:4: backends[1].port: expected an integer from 1 to 65535');
    expect(err.issues).toEqual([
      { path: 'backends[1].port', line: 4, message: 'expected an integer from 1 to 65535' },
    ]);
  });

  it.each([
    ['port: 0', 'expected an integer from 1 to 65535'],
    ['port: 5432.5', 'expected an integer from 1 to 65535'],
    ['port: five', 'expected an integer from 1 to 65535'],
    ['port: [5432]', 'expected an integer from 1 to 65535'],
  ])('backend %s', (line, message) => {
    const err = errorOf(['backends:', `  - ${line}`, ...MINIMAL.slice(2)]);
    expect(err.issues).toEqual([{ path: 'backends[0].port', line: 2, message }]);
  });

  it('reports wrong types', () => {
    const err = errorOf([
      ...MINIMAL, //                       1-5
      'listen:', //                        6
      '  host: [a, b]', //                 7
      'routing:', //                       8
      '  load_balance: round_robin', //    9
      '  write_functions: nextval', //     10
      'pool: 5', //                        11
      'log: { level: loud }', //           12
      'health_check: { period_ms: -5 }', //13
    ]);
    expect(err.issues).toEqual([
      { path: 'listen.host', line: 7, message: 'expected a non-empty string' },
      { path: 'routing.load_balance', line: 9, message: 'expected one of: session, statement' },
      { path: 'routing.write_functions', line: 10, message: 'expected a list' },
      { path: 'pool', line: 11, message: 'expected a mapping of keys' },
      { path: 'log.level', line: 12, message: 'expected one of: fatal, error, warn, info, debug, trace, silent' },
      { path: 'health_check.period_ms', line: 13, message: 'expected an integer from 1 to 2147483647 (milliseconds)' },
    ]);
  });

  it('requires at least one backend', () => {
    expect(errorOf(['listen: {}']).issues).toEqual([{ path: 'backends', line: null, message: 'missing required key' }]);
    expect(errorOf(['backends: []', ...MINIMAL.slice(2)]).issues).toEqual([
      { path: 'backends', line: 1, message: 'at least one backend is required' },
    ]);
    expect(errorOf(['']).message).toBe('pgproxy.yaml: backends: missing required key');
  });

  it('rejects duplicate backend names, counting default names', () => {
    const err = errorOf([
      'backends:', //                        1
      '  - port: 5432', //                   2  (node0)
      '  - { name: node0, port: 5433 }', //  3
      '  - { name: b, port: 5434 }', //      4
      '  - name: b', //                      5
      '    port: 5435', //                   6
      ...MINIMAL.slice(2),
    ]);
    expect(err.issues).toEqual([
      { path: 'backends[1].name', line: 3, message: 'duplicate backend name "node0" (also backends[0])' },
      { path: 'backends[3].name', line: 5, message: 'duplicate backend name "b" (also backends[2])' },
    ]);
  });

  it('rejects two backends at the same address', () => {
    const err = errorOf(['backends:', '  - port: 5432', '  - port: 5432', ...MINIMAL.slice(2)]);
    expect(err.issues).toEqual([{ path: 'backends[1]', line: 3, message: 'same host and port as backends[0]' }]);
  });

  it('rejects duplicate user names', () => {
    const err = errorOf([...MINIMAL, '    - name: app', '      password: other']);
    expect(err.issues).toEqual([
      { path: 'auth.users[1].name', line: 6, message: 'duplicate user name "app" (also auth.users[0])' },
    ]);
  });

  it('names a regex entry that does not compile', () => {
    const err = errorOf([
      ...MINIMAL,
      'routing:', //                         6
      '  write_functions:', //               7
      '    - nextval', //                    8
      '    - "audit_(.*"', //                9
      '  read_only_functions: ["[a-"]', //   10
    ]);
    expect(err.issues).toHaveLength(2);
    expect(err.issues[0]).toMatchObject({ path: 'routing.write_functions[1]', line: 9 });
    expect(err.issues[0]!.message).toMatch(/^invalid regular expression "audit_\(\.\*": /);
    expect(err.issues[1]).toMatchObject({ path: 'routing.read_only_functions[0]', line: 10 });
  });

  it('gives file and line for YAML syntax errors', () => {
    const err = errorOf(['backends:', '  - port: 5432', ' auth:', '  users: []']);
    expect(err.issues.length).toBeGreaterThan(0);
    expect(err.issues[0]!.line).toBe(3);
    expect(err.message).toMatch(/^pgproxy\.yaml:3: /);

    const flow = errorOf(['backends: [ { port: 1 }', 'log: {}']);
    expect(flow.message).toMatch(/^pgproxy\.yaml:\d+: .*(]|indented)/);

    const dup = errorOf(['backends:', '  - port: 1', 'backends:', '  - port: 2']);
    expect(dup.issues[0]).toEqual({ path: '', line: 3, message: 'Map keys must be unique' });
  });

  it('requires a health-check user when there is nobody to default to', () => {
    const err = errorOf(['backends:', '  - port: 5432']);
    expect(err.issues).toEqual([
      { path: 'health_check.user', line: null, message: 'missing required key (no auth.users entry to default to)' },
    ]);
    const err2 = errorOf([...MINIMAL, 'health_check:', '  user: mon']);
    expect(err2.issues).toEqual([
      {
        path: 'health_check.password',
        line: 6,
        message: 'missing required key (health_check.user "mon" is not in auth.users)',
      },
    ]);
  });

  it('refuses a SCRAM verifier as the health-check password', () => {
    // Made by libpq 15 (PQencryptPasswordConn) for the password 'secret'.
    const verifier = 'SCRAM-SHA-256$4096:4wcQfPuoe7w8DWTIwZ0ZuA==$j4s1OcQ1epJysvu4fEc/5UC1810GXExjTSEqxugdt/w=:jt2f/4fN56TsGF3amlzvlpQoAh96W7nQiqhT8JHzXzk=';
    expect(passwordKind(verifier)).toBe('scram');
    const err = errorOf(['backends:', '  - port: 5432', 'auth:', '  users:', `    - { name: app, password: '${verifier}' }`]);
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ path: 'health_check.password', line: null });
    expect(err.message).not.toContain(verifier);
  });

  it('refuses a SCRAM-looking password that PostgreSQL would not read as a verifier (keys of 18 bytes, not 32)', () => {
    const bad = 'SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5c3RvcmVka2V5:c2VydmVya2V5c2VydmVya2V5';
    const err = errorOf(['backends:', '  - port: 5432', 'auth:', '  users:', `    - { name: app, password: '${bad}' }`]);
    expect(err.issues).toEqual([{ path: 'auth.users[0].password', line: 5, message: 'malformed SCRAM-SHA-256 verifier' }]);
  });
});

describe('${ENV} substitution', () => {
  it('replaces ${VAR} and ${VAR:-default}, in plain, quoted and block scalars', () => {
    const config = parseConfigText(
      [
        'listen:',
        '  host: ${HOST}',
        'backends:',
        '  - host: "${DB_HOST:-db.local}"',
        '    port: 5432',
        '    name: ${NAME:-}node-${SUFFIX:-x}',
        'auth:',
        '  users:',
        '    - name: app',
        '      password: |-',
        '        pre-${PW}-post',
      ].join('\n'),
      'f.yaml',
      { HOST: '0.0.0.0', SUFFIX: '', PW: 'p' },
    );
    expect(config.listen.host).toBe('0.0.0.0');
    expect(config.backends[0]!.host).toBe('db.local');
    // `:-` also covers a variable set to the empty string, as in sh.
    expect(config.backends[0]!.name).toBe('node-x');
    expect(config.auth.users[0]!.password).toBe('pre-p-post');
  });

  it('reads numbers from env vars', () => {
    const text = [
      'listen:',
      '  port: ${PORT:-9999}',
      'backends:',
      '  - port: ${PG_PORT}',
      '    weight: ${W:-0.5}',
      'pool: { max_per_node: "${POOL}" }',
      ...MINIMAL.slice(2),
    ].join('\n');
    const config = parseConfigText(text, 'f.yaml', { PG_PORT: '6543', POOL: '7' });
    expect(config.listen.port).toBe(9999);
    expect(config.backends[0]).toMatchObject({ port: 6543, weight: 0.5 });
    expect(config.pool.max_per_node).toBe(7);
    expect(parseConfigText(text, 'f.yaml', { PORT: '7000', PG_PORT: '1', POOL: '1' }).listen.port).toBe(7000);

    const err = errorOf(['backends:', '  - port: ${PG_PORT}', ...MINIMAL.slice(2)], { PG_PORT: 'abc' });
    expect(err.issues).toEqual([{ path: 'backends[0].port', line: 2, message: 'expected an integer from 1 to 65535' }]);
  });

  it('keeps a password of digits a string', () => {
    const config = parseConfigText(
      ['backends:', '  - port: 5432', 'auth:', '  users:', '    - { name: app, password: "${PW}" }', '    - name: b', '      password: ${PW}'].join('\n'),
      'f.yaml',
      { PW: '0012345' },
    );
    expect(config.auth.users.map((u) => u.password)).toEqual(['0012345', '0012345']);
  });

  it('escapes $${ as a literal ${', () => {
    const config = parseConfigText(
      [...MINIMAL.slice(0, 4), '    - name: app', '      password: a$${NOT_A_VAR}b$$c$d'].join('\n'),
      'f.yaml',
      { NOT_A_VAR: 'nope' },
    );
    expect(config.auth.users[0]!.password).toBe('a${NOT_A_VAR}b$$c$d');
  });

  it('reports a missing variable with its name, the key and the line', () => {
    const err = errorOf([
      'backends:', //                   1
      '  - port: 5432', //              2
      '  - port: ${REPLICA_PORT}', //   3
    ]);
    expect(err.issues).toEqual([
      {
        path: 'backends[1].port',
        line: 3,
        message: 'environment variable REPLICA_PORT is not set and has no default (write ${REPLICA_PORT:-default})',
      },
    ]);
    expect(err.message).toMatch(/^pgproxy\.yaml:3: backends\[1\]\.port: environment variable REPLICA_PORT is not set/);
  });

  it('rejects malformed references', () => {
    expect(errorOf(['backends:', '  - port: ${1X}']).issues[0]).toMatchObject({ path: 'backends[0].port', line: 2 });
    expect(errorOf(['backends:', '  - host: "${UNCLOSED"', '    port: 1']).issues[0]).toMatchObject({
      path: 'backends[0].host',
      line: 2,
      message: 'unterminated ${ (write $${ for a literal ${)',
    });
  });

  it('does not substitute keys', () => {
    const err = errorOf([...MINIMAL, '${X}: 1'], { X: 'log' });
    expect(err.issues[0]).toMatchObject({ path: '${X}', line: 6 });
  });
});

describe('secrets', () => {
  const SECRET = 'hunter2-very-secret';

  it('never puts a password value in an error message', () => {
    const cases: [string[], Record<string, string>][] = [
      // wrong type next to a password
      [['backends:', '  - port: 99999', 'auth:', '  users:', `    - { name: app, password: ${SECRET} }`], {}],
      // a password that is a list
      [['backends:', '  - port: 1', 'auth:', '  users:', `    - { name: app, password: [${SECRET}] }`], {}],
      // bad reference inside a password
      [['backends:', '  - port: 1', 'auth:', '  users:', `    - { name: app, password: "${SECRET}\${" }`], {}],
      // YAML syntax error on the password line
      [['backends:', '  - port: 1', 'auth:', '  users:', '    - name: app', `      password: ${SECRET}: x: y`], {}],
      [['backends:', '  - port: 1', 'auth:', '  users:', '    - name: app', `      password: "${SECRET}`], {}],
      [['backends:', '  - port: 1', 'auth:', '  users:', '    - name: app', `      password: ${SECRET}`, `  ${SECRET}`], {}],
      // from the environment, with an unknown key beside it
      [['backends:', '  - port: 1', 'auth:', '  users:', '    - { name: app, password: "${PW}", pasword: x }'], { PW: SECRET }],
      // SCRAM-looking but malformed
      [['backends:', '  - port: 1', 'auth:', '  users:', `    - { name: app, password: 'SCRAM-SHA-256$${SECRET}' }`], {}],
    ];
    for (const [lines, env] of cases) {
      const err = errorOf(lines, env);
      expect(err.message).not.toContain(SECRET);
      expect(err.message).not.toContain('hunter2');
    }
  });

  it('redactConfig replaces every password', () => {
    const config = loadConfigFile(SAMPLE, {});
    const redacted = redactConfig(config) as Config;
    expect(JSON.stringify(redacted)).not.toContain('secret');
    expect(redacted.auth.users[0]).toEqual({ name: 'app', password: '***' });
    expect(redacted.health_check.password).toBe('***');
    expect(redacted.health_check.user).toBe('pgproxy_monitor');
    // the original is untouched
    expect(config.auth.users[0]!.password).toBe('app-secret');
  });
});

describe('frozen result', () => {
  it('throws on mutation at any depth (ESM is strict mode)', () => {
    const config = loadConfigFile(SAMPLE, {}) as unknown as {
      listen: { port: number };
      backends: { weight: number }[];
      auth: { users: unknown[] };
    };
    expect(() => {
      config.listen.port = 1;
    }).toThrow(TypeError);
    expect(() => {
      config.backends[1]!.weight = 5;
    }).toThrow(TypeError);
    expect(() => config.auth.users.push({})).toThrow(TypeError);
    expect(Object.isFrozen(config)).toBe(true);
  });
});

describe('defaultConfigForCluster', () => {
  const opts = {
    backends: [
      { name: 'p', host: '127.0.0.1', port: 20001, weight: 0 },
      { name: 's1', host: '127.0.0.1', port: 20002, weight: 1 },
    ],
    users: [{ name: 'app', password: 'pw' }],
    healthUser: { name: 'mon', password: 'mon-pw' },
  };

  it('builds a validated, frozen config', () => {
    const config = defaultConfigForCluster({ ...opts, listenPort: 0 });
    expect(config.listen.port).toBe(0);
    expect(config.backends.map((b) => b.name)).toEqual(['p', 's1']);
    expect(config.health_check).toMatchObject({ user: 'mon', password: 'mon-pw', period_ms: 1000 });
    expect(config.pool.max_per_node).toBe(50);
    expect(Object.isFrozen(config.backends[0])).toBe(true);
    expect(defaultConfigForCluster(opts).listen.port).toBe(9999);
  });

  it('merges overrides and validates them', () => {
    const config = defaultConfigForCluster({ ...opts, overrides: { pool: { acquire_timeout_ms: 50 }, log: { level: 'silent' } } });
    expect(config.pool).toMatchObject({ acquire_timeout_ms: 50, max_per_node: 50 });
    expect(config.log.level).toBe('silent');
    expect(() => defaultConfigForCluster({ ...opts, backends: [] })).toThrow(
      '<defaultConfigForCluster>: backends: at least one backend is required',
    );
  });
});

describe('helpers', () => {
  it('functionPattern anchors both ends', () => {
    expect(functionPattern('nextval').test('nextval')).toBe(true);
    expect(functionPattern('nextval').test('my_nextval')).toBe(false);
    expect(functionPattern('a|b').test('ab')).toBe(false);
    expect(functionPattern('audit_.*').test('audit_log')).toBe(true);
  });

  it('passwordKind follows PostgreSQL', () => {
    expect(passwordKind('md5' + 'a'.repeat(32))).toBe('md5');
    expect(passwordKind('md5' + 'A'.repeat(32))).toBe('plain');
    expect(passwordKind('md5short')).toBe('plain');
    expect(passwordKind('secret')).toBe('plain');
  });
});

// Loading from a real file path (names the path as given).
describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgproxy-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the path in messages', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'backends:\n  - port: 0\n');
    expect(() => loadConfigFile(file, {})).toThrow(`${file}:2: backends[0].port: expected an integer from 1 to 65535`);
  });
});
