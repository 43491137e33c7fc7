/**
 * node-postgres tests that cannot pass through any proxy, with the reason. Each one ends or cancels a server
 * backend chosen by its process id (pg_backend_pid(), or a row of pg_stat_activity) and expects the client's own
 * connection to be the one hit. Through a proxy the client's connection is not a backend: pg_backend_pid() names
 * a pooled connection (possibly on another node than the next statement runs on), an idle client holds no
 * backend, and what a client sees when a backend ends is the proxy's decision. They still run and their outcome
 * is shown, but they are not counted in "passed" / "failed".
 *
 * A pg test file stops at its first failure, so when such a test fails, the tests after it in the same file do
 * not run; the comparison marks them.
 */
import type { SuiteId, TestResult } from './suites.js';
import { testId } from './suites.js';

export interface ProxyException {
  suite: SuiteId | 'pg*';
  /** `file :: test name`, a whole file (pg), or a mocha full title. */
  id: string;
  reason: string;
}

const NOT_THE_SESSION = "through a proxy the client's connection is not a backend: what the client sees when a backend ends is the proxy's choice";
const PID_ELSEWHERE = 'through a proxy the pid names one pooled connection, and the statement that uses it may run on another connection or node';

export const PROXY_EXCEPTIONS: readonly ProxyException[] = [
  {
    suite: 'pg*',
    id: 'client/query-error-handling-prepared-statement-tests.js :: query killed during query execution of prepared statement',
    reason: `ends the backend running its statement (found in pg_stat_activity, pg_terminate_backend) and expects that backend's FATAL 57P01 as the client's error; ${NOT_THE_SESSION}`,
  },
  {
    suite: 'pg*',
    id: 'connection-pool/error-tests.js :: errors emitted on checked-out clients',
    reason:
      "ends every idle backend that pg_stat_activity lists where that query runs, and expects an idle client (after a SELECT) to lose its connection; through a proxy the client's backend is a pooled one, possibly on another node, and its end is not the client's",
  },
  {
    suite: 'pg*',
    id: 'connection-pool/error-tests.js :: connection-level errors cause queued queries to fail',
    reason: `SELECT pg_terminate_backend(pg_backend_pid()) and expects the client's connection to end with 57P01; ${NOT_THE_SESSION}`,
  },
  {
    suite: 'pg*',
    id: 'connection-pool/error-tests.js :: connection-level errors cause future queries to fail',
    reason: `SELECT pg_terminate_backend(pg_backend_pid()) and expects the client's connection to be unusable after it; ${NOT_THE_SESSION}`,
  },
  {
    suite: 'pg*',
    id: 'gh-issues/130-tests.js',
    reason: `reads pg_backend_pid(), runs pg_terminate_backend(pid) from psql (database template1) and waits for the client's error; ${PID_ELSEWHERE}`,
  },
  {
    suite: 'pg-query-stream',
    id: 'error recovery should work after cancelling query',
    reason: `pg_cancel_backend(pid) from another pooled connection, with the pid read by pg_backend_pid(); ${PID_ELSEWHERE}`,
  },
];

export function exceptionFor(r: TestResult): ProxyException | null {
  const id = testId(r);
  return (
    PROXY_EXCEPTIONS.find((e) => (e.suite === r.suite || (e.suite === 'pg*' && (r.suite === 'pg' || r.suite === 'pg-native'))) && (e.id === id || e.id === r.file)) ?? null
  );
}
