/**
 * `npm run bench`: pgproxy against a direct connection, pgpool-II and PgBouncer on a local primary + 2
 * standbys, then where statements land, pgproxy's memory with idle clients and the classifier's cost.
 * Writes bench/results/latest.md and latest.svg and prints a summary.
 *
 *   npm run bench -- [--duration S] [--only a,b] [--skip a,b] [--inserts N] [--no-install] [--keep]
 *
 * Everything it starts (cluster, proxies, pgbench, the idle-client holder) is tracked and stopped at the end,
 * on error and on Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '../src/devcluster/cluster.js';
import { readPostmasterPid } from '../src/devcluster/procs.js';
import { benchClassify } from './classify.js';
import { insertDistribution, rolesOf, selectDistribution } from './distribution.js';
import { measureMemory } from './memory.js';
import { runPgbench, WORKLOADS, type Workload } from './pgbench.js';
import { AbortedError, ProcessTracker } from './procs.js';
import { type BenchData, markdown, summary, svg, type WorkloadResults } from './report.js';
import { ensurePackage, versionOf } from './targets/debian.js';
import { startPgbouncer } from './targets/pgbouncer.js';
import { startPgpool } from './targets/pgpool.js';
import { type PgproxyTarget, startPgproxy } from './targets/pgproxy.js';
import { logTail, TARGET_IDS, TARGET_LABELS, type Target, type TargetId } from './targets/target.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const SECTIONS = ['classify', 'distribution', 'memory'] as const;
type Section = (typeof SECTIONS)[number];

const SCALE = 10;
const DIST_SESSIONS = 100;
const DIST_SELECTS = 100;
/** INSERTs per session in the distribution run (100 sessions). See README in the report for the choice. */
const DEFAULT_INSERTS = 1000;
const MEMORY_LEVELS = [1, 1_000, 10_000];
/**
 * pgproxy's pool.max_per_node for the benchmark (default 50): sized like pgpool-II's num_init_children, so the
 * 100-session distribution runs, which all write to the primary, are not queued behind a 50-connection pool.
 */
const PGPROXY_POOL_SIZE = DIST_SESSIONS + 10;
const PGBOUNCER_POOL_SIZE = 20;

interface Options {
  durationS: number;
  only: string[] | null;
  skip: Set<string>;
  inserts: number;
  noInstall: boolean;
  keep: boolean;
}

const USAGE = `usage: npm run bench -- [options]

  --duration S       seconds per pgbench run (default 10)
  --only a,b         run only these: workloads (${WORKLOADS.map((w) => w.name).join(', ')};
                     a prefix such as select-simple picks several), sections (${SECTIONS.join(', ')}),
                     targets (${TARGET_IDS.join(', ')})
  --skip a,b         skip these (same names)
  --inserts N        INSERTs per session in the distribution run (default ${DEFAULT_INSERTS}, 100 sessions)
  --no-install       do not apt-get install pgpool2 / pgbouncer when missing
  --keep             keep the temporary directory (cluster, configs, logs) for inspection
`;

function parseArgs(argv: string[]): Options | string {
  const o: Options = { durationS: 10, only: null, skip: new Set(), inserts: DEFAULT_INSERTS, noInstall: false, keep: false };
  const names = [...WORKLOADS.map((w) => w.name), ...SECTIONS, ...TARGET_IDS];
  const list = (v: string | undefined, flag: string): string[] => {
    if (!v) throw new Error(`${flag} needs a comma-separated list`);
    const items = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const i of items) {
      if (!names.includes(i) && !WORKLOADS.some((w) => w.name.startsWith(`${i}-`))) throw new Error(`${flag}: unknown name "${i}" (known: ${names.join(', ')})`);
    }
    return items;
  };
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
      const value = (): string | undefined => inline ?? argv[++i];
      switch (flag) {
        case '--duration': {
          const n = Number(value());
          if (!Number.isInteger(n) || n < 1 || n > 3600) throw new Error('--duration needs a whole number of seconds (1..3600)');
          o.durationS = n;
          break;
        }
        case '--inserts': {
          const n = Number(value());
          if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new Error('--inserts needs a whole number (1..100000)');
          o.inserts = n;
          break;
        }
        case '--only':
          o.only = list(value(), '--only');
          break;
        case '--skip':
          for (const s of list(value(), '--skip')) o.skip.add(s);
          break;
        case '--no-install':
          o.noInstall = true;
          break;
        case '--keep':
          o.keep = true;
          break;
        case '-h':
        case '--help':
          return USAGE;
        default:
          throw new Error(`unknown option ${a}`);
      }
    }
  } catch (err) {
    return `${(err as Error).message}\n\n${USAGE}`;
  }
  return o;
}

/** Does `name` (a workload, section or target) take part in this run? */
function selector(o: Options): { workload: (w: Workload) => boolean; section: (s: Section) => boolean; target: (t: TargetId) => boolean } {
  const matchesWorkload = (token: string, w: Workload): boolean => token === w.name || w.name.startsWith(`${token}-`);
  const only = o.only ?? [];
  const onlyTargets = only.filter((t) => (TARGET_IDS as readonly string[]).includes(t));
  const onlyOthers = only.filter((t) => !(TARGET_IDS as readonly string[]).includes(t));
  return {
    workload: (w) => !([...o.skip].some((s) => matchesWorkload(s, w))) && (onlyOthers.length === 0 || onlyOthers.some((s) => matchesWorkload(s, w))),
    section: (s) => !o.skip.has(s) && (onlyOthers.length === 0 || onlyOthers.includes(s)),
    target: (t) => !o.skip.has(t) && (onlyTargets.length === 0 || onlyTargets.includes(t)),
  };
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function gitVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    let rev = '';
    try {
      rev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (dirty) rev += '+changes';
    } catch {
      // not a git checkout
    }
    return rev ? `${pkg.version} (${rev})` : pkg.version;
  } catch {
    return 'unknown';
  }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (typeof parsed === 'string') {
    process.stderr.write(parsed);
    return parsed === USAGE ? 0 : 2;
  }
  const o = parsed;
  const want = selector(o);
  const tracker = new ProcessTracker();
  const startedAt = new Date();
  const cpus = os.cpus();
  const data: BenchData = {
    startedAt,
    finishedAt: startedAt,
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    machine: { cores: cpus.length, cpuModel: cpus[0]?.model.trim() ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: `${os.type()} ${os.release()}` },
    versions: { pgproxy: gitVersion(), 'Node.js': process.version },
    durationS: o.durationS,
    scale: SCALE,
    targets: [],
    skipped: [],
    workloads: [],
    selectDist: [],
    insertDist: [],
    distSettings: null,
    memory: null,
    classify: null,
    problems: [],
  };

  let cluster: LocalCluster | null = null;
  let tmp: string | null = null;
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write(`\n${sig}: stopping everything the benchmark started (Ctrl-C twice more to force)...\n`);
      tracker.abort();
    } else if (interrupts === 3) {
      process.stderr.write('forced exit: killing what is left\n');
      tracker.killAllNow();
      for (const n of cluster?.info.nodes ?? []) {
        const pid = readPostmasterPid(n.dataDir);
        if (pid !== null) {
          try {
            process.kill(pid, 'SIGQUIT');
          } catch {
            // gone
          }
        }
      }
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const targets: Target[] = [];
  let pgproxy: PgproxyTarget | null = null;
  let failed: unknown = null;
  try {
    // 1. Classifier cost, first, while the machine is quiet.
    if (want.section('classify')) {
      log('classification: benchClassify()...');
      data.classify = await benchClassify();
      log(`  cached ${data.classify.cachedNsPerStatement} ns, uncached ${data.classify.uncachedNsPerStatement} ns per statement`);
    } else data.skipped.push({ what: 'classification', reason: 'skipped (--only/--skip)' });

    const workloads = WORKLOADS.filter(want.workload);
    for (const w of WORKLOADS) if (!workloads.includes(w)) data.skipped.push({ what: `workload ${w.name}`, reason: 'skipped (--only/--skip)' });
    const needCluster = workloads.length > 0 || want.section('distribution') || want.section('memory');
    if (needCluster) {

      // 2. Cluster + pgbench data.
      tmp = await mkdtemp(path.join(os.tmpdir(), 'pgproxy-bench-'));
      await chmod(tmp, 0o755); // the postgres OS user must reach the cluster and config directories
      log(`working directory ${tmp}${o.keep ? ' (kept)' : ''}`);
      log('starting a primary + 2 standbys...');
      const t0 = Date.now();
      cluster = await LocalCluster.up({ dir: path.join(tmp, 'cluster'), standbys: 2, basePort: 0 });
      tracker.check();
      const info = cluster.info;
      log(`  ${info.nodes.map((n) => `${n.name}:${n.port}`).join(' ')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      const pgVersion = (await tracker.run('postgres --version', path.join(info.binDir, 'postgres'), ['--version'], { timeoutMs: 10_000 })).stdout.trim();
      data.versions.PostgreSQL = pgVersion.replace(/^postgres \(PostgreSQL\) /, '');
      data.versions.pgbench = (await tracker.run('pgbench --version', 'pgbench', ['--version'], { timeoutMs: 10_000 })).stdout.trim().replace(/^pgbench \(PostgreSQL\) /, '');
      const primary = info.nodes[0]!;
      const app = info.users.app;
      const pgEnv = { ...process.env, PGPASSWORD: app.password, PGSSLMODE: 'disable' };

      if (workloads.length > 0) {
        log(`pgbench -i -s ${SCALE} on the primary...`);
        const t1 = Date.now();
        const init = await tracker.run('pgbench -i', 'pgbench', ['-i', '-q', '-s', String(SCALE), '-h', primary.host, '-p', String(primary.port), '-U', app.name, info.database], {
          env: pgEnv,
          timeoutMs: 600_000,
        });
        if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr.trim()}`);
        await cluster.waitForReplay(120_000);
        // Warm every node's caches the same way: a short select-only run directly on each.
        await Promise.all(
          info.nodes.map((n) =>
            tracker.run(`warm-up ${n.name}`, 'pgbench', ['-n', '-S', '-T', '3', '-c', '2', '-j', '2', '-h', n.host, '-p', String(n.port), '-U', app.name, info.database], {
              env: pgEnv,
              timeoutMs: 60_000,
            }),
          ),
        );
        log(`  done (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
      }

      // 3. Targets.
      const pgproxyVersion = data.versions.pgproxy ?? 'unknown';
      if (want.target('direct')) {
        targets.push({
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
      } else data.skipped.push({ what: 'target direct', reason: 'skipped (--only/--skip)' });

      if (want.target('pgproxy')) {
        log('starting pgproxy...');
        try {
          pgproxy = await startPgproxy({ info, dir: path.join(tmp, 'pgproxy'), tracker, version: pgproxyVersion, maxPerNode: PGPROXY_POOL_SIZE });
          targets.push(pgproxy);
          log(`  listening on ${pgproxy.host}:${pgproxy.port} (pid ${pgproxy.pid})`);
        } catch (err) {
          if (err instanceof AbortedError) throw err;
          data.problems.push(`pgproxy failed to start: ${(err as Error).message}`);
          data.skipped.push({ what: 'target pgproxy', reason: `failed to start: ${(err as Error).message.split('\n')[0]}` });
        }
      } else data.skipped.push({ what: 'target pgproxy', reason: 'skipped (--only/--skip)' });

      if (want.target('pgpool')) {
        const avail = await ensurePackage('pgpool2', 'pgpool', 'pgpool2', { noInstall: o.noInstall, tracker, log });
        if (avail.binary === null) {
          data.skipped.push({ what: 'target pgpool-II', reason: avail.reason });
        } else {
          const version = await versionOf(tracker, avail.binary);
          data.versions['pgpool-II'] = version.replace(/^pgpool-II version /, '');
          const shortVersion = data.versions['pgpool-II'];
          log(`starting pgpool-II (${version})...`);
          try {
            const t = await startPgpool({ info, binary: avail.binary, version: shortVersion, dir: path.join(tmp, 'pgpool'), tracker, maxClients: Math.max(64, DIST_SESSIONS) });
            targets.push(t);
            log(`  listening on ${t.host}:${t.port} (pid ${t.pid})`);
          } catch (err) {
            if (err instanceof AbortedError) throw err;
            data.skipped.push({ what: 'target pgpool-II', reason: `failed to start: ${(err as Error).message.replace(/\n/g, ' / ')}` });
          }
        }
      } else data.skipped.push({ what: 'target pgpool-II', reason: 'skipped (--only/--skip)' });

      if (want.target('pgbouncer')) {
        const avail = await ensurePackage('pgbouncer', 'pgbouncer', 'pgbouncer', { noInstall: o.noInstall, tracker, log });
        if (avail.binary === null) {
          data.skipped.push({ what: 'target PgBouncer', reason: avail.reason });
        } else {
          const version = await versionOf(tracker, avail.binary);
          data.versions.PgBouncer = version.replace(/^PgBouncer /, '');
          const shortVersion = data.versions.PgBouncer;
          log(`starting PgBouncer (${version})...`);
          try {
            const t = await startPgbouncer({
              info,
              binary: avail.binary,
              version: shortVersion,
              dir: path.join(tmp, 'pgbouncer'),
              tracker,
              maxClientConn: 200,
              defaultPoolSize: PGBOUNCER_POOL_SIZE,
            });
            targets.push(t);
            log(`  listening on ${t.host}:${t.port} (pid ${t.pid})`);
          } catch (err) {
            if (err instanceof AbortedError) throw err;
            data.skipped.push({ what: 'target PgBouncer', reason: `failed to start: ${(err as Error).message.replace(/\n/g, ' / ')}` });
          }
        }
      } else data.skipped.push({ what: 'target PgBouncer', reason: 'skipped (--only/--skip)' });
      data.targets = targets.map((t) => ({ id: t.id, label: t.label, version: t.version, setup: t.setup }));

      // 4. Workloads: per workload, every target in turn (order alternating), same duration.
      const logDir = path.join(tmp, 'pgbench-logs');
      await mkdir(logDir, { recursive: true });
      const proxyAlive = (): boolean => pgproxy !== null && tracker.running().some((p) => p.pid === pgproxy!.pid);
      let runNo = 0;
      for (const [wi, w] of workloads.entries()) {
        const live = targets.filter((t) => t.id !== 'pgproxy' || proxyAlive());
        const order = wi % 2 === 0 ? live : [...live].reverse();
        const wr: WorkloadResults = { workload: w, order: order.map((t) => t.id), results: {} };
        data.workloads.push(wr);
        log(`${w.title} (${o.durationS} s per target)`);
        for (const t of order) {
          tracker.check();
          if (w.script === 'tpcb-like' && t.unsupportedMode(w.mode) === null) {
            // What pgbench does before a run without -n, done on the primary so every target starts alike.
            for (const sql of ['VACUUM pgbench_branches', 'VACUUM pgbench_tellers', 'TRUNCATE pgbench_history']) {
              await cluster.query(0, sql, [], app);
            }
          }
          const r = await runPgbench({ tracker, target: t, workload: w, durationS: o.durationS, logDir, keepLogs: o.keep, tag: `${++runNo}_${w.name}_${t.id}` });
          wr.results[t.id] = r;
          if (r.na !== undefined) {
            log(`  ${t.label.padEnd(17)} n/a: ${r.na}`);
            data.skipped.push({ what: `${w.title} on ${t.label}`, reason: `n/a: ${r.na}` });
            continue;
          }
          const bad = r.exitCode !== 0 || (r.failedTransactions ?? 0) > 0 || r.timedOut === true || r.tps === null;
          log(
            `  ${t.label.padEnd(17)} ${r.tps === null ? 'no result' : `${Math.round(r.tps).toLocaleString('en-US').padStart(7)} TPS`}` +
              `  avg ${r.avgLatencyMs?.toFixed(3) ?? '–'} ms  p99 ${r.p99LatencyMs?.toFixed(3) ?? '–'} ms${bad ? `  FAILED: ${[...r.errors, r.timedOut ? 'timed out' : '', `exit ${String(r.exitCode)}`].filter(Boolean).join('; ')}` : ''}`,
          );
          if (bad) {
            const what = `${w.title} through ${t.label}`;
            const detail = [`pgbench exit ${String(r.exitCode)}`, r.timedOut ? 'timed out' : '', r.failedTransactions ? `${r.failedTransactions} failed transactions` : '', ...r.errors.map((e) => `"${e}"`)];
            data.problems.push(`${what}: ${detail.filter(Boolean).join('; ')}`);
          }
          if (t.id === 'pgproxy' && !proxyAlive()) {
            data.problems.push(`pgproxy exited during ${w.title}: ${pgproxy ? await logTail(pgproxy.logFile, 10) : ''}`);
          }
        }
      }

      // 5. Distribution, through pgproxy and pgpool-II.
      if (want.section('distribution')) {
        const distTargets = targets.filter((t) => t.id === 'pgproxy' || t.id === 'pgpool');
        if (distTargets.length === 0) data.skipped.push({ what: 'distribution', reason: 'neither pgproxy nor pgpool-II is running' });
        else {
          data.distSettings = { sessions: DIST_SESSIONS, selects: DIST_SELECTS, inserts: o.inserts };
          const ctx = { cluster, tracker, roles: await rolesOf(cluster) };
          for (const t of distTargets) {
            log(`distribution via ${t.label}: ${DIST_SESSIONS} sessions × ${DIST_SELECTS} SELECT inet_server_port()...`);
            const s = await selectDistribution(ctx, t, DIST_SESSIONS, DIST_SELECTS);
            data.selectDist.push(s);
            log(`  ${s.perNode.map((n) => `${n.node}/${n.role} ${n.count}`).join(', ')}${s.errors.length ? `; errors: ${s.errors.join('; ')}` : ''}`);
            if (s.errors.length && t.id === 'pgproxy') data.problems.push(`SELECT distribution through pgproxy: ${s.errors.join('; ')}`);
            tracker.check();
            log(`distribution via ${t.label}: ${DIST_SESSIONS} sessions × ${o.inserts} INSERTs...`);
            const ins = await insertDistribution(ctx, t, DIST_SESSIONS, o.inserts);
            data.insertDist.push(ins);
            log(
              `  rows ${ins.rows.map((r) => `${r.node} ${r.rows}`).join(', ')} of ${ins.expectedRows}; WAL ${ins.lsnEqual ? 'equal' : 'NOT equal'} ` +
                `(${ins.rows.map((r) => r.lsn).join(' ')}); ${(ins.elapsedMs / 1000).toFixed(1)} s, ${ins.insertsPerSecond} inserts/s` +
                `${ins.errors.length ? `; errors: ${ins.errors.join('; ')}` : ''}`,
            );
            if (t.id === 'pgproxy' && (ins.errors.length || !ins.rowsEqual || ins.rows[0]?.rows !== ins.expectedRows)) {
              data.problems.push(`INSERT distribution through pgproxy: ${ins.errors.join('; ') || `rows ${ins.rows.map((r) => r.rows).join('/')} of ${ins.expectedRows}`}`);
            }
            tracker.check();
          }
        }
      } else data.skipped.push({ what: 'distribution', reason: 'skipped (--only/--skip)' });

      // pgproxy's own complaints during the workloads and distribution runs.
      if (pgproxy) data.problems.push(...(await proxyLogProblems(pgproxy.logFile, 'pgproxy (workloads)')));

      // The comparison targets are done; stop them before measuring memory.
      for (const t of [...targets].reverse()) await t.stop();

      // 6. Memory with idle clients, on a fresh pgproxy.
      if (want.section('memory')) {
        log(`memory: a fresh pgproxy with ${MEMORY_LEVELS.map((n) => n.toLocaleString('en-US')).join(' / ')} idle clients...`);
        try {
          data.memory = await measureMemory({ info, dir: tmp, tracker, version: pgproxyVersion, levels: MEMORY_LEVELS, log });
          for (const l of data.memory.levels) {
            if (l.failed > 0 || l.errors.length > 0) data.problems.push(`idle clients through pgproxy (level ${l.clients}): ${l.failed} failed; ${l.errors.join('; ')}`);
          }
          if (data.memory.dropped > 0) data.problems.push(`pgproxy disconnected ${data.memory.dropped} idle clients during the memory run`);
          data.problems.push(...(await proxyLogProblems(path.join(tmp, 'pgproxy-memory', 'pgproxy.log'), 'pgproxy (memory run)')));
        } catch (err) {
          if (err instanceof AbortedError) throw err;
          data.problems.push(`memory run failed: ${(err as Error).message}`);
        }
      } else data.skipped.push({ what: 'memory', reason: 'skipped (--only/--skip)' });
    }
  } catch (err) {
    failed = err;
  } finally {
    // 7. Stop everything, whatever happened.
    await tracker.stopAll().catch(() => undefined);
    if (cluster) {
      log(o.keep ? `stopping the cluster (kept in ${cluster.info.dir})...` : 'stopping the cluster...');
      await cluster.down({ purge: !o.keep }).catch((err: unknown) => {
        process.stderr.write(`could not stop the cluster cleanly: ${(err as Error).message}\n`);
      });
    }
    if (tmp && !o.keep) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    const left = tracker.running();
    if (left.length > 0) process.stderr.write(`still running after cleanup: ${left.map((p) => `${p.name} (${p.pid})`).join(', ')}\n`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  if (failed instanceof AbortedError || tracker.aborted) {
    process.stderr.write('interrupted: stopped everything; no report written\n');
    return 130;
  }
  if (failed) {
    const msg = (failed as Error).stack ?? String(failed);
    process.stderr.write(`benchmark failed: ${msg}\n`);
    data.problems.push(`the run stopped early: ${(failed as Error).message}`);
  }
  data.finishedAt = new Date();
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(path.join(RESULTS_DIR, 'latest.md'), markdown(data, 'latest.svg'));
  await writeFile(path.join(RESULTS_DIR, 'latest.svg'), svg(data));
  const elapsed = Math.round((data.finishedAt.getTime() - startedAt.getTime()) / 1000);
  log('');
  log(summary(data));
  log(`wrote ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'latest.md'))} and latest.svg (run took ${Math.floor(elapsed / 60)} min ${elapsed % 60} s)`);
  return failed ? 1 : 0;
}

/** Distinct warn/error messages from a pgproxy log (pino JSON lines), with counts. */
async function proxyLogProblems(file: string, who: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let msg = line.trim();
    try {
      const j = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((j.level ?? 0) < 40) continue;
      msg = `${j.level === 40 ? 'warn' : j.level === 50 ? 'error' : 'fatal'}: ${j.msg ?? ''}${j.err?.message ? ` (${j.err.message})` : ''}`;
    } catch {
      // not JSON (a crash trace): keep the line
    }
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
  }
  return [...counts].slice(0, 10).map(([m, n]) => `${who} logged ${n}× "${m}"`);
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
