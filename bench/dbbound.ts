/**
 * The database-bound mode (section `dbbound`): every PostgreSQL server of the bench cluster capped at a fraction
 * of a core (cgroups.ts), so the servers, not the proxies, limit throughput, as when each is its own machine.
 * Then: does every node that takes reads add a server's worth of reads, and what does consistency cost?
 *
 * 1. The cgroups are made first (without permission the mode says why and is skipped, nothing else is).
 * 2. Its targets start (scaling.ts VARIANTS: direct, PgBouncer, pgpool-II and pgproxy with weights 0/1/1 and
 *    1/1/1, pgproxy with read_your_writes off / session / database), then each server's postmaster and its
 *    children move into their group.
 * 3. Workloads in interleaved rounds, order rotated per round and workload: pgbench -S simple and prepared
 *    with clients per read node × read nodes clients; the mixed harness (mixed.ts) with as many pairs.
 *    Each run records TPS, p99, errors, stale read-backs, proxy CPU per transaction and every server's CPU use
 *    and throttling from its cgroup.
 * 4. Targets stop, the servers go back to their cgroup, the groups are removed (lifecycle.ts does the same if
 *    the run fails or is interrupted).
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import type { LocalCluster } from '../src/devcluster/cluster.js';
import { runningPostmaster } from '../src/devcluster/procs.js';
import { CapError, CpuCaps, type CpuReading, planForThisProcess } from './cgroups.js';
import { mixedSetupSql, runMixed } from './mixed.js';
import type { Options, Selection } from './options.js';
import { runPgbench, type Workload } from './pgbench.js';
import { AbortedError, CLOCK_TICKS_PER_SECOND, type ProcessTracker, treeCpuTicks } from './procs.js';
import {
  DB_WORKLOAD_TITLES,
  DB_WORKLOADS,
  type DbBoundData,
  type DbRun,
  type DbWorkloadId,
  fullLabel,
  rowLabel,
  type ServerUsage,
  type Variant,
  VARIANTS,
} from './scaling.js';
import { failureNote } from './stats.js';
import { ensurePackage, versionOf } from './targets/debian.js';
import { startPgbouncer } from './targets/pgbouncer.js';
import { startPgpool } from './targets/pgpool.js';
import { type PgproxyTarget, pgproxyLogProblems, startPgproxy } from './targets/pgproxy.js';
import type { Target } from './targets/target.js';
import { rotate } from './workloads.js';

export interface DbBoundContext {
  o: Options;
  want: Selection;
  tracker: ProcessTracker;
  cluster: LocalCluster;
  /** The run's temp dir (targets' configs and logs go below it). */
  tmp: string;
  /** pgbench's scale of the bench tables (reads pick aid in 1..scale × 100,000). */
  scale: number;
  pgproxyPoolSize: number;
  data: { versions: Record<string, string>; problems: string[]; skipped: { what: string; reason: string }[] };
  log(line: string): void;
  /** The caps while they exist, for the cleanup of a failed or interrupted run. */
  setCaps(caps: CpuCaps | null): void;
}

interface Started {
  variant: Variant;
  target: Target;
}

/** The mode's data for the report, or null when it was skipped (the reason is in ctx.data.skipped). */
export async function runDbBound(ctx: DbBoundContext): Promise<DbBoundData | null> {
  const { o, log } = ctx;
  const skip = (reason: string): null => {
    log(`database-bound mode skipped: ${reason}`);
    ctx.data.skipped.push({ what: 'database-bound mode', reason });
    return null;
  };
  const plan = planForThisProcess();
  if ('reason' in plan) return skip(plan.reason);
  const nodes = ctx.cluster.info.nodes;
  let caps: CpuCaps;
  try {
    caps = CpuCaps.create(plan, nodes.map((n) => n.name), o.dbCpu);
  } catch (err) {
    if (err instanceof CapError) return skip(err.message);
    throw err;
  }
  ctx.setCaps(caps);
  log(`database-bound mode: each server capped at ${o.dbCpu} core (${caps.describe()})`);
  const started: Started[] = [];
  const data: DbBoundData = {
    capCores: o.dbCpu,
    clientsPerNode: o.dbClients,
    durationS: o.durationS,
    rounds: o.dbRounds,
    cgroups: caps.describe(),
    variants: [],
    cells: [],
    servers: [],
    cappedSeconds: 0,
    skipped: [],
  };
  try {
    await startVariants(ctx, started, data);
    const mixedPairs = Math.max(0, ...started.filter((s) => s.variant.workloads.includes('mixed')).map((s) => s.variant.readNodes * o.dbClients));
    if (mixedPairs > 0) {
      for (const sql of mixedSetupSql(mixedPairs)) await ctx.cluster.query(0, sql, [], ctx.cluster.info.users.app);
      await ctx.cluster.waitForReplay(60_000);
    }
    for (const n of nodes) {
      const pid = runningPostmaster(n.dataDir);
      if (pid === null) throw new Error(`${n.name} is not running`);
      log(`  ${n.name}: ${caps.move(n.name, pid)} processes moved into its cgroup`);
    }
    const t0 = performance.now();
    const first = nodes.map((n) => caps.read(n.name));
    await runRounds(ctx, caps, started, data);
    data.cappedSeconds = (performance.now() - t0) / 1000;
    data.servers = nodes.map((n, i) => {
      const a = first[i]!;
      const b = caps.read(n.name);
      return {
        node: n.name,
        role: i === 0 ? 'primary' : 'standby',
        usageSeconds: a.usageNs !== null && b.usageNs !== null ? (b.usageNs - a.usageNs) / 1e9 : null,
        nrPeriods: b.nrPeriods - a.nrPeriods,
        nrThrottled: b.nrThrottled - a.nrThrottled,
        throttledSeconds: (b.throttledNs - a.throttledNs) / 1e9,
      };
    });
    for (const s of started) {
      if (s.target.id === 'pgproxy') ctx.data.problems.push(...(await pgproxyLogProblems((s.target as PgproxyTarget).logFile, `${s.target.label} (database-bound)`)));
    }
    return data;
  } finally {
    for (const s of [...started].reverse()) {
      await s.target.stop().catch(() => undefined);
      const problem = s.target.id === 'pgproxy' ? (s.target as PgproxyTarget).stopProblem() : null;
      if (problem) ctx.data.problems.push(`${s.target.label} (database-bound) stop: ${problem}`);
    }
    // What cannot be undone now is tried again (and reported) by the run's cleanup.
    const problems = caps.release();
    if (problems.length === 0) ctx.setCaps(null);
    log(`database-bound mode: targets stopped, ${problems.length ? `cgroups not yet removed (${problems.join('; ')})` : 'servers back in their cgroup, cgroups removed'}`);
  }
}

async function startVariants(ctx: DbBoundContext, started: Started[], data: DbBoundData): Promise<void> {
  const { o, want, tracker, log } = ctx;
  const info = ctx.cluster.info;
  const app = info.users.app;
  // The servers' OS user (pgpool-II, PgBouncer) must reach the directories below.
  await mkdir(path.join(ctx.tmp, 'dbbound'), { recursive: true });
  await chmod(path.join(ctx.tmp, 'dbbound'), 0o755);
  const dir = (name: string): string => path.join(ctx.tmp, 'dbbound', name);
  const maxClients = (v: Variant): number => v.readNodes * o.dbClients * (v.workloads.includes('mixed') ? 2 : 1);
  let pgpool: { binary: string; version: string } | null | undefined;
  let pgbouncer: { binary: string; version: string } | null | undefined;
  for (const v of VARIANTS) {
    const label = fullLabel(v);
    if (!want.target(v.base)) {
      data.skipped.push({ what: label, reason: 'skipped (--only/--skip)' });
      continue;
    }
    const start = async (): Promise<Target | null> => {
      switch (v.base) {
        case 'direct': {
          const n = info.nodes[v.node ?? 0]!;
          const t: Target = {
            id: 'direct',
            label,
            host: n.host,
            port: n.port,
            user: app.name,
            password: app.password,
            database: info.database,
            pid: null,
            version: `PostgreSQL ${ctx.data.versions.PostgreSQL ?? ''}`.trim(),
            setup: `straight to ${n.name} (${v.node === 0 ? 'the primary' : 'a standby'}), no proxy: the one-node baseline of scaling efficiency`,
            unsupportedMode: () => null,
            stop: async () => undefined,
          };
          return t;
        }
        case 'pgbouncer': {
          pgbouncer ??= await available(ctx, 'pgbouncer', 'pgbouncer', /^PgBouncer /);
          if (!pgbouncer) return null;
          const { binary, version } = pgbouncer;
          return startPgbouncer({ info, binary, version, dir: dir(v.id), tracker, maxClientConn: 200, defaultPoolSize: 20 });
        }
        case 'pgpool': {
          pgpool ??= await available(ctx, 'pgpool2', 'pgpool', /^pgpool-II version /);
          if (!pgpool) return null;
          const { binary, version } = pgpool;
          return startPgpool({ info, binary, version, dir: dir(v.id), tracker, maxClients: maxClients(v), weights: v.weights!, label });
        }
        case 'pgproxy':
          return startPgproxy({
            info,
            dir: dir(v.id),
            tracker,
            version: ctx.data.versions.pgproxy ?? 'unknown',
            maxPerNode: ctx.pgproxyPoolSize,
            weights: v.weights!,
            ...(v.readYourWrites !== undefined ? { readYourWrites: v.readYourWrites } : {}),
            label,
          });
        default:
          return null;
      }
    };
    tracker.check();
    log(`starting ${label}...`);
    try {
      const t = await start();
      if (t === null) {
        data.skipped.push({ what: label, reason: `${v.base} is not installed` });
        continue;
      }
      started.push({ variant: v, target: t });
      data.variants.push({ id: v.id, label, version: t.version, setup: t.setup });
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const msg = (err as Error).message.replace(/\n/g, ' / ');
      log(`  failed to start: ${msg}`);
      data.skipped.push({ what: label, reason: `failed to start: ${msg}` });
      if (v.base === 'pgproxy') ctx.data.problems.push(`${label} (database-bound) failed to start: ${msg}`);
    }
  }
}

/** The binary of a Debian package's server (installed when missing and allowed), or null (recorded as skipped). */
async function available(ctx: DbBoundContext, pkg: string, binaryName: string, versionPrefix: RegExp): Promise<{ binary: string; version: string } | null> {
  const avail = await ensurePackage(pkg, binaryName, pkg, { noInstall: ctx.o.noInstall, tracker: ctx.tracker, log: ctx.log });
  if (avail.binary === null) return null;
  return { binary: avail.binary, version: (await versionOf(ctx.tracker, avail.binary)).replace(versionPrefix, '') };
}

async function runRounds(ctx: DbBoundContext, caps: CpuCaps, started: Started[], data: DbBoundData): Promise<void> {
  const { o, log, tracker } = ctx;
  const nodes = ctx.cluster.info.nodes;
  const logDir = path.join(ctx.tmp, 'pgbench-logs');
  let runNo = 0;
  for (let round = 0; round < o.dbRounds; round++) {
    for (const [wi, w] of DB_WORKLOADS.entries()) {
      const order = rotate(
        started.filter((s) => s.variant.workloads.includes(w)),
        round + wi,
      );
      if (order.length === 0) continue;
      log(`database-bound: ${DB_WORKLOAD_TITLES[w]}, round ${round + 1} of ${o.dbRounds} (${o.durationS} s per target, ${o.dbClients} clients per read node)`);
      for (const s of order) {
        tracker.check();
        runNo++;
        const before = nodes.map((n) => caps.read(n.name));
        const idleBefore = idleTicks();
        const t0 = performance.now();
        const r = await runOne(ctx, data, s, w, runNo, logDir);
        const wallNs = (performance.now() - t0) * 1e6;
        tracker.check();
        if (r === null) continue;
        r.servers = nodes.map((n, i) => usage(n.name, before[i]!, caps.read(n.name), wallNs));
        const idleAfter = idleTicks();
        r.idleCores = idleBefore !== null && idleAfter !== null ? (idleAfter - idleBefore) / CLOCK_TICKS_PER_SECOND / (wallNs / 1e9) : null;
        let c = data.cells.find((x) => x.workload === w && x.variant === s.variant.id);
        if (!c) data.cells.push((c = { workload: w, variant: s.variant.id, runs: [] }));
        c.runs.push(r);
        log(`  ${rowLabel(s.variant, w).padEnd(42)} ${runLine(r)}`);
        if (r.failure) ctx.data.problems.push(`database-bound ${DB_WORKLOAD_TITLES[w]} (round ${round + 1}) through ${rowLabel(s.variant, w)}: ${[r.failure, ...r.errors].join('; ')}`);
      }
    }
  }
}

function usage(node: string, a: CpuReading, b: CpuReading, wallNs: number): ServerUsage {
  return {
    node,
    cores: a.usageNs !== null && b.usageNs !== null && wallNs > 0 ? (b.usageNs - a.usageNs) / wallNs : null,
    throttled: b.nrThrottled - a.nrThrottled,
    periods: b.nrPeriods - a.nrPeriods,
  };
}

/** Idle + iowait time of the whole machine so far, clock ticks (/proc/stat), or null. */
function idleTicks(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
    // cpu user nice system idle iowait ...
    return Number(f[4]) + Number(f[5]);
  } catch {
    return null;
  }
}

function runLine(r: DbRun): string {
  const servers = r.servers.map((s) => `${s.node} ${s.cores === null ? '?' : s.cores.toFixed(2)}`).join(' ');
  const proxyCores = r.proxyCpuUsPerTx !== null && r.tps !== null ? (r.proxyCpuUsPerTx * r.tps) / 1e6 : null;
  return (
    `${r.tps === null ? 'no result' : `${Math.round(r.tps).toLocaleString('en-US').padStart(6)} TPS`}  p99 ${r.p99LatencyMs?.toFixed(2) ?? '–'} ms` +
    (r.readBacks !== undefined ? `  stale ${r.stale} of ${r.readBacks}` : '') +
    `  server cores ${servers}` +
    (proxyCores !== null ? `  proxy ${proxyCores.toFixed(2)}` : '') +
    (r.idleCores != null ? `  idle ${r.idleCores.toFixed(2)}` : '') +
    (r.failure ? `  FAILED: ${[r.failure, ...r.errors].join('; ')}` : '')
  );
}

/** One run of workload `w` through `s`; null when the target cannot run it (n/a, recorded as skipped). */
async function runOne(ctx: DbBoundContext, data: DbBoundData, s: Started, w: DbWorkloadId, runNo: number, logDir: string): Promise<DbRun | null> {
  const { o } = ctx;
  const clients = s.variant.readNodes * o.dbClients;
  const t = s.target;
  if (w === 'mixed') {
    const cpuBefore = t.pid !== null ? treeCpuTicks(t.pid) : null;
    const m = await runMixed({
      target: t,
      pairs: clients,
      durationS: o.durationS,
      aidMax: ctx.scale * 100_000,
      base: runNo * 1e9,
      aborted: () => ctx.tracker.aborted,
    });
    const ticks = cpuBefore !== null && t.pid !== null ? treeCpuTicks(t.pid) - cpuBefore : null;
    return {
      tps: m.tps,
      avgLatencyMs: m.avgLatencyMs,
      p99LatencyMs: m.p99LatencyMs,
      transactions: m.transactions,
      failure: [m.errorCount > 0 ? `${m.errorCount} failed statements` : '', m.tps === null ? 'no result' : ''].filter(Boolean).join(', '),
      errors: m.errors,
      readBacks: m.readBacks,
      stale: m.stale,
      proxyCpuUsPerTx: ticks !== null && m.transactions > 0 ? (ticks * (1e6 / CLOCK_TICKS_PER_SECOND)) / m.transactions : null,
      servers: [],
      idleCores: null,
    };
  }
  const mode = w === 'select-simple' ? 'simple' : 'prepared';
  const workload: Workload = { name: `dbbound-${w}-c${clients}`, title: `${DB_WORKLOAD_TITLES[w]} -c ${clients}`, script: 'select-only', mode, clients };
  const r = await runPgbench({ tracker: ctx.tracker, target: t, workload, durationS: o.durationS, logDir, keepLogs: o.keep, tag: `db${runNo}_${w}_${s.variant.id}` });
  if (r.na !== undefined) {
    const what = `${DB_WORKLOAD_TITLES[w]} on ${t.label}`;
    if (!data.skipped.some((x) => x.what === what)) data.skipped.push({ what, reason: `n/a: ${r.na}` });
    return null;
  }
  return {
    tps: r.tps,
    avgLatencyMs: r.avgLatencyMs,
    p99LatencyMs: r.p99LatencyMs,
    transactions: r.transactions,
    failure: failureNote(r),
    errors: r.errors,
    proxyCpuUsPerTx: r.proxyCpuUsPerTx ?? null,
    servers: [],
    idleCores: null,
  };
}

