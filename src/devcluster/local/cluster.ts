// The local provider: one primary (node0) and N streaming standbys (node1..N) on loopback ports, built from the
// PostgreSQL binaries on this machine (local/build.ts), run as processes we start and stop, faults by signals
// (local/faults.ts). Creating, reusing and controlling the nodes is here.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { findPgBinDir } from '../binaries.js';
import { ClusterBase, type Log, silentLog } from '../cluster-base.js';
import { type ClusterNodeInfo, type ClusterOptions, DEFAULT_CLUSTER_DIR, DEV_DATABASE, DEV_USERS, type NodeStatus, type StopMode } from '../cluster-types.js';
import { socketDirFor } from '../config-files.js';
import { choosePorts, isPortFree, LOOPBACK } from '../ports.js';
import { childPids, isStopped, processesIn, readPostmasterPid, runningPostmaster, signalQuietly } from '../procs.js';
import { createSlots, type OnPrimary, setupRoles } from '../roles.js';
import { runAsServer, spawnServer } from '../runas.js';
import { type ClusterStateBase, findState, STATE_FILE, writeState } from '../state.js';
import {
  baseBackup,
  bin,
  chooseDir,
  emptyDir,
  initPrimary,
  type LocalBuild,
  type LocalClusterInfo,
  logFile,
  makeNodeDirs,
  prepareDirs,
  tail,
} from './build.js';
import { ProcessFaults } from './faults.js';

export type { LocalClusterInfo };

interface LocalState extends ClusterStateBase {
  info: LocalClusterInfo;
}

export class LocalCluster extends ClusterBase {
  readonly info: LocalClusterInfo;
  private readonly requestedDir: string;
  private readonly faults: ProcessFaults;

  private constructor(state: LocalState, log: Log | undefined, timeoutMs: number | undefined) {
    super({ logger: log, timeoutMs, synchronousStandby: state.synchronousStandby });
    this.info = state.info;
    this.requestedDir = state.requestedDir;
    this.faults = new ProcessFaults(this.log);
  }

  /** The default cluster directory for the current working directory. */
  static defaultDir(): string {
    return path.resolve(DEFAULT_CLUSTER_DIR);
  }

  /**
   * Start the cluster in `opts.dir`, creating it when the directory has no cluster.json.
   * Idempotent: an existing cluster is reused and only nodes that are not running are started.
   */
  static async up(opts: ClusterOptions = {}): Promise<LocalCluster> {
    const requested = path.resolve(opts.dir ?? DEFAULT_CLUSTER_DIR);
    const existing = await findState<LocalState>(requested);
    if (existing && existing.info.provider !== 'local') {
      throw new Error(`${existing.info.dir} holds a ${existing.info.provider} cluster, not one of local binaries; take it down with \`pgproxy cluster down --purge\` or choose another --dir`);
    }
    if (existing && existing.complete !== false) {
      const c = new LocalCluster(existing, opts.logger, opts.timeoutMs);
      await c.resume(opts);
      return c;
    }
    const log = opts.logger ?? silentLog;
    if (existing) {
      log.warn({ dir: existing.info.dir }, 'found a cluster whose creation was interrupted; rebuilding it');
      await new LocalCluster(existing, opts.logger, opts.timeoutMs).stopAll('immediate').catch(() => undefined);
      await emptyDir(existing.info.dir);
      return LocalCluster.create(requested, existing.info.dir, opts);
    }
    return LocalCluster.create(requested, chooseDir(requested, log), opts);
  }

  /** Load the cluster state for `dir` (or its fallback directory); no side effects. */
  static async open(dir: string, opts: { logger?: Logger; timeoutMs?: number } = {}): Promise<LocalCluster | null> {
    const state = await findState<LocalState>(path.resolve(dir));
    if (state && state.info.provider !== 'local') throw new Error(`${state.info.dir} holds a ${state.info.provider} cluster, not one of local binaries`);
    return state ? new LocalCluster(state, opts.logger, opts.timeoutMs) : null;
  }

  get relocated(): boolean {
    return this.requestedDir !== this.info.dir;
  }

  // ---------------------------------------------------------------------------------------------
  // Creation and reuse

  private static async create(requested: string, dir: string, opts: ClusterOptions): Promise<LocalCluster> {
    const started = Date.now();
    const standbys = opts.standbys ?? 2;
    if (!Number.isInteger(standbys) || standbys < 0) throw new Error(`standbys must be a whole number >= 0 (got ${standbys})`);
    if (opts.synchronousStandby && standbys < 1) throw new Error('a synchronous standby needs at least one standby');

    const binDir = await findPgBinDir();
    const ports = await choosePorts(1 + standbys, opts.basePort, opts.logger ?? silentLog);
    const createdDir = await prepareDirs(dir, STATE_FILE);
    const nodes: ClusterNodeInfo[] = ports.map((port, i) => ({ name: `node${i}`, host: LOOPBACK, port, dataDir: path.join(dir, `node${i}`, 'data') }));
    const state: LocalState = {
      version: 1,
      provider: 'local',
      requestedDir: requested,
      info: { provider: 'local', dir, binDir, nodes, users: DEV_USERS, database: DEV_DATABASE },
      synchronousStandby: false,
      createdAt: new Date().toISOString(),
    };
    const c = new LocalCluster(state, opts.logger, opts.timeoutMs);
    c.log.info({ dir, binDir, ports, standbys }, `creating PostgreSQL dev cluster in ${dir}`);
    try {
      await c.saveState(false);
      await makeNodeDirs(nodes);
      await initPrimary(c.build());
      await c.startNode(0);
      const onPrimary = c.onPrimary();
      await setupRoles(onPrimary, c.info.users, c.info.database);
      const standbyIdx = nodes.map((_, i) => i).filter((i) => i > 0);
      if (standbyIdx.length > 0) {
        await createSlots(onPrimary, standbyIdx.map((i) => c.node(i).name));
        // One at a time: each takes a checkpoint on the primary, and we have two cores.
        for (const i of standbyIdx) {
          await baseBackup(c.build(), i).catch(async (err: unknown) => {
            throw await c.nodeError(0, `pg_basebackup for ${c.node(i).name} failed: ${(err as Error).message}`);
          });
        }
        await Promise.all(standbyIdx.map((i) => c.startNode(i)));
        await c.waitStreaming(0, standbyIdx);
      }
      if (opts.synchronousStandby) await c.applySynchronous(true);
      await c.saveState(true);
      c.log.info({ dir, ms: Date.now() - started }, `cluster up: ${c.describePorts()}`);
      return c;
    } catch (err) {
      // Leave nothing half-built behind: stop what runs and remove what we made.
      await c.stopAll('immediate').catch(() => undefined);
      if (createdDir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      else await emptyDir(dir).catch(() => undefined);
      throw err;
    }
  }

  private build(): LocalBuild {
    return { info: this.info, log: this.log, timeoutMs: this.timeoutMs };
  }

  private onPrimary(): OnPrimary {
    return (database, fn) => this.withClient(0, database, this.info.users.superuser, fn);
  }

  private saveState(complete = true): Promise<void> {
    return writeState(this.info.dir, {
      version: 1,
      provider: 'local',
      requestedDir: this.requestedDir,
      info: this.info,
      synchronousStandby: this.synchronousStandby,
      createdAt: new Date().toISOString(),
      complete,
    });
  }

  private async resume(opts: ClusterOptions): Promise<void> {
    if (!existsSync(bin(this.info, 'pg_ctl'))) {
      throw new Error(`${this.info.dir}: the PostgreSQL binaries it was built with (${this.info.binDir}) are gone`);
    }
    if (opts.standbys !== undefined && opts.standbys !== this.info.nodes.length - 1) {
      this.log.warn(
        { dir: this.info.dir },
        `existing cluster has ${this.info.nodes.length - 1} standby(s); ignoring standbys=${opts.standbys} (down --purge to rebuild)`,
      );
    }
    this.log.info({ dir: this.info.dir }, `reusing cluster in ${this.info.dir}`);
    for (const [i, n] of this.info.nodes.entries()) {
      if (runningPostmaster(n.dataDir) === null) this.log.info({ node: n.name }, 'starting');
      // Also continues a node left suspended (SIGSTOP) by a test.
      await this.startNode(i);
    }
    if (await this.settle(opts.synchronousStandby)) await this.saveState();
  }

  // ---------------------------------------------------------------------------------------------
  // Control

  async down(opts: { purge?: boolean } = {}): Promise<void> {
    await this.stopAll('fast');
    if (opts.purge) {
      await rm(this.info.dir, { recursive: true, force: true });
      this.log.info({ dir: this.info.dir }, 'cluster removed');
    }
  }

  /** Stop every node, standbys first. */
  private async stopAll(mode: StopMode): Promise<void> {
    const errors: unknown[] = [];
    const stop = (i: number) =>
      this.stopNode(i, mode).catch(async (err: unknown) => {
        // Still running after pg_ctl gave up: do not leave it behind.
        const pid = runningPostmaster(this.node(i).dataDir);
        if (pid !== null) {
          for (const p of [pid, ...childPids(pid)]) signalQuietly(p, 'SIGKILL');
        }
        errors.push(err);
      });
    await Promise.all(this.info.nodes.map((_, i) => i).filter((i) => i > 0).map(stop));
    await stop(0);
    if (errors.length) throw errors[0];
  }

  async status(): Promise<NodeStatus[]> {
    return Promise.all(
      this.info.nodes.map(async (n, i): Promise<NodeStatus> => {
        const pid = runningPostmaster(n.dataDir);
        const down: NodeStatus = { name: n.name, port: n.port, up: false, inRecovery: null, lsn: null, pid };
        // A suspended postmaster would only make us wait for a connect timeout.
        if (pid === null || this.faults.isSuspended(n) || isStopped(pid)) return down;
        return this.probeStatus(i, down);
      }),
    );
  }

  async stopNode(i: number, mode: StopMode = 'fast'): Promise<void> {
    const n = this.node(i);
    if (runningPostmaster(n.dataDir) === null) return;
    // A stopped (SIGSTOP) server cannot act on the shutdown signal.
    this.faults.resume(n);
    this.log.info({ node: n.name, mode }, 'stopping');
    try {
      await runAsServer(bin(this.info, 'pg_ctl'), ['stop', '-D', n.dataDir, '-m', mode, '-w', '-t', String(Math.ceil(this.timeoutMs / 1000))], {
        cwd: path.dirname(n.dataDir),
        timeoutMs: this.timeoutMs + 10_000,
      });
    } catch (err) {
      if (runningPostmaster(n.dataDir) === null) return; // it stopped anyway
      throw await this.nodeError(i, `pg_ctl stop failed: ${(err as Error).message}`);
    }
  }

  async startNode(i: number): Promise<void> {
    const n = this.node(i);
    if (runningPostmaster(n.dataDir) !== null) {
      this.faults.resume(n);
      return;
    }
    await this.clearStale(i);
    if (!(await isPortFree(n.port, n.host))) {
      throw await this.nodeError(i, `cannot start: port ${n.host}:${n.port} is in use by another process`);
    }
    // `postgres -D` rather than `pg_ctl start -l`: same log file, but we are the parent and
    // reap the postmaster when it exits (see spawnServer).
    const child = await spawnServer(bin(this.info, 'postgres'), ['-D', n.dataDir], { cwd: path.dirname(n.dataDir), logFile: logFile(n) });
    let exited: string | null = null;
    child.once('exit', (code, signal) => {
      exited = signal ? `signal ${signal}` : `exit code ${String(code)}`;
    });
    await this.waitAccepting(i, () => exited);
  }

  /**
   * Before starting: a postmaster.pid whose process is gone (or is someone else now) is removed,
   * as is the socket lock file, and orphaned children of a killed postmaster get a moment to
   * exit (they still hold its shared memory, which would make the new postmaster refuse to start).
   */
  private async clearStale(i: number): Promise<void> {
    const n = this.node(i);
    const pid = readPostmasterPid(n.dataDir);
    if (pid === null) return;
    const deadline = Date.now() + 10_000;
    let left = processesIn(n.dataDir);
    while (left.length > 0 && Date.now() < deadline) {
      for (const p of left) signalQuietly(p, 'SIGCONT');
      await sleep(100);
      left = processesIn(n.dataDir);
    }
    for (const p of left) signalQuietly(p, 'SIGKILL');
    if (left.length) await sleep(200);
    this.log.info({ node: n.name, pid }, 'removing stale postmaster.pid');
    await rm(path.join(n.dataDir, 'postmaster.pid'), { force: true });
    const socketDir = socketDirFor(path.dirname(n.dataDir), n.port);
    if (socketDir) {
      await rm(path.join(socketDir, `.s.PGSQL.${n.port}.lock`), { force: true });
      await rm(path.join(socketDir, `.s.PGSQL.${n.port}`), { force: true });
    }
  }

  protected logTail(i: number): Promise<string> {
    return tail(logFile(this.node(i)));
  }

  // ---------------------------------------------------------------------------------------------
  // Faults

  async killNode(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.faults.kill(this.node(i), signal, this.timeoutMs);
  }

  async suspendNode(i: number): Promise<void> {
    this.faults.suspend(this.node(i));
  }

  async resumeNode(i: number): Promise<void> {
    this.faults.resume(this.node(i));
  }

  protected async requestPromotion(i: number): Promise<void> {
    const n = this.node(i);
    await runAsServer(bin(this.info, 'pg_ctl'), ['promote', '-D', n.dataDir, '-w', '-t', String(Math.ceil(this.timeoutMs / 1000))], {
      cwd: path.dirname(n.dataDir),
      timeoutMs: this.timeoutMs + 10_000,
    });
  }
}
