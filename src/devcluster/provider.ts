// Which provider builds a dev cluster: the one asked for (--docker, PGPROXY_CLUSTER), the one an existing cluster
// was built with, else local binaries when this machine has them, else containers when an engine answers. The
// container provider (and testcontainers) is loaded only when it is used.
import path from 'node:path';
import type { Logger } from 'pino';
import { findPgBinDir, PgBinariesNotFoundError } from './binaries.js';
import { DEFAULT_CLUSTER_DIR, type DevCluster, PROVIDERS, type ProviderName } from './cluster-types.js';
import type { ContainerClusterOptions } from './containers/cluster.js';
import { LocalCluster } from './local/cluster.js';
import { findState, providerOf } from './state.js';

export interface StartOptions extends ContainerClusterOptions {
  /** Default: providerFromEnv(), else chosen as described at the top of this file. */
  provider?: ProviderName;
}

export class NoProviderError extends Error {
  readonly code = 'DEVCLUSTER_NO_PROVIDER';
  constructor(binaries: PgBinariesNotFoundError) {
    super(
      'A dev cluster needs PostgreSQL server binaries or a container engine, and this machine has neither.\n' +
        'Install one of them:\n' +
        '  - PostgreSQL 15 server binaries (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql@15`),\n' +
        '    or set PG_BINDIR to the directory holding initdb;\n' +
        '  - a container engine: Docker (Docker Desktop on macOS and Windows), or Podman with its Docker API socket\n' +
        '    (`podman system service`, then DOCKER_HOST=unix://<its socket>); the cluster then uses the image postgres:15.\n' +
        `Binaries looked for:\n${binaries.tried.map((t) => `  - ${t}`).join('\n')}\n` +
        'No container engine answered (DOCKER_HOST, ~/.testcontainers.properties, /var/run/docker.sock).',
    );
    this.name = 'NoProviderError';
  }
}

/** PGPROXY_CLUSTER: 'docker' or 'local'; undefined when unset. */
export function providerFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderName | undefined {
  const v = env.PGPROXY_CLUSTER;
  if (!v) return undefined;
  if ((PROVIDERS as readonly string[]).includes(v)) return v as ProviderName;
  throw new Error(`PGPROXY_CLUSTER must be one of ${PROVIDERS.join(', ')} (got ${v})`);
}

async function loadContainers(): Promise<typeof import('./containers/cluster.js')> {
  return import('./containers/cluster.js');
}

/** The provider for a new cluster when none was asked for. */
async function detectProvider(log: Pick<Logger, 'info'> | undefined): Promise<ProviderName> {
  try {
    await findPgBinDir();
    return 'local';
  } catch (err) {
    // An explicit PG_BINDIR that is wrong is the user's mistake to hear about.
    if (!(err instanceof PgBinariesNotFoundError) || process.env.PG_BINDIR) throw err;
    const { defaultImage, defaultNetwork } = await loadContainers();
    const { Engine } = await import('./containers/engine.js');
    if (!(await Engine.answers(defaultNetwork()))) throw new NoProviderError(err);
    log?.info({ image: defaultImage() }, `no PostgreSQL server binaries here; a container engine answers, so the cluster runs in containers (${defaultImage()})`);
    return 'docker';
  }
}

/** Start the cluster in `opts.dir` (creating it when there is none) with the provider chosen as described above. */
export async function startCluster(opts: StartOptions = {}): Promise<DevCluster> {
  const dir = path.resolve(opts.dir ?? DEFAULT_CLUSTER_DIR);
  const asked = opts.provider ?? providerFromEnv();
  const existing = await findState(dir);
  if (existing && asked && providerOf(existing) !== asked) {
    throw new Error(
      `${existing.info.dir} holds a cluster of ${providerOf(existing) === 'local' ? 'local binaries' : 'containers'}, and ${asked === 'docker' ? 'containers' : 'local binaries'} were asked for; ` +
        'take it down with `pgproxy cluster down --purge`, or choose another --dir',
    );
  }
  const provider = asked ?? (existing ? providerOf(existing) : await detectProvider(opts.logger));
  if (provider === 'local') return LocalCluster.up({ ...opts, dir });
  const { ContainerCluster } = await loadContainers();
  return ContainerCluster.up({ ...opts, dir });
}

/** The cluster recorded in `dir`, whichever provider built it, without starting anything; null when there is none. */
export async function openCluster(dir: string, opts: { logger?: Logger; timeoutMs?: number } = {}): Promise<DevCluster | null> {
  const state = await findState(path.resolve(dir));
  if (!state) return null;
  if (providerOf(state) === 'local') return LocalCluster.open(dir, opts);
  const { ContainerCluster } = await loadContainers();
  return ContainerCluster.open(dir, opts);
}
