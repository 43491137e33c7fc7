/** The pgproxy configuration that fronts a local dev cluster: used by `pgproxy demo` and the tests. */
import { defaultConfigForCluster, type Config, type ConfigInput } from '../config/load.js';
import type { ClusterInfo } from './cluster.js';

/** Weights 0 for the primary and 1 for each standby: reads go to standbys only, as pgpool users set it up. */
export function proxyConfigForCluster(info: ClusterInfo, opts: { listenPort?: number; overrides?: ConfigInput } = {}): Config {
  return defaultConfigForCluster({
    backends: info.nodes.map((n, i) => ({ name: n.name, host: n.host, port: n.port, weight: i === 0 ? 0 : 1 })),
    users: [info.users.app, info.users.scram],
    healthUser: info.users.monitor,
    listenPort: opts.listenPort ?? 9999,
    ...(opts.overrides ? { overrides: opts.overrides } : {}),
  });
}
