// Building a cluster from the PostgreSQL binaries on this machine: its directory, initdb of the primary, the
// configuration files, pg_basebackup -R -X stream of each standby. The order of the steps is LocalCluster's.
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, open as openFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../cluster-base.js';
import type { ClusterInfo, ClusterNodeInfo } from '../cluster-types.js';
import { hbaConf, NODE_CONF_FILE, nodeConf, socketDirFor } from '../config-files.js';
import { findFreePorts, isPortFree } from '../ports.js';
import { chownToServer, runAsServer, serverUser, serverUserCanReach } from '../runas.js';
import { fallbackDir } from '../state.js';
import { baseBackupArgs, initdbArgs } from '../tools.js';

const LOG_TAIL_LINES = 25;

/** A cluster built from this machine's binaries: where they are. */
export interface LocalClusterInfo extends ClusterInfo {
  provider: 'local';
  binDir: string;
}

/** What the build steps need to know about the cluster being built. */
export interface LocalBuild {
  readonly info: LocalClusterInfo;
  readonly log: Log;
  readonly timeoutMs: number;
}

export function bin(info: LocalClusterInfo, name: string): string {
  return path.join(info.binDir, name);
}

export function logFile(node: ClusterNodeInfo): string {
  return path.join(path.dirname(node.dataDir), 'server.log');
}

export async function tail(file: string, lines = LOG_TAIL_LINES): Promise<string> {
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

/** Deepest existing ancestor of `p` (or `p` itself). */
function existingAncestor(p: string): string {
  let cur = p;
  for (;;) {
    if (existsSync(cur)) return cur;
    const up = path.dirname(cur);
    if (up === cur) return cur;
    cur = up;
  }
}

/** mkdir -p with each directory we create made 0755, whatever the umask. */
export async function mkdirTraversable(p: string): Promise<void> {
  if (existsSync(p)) return;
  await mkdirTraversable(path.dirname(p));
  await mkdir(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await chmod(p, 0o755);
}

export async function emptyDir(dir: string): Promise<void> {
  for (const e of await readdir(dir).catch(() => [] as string[])) {
    await rm(path.join(dir, e), { recursive: true, force: true });
  }
}

/** `requested`, or fallbackDir(requested) when the postgres OS user (we are root) cannot reach it. */
export function chooseDir(requested: string, log: Log): string {
  const user = serverUser();
  if (!user.switched) return requested;
  // The requested directory itself becomes the server user's; what matters is its ancestors.
  const ancestor = existingAncestor(existsSync(requested) ? path.dirname(requested) : requested);
  if (serverUserCanReach(ancestor)) return requested;
  const dir = fallbackDir(requested);
  log.warn({ requested, dir }, `the ${user.name} OS user cannot reach ${ancestor}; using ${dir} for the cluster instead`);
  return dir;
}

/** Make `dir` (refusing a non-empty one that is not ours) and one 0700 directory per node, all the server user's. Returns whether `dir` was created. */
export async function prepareDirs(dir: string, stateFile: string): Promise<boolean> {
  let created = false;
  if (existsSync(dir)) {
    if ((await readdir(dir)).length > 0) {
      throw new Error(`${dir} exists, is not empty and has no ${stateFile}; remove it or choose another --dir`);
    }
  } else {
    await mkdirTraversable(dir);
    created = true;
  }
  await chmod(dir, 0o755);
  await chownToServer(dir);
  return created;
}

export async function makeNodeDirs(nodes: ClusterNodeInfo[]): Promise<void> {
  for (const n of nodes) {
    const nodeDir = path.dirname(n.dataDir);
    await mkdir(nodeDir, { mode: 0o700 });
    await chmod(nodeDir, 0o700);
    await chownToServer(nodeDir);
  }
}

/** Write pgproxy.conf (node-specific + shared settings) and make postgresql.conf include it. */
export async function writeNodeConf(c: LocalBuild, i: number, includeLine: boolean): Promise<void> {
  const n = c.info.nodes[i] as ClusterNodeInfo;
  // Ports were checked when creation began; another process (a parallel test run) may have
  // taken one since. Re-check just before the port goes into the config.
  if (!(await isPortFree(n.port, n.host))) {
    const others = c.info.nodes.map((x) => x.port);
    const [port] = await findFreePorts(1, { base: n.port + 1, exclude: others });
    c.log.warn({ node: n.name, taken: n.port, port }, `port ${n.port} was taken meanwhile; ${n.name} uses ${port}`);
    n.port = port as number;
  }
  const socketDir = socketDirFor(path.dirname(n.dataDir), n.port);
  const file = path.join(n.dataDir, NODE_CONF_FILE);
  await writeFile(file, nodeConf(n, { socketDir }), { mode: 0o600 });
  await chownToServer(file);
  if (includeLine) {
    await appendFile(path.join(n.dataDir, 'postgresql.conf'), `\n# pgproxy devcluster\ninclude '${NODE_CONF_FILE}'\n`);
  }
}

/** initdb node 0 (superuser password from a file, SCRAM), then its configuration files. */
export async function initPrimary(c: LocalBuild): Promise<void> {
  const n = c.info.nodes[0] as ClusterNodeInfo;
  const nodeDir = path.dirname(n.dataDir);
  const pwfile = path.join(nodeDir, 'pwfile');
  await writeFile(pwfile, `${c.info.users.superuser.password}\n`, { mode: 0o600 });
  await chownToServer(pwfile);
  c.log.info({ node: n.name }, 'initdb');
  try {
    await runAsServer(bin(c.info, 'initdb'), ['-D', n.dataDir, ...initdbArgs(c.info, `--pwfile=${pwfile}`)], {
      cwd: nodeDir,
      timeoutMs: c.timeoutMs * 2,
    });
  } finally {
    await rm(pwfile, { force: true });
  }
  await writeNodeConf(c, 0, true);
  const hba = path.join(n.dataDir, 'pg_hba.conf');
  await writeFile(hba, hbaConf(c.info.users), { mode: 0o600 });
  await chownToServer(hba);
}

/** pg_basebackup node i from node 0 (whose slot named after node i exists), then give it its own pgproxy.conf. */
export async function baseBackup(c: LocalBuild, i: number): Promise<void> {
  const primary = c.info.nodes[0] as ClusterNodeInfo;
  const n = c.info.nodes[i] as ClusterNodeInfo;
  c.log.info({ node: n.name }, 'pg_basebackup');
  await runAsServer(bin(c.info, 'pg_basebackup'), ['-D', n.dataDir, ...baseBackupArgs(c.info, primary, n.name)], {
    cwd: path.dirname(n.dataDir),
    env: { PGPASSWORD: c.info.users.replication.password },
    timeoutMs: c.timeoutMs * 2,
  });
  // pg_basebackup copied node0's pgproxy.conf and the include line; give this node its own.
  await writeNodeConf(c, i, false);
}
