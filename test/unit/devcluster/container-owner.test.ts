// Who owns a container of a dev cluster, from its labels: the judgement that decides which containers the next start
// removes. A wrong "gone" would remove a live cluster (another test run's, a fault test's throwaway one).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootId, ownerGone, ownerLabels } from '../../../src/devcluster/containers/owner.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-owner-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function stateFile(dir: string, clusterId: string): void {
  const info = { provider: 'docker', dir, nodes: [{ name: 'node0', host: '127.0.0.1', port: 1, dataDir: '/d' }] };
  writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify({ version: 1, provider: 'docker', info, clusterId }));
}

describe('container ownership', () => {
  it('labels name the cluster, the owner, this host and this boot', () => {
    const labels = ownerLabels('c1', 'process', '/x');
    expect(labels).toMatchObject({ 'pgproxy.devcluster': 'c1', 'pgproxy.owner': `pid:${process.pid}`, 'pgproxy.owner.host': os.hostname() });
    expect(labels['pgproxy.owner.boot']).toBe(bootId());
    expect(ownerLabels('c1', 'dir', '/x/y')['pgproxy.owner']).toBe('dir:/x/y');
  });

  it('a live owner process keeps its containers; an exited one does not', async () => {
    expect(await ownerGone(ownerLabels('c1', 'process', tmp))).toBeNull();
    const gone = { ...ownerLabels('c1', 'process', tmp), 'pgproxy.owner': `pid:${deadPid()}` };
    expect(await ownerGone(gone)).toMatch(/has exited/);
  });

  it("judges only this machine's processes, and none of an earlier boot survives", async () => {
    const dead = { ...ownerLabels('c1', 'process', tmp), 'pgproxy.owner': `pid:${deadPid()}` };
    expect(await ownerGone({ ...dead, 'pgproxy.owner.host': `not-${os.hostname()}` })).toBeNull();
    const earlierBoot = { ...ownerLabels('c1', 'process', tmp), 'pgproxy.owner.boot': 'an-earlier-boot' };
    if (bootId()) expect(await ownerGone(earlierBoot)).toMatch(/before this machine's last boot/);
  });

  it('a directory owner lives while its cluster.json names the cluster', async () => {
    const dir = path.join(tmp, 'cluster');
    const labels = ownerLabels('c2', 'dir', dir);
    expect(await ownerGone(labels)).toMatch(/no longer names cluster c2/);
    mkdirSync(dir);
    stateFile(dir, 'c2');
    expect(await ownerGone(labels)).toBeNull();
    stateFile(dir, 'c3'); // rebuilt since: another cluster
    expect(await ownerGone(labels)).toMatch(/no longer names cluster c2/);
  });

  it('containers without an owner pgproxy understands are never judged gone', async () => {
    expect(await ownerGone({ 'pgproxy.devcluster': 'c4', 'pgproxy.owner.host': os.hostname() })).toBeNull();
    expect(await ownerGone({})).toBeNull();
  });
});
