/**
 * CPU caps for the database-bound benchmark: one cgroup per PostgreSQL server of the bench cluster, each capped at
 * a fraction of a core, so that each server behaves like a separate, smaller machine.
 *
 * - Where: under the benchmark process's own cgroup (/proc/self/cgroup), in a parent `pgproxy-bench-<pid>` that
 *   holds one group per server. cgroup v2 `cpu.max` where `cpu` is listed in the v2 `cgroup.controllers`,
 *   otherwise the v1 `cpu` controller (`cpu.cfs_period_us` / `cpu.cfs_quota_us`), with usage from v1 `cpuacct`.
 * - Period 10 ms: with the default 100 ms a 30 % quota stalls a server for 70 ms at a time, which dominates p99.
 * - What moves: each server's postmaster (from postmaster.pid), then its children; backends forked later inherit
 *   the postmaster's cgroup. Nothing else is touched.
 * - release() moves every process left back to where it came from and removes the groups. It is synchronous, so
 *   the forced-exit path of a Ctrl-C can run it too.
 *
 * The path choice (planCpuCgroups) is pure and unit-tested; everything else is file I/O on the cgroup mounts.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { childPids } from '../src/devcluster/procs.js';

/** CFS period for the caps, in µs (10 ms). */
export const CFS_PERIOD_US = 10_000;
/** The kernel refuses a CFS quota under 1 ms. */
export const MIN_QUOTA_US = 1_000;
/** How long release() keeps moving processes out of a group and trying to remove it. */
const RELEASE_TIMEOUT_MS = 3_000;

export interface MountEntry {
  /** The directory of the hierarchy that is mounted (field 4 of mountinfo): '/' unless a sub-tree is bind-mounted. */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** /proc/self/mountinfo lines: `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 6 || f.length < dash + 4) continue;
    out.push({ root: unescapeMount(f[3]!), mountPoint: unescapeMount(f[4]!), fsType: f[dash + 1]!, superOptions: f[dash + 3]!.split(',') });
  }
  return out;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040...). */
const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export interface SelfCgroupLine {
  hierarchy: number;
  /** Controllers of a v1 hierarchy (`cpu`, `cpu,cpuacct`, `name=systemd`); empty for the v2 line (`0::/path`). */
  controllers: string[];
  path: string;
}

export function parseSelfCgroup(text: string): SelfCgroupLine[] {
  const out: SelfCgroupLine[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const list = line.slice(a + 1, b);
    out.push({ hierarchy: Number(line.slice(0, a)), controllers: list === '' ? [] : list.split(','), path: line.slice(b + 1) });
  }
  return out;
}

export type CgroupPlan =
  | { version: 2; /** The process's own cgroup directory. */ own: string }
  | { version: 1; /** Own cgroup directory in the `cpu` hierarchy. */ cpuOwn: string; /** ...in the `cpuacct` hierarchy (the same when co-mounted), or null. */ cpuacctOwn: string | null };

/** Where a cgroup path of a hierarchy lives on disk: the mount point plus the path below the mount's root. */
function dirOf(mount: MountEntry, cgroupPath: string): string {
  const root = mount.root === '/' ? '' : mount.root;
  const rel = root !== '' && (cgroupPath === root || cgroupPath.startsWith(`${root}/`)) ? cgroupPath.slice(root.length) : cgroupPath;
  const dir = path.join(mount.mountPoint, rel);
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

/**
 * Which cpu controller to use and where the process's own cgroup is, from /proc/self/cgroup and
 * /proc/self/mountinfo. `readText` reads a file (null when unreadable): the v2 `cgroup.controllers`.
 * Returns a reason instead when there is no usable cpu controller.
 */
export function planCpuCgroups(selfCgroup: string, mountinfo: string, readText: (file: string) => string | null): CgroupPlan | { reason: string } {
  const lines = parseSelfCgroup(selfCgroup);
  const mounts = parseMountinfo(mountinfo);
  const v2line = lines.find((l) => l.hierarchy === 0 && l.controllers.length === 0);
  const v2mount = mounts.find((m) => m.fsType === 'cgroup2');
  let v2note = 'no cgroup2 mount';
  if (v2line && v2mount) {
    const own = dirOf(v2mount, v2line.path);
    const controllers = (readText(path.join(own, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
    if (controllers.includes('cpu')) return { version: 2, own };
    v2note = `cgroup2 at ${v2mount.mountPoint} has no cpu controller for ${own}`;
  }
  const v1 = (controller: string): string | null => {
    const line = lines.find((l) => l.hierarchy > 0 && l.controllers.includes(controller));
    const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller));
    return line && mount ? dirOf(mount, line.path) : null;
  };
  const cpuOwn = v1('cpu');
  if (cpuOwn === null) return { reason: `no cpu controller: ${v2note}, and no cgroup v1 hierarchy with cpu` };
  return { version: 1, cpuOwn, cpuacctOwn: v1('cpuacct') };
}

/** The plan for this process, read from /proc. */
export function planForThisProcess(): CgroupPlan | { reason: string } {
  const read = (file: string): string | null => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return null;
    }
  };
  const self = read('/proc/self/cgroup');
  const mountinfo = read('/proc/self/mountinfo');
  if (self === null || mountinfo === null) return { reason: 'no /proc/self/cgroup or /proc/self/mountinfo (not Linux?)' };
  return planCpuCgroups(self, mountinfo, read);
}

/** The CFS quota in µs for `cores` of CPU per period (0.3 -> 3000 µs of every 10,000). */
export function quotaUs(cores: number, periodUs = CFS_PERIOD_US): number {
  return Math.round(cores * periodUs);
}

/** What a server's cgroup has counted so far. */
export interface CpuReading {
  /** CPU time used, ns (cpuacct.usage or cpu.stat usage_usec); null when not available. */
  usageNs: number | null;
  nrPeriods: number;
  nrThrottled: number;
  throttledNs: number;
}

/** `key value` lines of cpu.stat. */
export function parseCpuStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

/** One server's group(s): the cpu group, and the cpuacct group when that is a separate hierarchy. */
interface ServerGroup {
  name: string;
  dirs: { dir: string; home: string }[];
  cpuDir: string;
  usageDir: string | null;
}

export class CapError extends Error {}

export class CpuCaps {
  private released = false;

  private constructor(
    private readonly plan: CgroupPlan,
    /** Parent groups, created by us: [dir] per hierarchy. */
    private readonly parents: string[],
    private readonly groups: ServerGroup[],
    readonly capCores: number,
  ) {}

  /** The groups, capped at `capCores` each; throws CapError (with nothing left behind) when they cannot be made. */
  static create(plan: CgroupPlan, servers: readonly string[], capCores: number, tag = `pgproxy-bench-${process.pid}`): CpuCaps {
    const quota = quotaUs(capCores);
    if (quota < MIN_QUOTA_US) throw new CapError(`a cap of ${capCores} core is a quota of ${quota} µs per ${CFS_PERIOD_US} µs; the kernel needs at least ${MIN_QUOTA_US}`);
    const made: string[] = [];
    const mk = (dir: string): void => {
      mkdirSync(dir);
      made.push(dir);
    };
    try {
      if (plan.version === 2) {
        enableCpuBelow(plan.own);
        const parent = path.join(plan.own, tag);
        mk(parent);
        writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+cpu');
        const groups = servers.map((name): ServerGroup => {
          const dir = path.join(parent, name);
          mk(dir);
          writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${CFS_PERIOD_US}`);
          return { name, dirs: [{ dir, home: plan.own }], cpuDir: dir, usageDir: dir };
        });
        return new CpuCaps(plan, [parent], groups, capCores);
      }
      const parent = path.join(plan.cpuOwn, tag);
      const acctParent = plan.cpuacctOwn !== null && plan.cpuacctOwn !== plan.cpuOwn ? path.join(plan.cpuacctOwn, tag) : null;
      mk(parent);
      if (acctParent) mk(acctParent);
      const groups = servers.map((name): ServerGroup => {
        const dir = path.join(parent, name);
        mk(dir);
        // Period first: the quota is checked against it.
        writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
        writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
        const dirs = [{ dir, home: plan.cpuOwn }];
        let usageDir: string | null = plan.cpuacctOwn === plan.cpuOwn ? dir : null;
        if (acctParent) {
          const acct = path.join(acctParent, name);
          mk(acct);
          dirs.push({ dir: acct, home: plan.cpuacctOwn! });
          usageDir = acct;
        }
        return { name, dirs, cpuDir: dir, usageDir };
      });
      return new CpuCaps(plan, acctParent ? [parent, acctParent] : [parent], groups, capCores);
    } catch (err) {
      for (const dir of made.reverse()) tryRmdir(dir);
      const e = err as NodeJS.ErrnoException;
      const denied = e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS';
      throw new CapError(`${denied ? 'no permission to create cgroups' : 'could not create cgroups'}: ${e.message}`);
    }
  }

  /** One line for the report: which controller, where, the cap. */
  describe(): string {
    const quota = quotaUs(this.capCores);
    if (this.plan.version === 2) return `cgroup v2 cpu.max "${quota} ${CFS_PERIOD_US}" per server, groups under ${this.parents[0]}`;
    const usage = this.groups[0]?.usageDir ? 'usage from cpuacct.usage' : 'no cpuacct: usage not measured';
    return `cgroup v1 cpu controller, cpu.cfs_period_us ${CFS_PERIOD_US} and cpu.cfs_quota_us ${quota} per server, groups under ${this.parents.join(' and ')} (${usage})`;
  }

  get servers(): string[] {
    return this.groups.map((g) => g.name);
  }

  /**
   * Moves a server into its group: the postmaster first (so whatever it forks from now on lands in the group),
   * then its children. Returns how many processes moved.
   */
  move(server: string, postmasterPid: number): number {
    const g = this.group(server);
    let moved = 0;
    for (const pid of [postmasterPid, ...childPids(postmasterPid)]) {
      let ok = true;
      for (const { dir } of g.dirs) ok = writePid(dir, pid) && ok;
      if (ok) moved++;
    }
    return moved;
  }

  read(server: string): CpuReading {
    const g = this.group(server);
    const stat = parseCpuStat(readOr(path.join(g.cpuDir, 'cpu.stat')));
    if (this.plan.version === 2) {
      return {
        usageNs: stat.usage_usec !== undefined ? stat.usage_usec * 1000 : null,
        nrPeriods: stat.nr_periods ?? 0,
        nrThrottled: stat.nr_throttled ?? 0,
        throttledNs: (stat.throttled_usec ?? 0) * 1000,
      };
    }
    const usage = g.usageDir ? Number(readOr(path.join(g.usageDir, 'cpuacct.usage')).trim()) : NaN;
    return { usageNs: Number.isFinite(usage) ? usage : null, nrPeriods: stat.nr_periods ?? 0, nrThrottled: stat.nr_throttled ?? 0, throttledNs: stat.throttled_time ?? 0 };
  }

  /**
   * Moves every process still in a group back to the cgroup it came from and removes the groups. Idempotent;
   * returns what could not be done (empty when everything is gone).
   */
  release(): string[] {
    if (this.released) return [];
    const problems: string[] = [];
    for (const g of this.groups) {
      for (const { dir, home } of g.dirs) {
        // A postmaster may fork while its children move, and exiting backends leave late: retry for a while.
        const deadline = Date.now() + RELEASE_TIMEOUT_MS;
        const failed = new Map<number, string>();
        let pids = procsOf(dir);
        while (pids.length > 0 && Date.now() < deadline) {
          for (const pid of pids) {
            try {
              writePid(home, pid);
            } catch (err) {
              failed.set(pid, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
            }
          }
          sleepSync(10);
          pids = procsOf(dir);
        }
        let removed = tryRmdir(dir);
        while (!removed && Date.now() < deadline) {
          sleepSync(20);
          removed = tryRmdir(dir);
        }
        if (!removed) {
          const left = procsOf(dir).map((pid) => `${pid} ${processText(pid)}${failed.has(pid) ? ` (moving it: ${failed.get(pid)})` : ''}`);
          problems.push(`could not remove ${dir}${left.length > 0 ? `; still in it: ${left.join(', ')}` : ''}`);
        }
      }
    }
    for (const p of this.parents) if (!tryRmdir(p)) problems.push(`could not remove ${p}`);
    this.released = problems.length === 0;
    return problems;
  }

  private group(server: string): ServerGroup {
    const g = this.groups.find((x) => x.name === server);
    if (!g) throw new Error(`no cgroup for ${server}`);
    return g;
  }
}

/** v2: a group can only have cpu-capped children when `cpu` is in its subtree_control. */
function enableCpuBelow(own: string): void {
  const file = path.join(own, 'cgroup.subtree_control');
  if (readOr(file).split(/\s+/).includes('cpu')) return;
  try {
    writeFileSync(file, '+cpu');
  } catch (err) {
    // EBUSY: a non-root cgroup that holds processes (ours) may not enable controllers for its children.
    throw Object.assign(new Error(`cannot enable the cpu controller below ${own} (${(err as Error).message})`), { code: (err as NodeJS.ErrnoException).code });
  }
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function procsOf(dir: string): number[] {
  return readOr(path.join(dir, 'cgroup.procs'))
    .split('\n')
    .filter(Boolean)
    .map(Number);
}

/** One pid per write to cgroup.procs; a process that has gone meanwhile (ESRCH) is not an error. */
function writePid(dir: string, pid: number): boolean {
  try {
    writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** "postgres S" from /proc/<pid>/stat, for messages. */
function processText(pid: number): string {
  const stat = readOr(`/proc/${pid}/stat`);
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  return open < 0 || close < 0 ? 'gone' : `${stat.slice(open + 1, close)} ${stat.slice(close + 2, close + 3)}`;
}

function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** A short synchronous pause (release() also runs from the forced-exit path, where nothing async runs). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
