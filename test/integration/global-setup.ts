// Vitest global setup for the integration project: one fresh cluster (primary + 2 standbys)
// on free ports in a fresh directory, shared by every test file through inject('cluster').
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { type ClusterInfo, LocalCluster } from '../../src/devcluster/cluster.js';
// Also brings in the ProvidedContext augmentation. A value import (not `import type`) is
// fine: helpers/cluster.ts only calls vitest's inject() inside functions.
import { THROWAWAY_SUBDIR } from './helpers/cluster.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgproxy-it-'));
  let cluster: LocalCluster;
  try {
    // basePort 0: random free ports away from the default cluster's 15432...
    cluster = await LocalCluster.up({ dir, standbys: 2, basePort: 0 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // A plain, serialisable copy: it crosses into the test workers.
  const info: ClusterInfo = JSON.parse(JSON.stringify(cluster.info)) as ClusterInfo;
  project.provide('cluster', info);

  return async () => {
    try {
      // Throwaway clusters a test forgot to take down (or could not, because it failed).
      const root = path.join(dir, THROWAWAY_SUBDIR);
      for (const name of await readdir(root).catch(() => [] as string[])) {
        const leftover = await LocalCluster.open(path.join(root, name)).catch(() => null);
        await leftover?.down({ purge: true }).catch(() => undefined);
      }
      await cluster.down({ purge: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}
