// Who a container belongs to, told by its labels, and the removal of containers whose owner is gone. Ryuk is not
// used, so a crash leaves containers behind until the next start of a container cluster removes them here.
// Only containers with pgproxy's labels are ever judged, and only ones whose owner is provably gone are removed:
// testcontainers' own labels are shared by every run on the engine (another test run, or a fault test's
// throwaway cluster running at this very moment).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Log } from '../cluster-base.js';
import { type ClusterStateBase, readState } from '../state.js';
import type { Engine } from './engine.js';

/** On every container and network of a container cluster; its value is the cluster's id. */
export const CLUSTER_LABEL = 'pgproxy.devcluster';
export const NODE_LABEL = 'pgproxy.node';
const OWNER_LABEL = 'pgproxy.owner';
const HOST_LABEL = 'pgproxy.owner.host';
const BOOT_LABEL = 'pgproxy.owner.boot';
/** Set from PGPROXY_RUN_LABEL (CI): lets a CI run's trap remove exactly its own containers. */
const RUN_LABEL = 'pgproxy.run';

/**
 * process: the cluster lives as long as the process that built it (the tests, the demo); its `down` removes it, and
 * once the process is gone any later start removes what is left. dir: it lives until `pgproxy cluster down`, as
 * long as its directory's cluster.json names it (`pgproxy cluster up`, which exits at once).
 */
export type OwnerKind = 'process' | 'dir';

let cachedBootId: string | undefined;

/** Identifies this boot of this machine: pids of an earlier boot are all gone. */
export function bootId(): string {
  if (cachedBootId !== undefined) return cachedBootId;
  let id = '';
  try {
    id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // macOS and the BSDs: the boot time in seconds.
    const r = spawnSync('sysctl', ['-n', 'kern.boottime'], { encoding: 'utf8', timeout: 5_000 });
    id = /sec = (\d+)/.exec(r.stdout ?? '')?.[1] ?? '';
  }
  cachedBootId = id;
  return id;
}

export function ownerLabels(clusterId: string, kind: OwnerKind, dir: string): Record<string, string> {
  const labels: Record<string, string> = {
    [CLUSTER_LABEL]: clusterId,
    [OWNER_LABEL]: kind === 'process' ? `pid:${process.pid}` : `dir:${dir}`,
    [HOST_LABEL]: os.hostname(),
    [BOOT_LABEL]: bootId(),
  };
  const run = process.env.PGPROXY_RUN_LABEL;
  if (run) labels[RUN_LABEL] = run;
  return labels;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why the owner named by `labels` is gone, or null while it may be alive (or is not ours to judge). */
export async function ownerGone(labels: Record<string, string>): Promise<string | null> {
  const owner = labels[OWNER_LABEL] ?? '';
  const clusterId = labels[CLUSTER_LABEL] ?? '';
  if (owner.startsWith('dir:')) {
    const dir = owner.slice(4);
    const state = await readState<ClusterStateBase & { clusterId?: string }>(dir).catch(() => null);
    return state?.clusterId === clusterId ? null : `${dir} no longer names cluster ${clusterId}`;
  }
  // Another machine's process (an engine shared between machines): not ours to judge.
  if (labels[HOST_LABEL] !== os.hostname()) return null;
  const pid = Number(/^pid:(\d+)$/.exec(owner)?.[1] ?? 0);
  if (!pid) return null;
  if (labels[BOOT_LABEL] && bootId() && labels[BOOT_LABEL] !== bootId()) return `owner pid ${pid} ran before this machine's last boot`;
  return isAlive(pid) ? null : `owner pid ${pid} has exited`;
}

/** Remove the containers (and bridge networks) of container clusters whose owner is gone. Returns how many containers. */
export async function removeAbandoned(engine: Engine, log: Log): Promise<number> {
  const byCluster = new Map<string, { ids: string[]; labels: Record<string, string> }>();
  for (const c of await engine.listLabelled(CLUSTER_LABEL)) {
    const id = c.Labels?.[CLUSTER_LABEL] ?? '';
    const entry = byCluster.get(id) ?? { ids: [], labels: c.Labels ?? {} };
    entry.ids.push(c.Id);
    byCluster.set(id, entry);
  }
  let removed = 0;
  for (const [clusterId, { ids, labels }] of byCluster) {
    const why = await ownerGone(labels);
    if (why === null) continue;
    log.warn({ cluster: clusterId, containers: ids.length, why }, `removing ${ids.length} container(s) of an abandoned dev cluster (${why})`);
    await Promise.all(ids.map((id) => engine.remove(id)));
    removed += ids.length;
  }
  // Bridge networks carry the same labels; their containers went above.
  for (const net of await engine.listLabelledNetworks(CLUSTER_LABEL)) {
    if ((await ownerGone(net.labels)) !== null) await engine.removeNetwork(net.name);
  }
  return removed;
}
