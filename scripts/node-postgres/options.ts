/** The command line of node-postgres-suites, the pinned node-postgres release, and the checkout check. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Endpoint } from './endpoint.js';
import { SUITE_IDS, type SuiteId } from './suites.js';

/** The node-postgres release whose suites this script runs: its git tag, and the versions of its packages. */
export const NODE_POSTGRES = {
  repository: 'https://github.com/brianc/node-postgres',
  tag: 'pg@8.23.0',
  packages: { pg: '8.23.0', 'pg-native': '3.9.0', 'pg-cursor': '2.22.0', 'pg-query-stream': '4.17.0', 'pg-pool': '3.14.0' },
} as const;

export const USAGE = `usage: node dist/scripts/node-postgres-suites.js NODE_POSTGRES_DIR [options]

  --compare            start a scratch cluster and pgproxy, run the suites directly and through pgproxy
  --host H --port P --user U --password PW --database D
                       the endpoint (defaults: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)
  --scram-user U --scram-password PW                   (default: SCRAM_TEST_PGUSER / SCRAM_TEST_PGPASSWORD)
  --scram-unicode-user U --scram-unicode-password PW   (default: SCRAM_TEST_PGUSER_UNICODE / ..._PASSWORD_UNICODE)
  --tls                the endpoint offers TLS: run node-postgres' TLS tests
  --suites LIST        comma-separated, of: ${SUITE_IDS.join(', ')} (default: all)
  --file-timeout S     time limit per pg test file, and for a mocha run to end after its last test (default 120)
  --suite-timeout S    time limit per mocha suite (default 900)
  --out DIR            logs of every file and suite
  --json FILE          the results as JSON
  --prepare            clone ${NODE_POSTGRES.tag} into NODE_POSTGRES_DIR and yarn install it, when the directory does not exist
  --any-version        run a checkout other than ${NODE_POSTGRES.tag}
`;

export interface Options {
  checkout: string;
  compare: boolean;
  endpoint: Endpoint;
  tls: boolean;
  suites: SuiteId[];
  fileTimeoutMs: number;
  suiteTimeoutMs: number;
  out: string;
  json: string | null;
  prepare: boolean;
  anyVersion: boolean;
}

export class UsageError extends Error {}

export function parseArgs(argv: string[]): Options {
  const flags = new Map<string, string>();
  const switches = new Set<string>();
  const positional: string[] = [];
  const valued = ['--host', '--port', '--user', '--password', '--database', '--scram-user', '--scram-password', '--scram-unicode-user', '--scram-unicode-password', '--suites', '--file-timeout', '--suite-timeout', '--out', '--json'];
  const bare = ['--compare', '--tls', '--prepare', '--any-version', '--help', '-h'];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (valued.includes(name)) {
      const v = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      flags.set(name, v);
    } else if (bare.includes(name)) switches.add(name);
    else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else positional.push(arg);
  }
  if (switches.has('--help') || switches.has('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (positional.length !== 1) throw new UsageError('give the node-postgres checkout directory');
  const env = process.env;
  const seconds = (flag: string, dflt: number): number => {
    const raw = flags.get(flag);
    if (raw === undefined) return dflt * 1000;
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new UsageError(`${flag} takes whole seconds (got ${raw})`);
    return Number(raw) * 1000;
  };
  const suites = (flags.get('--suites') ?? SUITE_IDS.join(',')).split(',').map((s) => s.trim());
  for (const s of suites) if (!(SUITE_IDS as readonly string[]).includes(s)) throw new UsageError(`unknown suite ${s} (known: ${SUITE_IDS.join(', ')})`);
  const port = Number(flags.get('--port') ?? env.PGPORT ?? 5432);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port: not a port (${flags.get('--port')})`);
  const out = flags.get('--out') ?? mkdtempSync(path.join(os.tmpdir(), 'node-postgres-suites-'));
  return {
    checkout: path.resolve(positional[0]!),
    compare: switches.has('--compare'),
    endpoint: {
      host: flags.get('--host') ?? env.PGHOST ?? '127.0.0.1',
      port,
      user: flags.get('--user') ?? env.PGUSER ?? 'postgres',
      password: flags.get('--password') ?? env.PGPASSWORD ?? '',
      database: flags.get('--database') ?? env.PGDATABASE ?? 'postgres',
      scramUser: flags.get('--scram-user') ?? env.SCRAM_TEST_PGUSER ?? null,
      scramPassword: flags.get('--scram-password') ?? env.SCRAM_TEST_PGPASSWORD ?? null,
      scramUnicodeUser: flags.get('--scram-unicode-user') ?? env.SCRAM_TEST_PGUSER_UNICODE ?? null,
      scramUnicodePassword: flags.get('--scram-unicode-password') ?? env.SCRAM_TEST_PGPASSWORD_UNICODE ?? null,
    },
    tls: switches.has('--tls'),
    suites: suites as SuiteId[],
    fileTimeoutMs: seconds('--file-timeout', 120),
    suiteTimeoutMs: seconds('--suite-timeout', 900),
    out,
    json: flags.get('--json') ?? null,
    prepare: switches.has('--prepare'),
    anyVersion: switches.has('--any-version'),
  };
}

/** Clones and installs the pinned release when asked and the directory is missing; then checks the versions. */
export function checkCheckout(opts: Options): void {
  if (!existsSync(opts.checkout) && opts.prepare) {
    process.stderr.write(`cloning ${NODE_POSTGRES.repository} ${NODE_POSTGRES.tag} into ${opts.checkout}\n`);
    execFileSync('git', ['clone', '--quiet', '--depth', '1', '--branch', NODE_POSTGRES.tag, NODE_POSTGRES.repository, opts.checkout], { stdio: 'inherit' });
    execFileSync('yarn', ['install', '--frozen-lockfile'], { cwd: opts.checkout, stdio: 'inherit' });
  }
  const problems: string[] = [];
  for (const [pkg, version] of Object.entries(NODE_POSTGRES.packages)) {
    const file = path.join(opts.checkout, 'packages', pkg, 'package.json');
    if (!existsSync(file)) {
      problems.push(`${file} is missing`);
      continue;
    }
    const found = (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version;
    if (found !== version) problems.push(`${pkg} is ${found}, the pinned release has ${version}`);
  }
  if (problems.length > 0 && !opts.anyVersion) throw new UsageError(`${opts.checkout} is not node-postgres ${NODE_POSTGRES.tag}:\n  ${problems.join('\n  ')}\n(--any-version runs it anyway)`);
  if (!existsSync(path.join(opts.checkout, 'node_modules'))) throw new UsageError(`${opts.checkout} is not installed: run yarn install --frozen-lockfile there (or --prepare)`);
  if (!existsSync(path.join(opts.checkout, 'packages', 'pg-query-stream', 'dist'))) throw new UsageError(`${opts.checkout} is not built (no packages/pg-query-stream/dist): run yarn install --frozen-lockfile (or yarn build) there`);
}

