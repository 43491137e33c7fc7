/**
 * The end of a benchmark run, however it ends: stop everything that was started (tracked processes, the CPU caps'
 * cgroups, the cluster), look for anything left running from the temp dir, and the Ctrl-C handling that leads there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { LocalCluster } from '../src/devcluster/cluster.js';
import { readPostmasterPid } from '../src/devcluster/procs.js';
import type { ProcessTracker } from './procs.js';

/** What cleanup and the signal handler need of a run. */
export interface RunState {
  readonly o: { readonly keep: boolean };
  readonly tracker: ProcessTracker;
  readonly cluster: LocalCluster | null;
  readonly tmp: string | null;
  readonly data: { problems: string[] };
  /** The database-bound mode's CPU caps while they exist (cgroups.ts): released before the cluster stops. */
  readonly caps: { release(): string[] } | null;
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Stop everything that was started, whatever happened; remove the temp dir unless --keep. */
export async function cleanup(run: RunState): Promise<void> {
  await run.tracker.stopAll().catch(() => undefined);
  releaseCaps(run);
  if (run.cluster) {
    log(run.o.keep ? `stopping the cluster (kept in ${run.cluster.info.dir})...` : 'stopping the cluster...');
    await run.cluster.down({ purge: !run.o.keep }).catch((err: unknown) => {
      process.stderr.write(`could not stop the cluster cleanly: ${(err as Error).message}\n`);
    });
  }
  if (run.tmp && !run.o.keep) await rm(run.tmp, { recursive: true, force: true }).catch(() => undefined);
  const left = run.tracker.running();
  if (left.length > 0) process.stderr.write(`still running after cleanup: ${left.map((p) => `${p.name} (${p.pid})`).join(', ')}\n`);
  // Anything else started from the working directory (pgproxy's workers, pgpool-II's children, the servers).
  const stray = run.tmp ? processesUsing(run.tmp) : [];
  if (stray.length > 0) {
    const what = stray.map((p) => `${p.pid} ${p.cmd}`).join('; ');
    process.stderr.write(`processes still running from ${run.tmp} after cleanup: ${what}\n`);
    run.data.problems.push(`processes still running after cleanup: ${what}`);
  }
}

/** Servers back in the cgroup they came from, our cgroups removed; what could not be done is a problem of the run. */
function releaseCaps(run: RunState): void {
  for (const p of run.caps?.release() ?? []) {
    process.stderr.write(`cgroups: ${p}\n`);
    run.data.problems.push(`cgroups: ${p}`);
  }
}

/** Live processes whose command line mentions `dir` (the benchmark's own temp dir). */
function processesUsing(dir: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
      if (!cmd.includes(dir)) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (!stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) out.push({ pid: Number(e), cmd: cmd.slice(0, 160) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Ctrl-C once: abort and clean up; three times: kill what we started and exit at once. */
export function handleSignals(run: RunState): () => void {
  let count = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    count++;
    if (count === 1) {
      process.stderr.write(`\n${sig}: stopping everything the benchmark started (twice more to force)...\n`);
      run.tracker.abort();
    } else if (count === 3) {
      process.stderr.write('forced exit: killing what is left\n');
      run.tracker.killAllNow();
      for (const n of run.cluster?.info.nodes ?? []) {
        const pid = readPostmasterPid(n.dataDir);
        try {
          if (pid !== null) process.kill(pid, 'SIGQUIT'); // immediate shutdown
        } catch {
          // gone
        }
      }
      releaseCaps(run);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
