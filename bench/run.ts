/**
 * `npm run bench`: pgproxy against a direct connection, a bare Node.js pipe (Node's floor), pgpool-II and
 * PgBouncer on a local primary + 2 standbys, the key workloads in interleaved rounds; then where statements land
 * (pgproxy with the shipped pool), optionally a CPU profile of pgproxy, what read_your_writes costs (ryw-cost.ts),
 * pgproxy's memory with idle clients, the classifier's cost, and read scaling with every server's CPU capped (the
 * database-bound mode, dbbound.ts).
 * Writes bench/results/latest.md, latest.svg and scaling.svg (--out: elsewhere; --quick: under the OS temp dir)
 * and prints a summary. Options: see options.ts (--help).
 *
 * Everything it starts (cluster, proxies, pgbench, the idle-client holder) is tracked and stopped at the end,
 * on error and on Ctrl-C.
 */
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '../src/devcluster/cluster.js';
import { benchClassify } from './classify.js';
import { DIST_SESSIONS, runDistribution } from './distribution-step.js';
import { IDLE_RSS_GOAL_MB } from './goals.js';
import { cleanup, handleSignals } from './lifecycle.js';
import { measureMemory } from './memory.js';
import type { CpuCaps } from './cgroups.js';
import { runDbBound } from './dbbound.js';
import { type Options, parseArgs, type Selection, selection, USAGE } from './options.js';
import { WORKLOADS, type Workload } from './pgbench.js';
import { AbortedError, ProcessTracker } from './procs.js';
import { profileLines, profilePgproxy } from './profile.js';
import { type BenchData, markdown, summary } from './report.js';
import { pgproxyVersion, reducedBy } from './run-info.js';
import { RYW_INSERT_SESSIONS, runRywCost } from './ryw-cost.js';
import { scalingSvg } from './scaling-report.js';
import { svg } from './svg.js';
import { ensurePackage, versionOf } from './targets/debian.js';
import { startNodePipe } from './targets/node-pipe.js';
import { startPgbouncer } from './targets/pgbouncer.js';
import { startPgpool } from './targets/pgpool.js';
import { type PgproxyTarget, pgproxyLogProblems, startPgproxy } from './targets/pgproxy.js';
import { logTail, TARGET_LABELS, type Target, type TargetId, WORKERS, WORKERS_WORKLOAD } from './targets/target.js';
import { runWorkloads } from './workloads.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
/** Where a --quick run writes its report unless --out says otherwise (never over bench/results/latest.md). */
const QUICK_RESULTS_DIR = path.join(os.tmpdir(), 'pgproxy-bench-quick');

const SCALE = 10;
const MEMORY_LEVELS = [1, 1_000, 10_000];
/**
 * pool.max_per_node of the pgproxy targets of the workloads, the profile, ryw-cost and the database-bound mode
 * (shipped: 50), so that one pool's size does not limit what they measure; limits.max_connections_per_node keeps
 * its default (80), so 100 sessions on one node (ryw-cost's INSERT load) still queue, and the report says so. The
 * distribution step runs a pgproxy of its own with the shipped pool and limits instead (distribution-step.ts).
 */
const PGPROXY_POOL_SIZE = RYW_INSERT_SESSIONS + 10;
/** pgpool-II's num_init_children is this + 10: 64 pgbench clients, or the 100 distribution sessions. */
const PGPOOL_MAX_CLIENTS = Math.max(64, DIST_SESSIONS);
const PGBOUNCER_MAX_CLIENT_CONN = 200;
const PGBOUNCER_POOL_SIZE = 20;

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** State shared by the phases of one run. */
interface Run {
  readonly o: Options;
  readonly want: Selection;
  readonly tracker: ProcessTracker;
  readonly data: BenchData;
  cluster: LocalCluster | null;
  tmp: string | null;
  readonly targets: Target[];
  pgproxy: PgproxyTarget | null;
  /** pgproxy with `workers: 2`, for WORKERS_WORKLOAD only; stopped right after the workloads. */
  pgproxyWorkers: PgproxyTarget | null;
  /** The database-bound mode's CPU caps while they exist (released by cleanup() if the mode could not). */
  caps: CpuCaps | null;
}

function cluster(run: Run): LocalCluster {
  if (!run.cluster) throw new Error('no cluster');
  return run.cluster;
}

/** A fresh primary + 2 standbys in the temp dir, pgbench tables on the primary, caches warmed on every node. */
async function prepareCluster(run: Run, withPgbenchData: boolean): Promise<void> {
  const { tracker, data } = run;
  run.tmp = await mkdtemp(path.join(os.tmpdir(), 'pgproxy-bench-'));
  await chmod(run.tmp, 0o755); // the postgres OS user must reach the cluster and config directories
  log(`working directory ${run.tmp}${run.o.keep ? ' (kept)' : ''}`);
  log('starting a primary + 2 standbys...');
  const t0 = Date.now();
  run.cluster = await LocalCluster.up({ dir: path.join(run.tmp, 'cluster'), standbys: 2, basePort: 0 });
  tracker.check();
  const info = run.cluster.info;
  log(`  ${info.nodes.map((n) => `${n.name}:${n.port}`).join(' ')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const pg = await tracker.run('postgres --version', path.join(info.binDir, 'postgres'), ['--version'], { timeoutMs: 10_000 });
  data.versions.PostgreSQL = pg.stdout.trim().replace(/^postgres \(PostgreSQL\) /, '');
  const pgbench = await tracker.run('pgbench --version', 'pgbench', ['--version'], { timeoutMs: 10_000 });
  data.versions.pgbench = pgbench.stdout.trim().replace(/^pgbench \(PostgreSQL\) /, '');
  if (!withPgbenchData) return;

  const primary = info.nodes[0]!;
  const app = info.users.app;
  const env = { ...process.env, PGPASSWORD: app.password, PGSSLMODE: 'disable' };
  log(`pgbench -i -s ${SCALE} on the primary...`);
  const t1 = Date.now();
  const init = await tracker.run(
    'pgbench -i',
    'pgbench',
    ['-i', '-q', '-s', String(SCALE), '-h', primary.host, '-p', String(primary.port), '-U', app.name, info.database],
    { env, timeoutMs: 600_000 },
  );
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr.trim()}`);
  await run.cluster.waitForReplay(120_000);
  // Warm every node's caches the same way: a short select-only run directly on each.
  await Promise.all(
    info.nodes.map((n) =>
      tracker.run(`warm-up ${n.name}`, 'pgbench', ['-n', '-S', '-T', '3', '-c', '2', '-j', '2', '-h', n.host, '-p', String(n.port), '-U', app.name, info.database], {
        env,
        timeoutMs: 60_000,
      }),
    ),
  );
  log(`  done (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
}

/** Start one target; a failure to start is recorded (not fatal), a Ctrl-C is passed on. */
async function tryStart(run: Run, label: string, start: () => Promise<Target>): Promise<Target | null> {
  log(`starting ${label}...`);
  try {
    const t = await start();
    run.targets.push(t);
    log(`  listening on ${t.host}:${t.port} (pid ${t.pid})`);
    return t;
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    const msg = (err as Error).message;
    run.data.skipped.push({ what: `target ${label}`, reason: `failed to start: ${msg.replace(/\n/g, ' / ')}` });
    if (label.startsWith('pgproxy')) run.data.problems.push(`${label} failed to start: ${msg}`);
    return null;
  }
}

/** The comparison targets of the workloads; without workloads, only pgpool-II (the distribution's other target). */
async function startTargets(run: Run, workloads: readonly Workload[]): Promise<void> {
  const { o, tracker, data } = run;
  const info = cluster(run).info;
  const tmp = run.tmp as string;
  const primary = info.nodes[0]!;
  const app = info.users.app;
  const wanted = (id: TargetId): boolean => run.want.target(id) && (workloads.length > 0 || id === 'pgpool');
  const skipped = (label: string): void => {
    data.skipped.push({ what: `target ${label}`, reason: workloads.length > 0 ? 'skipped (--only/--skip)' : 'no workload selected' });
  };

  if (wanted('direct')) {
    run.targets.push({
      id: 'direct',
      label: TARGET_LABELS.direct,
      host: primary.host,
      port: primary.port,
      user: app.name,
      password: app.password,
      database: info.database,
      pid: null,
      version: `PostgreSQL ${data.versions.PostgreSQL}`,
      setup: 'pgbench connected straight to the primary, no proxy (the baseline for the 1-client goal)',
      unsupportedMode: () => null,
      stop: async () => undefined,
    });
  } else skipped('direct');

  if (wanted('pgproxy')) {
    const t = await tryStart(run, 'pgproxy', () =>
      startPgproxy({ info, dir: path.join(tmp, 'pgproxy'), tracker, version: data.versions.pgproxy ?? 'unknown', maxPerNode: PGPROXY_POOL_SIZE }),
    );
    run.pgproxy = t as PgproxyTarget | null;
  } else skipped('pgproxy');

  const workersLabel = TARGET_LABELS['pgproxy-workers'];
  if (!wanted('pgproxy-workers')) skipped(workersLabel);
  else if (!workloads.some((w) => w.name === WORKERS_WORKLOAD)) {
    data.skipped.push({ what: `target ${workersLabel}`, reason: `it runs in ${WORKERS_WORKLOAD} only, which is not selected` });
  } else {
    const t = await tryStart(run, workersLabel, () =>
      startPgproxy({
        info,
        dir: path.join(tmp, 'pgproxy-workers'),
        tracker,
        version: data.versions.pgproxy ?? 'unknown',
        maxPerNode: PGPROXY_POOL_SIZE,
        workers: WORKERS,
      }),
    );
    run.pgproxyWorkers = t as PgproxyTarget | null;
    if (t) log(`  ${(t as PgproxyTarget).processes().length} processes (a primary + ${WORKERS} workers)`);
  }

  if (wanted('node-pipe')) await tryStart(run, TARGET_LABELS['node-pipe'], () => startNodePipe({ info, tracker }));
  else skipped(TARGET_LABELS['node-pipe']);

  if (wanted('pgpool')) {
    const avail = await ensurePackage('pgpool2', 'pgpool', 'pgpool2', { noInstall: o.noInstall, tracker, log });
    if (avail.binary === null) data.skipped.push({ what: 'target pgpool-II', reason: avail.reason });
    else {
      const binary = avail.binary;
      const version = (await versionOf(tracker, binary)).replace(/^pgpool-II version /, '');
      data.versions['pgpool-II'] = version;
      await tryStart(run, 'pgpool-II', () =>
        startPgpool({ info, binary, version, dir: path.join(tmp, 'pgpool'), tracker, maxClients: PGPOOL_MAX_CLIENTS }),
      );
    }
  } else skipped('pgpool-II');

  if (wanted('pgbouncer')) {
    const avail = await ensurePackage('pgbouncer', 'pgbouncer', 'pgbouncer', { noInstall: o.noInstall, tracker, log });
    if (avail.binary === null) data.skipped.push({ what: 'target PgBouncer', reason: avail.reason });
    else {
      const binary = avail.binary;
      const version = (await versionOf(tracker, binary)).replace(/^PgBouncer /, '');
      data.versions.PgBouncer = version;
      await tryStart(run, 'PgBouncer', () =>
        startPgbouncer({
          info,
          binary,
          version,
          dir: path.join(tmp, 'pgbouncer'),
          tracker,
          maxClientConn: PGBOUNCER_MAX_CLIENT_CONN,
          defaultPoolSize: PGBOUNCER_POOL_SIZE,
        }),
      );
    }
  } else skipped('PgBouncer');

  data.targets = run.targets.map((t) => ({ id: t.id, label: t.label, version: t.version, setup: t.setup }));
}

function pgproxyAlive(run: Run, p: PgproxyTarget | null = run.pgproxy): boolean {
  return p !== null && run.tracker.running().some((r) => r.pid === p.pid);
}

/** The pgproxy targets (1 worker, 2 workers) are skipped once they have exited; the others always run. */
function alive(run: Run, t: Target): boolean {
  if (t.id === 'pgproxy') return pgproxyAlive(run);
  if (t.id === 'pgproxy-workers') return pgproxyAlive(run, run.pgproxyWorkers);
  return true;
}

/** Stop a pgproxy target and record an unclean stop (SIGKILL needed, processes left over) as a problem. */
async function stopPgproxy(run: Run, p: PgproxyTarget): Promise<void> {
  const before = p.processes().length;
  await p.stop();
  const left = p.processes();
  const problem = p.stopProblem();
  if (problem) run.data.problems.push(`${p.label} stop: ${problem}`);
  if (left.length > 0) run.data.problems.push(`${p.label}: processes ${left.join(', ')} still running after its stop`);
  if (before > 0) log(`stopped ${p.label}: ${before} process${before === 1 ? '' : 'es'}, ${left.length} left${problem ? ` (${problem})` : ''}`);
}

/** The workloads in rounds (workloads.ts); a pgproxy that exits during a run is reported and left out after. */
async function runAllWorkloads(run: Run, selected: readonly Workload[]): Promise<void> {
  const logDir = path.join(run.tmp as string, 'pgbench-logs');
  await mkdir(logDir, { recursive: true });
  await runWorkloads(
    {
      tracker: run.tracker,
      cluster: cluster(run),
      logDir,
      keepLogs: run.o.keep,
      durationS: run.o.durationS,
      rounds: run.o.rounds,
      targets: run.targets,
      alive: (t) => alive(run, t),
      afterRun: async (t, w) => {
        const p = t.id === 'pgproxy' ? run.pgproxy : t.id === 'pgproxy-workers' ? run.pgproxyWorkers : null;
        if (p && !pgproxyAlive(run, p)) run.data.problems.push(`${p.label} exited during ${w.title}: ${await logTail(p.logFile, 10)}`);
      },
      log,
      out: run.data,
    },
    selected,
  );
}

/** --profile: one `-S -M simple -c 16` run through a separate pgproxy under node --cpu-prof. */
async function runProfile(run: Run): Promise<void> {
  const { tracker, data } = run;
  log(`profile: pgproxy under node --cpu-prof, pgbench -S -M simple -c 16 for ${run.o.durationS} s...`);
  try {
    data.profile = await profilePgproxy({
      info: cluster(run).info,
      dir: path.join(run.tmp as string, 'pgproxy-profile'),
      tracker,
      version: data.versions.pgproxy ?? 'unknown',
      durationS: run.o.durationS,
      maxPerNode: PGPROXY_POOL_SIZE,
      logDir: path.join(run.tmp as string, 'pgbench-logs'),
      keepLogs: run.o.keep,
    });
    for (const line of profileLines(data.profile)) log(`  ${line}`);
    data.problems.push(...(await pgproxyLogProblems(path.join(run.tmp as string, 'pgproxy-profile', 'pgproxy.log'), 'pgproxy (profile run)')));
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    data.problems.push(`profile run failed: ${(err as Error).message}`);
  }
}

function dbBoundContext(run: Run): Parameters<typeof runDbBound>[0] {
  return {
    o: run.o,
    want: run.want,
    tracker: run.tracker,
    cluster: cluster(run),
    tmp: run.tmp as string,
    scale: SCALE,
    pgproxyPoolSize: PGPROXY_POOL_SIZE,
    data: run.data,
    log,
    setCaps: (caps) => (run.caps = caps),
  };
}

/** RSS of a fresh pgproxy with idle clients. */
async function runMemory(run: Run): Promise<void> {
  const { tracker, data } = run;
  const tmp = run.tmp as string;
  log(`memory: a fresh pgproxy with ${MEMORY_LEVELS.map((n) => n.toLocaleString('en-US')).join(' / ')} idle clients...`);
  try {
    data.memory = await measureMemory({ info: cluster(run).info, dir: tmp, tracker, version: data.versions.pgproxy ?? 'unknown', levels: MEMORY_LEVELS, log });
    const tenK = data.memory.levels.find((l) => l.clients === 10_000);
    if (tenK?.rssKb != null) {
      const mbs = (tenK.rssKb * 1024) / 1e6;
      log(`  goal: 10,000 idle clients ≤ ${IDLE_RSS_GOAL_MB} MB: ${tenK.held === 10_000 && mbs <= IDLE_RSS_GOAL_MB ? 'met' : 'NOT met'} (${mbs.toFixed(1)} MB)`);
    }
    for (const l of data.memory.levels) {
      if (l.failed > 0 || l.errors.length > 0) data.problems.push(`idle clients through pgproxy (level ${l.clients}): ${l.failed} failed; ${l.errors.join('; ')}`);
    }
    if (data.memory.dropped > 0) data.problems.push(`pgproxy disconnected ${data.memory.dropped} idle clients during the memory run`);
    data.problems.push(...(await pgproxyLogProblems(path.join(tmp, 'pgproxy-memory', 'pgproxy.log'), 'pgproxy (memory run)')));
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    data.problems.push(`memory run failed: ${(err as Error).message}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (typeof parsed === 'string') {
    (parsed === USAGE ? process.stdout : process.stderr).write(parsed);
    return parsed === USAGE ? 0 : 2;
  }
  const startedAt = new Date();
  const cpus = os.cpus();
  const run: Run = {
    o: parsed,
    want: selection(parsed),
    tracker: new ProcessTracker(),
    cluster: null,
    tmp: null,
    targets: [],
    pgproxy: null,
    pgproxyWorkers: null,
    caps: null,
    data: {
      startedAt,
      finishedAt: startedAt,
      command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
      reduced: reducedBy(parsed),
      machine: { cores: cpus.length, cpuModel: cpus[0]?.model.trim() ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: `${os.type()} ${os.release()}` },
      loadAvg: { start: os.loadavg()[0] ?? 0 },
      versions: { pgproxy: pgproxyVersion(ROOT), 'Node.js': process.version },
      durationS: parsed.durationS,
      rounds: parsed.rounds,
      scale: SCALE,
      targets: [],
      skipped: [],
      workloads: [],
      selectDist: [],
      insertDist: [],
      distSettings: null,
      memory: null,
      classify: null,
      profile: null,
      dbbound: null,
      rywCost: null,
      problems: [],
    },
  };
  const { want, data } = run;
  const unhook = handleSignals(run);
  let failed: unknown = null;
  try {
    // Classifier cost first, while the machine is quiet.
    if (want.section('classify')) {
      log('classification: benchClassify()...');
      data.classify = await benchClassify();
      const c = data.classify;
      log(`  through ${c.measuredCall}: cached ${c.cachedNsPerStatement} ns per statement (corpus), literal-varying ${c.literalVaryingNs} ns; uncached classify(sql) ${c.uncachedNsPerStatement} ns`);
    } else data.skipped.push({ what: 'classification', reason: 'skipped (--only/--skip)' });

    const workloads = WORKLOADS.filter((w) => want.workload(w));
    const why = parsed.quick ? 'skipped (--quick runs the key workloads only; or --only/--skip)' : 'skipped (--only/--skip)';
    for (const w of WORKLOADS) if (!workloads.includes(w)) data.skipped.push({ what: `workload ${w.name}`, reason: why });
    const dbbound = want.section('dbbound');
    const rywCost = want.section('ryw-cost') && want.target('pgproxy');
    const pgbenchData = workloads.length > 0 || parsed.profile || dbbound || rywCost;
    if (pgbenchData || want.section('distribution') || want.section('memory')) {
      await prepareCluster(run, pgbenchData);
      if (workloads.length > 0 || want.section('distribution')) await startTargets(run, workloads);
      await runAllWorkloads(run, workloads);
      // pgproxy with workers is not used after the workloads: stop it now (and check that all its processes went).
      if (run.pgproxyWorkers) {
        data.problems.push(...(await pgproxyLogProblems(run.pgproxyWorkers.logFile, `${run.pgproxyWorkers.label} (workloads)`)));
        await stopPgproxy(run, run.pgproxyWorkers);
      }
      if (want.section('distribution')) {
        const pgpool = run.targets.find((t) => t.id === 'pgpool') ?? null;
        const tmp = run.tmp as string;
        await runDistribution({ tracker: run.tracker, cluster: cluster(run), tmp, inserts: parsed.inserts, withPgproxy: want.target('pgproxy'), pgpool, data, log });
      } else data.skipped.push({ what: 'distribution', reason: 'skipped (--only/--skip)' });
      if (run.pgproxy) data.problems.push(...(await pgproxyLogProblems(run.pgproxy.logFile, 'pgproxy (workloads)')));
      // The comparison targets are done; stop them before measuring memory.
      for (const t of [...run.targets].reverse()) {
        if (t === run.pgproxyWorkers) continue; // stopped above
        if (t === run.pgproxy) await stopPgproxy(run, run.pgproxy);
        else await t.stop();
      }
      if (parsed.profile) await runProfile(run);
      if (rywCost) {
        const tmp = run.tmp as string;
        data.rywCost = await runRywCost({ o: parsed, tracker: run.tracker, cluster: cluster(run), tmp, pgproxyPoolSize: PGPROXY_POOL_SIZE, data, log });
      } else data.skipped.push({ what: 'consistency cost (ryw-cost)', reason: want.section('ryw-cost') ? 'pgproxy is not selected (--only/--skip)' : 'skipped (--only/--skip)' });
      if (want.section('memory')) await runMemory(run);
      else data.skipped.push({ what: 'memory', reason: 'skipped (--only/--skip)' });
      // Last: it caps the servers' CPU.
      if (dbbound) data.dbbound = await runDbBound(dbBoundContext(run));
      else data.skipped.push({ what: 'database-bound mode', reason: 'skipped (--only/--skip)' });
    }
  } catch (err) {
    failed = err;
  } finally {
    await cleanup(run);
    unhook();
  }

  if (failed instanceof AbortedError || run.tracker.aborted) {
    process.stderr.write('interrupted: stopped everything; no report written\n');
    return 130;
  }
  if (failed) {
    process.stderr.write(`benchmark failed: ${(failed as Error).stack ?? String(failed)}\n`);
    data.problems.push(`the run stopped early: ${(failed as Error).message}`);
  }
  data.finishedAt = new Date();
  const outDir = parsed.outDir !== null ? path.resolve(parsed.outDir) : parsed.quick ? QUICK_RESULTS_DIR : RESULTS_DIR;
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'latest.md'), markdown(data, 'latest.svg'));
  await writeFile(path.join(outDir, 'latest.svg'), svg(data));
  if (data.dbbound) await writeFile(path.join(outDir, 'scaling.svg'), scalingSvg(data.dbbound));
  const elapsed = Math.round((data.finishedAt.getTime() - startedAt.getTime()) / 1000);
  log('');
  log(summary(data));
  log(`wrote ${path.join(outDir, 'latest.md')}, latest.svg${data.dbbound ? ' and scaling.svg' : ''} (run took ${Math.floor(elapsed / 60)} min ${elapsed % 60} s)`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
