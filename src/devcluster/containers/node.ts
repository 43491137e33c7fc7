// One node's container. Every image is driven the same way, so the official `postgres` image and one built from
// distribution packages behave alike: run as the `postgres` user, server binaries on PATH, `sh -c` building the data
// directory when it is empty (initdb for the primary, pg_basebackup -R -X stream for a standby) and then
// `exec postgres`. No POSTGRES_* variables, no image entrypoint. The data directory lives in the container (the
// official image's anonymous volume, or its writable layer), which is never removed while the cluster exists: a
// stopped or killed node is started again as the same container and finds its data.
import type { GenericContainer } from 'testcontainers';
import type { ReplicationAddress } from '../cluster-base.js';
import type { ClusterInfo, ClusterNodeInfo } from '../cluster-types.js';
import { hbaConf, LOOPBACK_NETS, NODE_CONF_FILE, nodeConf } from '../config-files.js';
import { baseBackupArgs, initdbArgs } from '../tools.js';
import type { Engine, NetworkMode } from './engine.js';
import { NODE_LABEL } from './owner.js';

export const DATA_DIR = '/var/lib/postgresql/data';
export const SERVER_USER = 'postgres';
/** For users: the official image, at the major version the project is tested with. */
export const DEFAULT_IMAGE = 'postgres:15';
/** Exists and is writable in any image (pg_ctl and psql inside the container use it). */
const SOCKET_DIR = '/tmp';
const PWFILE = '/tmp/pgproxy-pwfile';

/** How the nodes' containers are networked: what each server listens on, and where standbys find their primary. */
export interface NetworkPlan {
  readonly mode: NetworkMode;
  /** What node `n`'s server listens on inside its container. */
  listen(n: ClusterNodeInfo): { listen: string; port: number };
  /** Client addresses pg_hba.conf admits. */
  readonly hbaNets: readonly string[];
  /** Where standbys reach node `n` for replication. */
  replicationAddress(n: ClusterNodeInfo): ReplicationAddress;
  /** The container's network settings. */
  apply(container: GenericContainer, n: ClusterNodeInfo): GenericContainer;
}

/** Every node in the engine host's network namespace, on 127.0.0.1 at a port we picked: one address for everyone. */
export const HOST_NETWORK: NetworkPlan = {
  mode: 'host',
  listen: (n) => ({ listen: n.host, port: n.port }),
  hbaNets: LOOPBACK_NETS,
  replicationAddress: (n) => ({ host: n.host, port: n.port }),
  apply: (c) => c.withNetworkMode('host'),
};

export interface NodeContainerSpec {
  info: ClusterInfo;
  node: ClusterNodeInfo;
  /** null for the primary; the address a standby copies and then streams from. */
  upstream: ReplicationAddress | null;
  image: string;
  name: string;
  labels: Record<string, string>;
  network: NetworkPlan;
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The container's command: build the data directory if it is empty, then become the server. */
export function nodeScript(spec: NodeContainerSpec): string {
  const build = spec.upstream
    ? [
        `PGPASSWORD="$PGPROXY_REPLICATION_PASSWORD" pg_basebackup -D "$D" ${baseBackupArgs(spec.info, spec.upstream, spec.node.name).map(shq).join(' ')}`,
        `printf '%s' "$PGPROXY_NODE_CONF" > "$D/${NODE_CONF_FILE}"`,
      ]
    : [
        `printf '%s\\n' "$PGPROXY_SUPERUSER_PASSWORD" > ${PWFILE}`,
        `initdb -D "$D" ${initdbArgs(spec.info, `--pwfile=${PWFILE}`).map(shq).join(' ')}`,
        `rm -f ${PWFILE}`,
        `printf '%s' "$PGPROXY_HBA_CONF" > "$D/pg_hba.conf"`,
        `printf '\\n# pgproxy devcluster\\ninclude '"'"'${NODE_CONF_FILE}'"'"'\\n' >> "$D/postgresql.conf"`,
        `printf '%s' "$PGPROXY_NODE_CONF" > "$D/${NODE_CONF_FILE}"`,
      ];
  return ['set -e', `D=${DATA_DIR}`, 'umask 077', 'if [ ! -s "$D/PG_VERSION" ]; then', ...build.map((l) => `  ${l}`), 'fi', 'exec postgres -D "$D"'].join('\n');
}

/** The container's environment: the files the script writes, and the one password it needs. No POSTGRES_* variables. */
export function nodeEnvironment(spec: NodeContainerSpec): Record<string, string> {
  const conf = nodeConf(spec.node, { socketDir: SOCKET_DIR, ...spec.network.listen(spec.node) });
  const u = spec.info.users;
  return spec.upstream
    ? { PGPROXY_NODE_CONF: conf, PGPROXY_REPLICATION_PASSWORD: u.replication.password }
    : { PGPROXY_NODE_CONF: conf, PGPROXY_HBA_CONF: hbaConf(u, spec.network.hbaNets), PGPROXY_SUPERUSER_PASSWORD: u.superuser.password };
}

/** Create and start node's container (the image must be present); returns its id. The server may still be initialising. */
export async function startNodeContainer(engine: Engine, spec: NodeContainerSpec): Promise<string> {
  const { GenericContainer, PullPolicy } = engine.tc;
  const container = new GenericContainer(spec.image)
    .withName(spec.name)
    .withUser(SERVER_USER)
    .withEntrypoint(['sh', '-c', nodeScript(spec), spec.name])
    .withCommand([])
    .withEnvironment(nodeEnvironment(spec))
    .withLabels({ ...spec.labels, [NODE_LABEL]: spec.node.name })
    // Never forces a pull; the caller made sure the image is present (Engine.ensureImage).
    .withPullPolicy(PullPolicy.defaultPolicy())
    // The data directory must outlive a stop or a kill of the server (PID 1): removal is ours, by id.
    .withAutoRemove(false);
  const started = await spec.network.apply(container, spec.node).start();
  return started.getId();
}
