/**
 * --profile: where pgproxy's microseconds per statement go. A separate pgproxy (same setup as the pgproxy
 * target) runs under `node --cpu-prof`; one `pgbench -S -M simple -c 16` run goes through it; after its
 * graceful stop the .cpuprofile is read, restricted to the pgbench run's time window, and its self time is
 * summed per function (and per file), mapped through the source maps from dist/ back to src/.
 * The profiler itself costs CPU: the run's TPS and CPU per transaction are not comparable with the others.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { SourceMap, type SourceMapPayload } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo } from '../src/devcluster/cluster.js';
import { type PgbenchResult, runPgbench, WORKLOADS } from './pgbench.js';
import type { ProcessTracker } from './procs.js';
import { startPgproxy } from './targets/pgproxy.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROFILE_WORKLOAD = 'select-simple-c16';
/** Sampling interval, µs (Node's default is 1000): finer, for enough samples in a short run. */
const INTERVAL_US = 250;
const TOP_FRAMES = 25;
const TOP_NATIVE = 6;
const TOP_FILES = 12;

export interface ProfileLine {
  /** Function name ("(anonymous)" when it has none), a file, or a kind of time. */
  name: string;
  /** Source file:line (src/... through the source map), the URL V8 reported, "(native)", or ''. */
  location: string;
  /** Share of the time the list is about (JavaScript time, or busy time). */
  share: number;
  /** Self time per transaction, µs. */
  usPerTx: number | null;
}

export interface ProfileResult {
  command: string;
  tps: number | null;
  transactions: number | null;
  /** From /proc, under the profiler. */
  cpuUsPerTx: number | null;
  intervalUs: number;
  /** Samples in the pgbench run's window, and the share of them that was idle. */
  samples: number;
  idleShare: number;
  /**
   * Busy (non-idle) sampled time per transaction, µs. V8 samples wall-clock time, so a native function's share
   * includes time the process sat preempted inside it (a write that woke the reader on the same core).
   */
  busyUsPerTx: number | null;
  /** Busy time by kind: JavaScript, native functions (bindings, their system calls), (program), (garbage collector). */
  kinds: ProfileLine[];
  /** Top JavaScript frames by self time; share of JavaScript time. */
  frames: ProfileLine[];
  /** Top native and VM frames; share of busy time. */
  native: ProfileLine[];
  /** JavaScript self time per file; share of JavaScript time. */
  files: ProfileLine[];
  /** How the window was chosen. */
  note: string;
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

export async function profilePgproxy(o: {
  info: ClusterInfo;
  dir: string;
  tracker: ProcessTracker;
  version: string;
  durationS: number;
  maxPerNode: number;
  logDir: string;
  keepLogs: boolean;
}): Promise<ProfileResult> {
  const profDir = path.join(o.dir, 'cpuprofile');
  await mkdir(profDir, { recursive: true });
  const proxy = await startPgproxy({
    info: o.info,
    dir: o.dir,
    tracker: o.tracker,
    version: o.version,
    maxPerNode: o.maxPerNode,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-interval=${INTERVAL_US}`],
  });
  const workload = WORKLOADS.find((w) => w.name === PROFILE_WORKLOAD)!;
  let r: PgbenchResult;
  let from = 0;
  let to = 0;
  try {
    from = nowUs();
    r = await runPgbench({ tracker: o.tracker, target: proxy, workload, durationS: o.durationS, logDir: o.logDir, keepLogs: o.keepLogs, tag: 'profile' });
    to = nowUs();
  } finally {
    // SIGTERM: pgproxy shuts down and exits normally, which is when Node writes the profile.
    await proxy.stop();
  }
  const problem = proxy.stopProblem();
  let file: string | undefined;
  for (let i = 0; i < 50 && file === undefined; i++) {
    file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) await sleep(100);
  }
  if (file === undefined) throw new Error(`no .cpuprofile written in ${profDir}${problem ? ` (${problem})` : ''}`);
  const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile;
  return { command: r.command, tps: r.tps, transactions: r.transactions, cpuUsPerTx: r.proxyCpuUsPerTx ?? null, ...summarize(profile, from, to, r.transactions) };
}

/** Self time per function and per file within [fromUs, toUs] (both on the monotonic clock V8 also uses). */
export function summarize(p: CpuProfile, fromUs: number, toUs: number, transactions: number | null): Omit<ProfileResult, 'command' | 'tps' | 'transactions' | 'cpuUsPerTx'> {
  const frameOf = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const times: number[] = [];
  let t = p.startTime;
  for (const d of p.timeDeltas) times.push((t += d));
  let inWindow = (i: number): boolean => times[i]! >= fromUs && times[i]! <= toUs;
  let note = 'samples taken during the pgbench run';
  if (!p.samples.some((_, i) => inWindow(i))) {
    inWindow = () => true;
    note = "the profile's clock did not match the run's window: the whole profile (start-up and shutdown included)";
  }
  type Kind = 'JavaScript' | 'native functions' | 'VM';
  const self = new Map<string, { name: string; location: string; kind: Kind; us: number }>();
  const perFile = new Map<string, number>();
  const perKind = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let samples = 0;
  for (let i = 0; i < p.samples.length; i++) {
    if (!inWindow(i)) continue;
    const us = (times[i + 1] ?? times[i]! + INTERVAL_US) - times[i]!;
    const f = frameOf.get(p.samples[i]!);
    if (!f) continue;
    samples++;
    total += us;
    if (f.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const kind: Kind = f.url ? 'JavaScript' : f.functionName.startsWith('(') ? 'VM' : 'native functions';
    perKind.set(kind === 'VM' ? f.functionName : kind, (perKind.get(kind === 'VM' ? f.functionName : kind) ?? 0) + us);
    const at = sourceLocation(f);
    const key = `${f.functionName}\0${at.location}`;
    const e = self.get(key) ?? { name: f.functionName || '(anonymous)', location: at.location, kind, us: 0 };
    e.us += us;
    self.set(key, e);
    if (kind === 'JavaScript') perFile.set(at.file, (perFile.get(at.file) ?? 0) + us);
  }
  const busy = total - idle;
  const js = perKind.get('JavaScript') ?? 0;
  const line = (of: number) => (name: string, location: string, us: number): ProfileLine => ({
    name,
    location,
    share: of > 0 ? us / of : 0,
    usPerTx: transactions ? us / transactions : null,
  });
  const byTime = <T extends { us: number }>(xs: Iterable<T>): T[] => [...xs].sort((a, b) => b.us - a.us);
  const entries = byTime(self.values());
  return {
    intervalUs: INTERVAL_US,
    samples,
    idleShare: total > 0 ? idle / total : 0,
    busyUsPerTx: transactions ? busy / transactions : null,
    kinds: byTime([...perKind].map(([name, us]) => ({ name, us }))).map((k) => line(busy)(k.name, '', k.us)),
    frames: entries.filter((e) => e.kind === 'JavaScript').slice(0, TOP_FRAMES).map((e) => line(js)(e.name, e.location, e.us)),
    native: entries.filter((e) => e.kind !== 'JavaScript').slice(0, TOP_NATIVE).map((e) => line(busy)(e.name, e.location, e.us)),
    files: byTime([...perFile].map(([name, us]) => ({ name, us }))).slice(0, TOP_FILES).map((f) => line(js)(f.name, '', f.us)),
    note,
  };
}

const maps = new Map<string, SourceMap | null>();

/** file:line of a frame, through dist/'s source map back to src/ when there is one (V8's line numbers are 0-based). */
function sourceLocation(f: CallFrame): { location: string; file: string } {
  if (!f.url) {
    // (program), (garbage collector), (root); or a native function called from JS (a binding, its system calls included).
    return f.functionName.startsWith('(') ? { location: '', file: f.functionName } : { location: '(native)', file: '(native functions)' };
  }
  if (!f.url.startsWith('file://')) return { location: `${f.url}:${f.lineNumber + 1}`, file: f.url };
  const js = fileURLToPath(f.url);
  let map = maps.get(js);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${js}.map`, 'utf8')) as SourceMapPayload);
    } catch {
      map = null;
    }
    maps.set(js, map);
  }
  const entry = map?.findEntry(f.lineNumber, f.columnNumber);
  if (entry && 'originalSource' in entry) {
    const src = path.resolve(path.dirname(js), entry.originalSource.replace(/^file:\/\//, ''));
    const file = rel(src);
    return { location: `${file}:${entry.originalLine + 1}`, file };
  }
  const file = rel(js);
  return { location: `${file}:${f.lineNumber + 1}`, file };
}

function rel(file: string): string {
  const r = path.relative(ROOT, file);
  return r.startsWith('..') ? file : r;
}

/** The result as text lines (stdout and the report share them). */
export function profileLines(p: ProfileResult): string[] {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`.padStart(6);
  const us = (x: number | null): string => (x === null ? '–' : x.toFixed(2)).padStart(6);
  const list = (xs: ProfileLine[]): string[] => xs.map((f) => `  ${pct(f.share)} ${us(f.usPerTx)} µs  ${f.name}${f.location ? `  ${f.location}` : ''}`);
  return [
    `${p.command} through pgproxy under node --cpu-prof (sampling every ${p.intervalUs} µs; the profiler slows it down):`,
    `${p.tps === null ? '–' : Math.round(p.tps).toLocaleString('en-US')} TPS, ${p.cpuUsPerTx === null ? '–' : p.cpuUsPerTx.toFixed(1)} µs CPU per transaction (/proc); ` +
      `${p.samples.toLocaleString('en-US')} samples (${p.note}), ${(p.idleShare * 100).toFixed(1)}% idle.`,
    `V8 samples wall-clock time: busy ${us(p.busyUsPerTx).trim()} µs per transaction = ` +
      `${p.kinds.map((k) => `${k.name} ${us(k.usPerTx).trim()}`).join(' + ')}. Native functions include their system calls and any time ` +
      'the process was preempted inside them, so busy time can exceed the CPU time /proc counts; JavaScript time is pgproxy\'s and Node\'s own code.',
    '',
    'top JavaScript self-time frames (share of JavaScript time, µs per transaction):',
    ...list(p.frames),
    '',
    'native and VM frames (share of busy time, µs per transaction):',
    ...list(p.native),
    '',
    'JavaScript self time per file (share of JavaScript time, µs per transaction):',
    ...list(p.files),
  ];
}
