/**
 * The consistency drill: how many reads miss a write acknowledged a moment before on another connection, through
 * each target, while standby replay is paused a third of the time. Not part of `npm test`: it builds a cluster of
 * its own and takes a few minutes.
 *
 *   npm run build && node dist/scripts/consistency-drill.js [--pairs N] [--targets direct,off,session,database,pgpool]
 *
 * A throwaway dev cluster (a primary and 2 streaming standbys). Per target, 4 pairs of connections (node-postgres):
 * each pair writes a new row on A (INSERT, acknowledged) and at once reads it on B by its key, N pairs in all
 * (default 1,000). Meanwhile replay on both standbys is paused for 100 ms of every 300 ms
 * (pg_wal_replay_pause / pg_wal_replay_resume). A read that does not find its row is stale; where each read ran is
 * what the server answering it says (inet_server_port()).
 *
 * Targets: the primary directly; pgproxy with routing.read_your_writes off, session and database (its own process,
 * weights 0/1/1, every other setting its default); pgpool-II (the Debian package pgpool2, streaming replication
 * mode, load balancing weights 0/1/1), when installed. Everything the drill starts is stopped when it ends, also on
 * an error or Ctrl-C.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { AbortedError, ProcessTracker } from '../bench/procs.js';
import { findBinary, versionOf } from '../bench/targets/debian.js';
import { startPgpool } from '../bench/targets/pgpool.js';
import { startPgproxy } from '../bench/targets/pgproxy.js';
import type { Target } from '../bench/targets/target.js';
import { type ClusterInfo, LocalCluster } from '../src/devcluster/cluster.js';

const PAIRS = 4;
const CYCLE_MS = 300;
const PAUSED_MS = 100;
const TARGETS = ['direct', 'off', 'session', 'database', 'pgpool'] as const;
type TargetName = (typeof TARGETS)[number];

const USAGE = `usage: node dist/scripts/consistency-drill.js [--pairs N] [--targets ${TARGETS.join(',')}]
  --pairs N     write-then-read pairs per target, over ${PAIRS} pairs of connections (default 1000)
  --targets     which targets, comma-separated (default: all; pgpool only when pgpool-II is installed)
`;

interface Options {
  pairs: number;
  targets: TargetName[];
}

function parseArgs(argv: string[]): Options | string {
  const o: Options = { pairs: 1000, targets: [...TARGETS] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string | undefined => argv[++i];
    if (a === '--help' || a === '-h') return USAGE;
    if (a === '--pairs') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < PAIRS) return `--pairs needs a whole number of at least ${PAIRS}\n${USAGE}`;
      o.pairs = n;
    } else if (a === '--targets') {
      const list = (value() ?? '').split(',').filter(Boolean);
      const bad = list.filter((t) => !(TARGETS as readonly string[]).includes(t));
      if (list.length === 0 || bad.length > 0) return `unknown target(s) ${bad.join(', ')}\n${USAGE}`;
      o.targets = list as TargetName[];
    } else return `unknown argument ${a}\n${USAGE}`;
  }
  return o;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

interface Result {
  target: string;
  reads: number;
  stale: number;
  onStandbys: number;
  /** Share of the run's time with replay paused, as the pauser saw it. */
  pausedShare: number;
}

/** Pauses replay on every standby for PAUSED_MS of every CYCLE_MS until stopped; leaves replay running. */
class ReplayPauser {
  private clients: pg.Client[] = [];
  private stopped = false;
  private loop: Promise<void> | null = null;
  pausedMs = 0;
  totalMs = 0;

  constructor(private readonly info: ClusterInfo) {}

  async start(): Promise<void> {
    const su = this.info.users.superuser;
    for (const n of this.info.nodes.slice(1)) {
      const c = new pg.Client({ host: n.host, port: n.port, user: su.name, password: su.password, database: 'postgres' });
      await c.connect();
      this.clients.push(c);
    }
    this.loop = this.run();
  }

  private async all(sql: string): Promise<void> {
    await Promise.all(this.clients.map((c) => c.query(sql)));
  }

  private async run(): Promise<void> {
    const began = performance.now();
    while (!this.stopped) {
      const pausedAt = performance.now();
      await this.all('SELECT pg_wal_replay_pause()');
      await sleep(PAUSED_MS);
      await this.all('SELECT pg_wal_replay_resume()');
      this.pausedMs += performance.now() - pausedAt;
      await sleep(CYCLE_MS - PAUSED_MS);
    }
    this.totalMs = performance.now() - began;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop?.catch(() => undefined);
    await this.all('SELECT pg_wal_replay_resume()').catch(() => undefined);
    for (const c of this.clients) await c.end().catch(() => undefined);
    this.clients = [];
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs the pairs against one endpoint. */
async function drill(name: string, conn: pg.ClientConfig, cluster: LocalCluster, pairs: number, tracker: ProcessTracker): Promise<Result> {
  const info = cluster.info;
  const primaryPort = info.nodes[0]!.port;
  const table = `drill_${name.replace(/\W/g, '_')}`;
  const admin = new pg.Client(conn);
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, pair int NOT NULL)`);
  await admin.end();
  // The standbys have the table before the drill starts (a read there must find the table, if not yet the row).
  await cluster.waitForReplay();

  const connections: pg.Client[] = [];
  for (let i = 0; i < 2 * PAIRS; i++) {
    const c = new pg.Client(conn);
    await c.connect();
    connections.push(c);
  }
  const pauser = new ReplayPauser(info);
  let stale = 0;
  let onStandbys = 0;
  let reads = 0;
  try {
    await pauser.start();
    const perPair = Math.ceil(pairs / PAIRS);
    await Promise.all(
      Array.from({ length: PAIRS }, async (_, p) => {
        const a = connections[2 * p]!;
        const b = connections[2 * p + 1]!;
        for (let i = 0; i < perPair && reads < pairs; i++) {
          tracker.check();
          const id = p * perPair + i;
          reads++;
          await a.query(`INSERT INTO ${table} (id, pair) VALUES ($1, $2)`, [id, p]);
          const r = await b.query<{ n: number; port: number }>(`SELECT count(*)::int AS n, inet_server_port() AS port FROM ${table} WHERE id = $1`, [id]);
          if (r.rows[0]!.n !== 1) stale++;
          if (r.rows[0]!.port !== primaryPort) onStandbys++;
        }
      }),
    );
  } finally {
    await pauser.stop();
    for (const c of connections) await c.end().catch(() => undefined);
  }
  return { target: name, reads, stale, onStandbys, pausedShare: pauser.totalMs > 0 ? pauser.pausedMs / pauser.totalMs : 0 };
}

function table(results: Result[]): string {
  const rows = [
    ['target', 'stale reads', 'reads on standbys', 'replay paused'],
    ...results.map((r) => [r.target, `${r.stale} of ${r.reads}`, `${((100 * r.onStandbys) / r.reads).toFixed(1)} %`, `${(100 * r.pausedShare).toFixed(0)} % of the time`]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]): string => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (typeof o === 'string') {
    (o === USAGE ? process.stdout : process.stderr).write(o);
    return o === USAGE ? 0 : 2;
  }
  const tracker = new ProcessTracker();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${sig}: stopping everything the drill started...`);
    tracker.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'pgproxy-drill-'));
  // pgpool-II and the servers run as the postgres OS user when we are root: they must reach their directories.
  await chmod(tmp, 0o755);
  let cluster: LocalCluster | null = null;
  const started: Target[] = [];
  const results: Result[] = [];
  let failed: unknown = null;
  try {
    log(`cluster: a primary and 2 standbys in ${tmp}...`);
    cluster = await LocalCluster.up({ dir: path.join(tmp, 'cluster'), standbys: 2, basePort: 0 });
    const info = cluster.info;
    const app = info.users.app;
    const direct = { host: info.nodes[0]!.host, port: info.nodes[0]!.port, user: app.name, password: app.password, database: info.database };
    for (const name of o.targets) {
      tracker.check();
      let conn: pg.ClientConfig;
      let label: string;
      let target: Target | null = null;
      if (name === 'direct') {
        conn = direct;
        label = 'direct (primary)';
      } else if (name === 'pgpool') {
        const binary = await findBinary('pgpool');
        if (binary === null) {
          log('pgpool-II is not installed (apt-get install pgpool2): skipped');
          continue;
        }
        const version = (await versionOf(tracker, binary)).replace(/^pgpool-II version /, '');
        target = await startPgpool({ info, binary, version, dir: path.join(tmp, 'pgpool'), tracker, maxClients: 2 * PAIRS + 4 });
        label = `pgpool-II ${version} (weights 0/1/1)`;
      } else {
        target = await startPgproxy({ info, dir: path.join(tmp, `pgproxy-${name}`), tracker, version: 'drill', readYourWrites: name });
        label = `pgproxy, read_your_writes: ${name}`;
      }
      if (target !== null) {
        started.push(target);
        conn = { host: target.host, port: target.port, user: target.user, password: target.password, database: target.database };
      }
      log(`${label}: ${o.pairs} write-then-read pairs...`);
      const r = await drill(name, conn!, cluster, o.pairs, tracker);
      results.push({ ...r, target: label });
      log(`  ${r.stale} of ${r.reads} reads stale, ${r.onStandbys} on standbys`);
      if (target !== null) {
        await target.stop();
        started.splice(started.indexOf(target), 1);
      }
    }
  } catch (err) {
    failed = err;
  } finally {
    for (const t of started.reverse()) await t.stop().catch(() => undefined);
    await tracker.stopAll().catch(() => undefined);
    if (cluster !== null) {
      log('stopping the cluster...');
      await cluster.down({ purge: true }).catch((err: unknown) => log(`could not stop the cluster cleanly: ${(err as Error).message}`));
    }
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    const left = tracker.running();
    if (left.length > 0) log(`still running after cleanup: ${left.map((p) => `${p.name} (${p.pid})`).join(', ')}`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failed instanceof AbortedError || interrupted) {
    log('interrupted: stopped everything');
    return 130;
  }
  if (results.length > 0) process.stdout.write(`\n${table(results)}\n`);
  if (failed) {
    log(`drill failed: ${(failed as Error).stack ?? String(failed)}`);
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`consistency-drill: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  },
);
