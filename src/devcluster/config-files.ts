// Text of the configuration files the dev cluster writes into each data directory.
import type { ClusterNodeInfo, ClusterUsers } from './cluster-types.js';

/** File included from postgresql.conf; rewritten per node (a standby gets a copy from pg_basebackup). */
export const NODE_CONF_FILE = 'pgproxy.conf';

/** Unix socket paths are limited to sizeof(sun_path) - 1 = 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

/** `dir` when `dir/.s.PGSQL.<port>` fits in a Unix socket path, else null (TCP only). */
export function socketDirFor(dir: string, port: number): string | null {
  return Buffer.byteLength(`${dir}/.s.PGSQL.${port}`) <= MAX_SOCKET_PATH ? dir : null;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export interface NodeConfOptions {
  /** Where the server's Unix socket goes; null: none (TCP only). */
  socketDir: string | null;
  /** Default: the node's host (a loopback address). A container on a bridge network listens on '*'. */
  listen?: string;
  /** Default: the node's port. A container on a bridge network listens on 5432, mapped to the node's port. */
  port?: number;
}

export function nodeConf(node: ClusterNodeInfo, { socketDir, listen = node.host, port = node.port }: NodeConfOptions): string {
  return `# Written by pgproxy devcluster for ${node.name}; rewritten on cluster creation.
# A local development/test cluster: do not copy these settings to production.

listen_addresses = ${quote(listen)}
port = ${port}
# Empty = no Unix socket (the path would exceed the 107-byte limit); pg_ctl -w still works.
unix_socket_directories = ${quote(socketDir ?? '')}
unix_socket_permissions = 0700
# Also the default application_name of this node's walreceiver, so the primary's
# pg_stat_replication and synchronous_standby_names see standbys by node name.
cluster_name = ${quote(node.name)}

max_connections = 300
shared_buffers = 64MB

wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
# pg_rewind needs hint bits WAL-logged to fail an old primary back as a standby.
wal_log_hints = on
hot_standby = on
hot_standby_feedback = on

shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_utility = on

# Dev/test cluster on a small machine: never wait for the disk. A crash of the server
# process loses nothing, but an OS crash or power loss may corrupt these data directories.
fsync = off

# Server log goes to stderr: node dir/server.log (local binaries) or the container's log.
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%a %u@%d '
`;
}

/** Loopback only; containers on a bridge network reach each other (and pgproxy reaches them) from other addresses. */
export const LOOPBACK_NETS = ['127.0.0.1/32', '::1/128'] as const;
export const ALL_NETS = ['0.0.0.0/0', '::/0'] as const;

export function hbaConf(users: ClusterUsers, nets: readonly string[] = LOOPBACK_NETS): string {
  const rows: string[] = [];
  for (const addr of nets) {
    rows.push(`host    replication  ${users.replication.name.padEnd(16)} ${addr.padEnd(14)} scram-sha-256`);
  }
  for (const addr of nets) {
    // Explicitly md5: this role's password is stored as an md5 hash, for md5 client tests.
    rows.push(`host    all          ${users.app.name.padEnd(16)} ${addr.padEnd(14)} md5`);
  }
  for (const addr of nets) {
    rows.push(`host    all          ${'all'.padEnd(16)} ${addr.padEnd(14)} scram-sha-256`);
  }
  return `# Written by pgproxy devcluster. First matching line wins.
# TYPE  DATABASE     USER             ADDRESS        METHOD
# The Unix socket directory is 0700 and owned by the server's OS user, so only it (and root) can use it.
local   all          all                             trust
${rows.join('\n')}
`;
}
