/**
 * pgproxy as a library, for users' own integration tests:
 *
 *   import { startProxy } from 'pgproxy';
 *   const proxy = await startProxy({ listen: { port: 0 }, backends: [...], auth: { users: [...] } });
 *   // connect to proxy.host:proxy.port; proxy.topology.primary() is the node writes go to
 *   await proxy.close();
 *
 * The configuration is an object of the same shape as pgproxy.yaml, validated as the file is (a ConfigError
 * lists every problem with its key), or the path of a YAML file. The proxy runs in the calling process, one
 * process (`workers` must be 1), and its first health check has run when startProxy resolves.
 */
import pino, { type Logger } from 'pino';
import { ConfigError, loadConfigFile, validateConfig } from './config/load.js';
import type { Config, ConfigInput } from './config/types.js';
import { createLogger } from './lib/log.js';
import type { NodeRole, NodeState, Topology } from './nodes/topology.js';
import { startProxy as startServer, StartupError } from './server.js';

export { ConfigError, StartupError };
export type { Config, ConfigInput, NodeRole };

export interface StartProxyOptions {
  /**
   * Where pgproxy logs. Default: a logger made from the configuration's `log` section (JSON lines on stderr at
   * `log.level`), as `pgproxy start` does.
   */
  logger?: Logger;
}

/** One backend as pgproxy sees it now (a copy taken when read). */
export interface NodeInfo {
  readonly id: number;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly up: boolean;
  readonly role: NodeRole;
  /** Bytes and milliseconds a standby's replay is behind the primary; null before the first measurement. */
  readonly lagBytes: number | null;
  readonly lagMs: number | null;
  /** Why the last health check or connection failed, or null. */
  readonly lastError: string | null;
  /** Statements routed here as reads (SHOW POOL_NODES select_cnt). */
  readonly selectCount: number;
}

/** A read-only view of pgproxy's topology, current whenever it is read. */
export interface TopologyView {
  /** Every configured node, in node-id order. */
  readonly nodes: readonly NodeInfo[];
  /** The one node that is up and not in recovery, or null (none, or more than one). */
  primary(): NodeInfo | null;
  /** The nodes up and in recovery. */
  standbys(): NodeInfo[];
}

export interface Proxy {
  /** The address pgproxy listens on (with `listen.port: 0`, the port it was given). */
  readonly host: string;
  readonly port: number;
  readonly topology: TopologyView;
  /** Stops at once: every client is disconnected, the listener and backend connections are closed. */
  close(): Promise<void>;
}

/** Starts pgproxy in this process with a configuration object (pgproxy.yaml's shape) or the path of a YAML file. */
export async function startProxy(config: ConfigInput | string, options: StartProxyOptions = {}): Promise<Proxy> {
  const validated: Config = typeof config === 'string' ? loadConfigFile(config) : validateConfig(config, { file: '<startProxy config>' });
  if (validated.workers !== 1) {
    throw new StartupError(`startProxy runs pgproxy in the calling process: workers must be 1 (got ${validated.workers}); use \`pgproxy start\` for several processes`);
  }
  const log = options.logger ?? (validated.log.level === 'silent' ? pino({ level: 'silent' }) : createLogger(validated.log.level, validated.log.pretty));
  const running = await startServer(validated, log, typeof config === 'string' ? { configFile: config } : {});
  const topology = topologyView(running.context.topology);
  let closing: Promise<void> | null = null;
  return {
    host: running.host,
    port: running.port,
    topology,
    close: () => (closing ??= running.close().then(() => log.flush?.())),
  };
}

function topologyView(t: Topology): TopologyView {
  const live = (): NodeState[] => t.nodes.filter((n) => !n.removed);
  return {
    get nodes() {
      return live().map(nodeInfo);
    },
    primary() {
      const p = t.primary();
      return p ? nodeInfo(p) : null;
    },
    standbys() {
      return live()
        .filter((n) => n.up && n.role === 'standby')
        .map(nodeInfo);
    },
  };
}

function nodeInfo(n: NodeState): NodeInfo {
  return Object.freeze({
    id: n.id,
    name: n.name,
    host: n.host,
    port: n.port,
    weight: n.weight,
    up: n.up,
    role: n.role,
    lagBytes: n.lagBytes,
    lagMs: n.lagMs,
    lastError: n.lastError,
    selectCount: n.selectCount,
  });
}
