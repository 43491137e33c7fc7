/** Counting and printing suite results: `N passed, N failed` per suite and in total, failures, exceptions. */
import { exceptionFor, type ProxyException } from './exceptions.js';
import { type SuiteRun, testId, type TestResult } from './suites.js';

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  /** Proxy exceptions: run, shown, not counted above. */
  exceptions: number;
}

export function counts(results: readonly TestResult[]): Counts {
  const c: Counts = { passed: 0, failed: 0, skipped: 0, exceptions: 0 };
  for (const r of results) {
    if (exceptionFor(r)) c.exceptions++;
    else c[r.outcome]++;
  }
  return c;
}

export function countLine(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed` + (c.skipped ? `, ${c.skipped} skipped` : '') + (c.exceptions ? ` (+${c.exceptions} proxy exceptions, not counted)` : '');
}

/** The per-suite lines, the total, then every counted failure and every exception with its outcome. */
export function report(label: string, runs: readonly SuiteRun[]): string {
  const out: string[] = [`== ${label}`];
  const all: TestResult[] = [];
  for (const run of runs) {
    if (run.notRun) {
      out.push(`${run.suite.padEnd(16)} not run: ${run.notRun}`);
      continue;
    }
    out.push(`${run.suite.padEnd(16)} ${countLine(counts(run.results))}  [${run.seconds} s]`);
    all.push(...run.results);
  }
  out.push(`${'total'.padEnd(16)} ${countLine(counts(all))}`);
  const failures = all.filter((r) => r.outcome === 'failed' && !exceptionFor(r));
  if (failures.length > 0) {
    out.push('', 'failed:');
    for (const r of failures) out.push(`  ${r.suite}: ${testId(r) || '(suite)'}\n      ${r.message ?? ''}`);
  }
  const excepted = all.filter((r) => exceptionFor(r));
  if (excepted.length > 0) {
    out.push('', 'proxy exceptions (not counted):');
    for (const r of excepted) out.push(`  ${r.suite}: ${testId(r)}: ${r.outcome}${r.outcome === 'failed' ? ` (${r.message ?? ''})` : ''}`);
  }
  return out.join('\n');
}

export interface Difference {
  line: string;
  /** False for proxy exceptions and for tests that did not run because one failed before them. */
  counted: boolean;
}

/** Tests whose outcome differs between two runs of the same suites (a test missing on one side included). */
export function differences(a: readonly SuiteRun[], b: readonly SuiteRun[]): Difference[] {
  const key = (r: TestResult): string => `${r.suite}: ${testId(r) || '(suite)'}`;
  const mapOf = (runs: readonly SuiteRun[]): Map<string, TestResult> => new Map(runs.flatMap((s) => s.results.map((r) => [key(r), r] as const)));
  const ma = mapOf(a);
  const mb = mapOf(b);
  const out: Difference[] = [];
  for (const k of new Set([...ma.keys(), ...mb.keys()])) {
    const ra = ma.get(k);
    const rb = mb.get(k);
    if (ra?.outcome === rb?.outcome) continue;
    const r = (ra ?? rb)!;
    const ex = exceptionFor(r);
    // A pg test file stops at its first failure: a test missing after a failed exception of its file never ran.
    const afterException = !ex && rb === undefined && b.some((s) => s.results.some((t) => t.suite === r.suite && t.file !== '' && t.file === r.file && t.outcome === 'failed' && exceptionFor(t)));
    const note = ex ? ' [proxy exception]' : afterException ? ' [did not run: a proxy exception before it in the file failed]' : '';
    out.push({ line: `${k}: ${ra?.outcome ?? 'not run'} -> ${rb?.outcome ?? 'not run'}${rb?.message ? ` (${rb.message})` : ''}${note}`, counted: note === '' });
  }
  return out;
}

export function exceptionList(list: readonly ProxyException[]): string {
  return list.map((e) => `  ${e.suite === 'pg*' ? 'pg, pg-native' : e.suite}: ${e.id}\n      ${e.reason}`).join('\n');
}
