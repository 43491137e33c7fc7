/** Running the chosen suites against one endpoint. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Endpoint } from './endpoint.js';
import type { Options } from './options.js';
import { runSuite, type SuiteRun } from './suites.js';

/** The environment node-postgres' tests read their connection from (as its CI sets it). */
export function suiteEnv(endpoint: Endpoint, tls: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('PG') || k.startsWith('SCRAM_TEST_')) delete env[k];
  Object.assign(env, {
    PGHOST: endpoint.host,
    PGPORT: String(endpoint.port),
    PGUSER: endpoint.user,
    PGPASSWORD: endpoint.password,
    PGDATABASE: endpoint.database,
  });
  if (!tls) env.PGTESTNOSSL = 'true';
  if (endpoint.scramUser && endpoint.scramPassword) Object.assign(env, { SCRAM_TEST_PGUSER: endpoint.scramUser, SCRAM_TEST_PGPASSWORD: endpoint.scramPassword });
  if (endpoint.scramUnicodeUser && endpoint.scramUnicodePassword) {
    Object.assign(env, { SCRAM_TEST_PGUSER_UNICODE: endpoint.scramUnicodeUser, SCRAM_TEST_PGPASSWORD_UNICODE: endpoint.scramUnicodePassword });
  }
  return env;
}

/** Runs the chosen suites against one endpoint, printing progress to stderr. */
export async function runSuites(opts: Options, endpoint: Endpoint, tls: boolean, label: string): Promise<SuiteRun[]> {
  const workDir = path.join(opts.out, label.replace(/[^A-Za-z0-9_.-]+/g, '-'));
  for (const s of opts.suites) mkdirSync(path.join(workDir, s), { recursive: true });
  const env = suiteEnv(endpoint, tls);
  const runs: SuiteRun[] = [];
  for (const suite of opts.suites) {
    process.stderr.write(`-- ${label}: ${suite}\n`);
    runs.push(await runSuite(suite, { checkout: opts.checkout, env, workDir, fileTimeoutMs: opts.fileTimeoutMs, suiteTimeoutMs: opts.suiteTimeoutMs, progress: (l) => process.stderr.write(`   ${l}\n`) }));
  }
  return runs;
}

