// A node's container as the container provider defines it, for both networkings. Host networking runs in the
// integration tests (PGPROXY_CLUSTER=docker); bridge networking cannot run on loopback-only CI machines, so what it
// asks of the engine and of PostgreSQL is checked here.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEV_DATABASE, DEV_USERS, type ClusterInfo } from '../../../src/devcluster/cluster.js';
import { bridgeNetwork } from '../../../src/devcluster/containers/bridge.js';
import { DATA_DIR, HOST_NETWORK, type NetworkPlan, nodeEnvironment, nodeScript, type NodeContainerSpec } from '../../../src/devcluster/containers/node.js';

const info: ClusterInfo = {
  provider: 'docker',
  dir: '/state',
  nodes: [0, 1].map((i) => ({ name: `node${i}`, host: '127.0.0.1', port: 25000 + i, dataDir: DATA_DIR })),
  users: DEV_USERS,
  database: DEV_DATABASE,
};

function spec(i: number, network: NetworkPlan): NodeContainerSpec {
  const upstream = i === 0 ? null : network.replicationAddress(info.nodes[0]!);
  return { info, node: info.nodes[i]!, upstream, image: 'img', name: `n${i}`, labels: {}, network };
}

describe('node container', () => {
  it('is a POSIX sh script that builds an empty data directory, then becomes the server', () => {
    for (const i of [0, 1]) {
      const script = nodeScript(spec(i, HOST_NETWORK));
      expect(spawnSync('sh', ['-n', '-c', script]).status).toBe(0);
      expect(script).toMatch(/if \[ ! -s "\$D\/PG_VERSION" \]; then/);
      expect(script.trimEnd().split('\n').at(-1)).toBe('exec postgres -D "$D"');
      expect(script).toMatch(i === 0 ? /\n {2}initdb -D "\$D" .*'--pwfile=\/tmp\/pgproxy-pwfile'/ : /pg_basebackup -D "\$D" '-h' '127\.0\.0\.1' '-p' '25000' .*'-R' '-X' 'stream' '-S' 'node1'/s);
    }
  });

  it('passes no POSTGRES_* variable and no password on the command line', () => {
    for (const i of [0, 1]) {
      const env = nodeEnvironment(spec(i, HOST_NETWORK));
      expect(Object.keys(env).filter((k) => k.startsWith('POSTGRES'))).toEqual([]);
      const script = nodeScript(spec(i, HOST_NETWORK));
      // (The superuser's password is 'postgres', also the server's name: initdb reads it from a file, see above.)
      for (const u of [DEV_USERS.app, DEV_USERS.scram, DEV_USERS.monitor, DEV_USERS.replication]) expect(script).not.toContain(u.password);
    }
  });

  it('host networking: each server on 127.0.0.1 at its own port, loopback clients only', () => {
    const env = nodeEnvironment(spec(0, HOST_NETWORK));
    expect(env.PGPROXY_NODE_CONF).toMatch(/^listen_addresses = '127\.0\.0\.1'$/m);
    expect(env.PGPROXY_NODE_CONF).toMatch(/^port = 25000$/m);
    expect(env.PGPROXY_HBA_CONF).not.toMatch(/0\.0\.0\.0/);
  });

  it('bridge networking: port 5432 inside, published at the picked port, replication by network alias', () => {
    const bridge = bridgeNetwork('pgproxy-net');
    const env = nodeEnvironment(spec(0, bridge));
    expect(env.PGPROXY_NODE_CONF).toMatch(/^listen_addresses = '\*'$/m);
    expect(env.PGPROXY_NODE_CONF).toMatch(/^port = 5432$/m);
    expect(env.PGPROXY_HBA_CONF).toMatch(/^host\s+replication\s+replicator\s+0\.0\.0\.0\/0\s+scram-sha-256$/m);
    expect(nodeScript(spec(1, bridge))).toMatch(/'-h' 'node0' '-p' '5432'/);
    const calls: string[] = [];
    const fake = new Proxy({}, { get: (_t, name: string) => (...args: unknown[]) => (calls.push(`${name}(${JSON.stringify(args)})`), fake) });
    bridge.apply(fake as never, info.nodes[1]!);
    expect(calls).toEqual(['withNetworkMode(["pgproxy-net"])', 'withNetworkAliases(["node1"])', 'withExposedPorts([{"container":5432,"host":25001}])']);
  });
});
