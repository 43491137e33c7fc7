/**
 * node-postgres' own integration suites against any PostgreSQL endpoint (pgproxy, or a server directly), with
 * `N passed, N failed` per suite and in total. Not part of `npm test` or CI: it needs git, yarn 1, libpq-dev and a
 * C++ toolchain (for pg-native), and takes minutes.
 *
 * Suites: packages/pg test/integration in pure JS (`pg`) and over libpq (`pg-native`), pg-cursor, pg-query-stream
 * and pg-pool, from node-postgres at the release pinned below.
 *
 * 1. A node-postgres checkout, built with its own lockfile:
 *      apt-get install -y libpq-dev g++ make && npm i -g yarn@1
 *      git clone --branch pg@8.23.0 --depth 1 https://github.com/brianc/node-postgres /tmp/node-postgres
 *      (cd /tmp/node-postgres && yarn install --frozen-lockfile)
 *    (or pass --prepare to have this script do the clone and the install when the directory does not exist).
 * 2. Build this project: `npm run build` (this script runs from dist/).
 * 3. Either compare a direct connection with pgproxy on a scratch cluster this script starts and stops:
 *      node dist/scripts/node-postgres-suites.js /tmp/node-postgres --compare
 *    (a local primary + 2 standbys with TLS on, pgproxy with the sample pgproxy.yaml's settings, weights 0/1/1,
 *    TLS for clients and SCRAM offered to the SCRAM test roles; prints both runs, the tests whose outcome
 *    differs, and the standbys' share of SELECTs), or run against an endpoint of your own:
 *      node dist/scripts/node-postgres-suites.js /tmp/node-postgres --host 127.0.0.1 --port 9999 \
 *        --user postgres --password postgres --database ci_db_test [--tls]
 *    The endpoint needs, as node-postgres' CI sets up: a superuser login (the tests create roles, temporary
 *    tables and functions), a database of its own, and for the SCRAM tests two SCRAM roles:
 *      SET password_encryption = 'scram-sha-256';
 *      CREATE ROLE scram_test LOGIN PASSWORD 'test4scram';
 *      CREATE ROLE scram_unicode_test LOGIN PASSWORD U&'IX-\2168';
 *    (--scram-user etc. name others). --tls: the endpoint offers TLS, so node-postgres' own TLS tests run;
 *    without it they are skipped (PGTESTNOSSL, as in node-postgres' CI). Other clients connect as each test
 *    asks (most without TLS).
 *
 * Tests that cannot pass through any proxy (they end a backend by pid or through pg_stat_activity) run, but are
 * listed apart and not counted: node-postgres/exceptions.ts says which and why. Through pgproxy (or anything
 * answering SHOW POOL_NODES), the SELECTs each node ran during the suites are printed, so that a run where every
 * read went to the primary shows as such.
 *
 * Logs of every test file and suite: --out DIR (default: a new directory under the OS temp dir, printed).
 */
import { writeFileSync } from 'node:fs';
import { runCompare } from './node-postgres/compare.js';
import { type Endpoint, poolNodeSelects, selectShareLine } from './node-postgres/endpoint.js';
import { PROXY_EXCEPTIONS } from './node-postgres/exceptions.js';
import { checkCheckout, NODE_POSTGRES, parseArgs, USAGE, UsageError } from './node-postgres/options.js';
import { counts, exceptionList, report } from './node-postgres/report.js';
import { runSuites } from './node-postgres/run.js';

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  checkCheckout(opts);
  process.stdout.write(`node-postgres ${NODE_POSTGRES.tag} at ${opts.checkout}; logs in ${opts.out}\n`);
  process.stdout.write(`tests that cannot pass through any proxy (run, shown apart, not counted):\n${exceptionList(PROXY_EXCEPTIONS)}\n\n`);
  if (opts.compare) return runCompare(opts);
  const e: Endpoint = opts.endpoint;
  const before = await poolNodeSelects(e);
  const runs = await runSuites(opts, e, opts.tls, `${e.user}@${e.host}:${e.port}/${e.database}`);
  process.stdout.write(report(`${e.user}@${e.host}:${e.port}/${e.database}${opts.tls ? ' (TLS tests on)' : ''}`, runs) + '\n');
  const after = await poolNodeSelects(e);
  if (before && after) process.stdout.write(`\n${selectShareLine('SHOW POOL_NODES select_cnt during the run', before, after)}\n`);
  if (opts.json) writeFileSync(opts.json, JSON.stringify(runs, null, 2));
  return runs.some((r) => r.notRun !== null || counts(r.results).failed > 0) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(err instanceof UsageError ? `${err.message}\n\n${USAGE}` : `${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
