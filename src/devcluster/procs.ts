// Postmaster processes of a data directory: pid from postmaster.pid, liveness, children.
// Linux /proc is used where available; elsewhere we fall back to plain kill(pid, 0).
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

const HAVE_PROC = existsSync('/proc/self/stat');

/** The pid written in `dataDir/postmaster.pid`, or null when there is no (readable) pid file. */
export function readPostmasterPid(dataDir: string): number | null {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text.split('\n', 1)[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else (we are not root).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function procCwd(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}

function realOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * True when `pid` is a live postgres process working in `dataDir`. Guards against a stale
 * postmaster.pid whose pid has been reused by an unrelated process (common in containers).
 */
export function isPostgresOf(pid: number, dataDir: string): boolean {
  if (!isAlive(pid)) return false;
  if (!HAVE_PROC) return true;
  // A killed postmaster whose parent (often PID 1 in a container) does not reap it lingers
  // as a zombie: kill(pid, 0) still succeeds, but it is not running.
  const state = procState(pid);
  if (state === null || state === 'Z' || state === 'X') return false;
  const cwd = procCwd(pid);
  // Unreadable cwd (not root, other user's process): trust the pid file.
  if (cwd === null) return true;
  return cwd === realOr(dataDir);
}

/** Pid of the running postmaster of `dataDir`, or null when it is not running. */
export function runningPostmaster(dataDir: string): number | null {
  const pid = readPostmasterPid(dataDir);
  return pid !== null && isPostgresOf(pid, dataDir) ? pid : null;
}

/** True when `pid` is stopped by a signal (SIGSTOP): state T in /proc. */
export function isStopped(pid: number): boolean {
  return procState(pid) === 'T';
}

/** Single-letter process state from /proc/<pid>/stat (R, S, T, Z, ...), null when gone. */
function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ..." where comm may contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]);
  } catch {
    return null;
  }
}

function allPids(): number[] {
  if (!HAVE_PROC) return [];
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Direct children of `pid` (postgres backends and auxiliary processes of a postmaster). */
export function childPids(pid: number): number[] {
  return allPids().filter((p) => parentOf(p) === pid);
}

/**
 * Processes whose working directory is `dataDir`: every postgres process of that cluster,
 * including children orphaned by a killed postmaster that have not noticed its death yet.
 */
export function processesIn(dataDir: string): number[] {
  const dir = realOr(dataDir);
  return allPids().filter((p) => procCwd(p) === dir && procState(p) !== 'Z');
}

/** Send `signal` and ignore "no such process". */
export function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
