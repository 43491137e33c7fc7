// The container provider: the same cluster as the local one (a primary, N streaming standbys over replication
// slots, the same roles, database and settings), one container per node through testcontainers. Creating and
// reusing the cluster, controlling its nodes and its faults are here; a node's container is in node.ts, the engine
// in engine.ts, ownership and the removal of abandoned containers in owner.ts, bridge networking in bridge.ts.
//
// Control goes through the engine, by container id: stop = the signal of pg_ctl's mode to the server (PID 1), and
// the container exits; start = the same container again, which finds its data; kill = the engine's kill; a hung
// node = the engine's pause (the cgroup freezer); promote = pg_ctl promote through exec.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ClusterBase, type Log, type ReplicationAddress, silentLog } from '../cluster-base.js';
import {
  type ClusterInfo,
  type ClusterNodeInfo,
  type ClusterOptions,
  DEFAULT_CLUSTER_DIR,
  DEV_DATABASE,
  DEV_USERS,
  type NodeStatus,
  type StopMode,
} from '../cluster-types.js';
import { choosePorts, LOOPBACK } from '../ports.js';
import { createSlots, type OnPrimary, setupRoles } from '../roles.js';
import { type ClusterStateBase, readState, STATE_FILE, writeState } from '../state.js';
import { bridgeNetwork, createBridgeNetwork, publishedHost } from './bridge.js';
import { Engine, type NetworkMode } from './engine.js';
import { DATA_DIR, DEFAULT_IMAGE, HOST_NETWORK, type NetworkPlan, SERVER_USER, startNodeContainer } from './node.js';
import { type OwnerKind, ownerLabels, removeAbandoned } from './owner.js';

export interface ContainerClusterInfo extends ClusterInfo {
  provider: 'docker';
  image: string;
  network: NetworkMode;
}

export interface ContainerClusterOptions extends ClusterOptions {
  /** Default: $PGPROXY_IMAGE, else the official postgres:15. */
  image?: string;
  /** Pull the image when it is absent. Default true; the tests never pull. */
  pull?: boolean;
  /** Default 'process'. See OwnerKind. */
  owner?: OwnerKind;
  /** Default: $PGPROXY_CONTAINER_NETWORK, else host on Linux and bridge elsewhere (Docker Desktop). */
  network?: NetworkMode;
}

interface ContainerState extends ClusterStateBase {
  provider: 'docker';
  info: ContainerClusterInfo;
  clusterId: string;
  owner: OwnerKind;
  /** Container id per node, null where there is none (not created yet, or removed by down). */
  containers: (string | null)[];
  /** The cluster's own network (bridge networking only). */
  networkName?: string;
}

const STOP_SIGNAL: Record<StopMode, NodeJS.Signals> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };

export function defaultImage(env: NodeJS.ProcessEnv = process.env): string {
  return env.PGPROXY_IMAGE || DEFAULT_IMAGE;
}

export function defaultNetwork(env: NodeJS.ProcessEnv = process.env): NetworkMode {
  const v = env.PGPROXY_CONTAINER_NETWORK;
  if (v === 'host' || v === 'bridge') return v;
  if (v) throw new Error(`PGPROXY_CONTAINER_NETWORK must be host or bridge (got ${v})`);
  return process.platform === 'linux' ? 'host' : 'bridge';
}

/** Make the directory that will hold cluster.json; refuses a non-empty one that is not ours. Returns whether it was created. */
async function prepareStateDir(dir: string): Promise<boolean> {
  if (existsSync(dir)) {
    const entries = (await readdir(dir)).filter((e) => e !== STATE_FILE);
    if (entries.length > 0) throw new Error(`${dir} exists, is not empty and has no ${STATE_FILE}; remove it or choose another --dir`);
    return false;
  }
  await mkdir(dir, { recursive: true });
  return true;
}

export class ContainerCluster extends ClusterBase {
  readonly info: ContainerClusterInfo;
  readonly relocated = false;
  private state: ContainerState;
  private readonly plan: NetworkPlan;

  private constructor(state: ContainerState, log: Log | undefined, timeoutMs: number | undefined) {
    super({ logger: log, timeoutMs, synchronousStandby: state.synchronousStandby });
    this.state = state;
    this.info = state.info;
    this.plan = state.info.network === 'bridge' ? bridgeNetwork(state.networkName as string) : HOST_NETWORK;
  }

  /**
   * Start the cluster recorded in `opts.dir`, or build one. Removes abandoned containers of earlier runs first.
   * An existing cluster whose containers are all there is reused; one whose containers are gone (down, or removed
   * as abandoned) is built again.
   */
  static async up(opts: ContainerClusterOptions = {}): Promise<ContainerCluster> {
    const log = opts.logger ?? silentLog;
    const dir = path.resolve(opts.dir ?? DEFAULT_CLUSTER_DIR);
    const existing = await readState<ContainerState>(dir);
    if (existing && existing.info.provider !== 'docker') {
      throw new Error(`${dir} holds a cluster of local binaries, not containers; take it down with \`pgproxy cluster down --purge\` or choose another --dir`);
    }
    // Built again after a down: as it was, unless asked otherwise.
    const network = opts.network ?? existing?.info.network ?? defaultNetwork();
    const image = opts.image ?? existing?.info.image ?? defaultImage();
    const engine = await Engine.connect(network);
    await removeAbandoned(engine, log);
    if (existing) {
      const c = new ContainerCluster(existing, opts.logger, opts.timeoutMs);
      if (existing.complete !== false && (await c.allContainersExist())) {
        await c.resume(opts);
        return c;
      }
      if (existing.containers.some((id) => id !== null)) log.warn({ dir }, 'some containers of the cluster are gone; building it again');
      await c.removeContainers();
    }
    return ContainerCluster.create(dir, { ...opts, network, image }, engine);
  }

  /** The cluster recorded in `dir`, without contacting the engine; null when there is none. */
  static async open(dir: string, opts: { logger?: Logger; timeoutMs?: number } = {}): Promise<ContainerCluster | null> {
    const state = await readState<ContainerState>(path.resolve(dir));
    if (state && state.info.provider !== 'docker') throw new Error(`${dir} holds a cluster of local binaries, not containers`);
    return state ? new ContainerCluster(state, opts.logger, opts.timeoutMs) : null;
  }

  private engine(): Promise<Engine> {
    return Engine.connect(this.info.network);
  }

  private containerId(i: number): string | null {
    return this.state.containers[i] ?? null;
  }

  private async allContainersExist(): Promise<boolean> {
    const engine = await this.engine();
    for (const id of this.state.containers) if (id === null || (await engine.state(id)) === null) return false;
    return this.state.containers.length === this.info.nodes.length;
  }

  // ---------------------------------------------------------------------------------------------
  // Creation and reuse

  private static async create(dir: string, opts: ContainerClusterOptions & { network: NetworkMode; image: string }, engine: Engine): Promise<ContainerCluster> {
    const started = Date.now();
    const standbys = opts.standbys ?? 2;
    if (!Number.isInteger(standbys) || standbys < 0) throw new Error(`standbys must be a whole number >= 0 (got ${standbys})`);
    if (opts.synchronousStandby && standbys < 1) throw new Error('a synchronous standby needs at least one standby');
    const image = opts.image;
    await engine.ensureImage(image, opts.pull ?? true);

    const log = opts.logger ?? silentLog;
    const clusterId = randomBytes(4).toString('hex');
    const owner = opts.owner ?? 'process';
    const networkName = opts.network === 'bridge' ? `pgproxy-${clusterId}` : undefined;
    const host = opts.network === 'bridge' ? publishedHost(engine) : LOOPBACK;
    const ports = await choosePorts(1 + standbys, opts.basePort, log);
    const nodes: ClusterNodeInfo[] = ports.map((port, i) => ({ name: `node${i}`, host, port, dataDir: DATA_DIR }));
    const state: ContainerState = {
      version: 1,
      provider: 'docker',
      requestedDir: dir,
      info: { provider: 'docker', dir, image, network: opts.network, nodes, users: DEV_USERS, database: DEV_DATABASE },
      synchronousStandby: false,
      createdAt: new Date().toISOString(),
      complete: false,
      clusterId,
      owner,
      containers: nodes.map(() => null),
      ...(networkName ? { networkName } : {}),
    };
    const c = new ContainerCluster(state, opts.logger, opts.timeoutMs);
    c.log.info({ dir, image, ports, standbys, network: opts.network }, `creating PostgreSQL dev cluster in containers (${image})`);
    const createdDir = await prepareStateDir(dir);
    // Recorded before any container exists: a `dir` owner is alive only while this file names the cluster.
    await c.saveState(false);
    try {
      const labels = ownerLabels(clusterId, owner, dir);
      if (networkName) await createBridgeNetwork(engine, networkName, labels);
      await c.startContainer(engine, 0, null, labels);
      const onPrimary = c.onPrimary();
      await setupRoles(onPrimary, c.info.users, c.info.database);
      const standbyIdx = nodes.map((_, i) => i).filter((i) => i > 0);
      if (standbyIdx.length > 0) {
        await createSlots(onPrimary, standbyIdx.map((i) => c.node(i).name));
        // One at a time, as the local provider does: each base backup takes a checkpoint on the primary.
        for (const i of standbyIdx) await c.startContainer(engine, i, c.replicationAddress(0), labels);
        await c.waitStreaming(0, standbyIdx);
      }
      if (opts.synchronousStandby) await c.applySynchronous(true);
      c.state.complete = true;
      await c.saveState(true);
      c.log.info({ dir, ms: Date.now() - started }, `cluster up: ${c.describePorts()}`);
      return c;
    } catch (err) {
      await c.removeContainers().catch(() => undefined);
      await rm(createdDir ? dir : path.join(dir, STATE_FILE), { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Create node i's container, record it, and wait until its server accepts connections. */
  private async startContainer(engine: Engine, i: number, upstream: ReplicationAddress | null, labels: Record<string, string>): Promise<void> {
    const node = this.node(i);
    this.log.info({ node: node.name }, upstream ? 'pg_basebackup and start (container)' : 'initdb and start (container)');
    const id = await startNodeContainer(engine, {
      info: this.info,
      node,
      upstream,
      image: this.info.image,
      name: `pgproxy-${this.state.clusterId}-${node.name}`,
      labels,
      network: this.plan,
    });
    this.state.containers[i] = id;
    await this.saveState(false);
    await this.waitAccepting(i, this.exitWatch(engine, id));
  }

  /** For waitAccepting: why the container stopped, checked at most every 250 ms. */
  private exitWatch(engine: Engine, id: string): () => Promise<string | null> {
    let next = 0;
    return async () => {
      if (Date.now() < next) return null;
      next = Date.now() + 250;
      const s = await engine.state(id);
      if (s === null) return 'its container was removed';
      return s.running ? null : `container exited with code ${s.exitCode}`;
    };
  }

  private onPrimary(): OnPrimary {
    return (database, fn) => this.withClient(0, database, this.info.users.superuser, fn);
  }

  private saveState(complete = this.state.complete !== false): Promise<void> {
    return writeState(this.info.dir, { ...this.state, synchronousStandby: this.synchronousStandby, complete });
  }

  private async resume(opts: ContainerClusterOptions): Promise<void> {
    if (opts.standbys !== undefined && opts.standbys !== this.info.nodes.length - 1) {
      this.log.warn({ dir: this.info.dir }, `existing cluster has ${this.info.nodes.length - 1} standby(s); ignoring standbys=${opts.standbys} (down to rebuild)`);
    }
    this.log.info({ dir: this.info.dir }, `reusing the container cluster in ${this.info.dir}`);
    for (const i of this.info.nodes.keys()) await this.startNode(i);
    if (await this.settle(opts.synchronousStandby)) await this.saveState();
  }

  // ---------------------------------------------------------------------------------------------
  // Control

  /** Remove every container of the cluster (its data goes with them), and its network; `purge` also removes the directory. */
  async down(opts: { purge?: boolean } = {}): Promise<void> {
    await this.removeContainers();
    if (opts.purge) {
      await rm(this.info.dir, { recursive: true, force: true });
      this.log.info({ dir: this.info.dir }, 'cluster removed');
    } else {
      await this.saveState().catch(() => undefined);
    }
  }

  private async removeContainers(): Promise<void> {
    const ids = this.state.containers.filter((id): id is string => id !== null);
    if (ids.length === 0 && !this.state.networkName) return;
    const engine = await this.engine();
    await Promise.all(ids.map((id) => engine.remove(id)));
    this.state.containers = this.info.nodes.map(() => null);
    if (this.state.networkName) await engine.removeNetwork(this.state.networkName);
    this.log.info({ containers: ids.length }, 'containers removed');
  }

  async status(): Promise<NodeStatus[]> {
    const engine = await this.engine();
    return Promise.all(
      this.info.nodes.map(async (n, i): Promise<NodeStatus> => {
        const id = this.containerId(i);
        const s = id === null ? null : await engine.state(id);
        const pid = s?.running ? s.pid : null;
        const down: NodeStatus = { name: n.name, port: n.port, up: false, inRecovery: null, lsn: null, pid };
        // A paused node would only make us wait for a connect timeout.
        if (!s?.running || s.paused) return down;
        return this.probeStatus(i, down);
      }),
    );
  }

  /** Node i's container id and state; throws when the container is gone (down, or removed as abandoned). */
  private async current(i: number): Promise<{ engine: Engine; id: string; running: boolean; paused: boolean }> {
    const engine = await this.engine();
    const id = this.containerId(i);
    const s = id === null ? null : await engine.state(id);
    if (id === null || s === null) throw new Error(`${this.node(i).name}: its container is gone (the cluster was taken down)`);
    return { engine, id, running: s.running, paused: s.paused };
  }

  async stopNode(i: number, mode: StopMode = 'fast'): Promise<void> {
    const { engine, id, running, paused } = await this.current(i);
    if (!running) return;
    // A frozen server cannot act on the shutdown signal.
    if (paused) await engine.unpause(id);
    this.log.info({ node: this.node(i).name, mode }, 'stopping');
    await engine.kill(id, STOP_SIGNAL[mode]);
    if (await this.waitExited(engine, id, this.timeoutMs)) return;
    await engine.kill(id, 'SIGKILL').catch(() => undefined);
    throw await this.nodeError(i, `did not stop within ${this.timeoutMs} ms of ${STOP_SIGNAL[mode]} (${mode} shutdown); killed`);
  }

  private async waitExited(engine: Engine, id: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const s = await engine.state(id);
      if (!s?.running) return true;
      await sleep(50);
    }
    return false;
  }

  async startNode(i: number): Promise<void> {
    const { engine, id, running, paused } = await this.current(i);
    if (running) {
      if (paused) await this.resumeNode(i);
      return;
    }
    this.log.info({ node: this.node(i).name }, 'starting');
    await engine.start(id);
    await this.waitAccepting(i, this.exitWatch(engine, id));
  }

  protected async logTail(i: number): Promise<string> {
    const id = this.containerId(i);
    return id === null ? '' : (await this.engine()).logTail(id);
  }

  // ---------------------------------------------------------------------------------------------
  // Faults

  /** The engine's kill of the server (the container's PID 1). SIGKILL returns once the container has exited. */
  async killNode(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const { engine, id, running, paused } = await this.current(i);
    if (!running) throw new Error(`${this.node(i).name} is not running`);
    this.log.info({ node: this.node(i).name, signal }, 'signalling postmaster');
    if (signal === 'SIGKILL' && paused) await engine.unpause(id);
    await engine.kill(id, signal);
    if (signal === 'SIGKILL' && !(await this.waitExited(engine, id, this.timeoutMs))) {
      throw await this.nodeError(i, `still running ${this.timeoutMs} ms after SIGKILL`);
    }
  }

  async suspendNode(i: number): Promise<void> {
    const { engine, id, running } = await this.current(i);
    if (!running) throw new Error(`${this.node(i).name} is not running`);
    await engine.pause(id);
    this.log.info({ node: this.node(i).name }, 'suspended (container paused)');
  }

  async resumeNode(i: number): Promise<void> {
    const id = this.containerId(i);
    if (id === null) return;
    const engine = await this.engine();
    if (!(await engine.state(id))?.paused) return;
    await engine.unpause(id);
    this.log.info({ node: this.node(i).name }, 'resumed');
  }

  protected async requestPromotion(i: number): Promise<void> {
    const { engine, id } = await this.current(i);
    const secs = String(Math.ceil(this.timeoutMs / 1000));
    const r = await engine.exec(id, ['pg_ctl', 'promote', '-D', DATA_DIR, '-w', '-t', secs], SERVER_USER);
    if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${r.output.trim()}`);
  }

  protected override replicationAddress(i: number): ReplicationAddress {
    return this.plan.replicationAddress(this.node(i));
  }
}
