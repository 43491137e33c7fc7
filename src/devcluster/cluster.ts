// The dev cluster for `pgproxy demo`, `pgproxy cluster`, the integration tests and the benchmarks: one primary
// (node0) and N streaming standbys (node1..N) built with initdb and pg_basebackup -R -X stream over physical
// replication slots, behind one interface (DevCluster) and two providers:
//   local/       the PostgreSQL binaries on this machine, processes we start (LocalCluster)
//   containers/  one container per node through testcontainers (ContainerCluster, loaded only when used)
// provider.ts picks one (startCluster, openCluster); cluster-base.ts is what both do alike over SQL connections.
// This module is what callers import.
import path from 'node:path';
import { DEFAULT_CLUSTER_DIR } from './cluster-types.js';

export type {
  ClusterInfo,
  ClusterNodeInfo,
  ClusterOptions,
  ClusterUser,
  ClusterUsers,
  DevCluster,
  NodeStatus,
  ProviderName,
  StopMode,
} from './cluster-types.js';
export { ClusterNodeError, DEFAULT_BASE_PORT, DEFAULT_CLUSTER_DIR, DEV_DATABASE, DEV_USERS, PROVIDERS } from './cluster-types.js';
export type { ContainerClusterInfo, ContainerClusterOptions } from './containers/cluster.js';
export { LocalCluster, type LocalClusterInfo } from './local/cluster.js';
export { NoProviderError, openCluster, providerFromEnv, startCluster, type StartOptions } from './provider.js';
export { fallbackDir, STATE_FILE } from './state.js';

/** The default cluster directory for the current working directory. */
export function defaultClusterDir(): string {
  return path.resolve(DEFAULT_CLUSTER_DIR);
}

