/**
 * Every process the benchmark starts goes through one ProcessTracker: long-running servers (pgproxy, pgpool-II,
 * PgBouncer, the idle-client holder) and short commands (pgbench, apt-get). Each is spawned detached, in its own
 * process group, so a Ctrl-C aimed at the benchmark reaches only the benchmark, which then stops them in order.
 * Nothing is ever signalled by name: only the pids we spawned, and the members of the process groups they lead
 * (pgpool-II forks its children into the group of the parent we started).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export class AbortedError extends Error {
  readonly code = 'BENCH_ABORTED';
  constructor() {
    super('interrupted');
    this.name = 'AbortedError';
  }
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this uid/gid (the `postgres` OS user when we are root). */
  uid?: number;
  gid?: number;
  /** Append stdout and stderr to this file; otherwise they are piped and collected. */
  logFile?: string;
  /** Pipe stdin (for the idle-client holder); default ignored. */
  stdin?: boolean;
  /** Killed at once by abort() (short commands, client drivers); servers are left to the orderly cleanup. */
  killOnAbort?: boolean;
}

export interface Tracked {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly killOnAbort: boolean;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Null while running. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  stdout: string;
  stderr: string;
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Cap on output kept in memory per process; pgbench and apt-get print far less. */
const MAX_OUTPUT = 4 * 1024 * 1024;

export interface ProcEntry {
  pid: number;
  ppid: number;
  pgrp: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** Resident set size in pages (field 24). */
  rssPages: number;
}

/** Every live (non-zombie) process's parent, group, CPU time and RSS, from /proc/<pid>/stat. */
export function procTable(): ProcEntry[] {
  const out: ProcEntry[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // f[0] = state, f[1] = ppid, f[2] = pgrp, f[11] = utime, f[12] = stime, f[21] = rss (fields 3, 4, 5, 14, 15, 24 of proc(5))
      if (f[0] === 'Z') continue;
      out.push({ pid: Number(e), ppid: Number(f[1]), pgrp: Number(f[2]), ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The live processes of a server we started as `root`: root itself, the members of its process group (pgpool-II's
 * children), and every descendant found by PPID (pgproxy's `workers`, forked by node:cluster into the same group;
 * the PPID walk also catches any that left it).
 */
function treeOf(root: number, table: ProcEntry[]): ProcEntry[] {
  const children = new Map<number, ProcEntry[]>();
  for (const p of table) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const picked = new Map<number, ProcEntry>();
  const visit = (p: ProcEntry): void => {
    if (picked.has(p.pid)) return;
    picked.set(p.pid, p);
    for (const c of children.get(p.pid) ?? []) visit(c);
  };
  for (const p of table) if (p.pid === root || p.pgrp === root) visit(p);
  return [...picked.values()];
}

/** Pids of the live processes of the server started as `root` (see treeOf). */
export function processTree(root: number): number[] {
  return treeOf(root, procTable()).map((p) => p.pid);
}

/**
 * CPU time (user + system, clock ticks) used so far by the live processes of the server started as `root`: the
 * proxy process, pgproxy's primary process and its workers, or pgpool-II's parent and its children.
 */
export function treeCpuTicks(root: number): number {
  return treeOf(root, procTable()).reduce((n, p) => n + p.ticks, 0);
}

/** Summed RSS (kB) of the live processes of the server started as `root`. */
export function treeRssKb(root: number): number {
  return treeOf(root, procTable()).reduce((n, p) => n + p.rssPages, 0) * PAGE_KB;
}

/** Page size in kB for /proc/<pid>/stat's rss field; 4 kB on x86-64 and most arm64 kernels. */
const PAGE_KB = 4;

/** Clock ticks per second for /proc times (sysconf(_SC_CLK_TCK)); 100 on Linux in practice. */
export const CLOCK_TICKS_PER_SECOND = 100;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export class ProcessTracker {
  private readonly live = new Set<Tracked>();
  private abortedFlag = false;

  get aborted(): boolean {
    return this.abortedFlag;
  }

  /** Throw AbortedError once abort() was called: the orchestrator checks this between steps. */
  check(): void {
    if (this.abortedFlag) throw new AbortedError();
  }

  spawn(name: string, file: string, args: string[], opts: SpawnOptions = {}): Tracked {
    this.check();
    const fd = opts.logFile !== undefined ? openSync(opts.logFile, 'a', 0o644) : null;
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        detached: true,
        stdio: [opts.stdin ? 'pipe' : 'ignore', fd ?? 'pipe', fd ?? 'pipe'],
        ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
        ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
      });
    } finally {
      if (fd !== null) closeSync(fd);
    }
    if (child.pid === undefined) {
      // spawn failed synchronously (ENOENT is reported through 'error'); make it an exit.
      throw new Error(`cannot start ${name} (${file})`);
    }
    let resolveExit!: (v: { code: number | null; signal: NodeJS.Signals | null }) => void;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => (resolveExit = r));
    const t: Tracked = { name, pid: child.pid, child, killOnAbort: opts.killOnAbort ?? false, exited, exit: null, stdout: '', stderr: '' };
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      if (t.stdout.length < MAX_OUTPUT) t.stdout += s;
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (t.stderr.length < MAX_OUTPUT) t.stderr += s;
    });
    child.on('error', (err) => {
      t.stderr += `${err.message}\n`;
    });
    child.on('close', (code, sig) => {
      t.exit = { code, signal: sig };
      this.live.delete(t);
      resolveExit(t.exit);
    });
    this.live.add(t);
    return t;
  }

  /** Run a command to completion (killed after timeoutMs, or on abort). */
  async run(name: string, file: string, args: string[], opts: SpawnOptions & { timeoutMs: number }): Promise<CommandResult> {
    const t = this.spawn(name, file, args, { killOnAbort: true, ...opts });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void this.stop(t, 'SIGTERM', 3_000);
    }, opts.timeoutMs);
    try {
      const { code, signal: sig } = await t.exited;
      this.check();
      return { code, signal: sig, stdout: t.stdout, stderr: t.stderr, timedOut };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Send `sig` to the process; after graceMs, SIGKILL it and whatever is left in its process group.
   * Resolves when the process and its group are gone (bounded: gives up after two more seconds).
   */
  async stop(t: Tracked, sig: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (t.exit === null) signal(t.pid, sig);
    const graceful = await Promise.race([t.exited.then(() => true), sleep(graceMs, undefined, { ref: false }).then(() => false)]);
    if (!graceful) signal(t.pid, 'SIGKILL');
    // Children in the group (pgpool-II's) get a moment to follow their parent out, then SIGKILL.
    for (let i = 0; i < 20 && groupMembers(t.pid).length > 0; i++) await sleep(100);
    for (const p of groupMembers(t.pid)) signal(p, 'SIGKILL');
    await Promise.race([t.exited, sleep(2_000, undefined, { ref: false })]);
  }

  /** Stop every tracked process (most recent first). */
  async stopAll(graceMs = 5_000): Promise<void> {
    const all = [...this.live].reverse();
    for (const t of all) await this.stop(t, 'SIGTERM', graceMs);
  }

  /** Ctrl-C: refuse new processes and kill running short commands at once. */
  abort(): void {
    this.abortedFlag = true;
    for (const t of this.live) if (t.killOnAbort) void this.stop(t, 'SIGTERM', 2_000);
  }

  /** Last resort before a forced exit: SIGKILL everything we started, synchronously. */
  killAllNow(): void {
    for (const t of this.live) {
      signal(t.pid, 'SIGKILL');
      for (const p of groupMembers(t.pid)) signal(p, 'SIGKILL');
    }
  }

  /** Names and pids still running (for the final "nothing left behind" check). */
  running(): { name: string; pid: number }[] {
    return [...this.live].map((t) => ({ name: t.name, pid: t.pid }));
  }
}

/** Pids whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  return procTable()
    .filter((p) => p.pgrp === pgid)
    .map((p) => p.pid);
}
