// bench/cgroups.ts: which cpu controller the database-bound mode uses, and where its groups go.
import { describe, expect, it } from 'vitest';
import { parseCpuStat, parseMountinfo, parseSelfCgroup, planCpuCgroups, quotaUs } from '../../bench/cgroups.js';

// This machine's layout: cgroup v1 controllers, each its own hierarchy, plus a cgroup2 without cpu.
const HYBRID_MOUNTINFO = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const HYBRID_SELF = ['9:name=systemd:/', '4:memory:/process_api/abc', '3:cpuset:/', '2:cpuacct:/', '1:cpu:/', '0::/'].join('\n');

const files = (map: Record<string, string>) => (file: string): string | null => map[file] ?? null;

describe('planCpuCgroups', () => {
  it('hybrid: no cpu in the v2 cgroup.controllers, so the v1 cpu controller, with usage from the separate cpuacct hierarchy', () => {
    const plan = planCpuCgroups(HYBRID_SELF, HYBRID_MOUNTINFO, files({ '/sys/fs/cgroup/unified/cgroup.controllers': 'hugetlb\n' }));
    expect(plan).toEqual({ version: 1, cpuOwn: '/sys/fs/cgroup/cpu', cpuacctOwn: '/sys/fs/cgroup/cpuacct' });
  });

  it('v2 with cpu listed in the own cgroup\'s controllers wins over v1', () => {
    const self = '0::/user.slice/bench.scope\n1:cpu:/';
    const plan = planCpuCgroups(self, HYBRID_MOUNTINFO, files({ '/sys/fs/cgroup/unified/user.slice/bench.scope/cgroup.controllers': 'cpuset cpu io memory pids\n' }));
    expect(plan).toEqual({ version: 2, own: '/sys/fs/cgroup/unified/user.slice/bench.scope' });
  });

  it('pure v2 without cpu in the controllers: no plan, with the reason', () => {
    const mountinfo = '30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate';
    const plan = planCpuCgroups('0::/a/b', mountinfo, files({ '/sys/fs/cgroup/a/b/cgroup.controllers': 'memory pids' }));
    expect(plan).toEqual({ reason: expect.stringMatching(/no cpu controller.*has no cpu controller for \/sys\/fs\/cgroup\/a\/b/) });
  });

  it('v1 with cpu and cpuacct co-mounted: one directory for both', () => {
    const mountinfo = '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct';
    const plan = planCpuCgroups('4:cpu,cpuacct:/docker/x', mountinfo, files({}));
    expect(plan).toEqual({ version: 1, cpuOwn: '/sys/fs/cgroup/cpu,cpuacct/docker/x', cpuacctOwn: '/sys/fs/cgroup/cpu,cpuacct/docker/x' });
  });

  it('a mount of a sub-tree (root not /): the path below the mount root', () => {
    const mountinfo = '32 31 0:29 /docker/x /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n33 31 0:30 /docker/x /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct';
    const plan = planCpuCgroups('2:cpuacct:/docker/x/bench\n1:cpu:/docker/x/bench', mountinfo, files({}));
    expect(plan).toEqual({ version: 1, cpuOwn: '/sys/fs/cgroup/cpu/bench', cpuacctOwn: '/sys/fs/cgroup/cpuacct/bench' });
  });

  it('cpuset and cpuacct are not cpu', () => {
    const mountinfo = '33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset';
    expect(planCpuCgroups('2:cpuacct:/\n3:cpuset:/', mountinfo, files({}))).toEqual({ reason: expect.stringContaining('no cgroup v1 hierarchy with cpu') });
  });
});

describe('parsers', () => {
  it('mountinfo with optional fields and escaped spaces', () => {
    expect(parseMountinfo('36 25 0:31 / /sys/fs/cgroup/my\\040cpu rw,nosuid shared:15 master:2 - cgroup cgroup rw,cpu,cpuacct')).toEqual([
      { root: '/', mountPoint: '/sys/fs/cgroup/my cpu', fsType: 'cgroup', superOptions: ['rw', 'cpu', 'cpuacct'] },
    ]);
  });

  it('/proc/self/cgroup lines, a path with colons kept whole', () => {
    expect(parseSelfCgroup('1:cpu,cpuacct:/a:b\n0::/\n')).toEqual([
      { hierarchy: 1, controllers: ['cpu', 'cpuacct'], path: '/a:b' },
      { hierarchy: 0, controllers: [], path: '/' },
    ]);
  });

  it('cpu.stat', () => {
    expect(parseCpuStat('nr_periods 10\nnr_throttled 4\nthrottled_time 123456\n')).toEqual({ nr_periods: 10, nr_throttled: 4, throttled_time: 123456 });
  });

  it('quota for a share of a core over the 10 ms period', () => {
    expect(quotaUs(0.3)).toBe(3000);
    expect(quotaUs(1.5)).toBe(15000);
    expect(quotaUs(0.3, 100_000)).toBe(30000);
  });
});
