// `pgproxy cluster up | down | status`: the PostgreSQL dev cluster (see src/devcluster/), from local binaries or
// in containers.
import type pino from 'pino';
import {
  type ContainerClusterInfo,
  defaultClusterDir,
  type DevCluster,
  type NodeStatus,
  openCluster,
  type ProviderName,
  startCluster,
} from '../devcluster/cluster.js';

const USAGE = `usage: pgproxy cluster <up|down|status> [options]

  up       create the cluster (or start an existing one) and wait until standbys stream
  down     stop every node (--purge also deletes the cluster directory); containers are removed
  status   show each node's port, role, WAL position and whether it is up

options:
  --dir DIR        cluster directory (default: .pgproxy/cluster)
  --standbys N     number of streaming standbys when creating (default: 2)
  --port BASE      first port when creating: node0=BASE, node1=BASE+1, ... (default: 15432; 0 = any free)
  --sync           make the first standby (node1) synchronous
  --docker         with up: run the nodes in containers (also PGPROXY_CLUSTER=docker); default: local
                   PostgreSQL binaries when there are any, else containers when a container engine answers
  --image IMAGE    with up: the container image (implies --docker; default: $PGPROXY_IMAGE, else postgres:15)
  --purge          with down: remove the cluster directory
  -h, --help       this text

exit codes: 0 ok; 1 error or no cluster (status); 2 bad usage; 3 some node down (status)
`;

/** --docker and --image, shared with `pgproxy demo`: the provider asked for (undefined: PGPROXY_CLUSTER, else detected). */
export function clusterFlags(args: string[]): { provider?: ProviderName; image?: string } {
  const image = valueOf(args, '--image');
  const docker = args.includes('--docker') || image !== undefined;
  return { ...(docker ? { provider: 'docker' as const } : {}), ...(image ? { image } : {}) };
}

export function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(flag + '='));
  return eq?.slice(flag.length + 1);
}

interface Flags {
  docker: boolean;
  image?: string;
  dir?: string;
  standbys?: number;
  port?: number;
  purge: boolean;
  sync: boolean;
  help: boolean;
}

class UsageError extends Error {}

function parseFlags(args: string[]): { cmd: string | undefined; flags: Flags } {
  const flags: Flags = { docker: false, purge: false, sync: false, help: false };
  let cmd: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    const int = (min: number, max: number): number => {
      const raw = value();
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max} (got ${raw})`);
      return n;
    };
    switch (name) {
      case '--dir':
        flags.dir = value();
        break;
      case '--standbys':
        flags.standbys = int(0, 16);
        break;
      case '--port':
        flags.port = int(0, 65535);
        break;
      case '--purge':
        flags.purge = true;
        break;
      case '--docker':
        flags.docker = true;
        break;
      case '--image':
        flags.image = value();
        flags.docker = true;
        break;
      case '--sync':
        flags.sync = true;
        break;
      case '-h':
      case '--help':
        flags.help = true;
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
        if (cmd !== undefined) throw new UsageError(`unexpected argument ${arg}`);
        cmd = arg;
    }
  }
  return { cmd, flags };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function role(s: NodeStatus): string {
  if (s.inRecovery === null) return '-';
  return s.inRecovery ? 'standby' : 'primary';
}

function statusTable(c: DevCluster, st: NodeStatus[]): string {
  return table(
    ['NAME', 'HOST', 'PORT', 'ROLE', 'LSN (replay/current)', 'STATE'],
    st.map((s, i) => [
      s.name,
      c.info.nodes[i]?.host ?? '',
      String(s.port),
      role(s),
      s.lsn ?? '-',
      s.up ? 'up' : s.pid !== null ? 'running, not answering (suspended?)' : c.info.provider === 'docker' ? 'down (no running container)' : 'down',
    ]),
  );
}

function usersBlock(c: DevCluster): string {
  const u = c.info.users;
  const rows: [string, string, string][] = [
    ['superuser', u.superuser.name, `${u.superuser.password}  (SCRAM)`],
    ['app', u.app.name, `${u.app.password}  (md5; pg_hba requires md5)`],
    ['scram', u.scram.name, `${u.scram.password}  (SCRAM)`],
    ['monitor', u.monitor.name, `${u.monitor.password}  (pg_monitor)`],
    ['replication', u.replication.name, `${u.replication.password}  (REPLICATION)`],
  ];
  return rows.map(([k, name, pw]) => `  ${k.padEnd(12)} ${name.padEnd(16)} ${pw}`).join('\n');
}

function where(c: DevCluster): string {
  if (c.info.provider === 'local') return c.info.dir;
  const info = c.info as ContainerClusterInfo;
  return `containers (${info.image}, ${info.network} networking), state in ${info.dir}`;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

export async function clusterCommand(args: string[], log: pino.Logger): Promise<number> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`pgproxy cluster: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const { cmd, flags } = parsed;
  if (flags.help) {
    out(USAGE.trimEnd());
    return 0;
  }
  const dir = flags.dir ?? defaultClusterDir();

  try {
    switch (cmd) {
      case 'up': {
        const t0 = Date.now();
        const c = await startCluster({
          dir,
          logger: log,
          // This command exits at once: its containers live until `down`, as long as the directory names them.
          owner: 'dir',
          ...(flags.docker ? { provider: 'docker' } : {}),
          ...(flags.image ? { image: flags.image } : {}),
          ...(flags.standbys !== undefined ? { standbys: flags.standbys } : {}),
          ...(flags.port !== undefined ? { basePort: flags.port } : {}),
          ...(flags.sync ? { synchronousStandby: true } : {}),
        });
        const st = await c.status();
        out(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${where(c)}`);
        if (c.relocated) out(`  (${dir} is not reachable by the postgres OS user, so the cluster lives in ${c.info.dir})`);
        out('');
        out(statusTable(c, st));
        out('');
        out(`database: ${c.info.database}    users (fixed dev credentials):`);
        out(usersBlock(c));
        out('');
        out(`try: psql "${c.connectionString(0, c.info.users.app)}"`);
        out(`stop: pgproxy cluster down${flags.dir ? ` --dir ${flags.dir}` : ''}`);
        return 0;
      }
      case 'down': {
        const c = await openCluster(dir, { logger: log });
        if (!c) {
          out(`no cluster in ${dir}; nothing to stop`);
          return 0;
        }
        await c.down({ purge: flags.purge });
        if (flags.purge) out(`cluster stopped and ${c.info.dir} removed`);
        else if (c.info.provider === 'docker') out(`cluster stopped and its containers removed (the next up builds a new one)`);
        else out(`cluster stopped (data kept in ${c.info.dir}; --purge removes it)`);
        return 0;
      }
      case 'status': {
        const c = await openCluster(dir, { logger: log });
        if (!c) {
          out(`no cluster in ${dir} (create one with: pgproxy cluster up)`);
          return 1;
        }
        const st = await c.status();
        out(`cluster: ${where(c)}`);
        out(statusTable(c, st));
        return st.every((s) => s.up) ? 0 : 3;
      }
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      default:
        process.stderr.write(`pgproxy cluster: unknown command ${cmd}\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    process.stderr.write(`pgproxy cluster ${cmd}: ${(err as Error).message}\n`);
    return 1;
  }
}
