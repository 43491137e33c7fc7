// What a dev cluster is, whichever provider built it: its nodes and roles, and what callers may do with it.
import type pg from 'pg';
import type { Logger } from 'pino';

/** Who builds and runs the nodes: PostgreSQL binaries on this machine, or containers (testcontainers). */
export type ProviderName = 'local' | 'docker';
export const PROVIDERS: readonly ProviderName[] = ['local', 'docker'];

export interface ClusterNodeInfo {
  name: string;
  /** Where pgproxy and the tests connect. */
  host: string;
  port: number;
  /** The data directory: on this machine (local), or inside the node's container (docker). */
  dataDir: string;
}
export interface ClusterUser {
  name: string;
  password: string;
}
export interface ClusterUsers {
  /** 'postgres' / 'postgres', SCRAM password. */
  superuser: ClusterUser;
  /** 'app' / 'app-secret', stored as md5; pg_hba requires md5 for it. */
  app: ClusterUser;
  /** 'app_scram' / 'scram-secret', SCRAM password. */
  scram: ClusterUser;
  /** 'pgproxy_monitor' / 'monitor-secret', granted pg_monitor; pgproxy's health checker. */
  monitor: ClusterUser;
  /** 'replicator' / 'repl-secret', REPLICATION role used by the standbys. */
  replication: ClusterUser;
}
export interface ClusterInfo {
  provider: ProviderName;
  /** Where the cluster's state (cluster.json) lives; for the local provider also its data directories. */
  dir: string;
  nodes: ClusterNodeInfo[];
  users: ClusterUsers;
  /** 'app' */
  database: string;
}

/** Fixed, public development credentials (never use them outside a dev cluster). */
export const DEV_USERS: ClusterUsers = Object.freeze({
  superuser: { name: 'postgres', password: 'postgres' },
  app: { name: 'app', password: 'app-secret' },
  scram: { name: 'app_scram', password: 'scram-secret' },
  monitor: { name: 'pgproxy_monitor', password: 'monitor-secret' },
  replication: { name: 'replicator', password: 'repl-secret' },
});
export const DEV_DATABASE = 'app';
export const DEFAULT_CLUSTER_DIR = '.pgproxy/cluster';
export const DEFAULT_BASE_PORT = 15432;
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface ClusterOptions {
  /** Default: path.resolve('.pgproxy/cluster'). As root, a directory the postgres OS user cannot reach is replaced by one under os.tmpdir() (local provider). */
  dir?: string;
  /** Default 2. */
  standbys?: number;
  /**
   * Default 15432 (node0=15432, node1=15433, ...). Ports taken by something else are replaced
   * by free ones (logged). 0: any free ports (random, away from 15432 and the ephemeral range).
   */
  basePort?: number;
  /** synchronous_standby_names = 'node1' (first standby), synchronous_commit on. */
  synchronousStandby?: boolean;
  logger?: Logger;
  /** Bound on each wait (server start, streaming, promotion). Default 60 s. */
  timeoutMs?: number;
}

export interface NodeStatus {
  name: string;
  port: number;
  up: boolean;
  /** pg_is_in_recovery(); null when down. */
  inRecovery: boolean | null;
  /** pg_current_wal_lsn() on a primary, pg_last_wal_replay_lsn() on a standby; null when down. */
  lsn: string | null;
  /** The postmaster's pid on this machine (local) or the container's main process (docker) while it runs, else null. */
  pid: number | null;
}

export type StopMode = 'smart' | 'fast' | 'immediate';

/** A running (or stopped) dev cluster: what the demo, the CLI, the tests and the benchmarks use, on either provider. */
export interface DevCluster {
  readonly info: ClusterInfo;
  /** True when the cluster lives somewhere else than the directory asked for (local provider as root). */
  readonly relocated: boolean;
  /** Stop every node. Local: data kept unless `purge`. Docker: every container is removed (its data with it). `purge` also removes the state directory. */
  down(opts?: { purge?: boolean }): Promise<void>;
  status(): Promise<NodeStatus[]>;

  /** Stop node i (pg_ctl stop's modes); a no-op when it is not running. */
  stopNode(i: number, mode?: StopMode): Promise<void>;
  /** Start node i (no-op when running; resumes it when suspended) and wait until it accepts connections. */
  startNode(i: number): Promise<void>;

  /** Signal node i's postmaster (default SIGKILL): a crash. After SIGKILL, resolves once the postmaster is gone. */
  killNode(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Freeze node i and all its processes: new and existing sessions hang. */
  suspendNode(i: number): Promise<void>;
  /** Undo suspendNode (a no-op when node i is not suspended). */
  resumeNode(i: number): Promise<void>;
  /** Promote node i and wait until pg_is_in_recovery() is false. */
  promote(i: number): Promise<void>;

  /** node-postgres connection settings for node i (default: superuser, database 'app'). */
  connectionConfig(i: number, user?: ClusterUser, database?: string): pg.ClientConfig;
  /** A postgres:// URL for node i (contains the password). */
  connectionString(i: number, user?: ClusterUser, database?: string): string;
  /** One-shot query on node i (default superuser, database 'app'). */
  query<T = any>(i: number, sql: string, params?: unknown[], user?: ClusterUser, database?: string): Promise<T[]>;
  /** Until every up standby's replay LSN >= its upstream's current WAL LSN (taken once, now). */
  waitForReplay(timeoutMs?: number): Promise<void>;
}

/** An error about one node, with the tail of its server log. */
export class ClusterNodeError extends Error {
  readonly code = 'DEVCLUSTER_NODE_ERROR';
  constructor(
    readonly node: string,
    message: string,
    readonly logTail: string,
  ) {
    super(`${node}: ${message}${logTail ? `\n--- last lines of ${node}'s server log ---\n${logTail}` : ''}`);
    this.name = 'ClusterNodeError';
  }
}
