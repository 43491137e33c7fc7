// Cluster access for integration tests: the shared cluster built by global-setup.ts, and
// throwaway clusters for tests that kill, stop or promote nodes. Both come from the provider PGPROXY_CLUSTER names
// (local binaries, or containers with PGPROXY_CLUSTER=docker and the image in PGPROXY_IMAGE; tests never pull).
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import {
  type ClusterInfo,
  type ClusterUser,
  type DevCluster,
  type LocalCluster,
  openCluster,
  type ProviderName,
  providerFromEnv,
  type StartOptions,
  startCluster,
} from '../../../src/devcluster/cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

/** The cluster shared by all integration test files (1 primary + 2 standbys). Do not stop, kill or promote its nodes. */
export function sharedCluster(): ClusterInfo {
  return inject('cluster');
}

/** The provider of this run's clusters: PGPROXY_CLUSTER, else what global-setup.ts found (local binaries first). */
export function clusterProvider(): ProviderName {
  try {
    return inject('cluster').provider;
  } catch {
    return providerFromEnv() ?? 'local'; // not under our global setup
  }
}

/** A handle on the shared cluster, for query() and waitForReplay(). */
export async function sharedClusterHandle(): Promise<DevCluster> {
  const info = sharedCluster();
  const c = await openCluster(info.dir);
  if (!c) throw new Error(`shared cluster state missing in ${info.dir}`);
  return c;
}

/** A connected node-postgres client to node `i` of `info` (default: app user, database app). Caller ends it. */
export async function connectNode(
  info: ClusterInfo,
  i: number,
  user: ClusterUser = info.users.app,
  database: string = info.database,
): Promise<pg.Client> {
  const n = info.nodes[i];
  if (!n) throw new RangeError(`no node ${i}`);
  const client = new pg.Client({
    host: n.host,
    port: n.port,
    user: user.name,
    password: user.password,
    database,
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  return client;
}

/** Directory under which global-setup.ts looks for throwaway clusters left running. */
export const THROWAWAY_SUBDIR = 'throwaway';

type ThrowawayOptions = Omit<StartOptions, 'dir' | 'basePort' | 'pull' | 'owner'>;

/**
 * A cluster of its own (own directory, own free ports) for tests that break nodes, from this run's provider unless
 * `provider` says otherwise (a test that writes into data directories needs 'local'). The caller
 * must `await cluster.down({ purge: true })`, typically in afterAll; one forgotten is stopped
 * and removed by the global teardown (its directory lives inside the shared cluster's).
 */
export async function throwawayCluster(opts: ThrowawayOptions & { provider: 'local' }): Promise<LocalCluster>;
export async function throwawayCluster(opts?: ThrowawayOptions): Promise<DevCluster>;
export async function throwawayCluster(opts: ThrowawayOptions = {}): Promise<DevCluster> {
  let root: string;
  try {
    root = path.join(inject('cluster').dir, THROWAWAY_SUBDIR);
  } catch {
    root = os.tmpdir(); // not under our global setup
  }
  await mkdir(root, { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(path.join(root, 'pgproxy-throwaway-'));
  return startCluster({ standbys: 2, provider: clusterProvider(), ...opts, dir, basePort: 0, pull: false });
}
