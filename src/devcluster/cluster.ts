// A local PostgreSQL cluster for `pgproxy demo`, `pgproxy cluster` and the integration tests:
// one primary (node0) and N streaming standbys (node1..N) on loopback ports, built with
// initdb and pg_basebackup -R -X stream over physical replication slots.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, open as openFile, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { findPgBinDir } from './binaries.js';
import type { ClusterNodeInfo, ClusterUser, ClusterUsers } from './cluster-types.js';
import { hbaConf, NODE_CONF_FILE, nodeConf, socketDirFor } from './config-files.js';
import { findFreePorts, isPortFree, LOOPBACK } from './ports.js';
import { childPids, isStopped, processesIn, readPostmasterPid, runningPostmaster, signalQuietly } from './procs.js';
import { chownToServer, runAsServer, serverUser, serverUserCanReach, spawnServer } from './runas.js';

export type { ClusterNodeInfo, ClusterUser, ClusterUsers };
export interface ClusterInfo {
  dir: string;
  binDir: string;
  nodes: ClusterNodeInfo[];
  users: ClusterUsers;
  /** 'app' */
  database: string;
}
export interface ClusterOptions {
  /** Default: path.resolve('.pgproxy/cluster'). As root, a directory the postgres OS user cannot reach is replaced by one under os.tmpdir(). */
  dir?: string;
  /** Default 2. */
  standbys?: number;
  /**
   * Default 15432 (node0=15432, node1=15433, ...). Ports taken by something else are replaced
   * by free ones (logged). 0: any free ports (random, away from 15432 and the ephemeral range).
   */
  basePort?: number;
  /** synchronous_standby_names = 'node1' (first standby), synchronous_commit on. */
  synchronousStandby?: boolean;
  logger?: Logger;
  /** Bound on each wait (server start, streaming, promotion). Default 60 s. */
  timeoutMs?: number;
}
export interface NodeStatus {
  name: string;
  port: number;
  up: boolean;
  /** pg_is_in_recovery(); null when down. */
  inRecovery: boolean | null;
  /** pg_current_wal_lsn() on a primary, pg_last_wal_replay_lsn() on a standby; null when down. */
  lsn: string | null;
  /** Postmaster pid from postmaster.pid when the process is running, else null. */
  pid: number | null;
}

/** Fixed, public development credentials (never use them outside a dev cluster). */
export const DEV_USERS: ClusterUsers = Object.freeze({
  superuser: { name: 'postgres', password: 'postgres' },
  app: { name: 'app', password: 'app-secret' },
  scram: { name: 'app_scram', password: 'scram-secret' },
  monitor: { name: 'pgproxy_monitor', password: 'monitor-secret' },
  replication: { name: 'replicator', password: 'repl-secret' },
});
export const DEV_DATABASE = 'app';
export const DEFAULT_CLUSTER_DIR = '.pgproxy/cluster';
export const DEFAULT_BASE_PORT = 15432;
export const STATE_FILE = 'cluster.json';
const DEFAULT_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 25;

/** What cluster.json holds. */
interface ClusterState {
  version: 1;
  /** The directory the user asked for (differs from info.dir when we had to fall back). */
  requestedDir: string;
  info: ClusterInfo;
  synchronousStandby: boolean;
  createdAt: string;
  /** False while creation runs: an interrupted creation is torn down and redone by the next up(). */
  complete?: boolean;
}

/** An error about one node, with the tail of its server log. */
export class ClusterNodeError extends Error {
  readonly code = 'DEVCLUSTER_NODE_ERROR';
  constructor(
    readonly node: string,
    message: string,
    readonly logTail: string,
  ) {
    super(`${node}: ${message}${logTail ? `\n--- last lines of ${node}'s server log ---\n${logTail}` : ''}`);
    this.name = 'ClusterNodeError';
  }
}

const silentLogger: Pick<Logger, 'info' | 'warn' | 'debug'> = {
  info: () => undefined,
  warn: () => undefined,
  debug: () => undefined,
} as unknown as Pick<Logger, 'info' | 'warn' | 'debug'>;

type Log = Pick<Logger, 'info' | 'warn' | 'debug'>;

function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/** The directory used instead of `requested` when the postgres OS user cannot reach it. */
export function fallbackDir(requested: string): string {
  const hash = createHash('sha256').update(path.resolve(requested)).digest('hex').slice(0, 10);
  return path.join(os.tmpdir(), `pgproxy-cluster-${hash}`);
}

async function readState(dir: string): Promise<ClusterState | null> {
  let text: string;
  try {
    text = await readFile(path.join(dir, STATE_FILE), 'utf8');
  } catch {
    return null;
  }
  const state = JSON.parse(text) as ClusterState;
  if (state.version !== 1 || !state.info?.nodes?.length) {
    throw new Error(`${path.join(dir, STATE_FILE)}: not a pgproxy devcluster state file (version ${String(state.version)})`);
  }
  return state;
}

/** Where the state of the cluster requested at `requested` lives, if anywhere. */
async function findState(requested: string): Promise<ClusterState | null> {
  return (await readState(requested)) ?? (await readState(fallbackDir(requested)));
}

/** Deepest existing ancestor of `p` (or `p` itself). */
async function existingAncestor(p: string): Promise<string> {
  let cur = p;
  for (;;) {
    if (existsSync(cur)) return cur;
    const up = path.dirname(cur);
    if (up === cur) return cur;
    cur = up;
  }
}

/** mkdir -p with each directory we create made 0755, whatever the umask. */
async function mkdirTraversable(p: string): Promise<void> {
  if (existsSync(p)) return;
  await mkdirTraversable(path.dirname(p));
  await mkdir(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await chmod(p, 0o755);
}

async function emptyDir(dir: string): Promise<void> {
  for (const e of await readdir(dir).catch(() => [] as string[])) {
    await rm(path.join(dir, e), { recursive: true, force: true });
  }
}

async function tail(file: string, lines = LOG_TAIL_LINES): Promise<string> {
  try {
    const fh = await openFile(file, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd();
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

export class LocalCluster {
  readonly info: ClusterInfo;
  private synchronousStandby: boolean;
  private readonly requestedDir: string;
  private readonly log: Log;
  private readonly timeoutMs: number;
  /** Pids stopped by suspendNode, per node index, so resumeNode continues exactly them. */
  private readonly suspended = new Map<number, number[]>();

  private constructor(state: ClusterState, log: Log | undefined, timeoutMs: number | undefined) {
    this.info = state.info;
    this.synchronousStandby = state.synchronousStandby;
    this.requestedDir = state.requestedDir;
    this.log = log ?? silentLogger;
    this.timeoutMs = timeoutMs ?? DEFAULT_TIMEOUT_MS;
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
    const log = opts.logger ?? silentLogger;
    const requested = path.resolve(opts.dir ?? DEFAULT_CLUSTER_DIR);
    const existing = await findState(requested);
    if (existing && existing.complete !== false) {
      const c = new LocalCluster(existing, opts.logger, opts.timeoutMs);
      await c.resume(opts);
      return c;
    }
    if (existing) {
      log.warn({ dir: existing.info.dir }, 'found a cluster whose creation was interrupted; rebuilding it');
      await new LocalCluster(existing, opts.logger, opts.timeoutMs).stopAll('immediate').catch(() => undefined);
      await emptyDir(existing.info.dir);
      return LocalCluster.create(requested, existing.info.dir, opts, log);
    }
    const dir = await LocalCluster.chooseDir(requested, log);
    return LocalCluster.create(requested, dir, opts, log);
  }

  /** Load the cluster state for `dir` (or its fallback directory); no side effects. */
  static async open(dir: string, opts: { logger?: Logger; timeoutMs?: number } = {}): Promise<LocalCluster | null> {
    const state = await findState(path.resolve(dir));
    return state ? new LocalCluster(state, opts.logger, opts.timeoutMs) : null;
  }

  /** True when the cluster lives somewhere else than the directory asked for (see fallbackDir). */
  get relocated(): boolean {
    return this.requestedDir !== this.info.dir;
  }

  // ---------------------------------------------------------------------------------------------
  // Creation

  private static async chooseDir(requested: string, log: Log): Promise<string> {
    const user = serverUser();
    if (!user.switched) return requested;
    // The requested directory itself becomes the server user's; what matters is its ancestors.
    const ancestor = await existingAncestor(existsSync(requested) ? path.dirname(requested) : requested);
    if (serverUserCanReach(ancestor)) return requested;
    const dir = fallbackDir(requested);
    log.warn(
      { requested, dir },
      `the ${user.name} OS user cannot reach ${ancestor}; using ${dir} for the cluster instead`,
    );
    return dir;
  }

  private static async choosePorts(n: number, basePort: number | undefined, log: Log): Promise<number[]> {
    if (basePort === 0) return findFreePorts(n);
    const base = basePort ?? DEFAULT_BASE_PORT;
    const wanted = Array.from({ length: n }, (_, i) => base + i);
    const taken: number[] = [];
    for (const p of wanted) if (!(await isPortFree(p))) taken.push(p);
    if (taken.length === 0) return wanted;
    const ports = await findFreePorts(n, { base });
    log.warn({ taken, ports }, `port(s) ${taken.join(', ')} already in use; using ${ports.join(', ')}`);
    return ports;
  }

  private static async create(requested: string, dir: string, opts: ClusterOptions, log: Log): Promise<LocalCluster> {
    const started = Date.now();
    const standbys = opts.standbys ?? 2;
    if (!Number.isInteger(standbys) || standbys < 0) throw new Error(`standbys must be a whole number >= 0 (got ${standbys})`);
    if (opts.synchronousStandby && standbys < 1) throw new Error('a synchronous standby needs at least one standby');

    const binDir = await findPgBinDir();
    const ports = await LocalCluster.choosePorts(1 + standbys, opts.basePort, log);

    // Refuse to build over something that is not ours.
    let createdDir = false;
    if (existsSync(dir)) {
      const entries = await readdir(dir);
      if (entries.length > 0) {
        throw new Error(`${dir} exists, is not empty and has no ${STATE_FILE}; remove it or choose another --dir`);
      }
    } else {
      await mkdirTraversable(dir);
      createdDir = true;
    }
    await chmod(dir, 0o755);
    await chownToServer(dir);

    const nodes: ClusterNodeInfo[] = ports.map((port, i) => ({
      name: `node${i}`,
      host: LOOPBACK,
      port,
      dataDir: path.join(dir, `node${i}`, 'data'),
    }));
    const state: ClusterState = {
      version: 1,
      requestedDir: requested,
      info: { dir, binDir, nodes, users: DEV_USERS, database: DEV_DATABASE },
      synchronousStandby: false,
      createdAt: new Date().toISOString(),
    };
    const c = new LocalCluster(state, opts.logger, opts.timeoutMs);
    log.info({ dir, binDir, ports, standbys }, `creating PostgreSQL dev cluster in ${dir}`);

    try {
      await c.writeState(false);
      for (const n of nodes) {
        const nodeDir = path.dirname(n.dataDir);
        await mkdir(nodeDir, { mode: 0o700 });
        await chmod(nodeDir, 0o700);
        await chownToServer(nodeDir);
      }
      await c.initPrimary();
      await c.startNode(0);
      await c.setupRoles();
      await c.createStandbys();
      if (opts.synchronousStandby) await c.setSynchronous(true);
      await c.writeState(true);
      log.info({ dir, ms: Date.now() - started }, `cluster up: ${c.describePorts()}`);
      return c;
    } catch (err) {
      // Leave nothing half-built behind: stop what runs and remove what we made.
      await c.stopAll('immediate').catch(() => undefined);
      if (createdDir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      else await emptyDir(dir).catch(() => undefined);
      throw err;
    }
  }

  private bin(name: string): string {
    return path.join(this.info.binDir, name);
  }

  private logFile(i: number): string {
    return path.join(path.dirname(this.node(i).dataDir), 'server.log');
  }

  private node(i: number): ClusterNodeInfo {
    const n = this.info.nodes[i];
    if (!n) throw new RangeError(`no node ${i} (cluster has ${this.info.nodes.length} nodes)`);
    return n;
  }

  private async nodeError(i: number, message: string): Promise<ClusterNodeError> {
    return new ClusterNodeError(this.node(i).name, message, await tail(this.logFile(i)));
  }

  private describePorts(): string {
    return this.info.nodes.map((n) => `${n.name}=${n.port}`).join(' ');
  }

  private async writeState(complete = true): Promise<void> {
    const state: ClusterState = {
      version: 1,
      requestedDir: this.requestedDir,
      info: this.info,
      synchronousStandby: this.synchronousStandby,
      createdAt: new Date().toISOString(),
      complete,
    };
    const prev = await readState(this.info.dir).catch(() => null);
    if (prev) state.createdAt = prev.createdAt;
    const file = path.join(this.info.dir, STATE_FILE);
    await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
    await rename(`${file}.tmp`, file);
  }

  /** Write pgproxy.conf (node-specific + shared settings) and make postgresql.conf include it. */
  private async writeNodeConf(i: number, includeLine: boolean): Promise<void> {
    const n = this.node(i);
    // Ports were checked when creation began; another process (a parallel test run) may have
    // taken one since. Re-check just before the port goes into the config.
    if (!(await isPortFree(n.port, n.host))) {
      const others = this.info.nodes.map((x) => x.port);
      const [port] = await findFreePorts(1, { base: n.port + 1, exclude: others });
      this.log.warn({ node: n.name, taken: n.port, port }, `port ${n.port} was taken meanwhile; ${n.name} uses ${port}`);
      n.port = port as number;
    }
    const socketDir = socketDirFor(path.dirname(n.dataDir), n.port);
    const file = path.join(n.dataDir, NODE_CONF_FILE);
    await writeFile(file, nodeConf(n, socketDir), { mode: 0o600 });
    await chownToServer(file);
    if (includeLine) {
      await appendFile(path.join(n.dataDir, 'postgresql.conf'), `\n# pgproxy devcluster\ninclude '${NODE_CONF_FILE}'\n`);
    }
  }

  private async initPrimary(): Promise<void> {
    const n = this.node(0);
    const nodeDir = path.dirname(n.dataDir);
    const pwfile = path.join(nodeDir, 'pwfile');
    await writeFile(pwfile, `${this.info.users.superuser.password}\n`, { mode: 0o600 });
    await chownToServer(pwfile);
    this.log.info({ node: n.name }, 'initdb');
    try {
      await runAsServer(
        this.bin('initdb'),
        [
          '-D', n.dataDir,
          '-U', this.info.users.superuser.name,
          '-A', 'scram-sha-256',
          `--pwfile=${pwfile}`,
          '-E', 'UTF8',
          '--locale=C',
          // fsync is off for this dev cluster anyway; skip initdb's final sync too.
          '--no-sync',
        ],
        { cwd: nodeDir, timeoutMs: this.timeoutMs * 2 },
      );
    } finally {
      await rm(pwfile, { force: true });
    }
    await this.writeNodeConf(0, true);
    const hba = path.join(n.dataDir, 'pg_hba.conf');
    await writeFile(hba, hbaConf(this.info.users), { mode: 0o600 });
    await chownToServer(hba);
  }

  private async setupRoles(): Promise<void> {
    const u = this.info.users;
    const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
    const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
    const db = this.info.database;
    this.log.info({ node: this.node(0).name }, 'creating roles and database');
    // Keep CREATE ROLE ... PASSWORD out of pg_stat_statements (track_utility is on).
    const quiet = 'SET pg_stat_statements.track_utility = off';
    await this.withClient(0, 'postgres', u.superuser, async (client) => {
      await client.query(quiet);
      await client.query(`SET password_encryption = 'md5'`);
      await client.query(`CREATE ROLE ${ident(u.app.name)} LOGIN PASSWORD ${lit(u.app.password)}`);
      await client.query(`RESET password_encryption`);
      await client.query(`CREATE ROLE ${ident(u.scram.name)} LOGIN PASSWORD ${lit(u.scram.password)}`);
      await client.query(`CREATE ROLE ${ident(u.monitor.name)} LOGIN PASSWORD ${lit(u.monitor.password)}`);
      // pg_monitor includes pg_read_all_stats: all rows and columns of pg_stat_replication and pg_stat_statements.
      await client.query(`GRANT pg_monitor TO ${ident(u.monitor.name)}`);
      await client.query(`CREATE ROLE ${ident(u.replication.name)} REPLICATION LOGIN PASSWORD ${lit(u.replication.password)}`);
      await client.query(`CREATE DATABASE ${ident(db)} OWNER ${ident(u.app.name)}`);
      await client.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
    });
    await this.withClient(0, db, u.superuser, async (client) => {
      await client.query(quiet);
      await client.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
      await client.query(`GRANT CONNECT ON DATABASE ${ident(db)} TO ${ident(u.scram.name)}, ${ident(u.monitor.name)}`);
      await client.query(`GRANT ALL ON SCHEMA public TO ${ident(u.scram.name)}`);
      // Tables made by any of the app roles (or the superuser) are usable by both app roles.
      for (const owner of [u.superuser.name, u.app.name, u.scram.name]) {
        for (const kind of ['TABLES', 'SEQUENCES', 'FUNCTIONS']) {
          await client.query(
            `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(owner)} IN SCHEMA public GRANT ALL ON ${kind} TO ${ident(u.app.name)}, ${ident(u.scram.name)}`,
          );
        }
      }
    });
  }

  private async createStandbys(): Promise<void> {
    const primary = this.node(0);
    const u = this.info.users;
    const standbyIdx = this.info.nodes.map((_, i) => i).filter((i) => i > 0);
    if (standbyIdx.length === 0) return;
    await this.withClient(0, 'postgres', u.superuser, async (client) => {
      for (const i of standbyIdx) {
        await client.query('SELECT pg_create_physical_replication_slot($1)', [this.node(i).name]);
      }
    });
    // One at a time: each takes a checkpoint on the primary, and we have two cores.
    for (const i of standbyIdx) {
      const n = this.node(i);
      this.log.info({ node: n.name }, 'pg_basebackup');
      try {
        await runAsServer(
          this.bin('pg_basebackup'),
          [
            '-h', primary.host,
            '-p', String(primary.port),
            '-U', u.replication.name,
            '-D', n.dataDir,
            '-R',
            '-X', 'stream',
            '-S', n.name,
            '--checkpoint=fast',
            '--no-sync',
            '-w',
          ],
          // PGPASSWORD, not argv: argv shows in `ps` and in our error messages.
          { cwd: path.dirname(n.dataDir), env: { PGPASSWORD: u.replication.password }, timeoutMs: this.timeoutMs * 2 },
        );
      } catch (err) {
        throw await this.nodeError(0, `pg_basebackup for ${n.name} failed: ${(err as Error).message}`);
      }
      // pg_basebackup copied node0's pgproxy.conf and the include line; give this node its own.
      await this.writeNodeConf(i, false);
    }
    await Promise.all(standbyIdx.map((i) => this.startNode(i)));
    await this.waitStreaming(0, standbyIdx);
  }

  /** Turn synchronous replication to node1 on or off on the primary (node0). */
  private async setSynchronous(on: boolean): Promise<void> {
    const names = on ? this.node(1).name : '';
    await this.withClient(0, 'postgres', this.info.users.superuser, async (client) => {
      await client.query(`ALTER SYSTEM SET synchronous_standby_names = '${names}'`);
      await client.query(`ALTER SYSTEM SET synchronous_commit = 'on'`);
      await client.query('SELECT pg_reload_conf()');
    });
    this.synchronousStandby = on;
    this.log.info({ synchronousStandby: on ? names : null }, on ? `synchronous standby: ${names}` : 'asynchronous replication');
  }

  // ---------------------------------------------------------------------------------------------
  // Reuse

  private async resume(opts: ClusterOptions): Promise<void> {
    const log = this.log;
    if (!existsSync(path.join(this.info.binDir, 'pg_ctl'))) {
      throw new Error(`${this.info.dir}: the PostgreSQL binaries it was built with (${this.info.binDir}) are gone`);
    }
    if (opts.standbys !== undefined && opts.standbys !== this.info.nodes.length - 1) {
      log.warn(
        { dir: this.info.dir },
        `existing cluster has ${this.info.nodes.length - 1} standby(s); ignoring standbys=${opts.standbys} (down --purge to rebuild)`,
      );
    }
    log.info({ dir: this.info.dir }, `reusing cluster in ${this.info.dir}`);
    for (const [i, n] of this.info.nodes.entries()) {
      if (runningPostmaster(n.dataDir) === null) log.info({ node: n.name }, 'starting');
      // Also continues a node left suspended (SIGSTOP) by a test.
      await this.startNode(i);
    }
    const st = await this.status();
    const primaries = st.flatMap((s, i) => (s.up && s.inRecovery === false ? [i] : []));
    if (primaries.length === 1) {
      const p = primaries[0] as number;
      const followers: number[] = [];
      for (const [i, s] of st.entries()) {
        if (s.inRecovery && (await this.upstreamPort(i)) === this.node(p).port) followers.push(i);
      }
      await this.waitStreaming(p, followers);
      const wantSync = opts.synchronousStandby;
      if (p === 0 && wantSync !== undefined && wantSync !== this.synchronousStandby && this.info.nodes.length > 1) {
        await this.setSynchronous(wantSync);
        await this.writeState();
      }
    } else {
      log.warn({ primaries: primaries.map((i) => this.node(i).name) }, `expected one primary, found ${primaries.length}`);
    }
  }

  /** Port in node i's primary_conninfo, or null. */
  private async upstreamPort(i: number): Promise<number | null> {
    const rows = await this.probe<{ primary_conninfo: string }>(i, 'SHOW primary_conninfo');
    const m = /(?:^|\s)port=(\d+)/.exec(rows[0]?.primary_conninfo ?? '');
    return m ? Number(m[1]) : null;
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /** Stop every node (standbys first); `purge` also removes the cluster directory. */
  async down(opts: { purge?: boolean } = {}): Promise<void> {
    await this.stopAll('fast');
    if (opts.purge) {
      await rm(this.info.dir, { recursive: true, force: true });
      this.log.info({ dir: this.info.dir }, 'cluster removed');
    }
  }

  private async stopAll(mode: 'fast' | 'immediate'): Promise<void> {
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
        if (pid === null || this.suspended.has(i) || isStopped(pid)) return down;
        try {
          const rows = await this.probe<{ r: boolean; lsn: string | null }>(
            i,
            `SELECT pg_is_in_recovery() AS r,
                    CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn`,
          );
          const row = rows[0];
          return { ...down, up: true, inRecovery: row?.r ?? null, lsn: row?.lsn ?? null };
        } catch {
          return down;
        }
      }),
    );
  }

  async stopNode(i: number, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const n = this.node(i);
    const pid = runningPostmaster(n.dataDir);
    if (pid === null) return;
    // A stopped (SIGSTOP) server cannot act on the shutdown signal.
    this.resumeNode(i);
    this.log.info({ node: n.name, mode }, 'stopping');
    try {
      await runAsServer(this.bin('pg_ctl'), ['stop', '-D', n.dataDir, '-m', mode, '-w', '-t', String(Math.ceil(this.timeoutMs / 1000))], {
        cwd: path.dirname(n.dataDir),
        timeoutMs: this.timeoutMs + 10_000,
      });
    } catch (err) {
      if (runningPostmaster(n.dataDir) === null) return; // it stopped anyway
      throw await this.nodeError(i, `pg_ctl stop failed: ${(err as Error).message}`);
    }
  }

  /** Start node i (no-op when running) and wait until it accepts connections. */
  async startNode(i: number): Promise<void> {
    const n = this.node(i);
    if (runningPostmaster(n.dataDir) !== null) {
      this.resumeNode(i);
      return;
    }
    await this.clearStale(i);
    if (!(await isPortFree(n.port, n.host))) {
      throw await this.nodeError(i, `cannot start: port ${n.host}:${n.port} is in use by another process`);
    }
    // `postgres -D` rather than `pg_ctl start -l`: same log file, but we are the parent and
    // reap the postmaster when it exits (see spawnServer).
    const child = await spawnServer(this.bin('postgres'), ['-D', n.dataDir], {
      cwd: path.dirname(n.dataDir),
      logFile: this.logFile(i),
    });
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

  /** Until node i answers `SELECT 1`; stops early when `exited()` reports the server gone. */
  private async waitAccepting(i: number, exited: () => string | null = () => null): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      const gone = exited();
      if (gone !== null) throw await this.nodeError(i, `server exited during startup (${gone})`);
      try {
        await this.probe(i, 'SELECT 1');
        return;
      } catch (err) {
        last = err;
        await sleep(50);
      }
    }
    throw await this.nodeError(i, `not accepting connections after ${this.timeoutMs} ms: ${(last as Error | undefined)?.message ?? ''}`);
  }

  /** Wait until every standby in `standbys` streams from node `p` (pg_stat_replication, state streaming). */
  private async waitStreaming(p: number, standbys: number[]): Promise<void> {
    if (standbys.length === 0) return;
    const deadline = Date.now() + this.timeoutMs;
    const names = standbys.map((i) => this.node(i).name);
    let missing = names;
    while (Date.now() < deadline) {
      try {
        const rows = await this.probe<{ application_name: string }>(
          p,
          `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'`,
        );
        const streaming = new Set(rows.map((r) => r.application_name));
        missing = names.filter((name) => !streaming.has(name));
        if (missing.length === 0) return;
      } catch {
        // primary restarting; retry
      }
      await sleep(100);
    }
    const first = standbys[names.indexOf(missing[0] as string)] ?? p;
    throw await this.nodeError(first, `not streaming from ${this.node(p).name} after ${this.timeoutMs} ms (missing: ${missing.join(', ')})`);
  }

  // ---------------------------------------------------------------------------------------------
  // Fault injection

  /** Signal node i's postmaster (default SIGKILL). Its children notice and exit on their own. */
  killNode(i: number, signal: NodeJS.Signals = 'SIGKILL'): void {
    const n = this.node(i);
    const pid = runningPostmaster(n.dataDir);
    if (pid === null) throw new Error(`${n.name} is not running`);
    this.log.info({ node: n.name, signal }, 'signalling postmaster');
    if (signal === 'SIGKILL') this.resumeNode(i);
    process.kill(pid, signal);
  }

  /** SIGSTOP the postmaster and all its children: new and existing sessions hang. */
  suspendNode(i: number): void {
    const n = this.node(i);
    const pid = runningPostmaster(n.dataDir);
    if (pid === null) throw new Error(`${n.name} is not running`);
    // Postmaster first, so it forks nobody new while we stop its children.
    signalQuietly(pid, 'SIGSTOP');
    const children = childPids(pid);
    for (const c of children) signalQuietly(c, 'SIGSTOP');
    this.suspended.set(i, [pid, ...children]);
    this.log.info({ node: n.name, pids: children.length + 1 }, 'suspended');
  }

  /** SIGCONT what suspendNode stopped (and the node's current processes). */
  resumeNode(i: number): void {
    const n = this.node(i);
    const pids = new Set(this.suspended.get(i) ?? []);
    const pid = runningPostmaster(n.dataDir);
    if (pid !== null) for (const c of childPids(pid)) pids.add(c);
    // Children first, then the postmaster.
    for (const p of pids) if (p !== pid) signalQuietly(p, 'SIGCONT');
    if (pid !== null) signalQuietly(pid, 'SIGCONT');
    if (this.suspended.delete(i)) this.log.info({ node: n.name }, 'resumed');
  }

  /** pg_ctl promote node i, then wait until pg_is_in_recovery() is false. */
  async promote(i: number): Promise<void> {
    const n = this.node(i);
    this.log.info({ node: n.name }, 'promoting');
    try {
      await runAsServer(this.bin('pg_ctl'), ['promote', '-D', n.dataDir, '-w', '-t', String(Math.ceil(this.timeoutMs / 1000))], {
        cwd: path.dirname(n.dataDir),
        timeoutMs: this.timeoutMs + 10_000,
      });
    } catch (err) {
      throw await this.nodeError(i, `pg_ctl promote failed: ${(err as Error).message}`);
    }
    const deadline = Date.now() + this.timeoutMs;
    while (Date.now() < deadline) {
      const rows = await this.probe<{ r: boolean }>(i, 'SELECT pg_is_in_recovery() AS r').catch(() => []);
      if (rows[0]?.r === false) return;
      await sleep(100);
    }
    throw await this.nodeError(i, `still in recovery ${this.timeoutMs} ms after promote`);
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  /** node-postgres connection settings for node i (default: superuser, database 'app'). */
  connectionConfig(i: number, user: ClusterUser = this.info.users.superuser, database: string = this.info.database): pg.ClientConfig {
    const n = this.node(i);
    return {
      host: n.host,
      port: n.port,
      user: user.name,
      password: user.password,
      database,
      ssl: false,
      application_name: 'pgproxy-devcluster',
    };
  }

  /** A postgres:// URL for node i (contains the password). */
  connectionString(i: number, user: ClusterUser = this.info.users.superuser, database: string = this.info.database): string {
    const n = this.node(i);
    const e = encodeURIComponent;
    return `postgres://${e(user.name)}:${e(user.password)}@${n.host}:${n.port}/${e(database)}`;
  }

  private async withClient<T>(
    i: number,
    database: string,
    user: ClusterUser,
    fn: (c: pg.Client) => Promise<T>,
    // Bounded even when the node is suspended under us; long enough for any setup statement.
    { connectMs = 10_000, queryMs = 120_000 }: { connectMs?: number; queryMs?: number } = {},
  ): Promise<T> {
    const client = new pg.Client({
      ...this.connectionConfig(i, user, database),
      connectionTimeoutMillis: connectMs,
      query_timeout: queryMs,
    });
    // A server that dies under us emits 'error' on the client; the query rejects anyway.
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** One-shot query on node i (default superuser, database 'app'). */
  async query<T = any>(
    i: number,
    sql: string,
    params: unknown[] = [],
    user: ClusterUser = this.info.users.superuser,
    database: string = this.info.database,
  ): Promise<T[]> {
    return this.withClient(i, database, user, async (c) => (await c.query(sql, params)).rows as T[]);
  }

  /** A short superuser query on database postgres for status checks and waits (5 s bounds). */
  private probe<T>(i: number, sql: string, params: unknown[] = []): Promise<T[]> {
    return this.withClient(i, 'postgres', this.info.users.superuser, async (c) => (await c.query(sql, params)).rows as T[], {
      connectMs: 5_000,
      queryMs: 5_000,
    });
  }

  /** Until every up standby's replay LSN >= its upstream's current WAL LSN (taken once, now). */
  async waitForReplay(timeoutMs: number = this.timeoutMs): Promise<void> {
    const st = await this.status();
    const targets = new Map<number, bigint>(); // upstream port -> its LSN now
    for (const [i, s] of st.entries()) {
      if (s.up && s.inRecovery === false) {
        const rows = await this.probe<{ lsn: string }>(i, 'SELECT pg_current_wal_lsn()::text AS lsn');
        targets.set(s.port, lsnToBigInt(rows[0]?.lsn ?? '0/0'));
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (const [i, s] of st.entries()) {
      if (!s.up || !s.inRecovery) continue;
      const upstream = await this.upstreamPort(i);
      const target = upstream === null ? undefined : targets.get(upstream);
      if (target === undefined) continue; // its upstream is down or unknown
      let replayed = -1n;
      while (Date.now() < deadline) {
        const rows = await this.probe<{ lsn: string | null }>(i, 'SELECT pg_last_wal_replay_lsn()::text AS lsn');
        replayed = lsnToBigInt(rows[0]?.lsn ?? '0/0');
        if (replayed >= target) break;
        await sleep(20);
      }
      if (replayed < target) {
        throw await this.nodeError(i, `replay did not reach the primary's LSN within ${timeoutMs} ms`);
      }
    }
  }
}

/** For callers that want to know whether a directory holds a cluster without loading it. */
export async function hasCluster(dir: string): Promise<boolean> {
  return (await findState(path.resolve(dir))) !== null;
}
