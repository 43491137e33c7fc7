/** What a dev cluster's nodes and roles are (shared by the cluster builder and its configuration files). */
export interface ClusterNodeInfo {
  name: string;
  host: string;
  port: number;
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
