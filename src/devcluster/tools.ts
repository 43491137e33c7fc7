// Arguments of the PostgreSQL tools that build a node, the same for both providers.
import type { ClusterInfo } from './cluster-types.js';

/** initdb's arguments after -D. */
export function initdbArgs(info: ClusterInfo, pwfileArg: string): string[] {
  return [
    '-U', info.users.superuser.name,
    '-A', 'scram-sha-256',
    pwfileArg,
    '-E', 'UTF8',
    '--locale=C',
    // fsync is off for this dev cluster anyway; skip initdb's final sync too.
    '--no-sync',
  ];
}

/** pg_basebackup's arguments after -D: a streaming standby of `upstream` on slot `slot`. The password goes in PGPASSWORD, never argv. */
export function baseBackupArgs(info: ClusterInfo, upstream: { host: string; port: number }, slot: string): string[] {
  return [
    '-h', upstream.host,
    '-p', String(upstream.port),
    '-U', info.users.replication.name,
    '-R',
    '-X', 'stream',
    '-S', slot,
    '--checkpoint=fast',
    '--no-sync',
    '-w',
  ];
}
