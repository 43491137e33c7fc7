// Bridge networking, what Docker Desktop (macOS, Windows) gives containers by default: host networking there is
// the VM's, not the user's machine. Each node then has two addresses: its alias on the cluster's own network
// (port 5432), where standbys replicate from, and a port we picked published on the engine's host, where pgproxy
// and the tests connect. Linux CI runs host networking only (loopback-only machines; a bridge would add a 10.88.x
// network and NAT rules), so this path is untested there.
import { ALL_NETS } from '../config-files.js';
import type { Engine } from './engine.js';
import type { NetworkPlan } from './node.js';

const CONTAINER_PORT = 5432;

export function bridgeNetwork(networkName: string): NetworkPlan {
  return {
    mode: 'bridge',
    listen: () => ({ listen: '*', port: CONTAINER_PORT }),
    // Clients come from the engine's gateway (published ports) and from the other nodes' addresses.
    hbaNets: ALL_NETS,
    replicationAddress: (n) => ({ host: n.name, port: CONTAINER_PORT }),
    apply: (c, n) => c.withNetworkMode(networkName).withNetworkAliases(n.name).withExposedPorts({ container: CONTAINER_PORT, host: n.port }),
  };
}

/** The cluster's own network, labelled like its containers so that an abandoned one is removed with them. */
export async function createBridgeNetwork(engine: Engine, name: string, labels: Record<string, string>): Promise<void> {
  await engine.createNetwork(name, labels);
}

/** Where published ports are reached from this machine. */
export function publishedHost(engine: Engine): string {
  return engine.client.info.containerRuntime.host;
}
