/**
 * The pgbench workloads, one pgbench run against one target, and what we read back: TPS and average latency
 * from pgbench's summary, p99 from its per-transaction log (`--log`: the third field is the latency in µs).
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLOCK_TICKS_PER_SECOND, processTree, treeCpuTicks, treeRssKb, type ProcessTracker } from './procs.js';
import type { Target } from './targets/target.js';

export type QueryMode = 'simple' | 'extended' | 'prepared';

/** A pgbench built-in script (select-only is `-S`, tpcb-like the default), or a script file of ours (`-f`). */
export type Script = 'select-only' | 'tpcb-like' | { readonly file: string };

export interface Workload {
  /** Stable name for --only / --skip, e.g. select-simple-c16. */
  readonly name: string;
  /** Human title, e.g. "pgbench -S -M simple -c 16". */
  readonly title: string;
  readonly script: Script;
  readonly mode: QueryMode;
  readonly clients: number;
  /** Transactions per client (`-t`): the run lasts until they are done. Absent: the run's duration (`-T`). */
  readonly transactionsPerClient?: number;
}

function scriptArgs(script: Script): string[] {
  if (script === 'select-only') return ['-S'];
  if (script === 'tpcb-like') return [];
  return ['-f', script.file];
}

function workload(script: 'select-only' | 'tpcb-like', mode: QueryMode, clients: number): Workload {
  const short = script === 'select-only' ? `select-${mode}` : mode === 'simple' ? 'tpcb' : `tpcb-${mode}`;
  const flags = script === 'select-only' ? '-S ' : '';
  return {
    name: `${short}-c${clients}`,
    title: `pgbench ${flags}-M ${mode} -c ${clients}${script === 'tpcb-like' ? ' (tpcb-like)' : ''}`,
    script,
    mode,
    clients,
  };
}

export const WORKLOADS: readonly Workload[] = [
  workload('select-only', 'simple', 1),
  workload('select-only', 'simple', 16),
  workload('select-only', 'simple', 64),
  workload('select-only', 'extended', 16),
  workload('select-only', 'prepared', 16),
  workload('tpcb-like', 'simple', 16),
];

export interface PgbenchResult {
  /** Null when the run did not happen (see `na`) or produced no summary. */
  tps: number | null;
  avgLatencyMs: number | null;
  p99LatencyMs: number | null;
  transactions: number | null;
  failedTransactions: number | null;
  /** pgbench's exit code. */
  exitCode: number | null;
  /** Distinct error lines from pgbench (client numbers folded), at most a few. */
  errors: string[];
  /** Wall-clock time of the pgbench process (its connections included), in ms; absent when it did not run. */
  elapsedMs?: number;
  /** CPU time the target's own process(es) used per transaction during the run, in µs (null for direct). */
  proxyCpuUsPerTx?: number | null;
  /** The target's processes at the end of the run (a primary and its workers, say) and their summed RSS in kB. */
  proxyProcesses?: number | null;
  proxyRssKb?: number | null;
  /** Set when the target cannot run this workload at all (reported as n/a, not a failure). */
  na?: string;
  timedOut?: boolean;
  command: string;
}

export interface PgbenchRunOptions {
  tracker: ProcessTracker;
  target: Target;
  workload: Workload;
  /** `-T`, unless the workload sets transactions per client. */
  durationS: number;
  /** The longest the run may take before pgbench is stopped (default: durationS + 60 s); a `-t` run needs its own. */
  timeoutS?: number;
  logDir: string;
  /** Keep the per-transaction logs after reading them. */
  keepLogs: boolean;
  /** Tag for the log file names, unique per run. */
  tag: string;
}

/** pgbench's arguments for one run of `workload` through `target`, per-transaction log under `logPrefix`. */
export function pgbenchArgs(target: Pick<Target, 'host' | 'port' | 'user' | 'database'>, workload: Workload, durationS: number, logPrefix: string): string[] {
  return [
    '-h', target.host,
    '-p', String(target.port),
    '-U', target.user,
    // No vacuum/truncate through the target: the runner does that on the primary before each tpcb-like run.
    '-n',
    ...(workload.transactionsPerClient !== undefined ? ['-t', String(workload.transactionsPerClient)] : ['-T', String(durationS)]),
    '-c', String(workload.clients),
    '-j', String(workload.clients >= 2 ? 2 : 1),
    '-M', workload.mode,
    ...scriptArgs(workload.script),
    '--log',
    `--log-prefix=${logPrefix}`,
    target.database,
  ];
}

export async function runPgbench(o: PgbenchRunOptions): Promise<PgbenchResult> {
  const { target, workload } = o;
  const prefix = `pgbench_${o.tag}`;
  const args = pgbenchArgs(target, workload, o.durationS, path.join(o.logDir, prefix));
  const command = `pgbench ${args.filter((a) => !a.startsWith('--log-prefix')).join(' ')}`;
  const na = target.unsupportedMode(workload.mode);
  if (na !== null) {
    return { tps: null, avgLatencyMs: null, p99LatencyMs: null, transactions: null, failedTransactions: null, exitCode: null, errors: [], na, command };
  }
  const cpuBefore = target.pid !== null ? treeCpuTicks(target.pid) : null;
  const started = performance.now();
  const r = await o.tracker.run(`pgbench ${workload.name} @ ${target.id}`, 'pgbench', args, {
    cwd: o.logDir,
    env: { ...process.env, PGPASSWORD: target.password, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' },
    // -T waits for transactions in flight; a proxy that hangs must not hang the suite.
    timeoutMs: (o.timeoutS ?? o.durationS + 60) * 1000,
  });
  const elapsedMs = performance.now() - started;
  if (o.keepLogs) await writeFile(path.join(o.logDir, `${prefix}.out`), `${command}\n\n${r.stdout}\n${r.stderr}`);
  const summary = parseSummary(r.stdout);
  const cpuTicks = cpuBefore !== null && target.pid !== null ? treeCpuTicks(target.pid) - cpuBefore : null;
  const proxyProcesses = target.pid !== null ? processTree(target.pid).length : null;
  const proxyRssKb = target.pid !== null ? treeRssKb(target.pid) : null;
  const proxyCpuUsPerTx =
    cpuTicks !== null && summary.transactions ? (cpuTicks * (1e6 / CLOCK_TICKS_PER_SECOND)) / summary.transactions : null;
  const latencies = await readLatencies(o.logDir, prefix, o.keepLogs);
  return {
    ...summary,
    p99LatencyMs: latencies.length > 0 ? percentile(latencies, 0.99) / 1000 : null,
    exitCode: r.code,
    elapsedMs,
    proxyCpuUsPerTx,
    proxyProcesses,
    proxyRssKb,
    errors: errorLines(r.stderr),
    ...(r.timedOut ? { timedOut: true } : {}),
    command,
  };
}

/** The numbers in pgbench's end-of-run summary. */
export function parseSummary(stdout: string): Pick<PgbenchResult, 'tps' | 'avgLatencyMs' | 'transactions' | 'failedTransactions'> {
  const num = (re: RegExp): number | null => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : null;
  };
  return {
    tps: num(/^tps = ([\d.]+)/m),
    avgLatencyMs: num(/^latency average = ([\d.]+) ms/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failedTransactions: num(/^number of failed transactions: (\d+)/m),
  };
}

/** Distinct pgbench error lines, with client/command numbers folded so 16 identical failures show once. */
export function errorLines(stderr: string, max = 5): string[] {
  const seen = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    const t = line.trim();
    if (!t || !/error|fatal|abort|could not|timeout|failed/i.test(t)) continue;
    const key = t.replace(/\b(client|command|script|query) \d+/g, '$1 N');
    if (!seen.has(key)) seen.set(key, t);
    if (seen.size >= max) break;
  }
  return [...seen.values()];
}

/** Per-transaction latencies (µs) from every `prefix.PID[.N]` log file (one per thread). */
async function readLatencies(dir: string, prefix: string, keep: boolean): Promise<Float64Array> {
  const files = (await readdir(dir)).filter((f) => f.startsWith(`${prefix}.`) && !f.endsWith('.out'));
  const parts: number[][] = [];
  for (const f of files) {
    const file = path.join(dir, f);
    const text = await readFile(file, 'utf8');
    const vals: number[] = [];
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      // client_id transaction_no time script_no time_epoch time_us [schedule_lag]
      const s1 = text.indexOf(' ', start);
      const s2 = s1 < 0 ? -1 : text.indexOf(' ', s1 + 1);
      const s3 = s2 < 0 ? -1 : text.indexOf(' ', s2 + 1);
      if (s3 > 0 && s3 < end) {
        const v = Number(text.slice(s2 + 1, s3));
        if (Number.isFinite(v)) vals.push(v);
      }
      start = end + 1;
    }
    parts.push(vals);
    if (!keep) await rm(file, { force: true });
  }
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) for (const v of p) all[i++] = v;
  return all;
}

/** Nearest-rank percentile (sorts in place). */
export function percentile(values: Float64Array, p: number): number {
  values.sort();
  const rank = Math.max(1, Math.ceil(p * values.length));
  return values[rank - 1] ?? NaN;
}
