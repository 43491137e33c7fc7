/**
 * `pgproxy demo`: the embedded default. Brings a dev cluster up (or reuses a running one) from local binaries or in
 * containers (--docker, PGPROXY_CLUSTER=docker, or when there are no binaries but a container engine), starts
 * pgproxy in front of it on 127.0.0.1:9999, and on Ctrl-C stops the proxy and whatever cluster it started itself
 * (containers included).
 */
import type { Logger } from 'pino';
import { type ContainerClusterInfo, defaultClusterDir, type DevCluster, openCluster, startCluster } from '../devcluster/cluster.js';
import { proxyConfigForCluster } from '../devcluster/proxy-config.js';
import { startProxy } from '../server.js';
import { clusterFlags, valueOf } from './cluster.js';

export async function demoCommand(args: string[], log: Logger): Promise<number> {
  const port = Number(valueOf(args, '--port') ?? 9999);
  const dir = valueOf(args, '--dir') ?? defaultClusterDir();
  const { provider, image } = clusterFlags(args);

  // A Ctrl-C while the cluster is being built stops the demo once it is up, so nothing is left running.
  // `on`, not `once`: a dependency of testcontainers (signal-exit) re-raises the signal, and the process dies at
  // once, when it finds itself the only listener, which a `once` listener no longer is when its turn comes.
  let stopRequested: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let stopping = false;
  const onSignal = (): void => {
    // A second Ctrl-C does not wait: what is left is removed by the next start (containers) or `cluster down`.
    if (stopping) process.exit(130);
    stopping = true;
    stopRequested?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const existing = await openCluster(dir);
  const wasRunning = existing ? (await existing.status()).every((s) => s.up) : false;
  process.stdout.write(wasRunning ? 'Reusing the running dev cluster.\n' : 'Starting a dev cluster (primary + 2 standbys)...\n');
  const cluster = await startCluster({ dir, logger: log, ...(provider ? { provider } : {}), ...(image ? { image } : {}) });
  if (stopping) return stop(cluster, wasRunning, null);
  const config = proxyConfigForCluster(cluster.info, { listenPort: port });
  const proxy = await startProxy(config, log);
  const app = cluster.info.users.app;
  process.stdout.write(
    [
      '',
      `Cluster: ${describe(cluster)}`,
      `pgproxy is listening on ${proxy.host}:${proxy.port}, in front of:`,
      ...proxy.context.topology.nodes.map((n) => `  ${n.name}  ${n.host}:${n.port}  ${n.up ? n.role : 'down'} (weight ${n.weight})`),
      '',
      'Connect with:',
      `  PGPASSWORD=${app.password} psql "host=${proxy.host} port=${proxy.port} user=${app.name} dbname=${cluster.info.database}"`,
      '',
      'Try SHOW POOL_NODES; writes go to the primary, SELECTs to the standbys.',
      wasRunning ? 'Ctrl-C stops pgproxy (the cluster was already running and stays up).' : 'Ctrl-C stops pgproxy and the cluster.',
      '',
    ].join('\n'),
  );
  await stopped;
  return stop(cluster, wasRunning, proxy);
}

async function stop(cluster: DevCluster, wasRunning: boolean, proxy: { close(): Promise<void> } | null): Promise<number> {
  process.stdout.write('\nStopping...\n');
  await proxy?.close();
  if (!wasRunning) await cluster.down();
  process.stdout.write(wasRunning || cluster.info.provider === 'local' ? 'Stopped.\n' : 'Stopped; its containers are removed.\n');
  return 0;
}

function describe(cluster: DevCluster): string {
  if (cluster.info.provider === 'local') return `local PostgreSQL binaries, ${cluster.info.dir}`;
  const info = cluster.info as ContainerClusterInfo;
  return `containers (${info.image}, ${info.network} networking)`;
}
