/**
 * The node-postgres suites this script runs, how each is started, and how its output becomes per-test results.
 *
 * - `pg` and `pg-native`: packages/pg test/integration, one process per `*-tests.js` file as its Makefile runs
 *   them (`node FILE postgres://`, and `node FILE postgres:// native` for libpq through pg-native). Such a file stops at its first
 *   failure, so a preloaded hook reports each test's start and end to a file (stdout mixes test output with the
 *   results); a failure is the test running when the process ended, or the file itself when it failed outside a
 *   test, or did not end within the time limit.
 * - `pg-cursor`, `pg-query-stream`, `pg-pool`: mocha, with each package's own arguments and the TAP reporter.
 *   Without `--exit`, as their package.json runs them, so a suite that leaves a connection hanging is seen: a
 *   mocha process still running after its summary counts as one more failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const SUITE_IDS = ['pg', 'pg-native', 'pg-cursor', 'pg-query-stream', 'pg-pool'] as const;
export type SuiteId = (typeof SUITE_IDS)[number];

export type Outcome = 'passed' | 'failed' | 'skipped';

export interface TestResult {
  suite: SuiteId;
  /** For pg / pg-native: the file under test/integration and the test's name ('' for the file as a whole). */
  file: string;
  name: string;
  outcome: Outcome;
  /** First line of the failure, for failures. */
  message?: string;
}

export interface SuiteRun {
  suite: SuiteId;
  results: TestResult[];
  /** Why the suite did not run at all (e.g. pg-native not built), else null. */
  notRun: string | null;
  seconds: number;
}

export interface RunEnv {
  checkout: string;
  env: NodeJS.ProcessEnv;
  /** Logs of every file and suite go here (a directory per suite, created by the caller). */
  workDir: string;
  /** Per pg file, and per mocha suite after its summary line. */
  fileTimeoutMs: number;
  suiteTimeoutMs: number;
  /** Progress lines (one per file or suite). */
  progress: (line: string) => void;
}

/** Test id used in the exceptions list and in comparisons: `file :: name` for pg files, the full title for mocha. */
export function testId(r: Pick<TestResult, 'file' | 'name'>): string {
  return r.file ? (r.name ? `${r.file} :: ${r.name}` : r.file) : r.name;
}

export async function runSuite(suite: SuiteId, run: RunEnv): Promise<SuiteRun> {
  const started = Date.now();
  const done = (results: TestResult[], notRun: string | null = null): SuiteRun => ({ suite, results, notRun, seconds: Math.round((Date.now() - started) / 1000) });
  switch (suite) {
    case 'pg':
      return done(await runPgFiles(suite, run, false));
    case 'pg-native': {
      const problem = nativeProblem(run.checkout);
      return problem ? done([], problem) : done(await runPgFiles(suite, run, true));
    }
    case 'pg-cursor':
      return done(await runMocha(suite, run, []));
    case 'pg-query-stream':
      return done(await runMocha(suite, run, ['-r', 'ts-node/register', 'test/**/*.ts']));
    case 'pg-pool':
      return done(await runMocha(suite, run, []));
  }
}

// ------------------------------------------------------------------------------------------ pg test files

/** Preloaded into every pg test file: reports test start / pass / skip and the exit, one JSON line each. */
const PG_HOOK = `'use strict'
const fs = require('fs')
const path = require('path')
const out = process.env.NPG_EVENTS
const emit = (e) => fs.appendFileSync(out, JSON.stringify(e) + '\\n')
const Suite = require(path.join(process.env.NPG_PG_DIR, 'test', 'suite.js'))
const run = Suite.prototype.run
Suite.prototype.run = function (test, cb) {
  if (!test.action) {
    emit({ ev: 'skip', name: test.name })
    return run.call(this, test, cb)
  }
  emit({ ev: 'start', name: test.name })
  return run.call(this, test, function () {
    emit({ ev: 'pass', name: test.name })
    return cb.apply(this, arguments)
  })
}
process.on('exit', (code) => emit({ ev: 'exit', code }))
`;

interface PgEvent {
  ev: 'start' | 'pass' | 'skip' | 'exit';
  name?: string;
  code?: number;
}

function pgFiles(pgDir: string): string[] {
  const root = path.join(pgDir, 'test', 'integration');
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir).sort()) {
      const p = path.join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e.endsWith('-tests.js')) out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out;
}

function nativeProblem(checkout: string): string | null {
  const r = spawnSync(process.execPath, ['-e', "require('pg-native')"], { cwd: path.join(checkout, 'packages', 'pg'), encoding: 'utf8' });
  if (r.status === 0) return null;
  const why = (r.stderr || r.error?.message || '').split('\n').find((l) => /Error/.test(l)) ?? 'it does not load';
  return `pg-native does not load (${why.trim()}): building it needs libpq-dev and a C++ toolchain at yarn install time`;
}

function resolveFrom(dir: string, name: string): string {
  return createRequire(path.join(dir, 'noop.js')).resolve(name);
}

async function runPgFiles(suite: SuiteId, run: RunEnv, native: boolean): Promise<TestResult[]> {
  const pgDir = path.join(run.checkout, 'packages', 'pg');
  const work = path.join(run.workDir, suite);
  const hook = path.join(run.workDir, 'pg-suite-hook.cjs');
  writeFileSync(hook, PG_HOOK);
  const results: TestResult[] = [];
  for (const file of pgFiles(pgDir)) {
    const events = path.join(work, file.replace(/[/\\]/g, '_') + '.events');
    const log = path.join(work, file.replace(/[/\\]/g, '_') + '.log');
    // As packages/pg's Makefile runs them: `node FILE postgres:// [native]` (appname-tests reads argv[2]).
    const args = ['-r', hook, path.join('test', 'integration', file), 'postgres://', ...(native ? ['native'] : [])];
    const r = await runProcess(process.execPath, args, { cwd: pgDir, env: { ...run.env, NPG_EVENTS: events, NPG_PG_DIR: pgDir }, log, timeoutMs: run.fileTimeoutMs });
    const fileResults = pgFileResults(suite, file, readEvents(events), r, readFileSync(log, 'utf8'));
    results.push(...fileResults);
    const failed = fileResults.filter((t) => t.outcome === 'failed').length;
    run.progress(`${suite} ${file}: ${failed > 0 ? `${failed} FAILED` : 'ok'} (${(r.ms / 1000).toFixed(1)} s)`);
  }
  return results;
}

function readEvents(file: string): PgEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as PgEvent);
}

function pgFileResults(suite: SuiteId, file: string, events: PgEvent[], r: ProcessResult, output: string): TestResult[] {
  const out: TestResult[] = [];
  let running: string | null = null;
  for (const e of events) {
    if (e.ev === 'start') running = e.name ?? '';
    else if (e.ev === 'pass') {
      out.push({ suite, file, name: e.name ?? '', outcome: 'passed' });
      running = null;
    } else if (e.ev === 'skip') out.push({ suite, file, name: e.name ?? '', outcome: 'skipped' });
  }
  const exit = events.find((e) => e.ev === 'exit');
  const ok = !r.timedOut && exit?.code === 0 && r.code === 0;
  if (ok) {
    // A file without suite tests (plain script) counts as one test.
    if (out.length === 0) out.push({ suite, file, name: '', outcome: 'passed' });
    return out;
  }
  const message = r.timedOut ? `did not end within ${Math.round(r.timeoutMs / 1000)} s${running === null && out.length > 0 ? ' after its tests' : ''}` : failureLine(output);
  if (running !== null) out.push({ suite, file, name: running, outcome: 'failed', message });
  else out.push({ suite, file, name: '', outcome: 'failed', message });
  return out;
}

/** The line that says what went wrong in a failed test file's output. */
function failureLine(output: string): string {
  const lines = output.split('\n').map((l) => l.trim());
  const pick = lines.find((l) => /^(Message: |Error: |AssertionError|error: )/.test(l)) ?? lines.filter((l) => l && !l.startsWith('at ')).pop() ?? 'failed';
  return pick.slice(0, 300);
}

// ------------------------------------------------------------------------------------------ mocha suites

async function runMocha(suite: SuiteId, run: RunEnv, args: string[]): Promise<TestResult[]> {
  const dir = path.join(run.checkout, 'packages', suite);
  const mocha = path.join(path.dirname(resolveFrom(dir, 'mocha/package.json')), 'bin', 'mocha.js');
  const log = path.join(run.workDir, suite, 'mocha.tap');
  let summarised = false;
  const r = await runProcess(process.execPath, [mocha, '--reporter', 'tap', ...args], {
    cwd: dir,
    env: run.env,
    log,
    timeoutMs: run.suiteTimeoutMs,
    // After its last test, a mocha run gets fileTimeoutMs to end on its own.
    onOutput: (text, extend) => {
      if (!summarised && /^# fail \d+/m.test(text)) {
        summarised = true;
        extend(run.fileTimeoutMs);
      }
    },
  });
  const results = tapResults(suite, readFileSync(log, 'utf8'));
  if (r.timedOut) {
    const message = summarised
      ? `mocha did not exit within ${Math.round(run.fileTimeoutMs / 1000)} s after its last test (something it opened is still open)`
      : `mocha was still running after ${Math.round(run.suiteTimeoutMs / 1000)} s; tests not reported by then did not run`;
    results.push({ suite, file: '', name: summarised ? '(mocha process exit)' : '(mocha run time limit)', outcome: 'failed', message });
  } else if (!summarised) {
    results.push({ suite, file: '', name: '(mocha run)', outcome: 'failed', message: `mocha ended with code ${r.code} before its summary: ${failureLine(readFileSync(log, 'utf8'))}` });
  }
  const n = (o: Outcome): number => results.filter((t) => t.outcome === o).length;
  run.progress(`${suite}: ${n('passed')} passed, ${n('failed')} failed (${(r.ms / 1000).toFixed(1)} s)`);
  return results;
}

/** `ok N title`, `not ok N title` (with its indented reason below), `ok N title # SKIP`. */
export function tapResults(suite: SuiteId, tap: string): TestResult[] {
  const out: TestResult[] = [];
  const lines = tap.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(not ok|ok) \d+ (.*)$/.exec(lines[i]!);
    if (!m) continue;
    const title = m[2]!;
    if (m[1] === 'ok') {
      const skip = / # SKIP\b/.exec(title);
      out.push({ suite, file: '', name: skip ? title.slice(0, skip.index) : title, outcome: skip ? 'skipped' : 'passed' });
      continue;
    }
    const reason = lines.slice(i + 1).find((l) => /^\s+\S/.test(l))?.trim() ?? 'failed';
    out.push({ suite, file: '', name: title, outcome: 'failed', message: reason.slice(0, 300) });
  }
  return out;
}

// ------------------------------------------------------------------------------------------ processes

interface ProcessResult {
  code: number | null;
  timedOut: boolean;
  timeoutMs: number;
  ms: number;
}

interface ProcessOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** stdout and stderr go here. */
  log: string;
  timeoutMs: number;
  /** Sees everything written so far; `extend(ms)` replaces the time limit with `ms` from now. */
  onOutput?: (text: string, extend: (ms: number) => void) => void;
}

/** Runs a process in its own process group; on timeout, SIGKILL to that group (its children too). */
function runProcess(cmd: string, args: string[], opts: ProcessOptions): Promise<ProcessResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let timedOut = false;
    let limit = opts.timeoutMs;
    const kill = (): void => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    let timer = setTimeout(kill, limit);
    const extend = (ms: number): void => {
      clearTimeout(timer);
      limit = ms;
      timer = setTimeout(kill, ms);
    };
    const onData = (d: Buffer): void => {
      text += d.toString('utf8');
      opts.onOutput?.(text, extend);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      writeFileSync(opts.log, text);
      resolve({ code, timedOut, timeoutMs: limit, ms: Date.now() - started });
    });
  });
}
