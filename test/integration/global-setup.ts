// Vitest global setup for the integration project: one fresh cluster (primary + 2 standbys)
// on free ports in a fresh directory, shared by every test file through inject('cluster').
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { type ClusterInfo, LocalCluster } from '../../src/devcluster/cluster.js';
import type {} from './helpers/cluster.js'; // ProvidedContext augmentation

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
      await cluster.down({ purge: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}
