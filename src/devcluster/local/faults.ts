// Faults on local nodes, by signals to their processes: a crash (SIGKILL of the postmaster), a hang (SIGSTOP of
// the postmaster and all its children) and its end.
import type { Log } from '../cluster-base.js';
import type { ClusterNodeInfo } from '../cluster-types.js';
import { childPids, isPostgresOf, runningPostmaster, signalQuietly } from '../procs.js';

export class ProcessFaults {
  /** Pids stopped by suspend, per node name, so resume continues exactly them. */
  private readonly suspended = new Map<string, number[]>();

  constructor(private readonly log: Log) {}

  isSuspended(n: ClusterNodeInfo): boolean {
    return this.suspended.has(n.name);
  }

  /**
   * Signal the postmaster. Its children notice and exit on their own. After SIGKILL, returns once the postmaster is
   * gone (or a zombie): under load the kernel may take a while to end it, and a start before then would find it
   * "running" and do nothing.
   */
  async kill(n: ClusterNodeInfo, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const pid = runningPostmaster(n.dataDir);
    if (pid === null) throw new Error(`${n.name} is not running`);
    this.log.info({ node: n.name, signal }, 'signalling postmaster');
    if (signal === 'SIGKILL') this.resume(n);
    process.kill(pid, signal);
    if (signal !== 'SIGKILL') return;
    const deadline = Date.now() + timeoutMs;
    while (isPostgresOf(pid, n.dataDir)) {
      if (Date.now() > deadline) throw new Error(`${n.name}: postmaster ${pid} still running ${timeoutMs} ms after SIGKILL`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  suspend(n: ClusterNodeInfo): void {
    const pid = runningPostmaster(n.dataDir);
    if (pid === null) throw new Error(`${n.name} is not running`);
    // Postmaster first, so it forks nobody new while we stop its children.
    signalQuietly(pid, 'SIGSTOP');
    const children = childPids(pid);
    for (const c of children) signalQuietly(c, 'SIGSTOP');
    this.suspended.set(n.name, [pid, ...children]);
    this.log.info({ node: n.name, pids: children.length + 1 }, 'suspended');
  }

  /** SIGCONT what suspend stopped (and the node's current processes). */
  resume(n: ClusterNodeInfo): void {
    const pids = new Set(this.suspended.get(n.name) ?? []);
    const pid = runningPostmaster(n.dataDir);
    if (pid !== null) for (const c of childPids(pid)) pids.add(c);
    // Children first, then the postmaster.
    for (const p of pids) if (p !== pid) signalQuietly(p, 'SIGCONT');
    if (pid !== null) signalQuietly(pid, 'SIGCONT');
    if (this.suspended.delete(n.name)) this.log.info({ node: n.name }, 'resumed');
  }
}
