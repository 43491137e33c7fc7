// Vitest global setup for the integration project: one fresh cluster (primary + 2 standbys)
// on free ports in a fresh directory, shared by every test file through inject('cluster'). The provider comes from
// PGPROXY_CLUSTER (docker: containers of the image in PGPROXY_IMAGE, never pulled), else local binaries when this
// machine has them, else containers when an engine answers.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { type ClusterInfo, type DevCluster, openCluster, startCluster } from '../../src/devcluster/cluster.js';
// Also brings in the ProvidedContext augmentation. A value import (not `import type`) is
// fine: helpers/cluster.ts only calls vitest's inject() inside functions.
import { THROWAWAY_SUBDIR } from './helpers/cluster.js';

/** Clusters of earlier runs that were killed before their teardown (their owner process is gone). */
async function removeAbandonedClusters(): Promise<void> {
  for (const name of await readdir(os.tmpdir())) {
    if (!name.startsWith('pgproxy-it-')) continue;
    const dir = path.join(os.tmpdir(), name);
    const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => '0'));
    if (owner > 0 && isAlive(owner)) continue;
    if (owner === 0) continue; // not ours to judge (no owner recorded)
    await stopClustersUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Stops the throwaway clusters under a run's directory, then the run's shared cluster. */
async function stopClustersUnder(dir: string): Promise<void> {
  const root = path.join(dir, THROWAWAY_SUBDIR);
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const leftover = await openCluster(path.join(root, name)).catch(() => null);
    await leftover?.down({ purge: true }).catch(() => undefined);
  }
  const shared = await openCluster(dir).catch(() => null);
  await shared?.down({ purge: true }).catch(() => undefined);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await removeAbandonedClusters();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgproxy-it-'));
  let cluster: DevCluster;
  try {
    // basePort 0: random free ports away from the default cluster's 15432...
    cluster = await startCluster({ dir, standbys: 2, basePort: 0, pull: false });
    await writeFile(path.join(dir, 'owner.pid'), String(process.pid));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // A plain, serialisable copy: it crosses into the test workers.
  const info: ClusterInfo = JSON.parse(JSON.stringify(cluster.info)) as ClusterInfo;
  project.provide('cluster', info);

  return async () => {
    try {
      // Throwaway clusters a test forgot to take down (or could not, because it failed), then the shared one.
      await stopClustersUnder(dir);
      await cluster.down({ purge: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}
