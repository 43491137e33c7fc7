/**
 * `pgproxy demo`: the embedded default. Brings the local cluster up (or reuses a running one), starts pgproxy
 * in front of it on 127.0.0.1:9999, and on Ctrl-C stops the proxy and whatever cluster it started itself.
 */
import type { Logger } from 'pino';
import { LocalCluster } from '../devcluster/cluster.js';
import { proxyConfigForCluster } from '../devcluster/proxy-config.js';
import { startProxy } from '../server.js';

export async function demoCommand(args: string[], log: Logger): Promise<number> {
  const port = Number(valueOf(args, '--port') ?? 9999);
  const dir = valueOf(args, '--dir');
  const existing = await LocalCluster.open(dir ?? LocalCluster.defaultDir());
  const wasRunning = existing ? (await existing.status()).every((s) => s.up) : false;
  process.stdout.write(wasRunning ? 'Reusing the running local cluster.\n' : 'Starting the local cluster (primary + 2 standbys)...\n');
  const cluster = await LocalCluster.up({ ...(dir ? { dir } : {}), logger: log });
  const config = proxyConfigForCluster(cluster.info, { listenPort: port });
  const proxy = await startProxy(config, log);
  const app = cluster.info.users.app;
  process.stdout.write(
    [
      '',
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
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write('\nStopping...\n');
  await proxy.close();
  if (!wasRunning) await cluster.down();
  process.stdout.write('Stopped.\n');
  return 0;
}

function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(flag + '='));
  return eq?.slice(flag.length + 1);
}
