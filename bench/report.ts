/** The benchmark's results as a Markdown report and a plain-text summary (the SVG chart is svg.ts). */
import type { ClassifyResult } from './classify.js';
import type { InsertDistribution, SelectDistribution } from './distribution.js';
import { fmt, fmtInt, goals, IDLE_RSS_GOAL_MB, mb, spreadText, workersComparison } from './goals.js';
import type { MemoryResult } from './memory.js';
import { profileLines, type ProfileResult } from './profile.js';
import { type RywCostData, rywGoals, rywMarkdown, rywSummary } from './ryw-cost-report.js';
import { type DbBoundData, dbGoals } from './scaling.js';
import { dbBoundMarkdown, dbBoundSummary } from './scaling-report.js';
import { KEY_WORKLOADS, targetStats, type WorkloadResults } from './stats.js';
import { TARGET_IDS, TARGET_LABELS, type TargetId } from './targets/target.js';

export interface BenchData {
  startedAt: Date;
  finishedAt: Date;
  command: string;
  /** Set for a reduced run (--quick, fewer rounds, shorter runs, --only/--skip): what was reduced. */
  reduced: string | null;
  machine: { cores: number; cpuModel: string; memGiB: number; kernel: string };
  /** 1-minute load average before the run: other work on the machine skews everything. */
  loadAvg: { start: number };
  versions: Record<string, string>;
  durationS: number;
  /** Rounds of the key workloads (KEY_WORKLOADS); the others ran once. */
  rounds: number;
  scale: number;
  /** Targets that ran, with their setup line. */
  targets: { id: TargetId; label: string; version: string; setup: string }[];
  /** What did not run and why (targets, sections, n/a workloads). */
  skipped: { what: string; reason: string }[];
  workloads: WorkloadResults[];
  selectDist: SelectDistribution[];
  insertDist: InsertDistribution[];
  distSettings: {
    sessions: number;
    selects: number;
    inserts: number;
    /** The pgproxy of the distribution step, run with the shipped pool and limits; null when it did not run. */
    pgproxy: { pool: string; connectionsPerNode: number; insertQueue: string; setup: string } | null;
  } | null;
  memory: MemoryResult | null;
  classify: ClassifyResult | null;
  profile: ProfileResult | null;
  /** The database-bound mode (scaling.ts), null when it did not run. */
  dbbound: DbBoundData | null;
  /** What read_your_writes costs (ryw-cost.ts), null when it did not run. */
  rywCost: RywCostData | null;
  /** pgproxy failures seen (errors through pgproxy are pgproxy bugs), and other run problems. */
  problems: string[];
}

const metText = (m: boolean | null): string => (m === null ? 'not measured' : m ? 'met' : 'NOT met');
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

// -------------------------------------------------------------------------------------------------
// Markdown

/** The report; `svgName` is the TPS chart, `scalingSvgName` the database-bound mode's chart. */
export function markdown(data: BenchData, svgName: string, scalingSvgName = 'scaling.svg'): string {
  const L: string[] = [];
  const elapsed = Math.round((data.finishedAt.getTime() - data.startedAt.getTime()) / 1000);
  L.push('# pgproxy benchmark', '');
  L.push(`Run ${data.startedAt.toISOString()} (${Math.floor(elapsed / 60)} min ${elapsed % 60} s), \`${data.command}\`.`, '');
  if (data.reduced) L.push(`**Reduced run** (${data.reduced}): not the full benchmark; figures are indicative only.`, '');
  L.push('## Setup', '');
  L.push(
    `- Machine: ${data.machine.cores} cores (${data.machine.cpuModel}), ${data.machine.memGiB} GiB RAM, ${data.machine.kernel}; everything on loopback, ` +
      'so clients, proxies and the three PostgreSQL servers share these cores.',
  );
  L.push(
    '- "proxy CPU µs/tx" is the CPU time (user + system, from /proc) the proxy\'s own processes used during a run, divided by its transactions: ' +
      'what the proxy costs per transaction, less sensitive to other load on the machine than TPS. "Own processes" are the one started and ' +
      'all its descendants and process-group members (pgpool-II\'s children; with `workers`, pgproxy\'s primary process and its workers). ' +
      'The direct connection has none.',
  );
  L.push(
    '- The **node pipe** is Node\'s floor for a proxy: a bare `socket.pipe()` both ways in its own process. pgproxy\'s CPU per transaction above ' +
      'the node pipe\'s is pgproxy\'s own work (framing, classification, routing, pooling); the rest is what any Node.js proxy pays for its sockets.',
  );
  L.push(
    `- Load average (1 min) before the run: ${data.loadAvg.start.toFixed(2)}` +
      (data.loadAvg.start > 0.5
        ? ' — something else was using the CPUs, so absolute numbers are low and noisy (the interleaved rounds keep the comparison fair-ish).'
        : ' (an otherwise idle machine).'),
  );
  L.push(`- Versions: ${Object.entries(data.versions).map(([k, v]) => `${k} ${v}`).join('; ')}.`);
  L.push(
    `- Cluster: a primary and 2 streaming standbys (pgproxy devcluster, fsync off), \`pgbench -i -s ${data.scale}\` on the primary. ` +
      'pgproxy and pgpool-II send reads to the standbys (weights 0/1/1); the node pipe, PgBouncer and "direct" use the primary only.',
  );
  L.push(
    `- Each pgbench run lasts ${data.durationS} s (\`-T ${data.durationS}\`, \`-n\`, \`-j 2\` for 2+ clients). The key workloads ` +
      `(${KEY_WORKLOADS.map((k) => `\`${k}\``).join(', ')}) run in ${data.rounds} interleaved round${data.rounds === 1 ? '' : 's'}: each round runs every ` +
      'target once, in an order rotated per round (and per workload), so drift and neighbours hit every target alike; they are judged on the ' +
      'median over the rounds, with the spread (min–max) in parentheses. The other workloads run once. Before each tpcb-like run the primary ' +
      'gets what pgbench -n skips (VACUUM of branches and tellers, TRUNCATE of history). p99 comes from pgbench\'s per-transaction logs.',
  );
  for (const t of data.targets) L.push(`- **${t.label}** (${t.version}): ${t.setup}.`);
  L.push('');

  L.push('## Targets', '');
  L.push('| goal | result | measured |', '|---|---|---|');
  for (const g of goals(data)) L.push(`| ${g.name} | ${g.met === null ? 'not measured' : g.met ? '**met**' : '**NOT met**'} | ${cell(g.measured)} |`);
  // The database-bound goals (also in their own section, there with the informational stale counts).
  for (const g of data.dbbound ? dbGoals(data.dbbound).filter((x) => !x.name.includes('informational')) : []) {
    L.push(`| database-bound ${g.name} | ${g.met === null ? 'not measured' : g.met ? '**met**' : '**NOT met**'} | ${cell(g.measured)} |`);
  }
  for (const g of data.rywCost ? rywGoals(data.rywCost) : []) {
    L.push(`| ${cell(g.name)} | ${g.met === null ? 'not measured' : g.met ? '**met**' : '**NOT met**'} | ${cell(g.measured)} |`);
  }
  L.push('');
  const wc = workersComparison(data.workloads);
  L.push(
    `Informational, no threshold: **${wc.name}: ${wc.ratio === null ? 'not measured' : `${wc.ratio.toFixed(2)}×`}** ` +
      `(${wc.ratio === null ? wc.detail : `${TARGET_LABELS['pgproxy-workers']} vs pgproxy: ${wc.detail}`}).`,
    '',
  );

  if (data.skipped.length > 0) {
    L.push('## Not run', '');
    for (const s of data.skipped) L.push(`- ${s.what}: ${s.reason}`);
    L.push('');
  }
  if (data.problems.length > 0) {
    L.push('## Failures seen', '');
    for (const p of data.problems) L.push(`- ${p.replace(/\n/g, ' ')}`);
    L.push('');
  }

  if (data.workloads.length > 0) {
    L.push('## Throughput and latency', '');
    L.push(`![TPS per target per workload](${svgName})`, '');
    for (const w of data.workloads) workloadTable(L, w);
  }

  if (data.rywCost) L.push(...rywMarkdown(data.rywCost));

  if (data.dbbound) L.push(...dbBoundMarkdown(data.dbbound, scalingSvgName));

  if (data.selectDist.length > 0 || data.insertDist.length > 0) {
    L.push('## Distribution', '');
    const ds = data.distSettings;
    if (ds?.pgproxy) {
      L.push(
        'pgproxy runs this step as users run it, a pgproxy of its own with the shipped pool and limits, not the raised pool size of the ' +
          `workloads: ${ds.pgproxy.pool}. In session pooling a session keeps its backend connection until it disconnects, so sessions ` +
          'beyond what one node takes wait for a connection (queued, not failed).',
        '',
        `- INSERTs: ${ds.pgproxy.insertQueue}.`,
        `- SELECTs: the sessions are spread over the standbys by weight; a standby serves at most ${ds.pgproxy.connectionsPerNode} of them at once, the others wait likewise.`,
        `- Setup: ${ds.pgproxy.setup}.`,
        '',
      );
    }
    if (data.selectDist.length > 0) {
      L.push(`### ${ds?.sessions ?? '?'} concurrent sessions × ${ds?.selects ?? '?'} \`SELECT inet_server_port()\``, '');
      const nodes = data.selectDist[0]!.perNode;
      L.push(`| target | ${nodes.map((n) => `${n.node} (${n.role}, :${n.port})`).join(' | ')} | primary | standbys | other | errors | time |`);
      L.push(`|---|${nodes.map(() => '---:').join('|')}|---:|---:|---:|---|---:|`);
      for (const d of data.selectDist) {
        L.push(
          `| ${d.target} | ${d.perNode.map((n) => fmtInt(n.count)).join(' | ')} | ${fmtInt(d.perRole.primary)} | ${fmtInt(d.perRole.standby)} | ${d.unknown} | ` +
            `${d.errors.join('; ').replace(/\|/g, '\\|') || 'none'} | ${(d.elapsedMs / 1000).toFixed(1)} s |`,
        );
      }
      L.push('');
    }
    if (data.insertDist.length > 0) {
      L.push(`### ${ds?.sessions ?? '?'} concurrent sessions × ${ds?.inserts ?? '?'} INSERTs into a fresh table`, '');
      L.push('Rows counted directly on each node after the standbys replayed up to the primary\'s WAL position.', '');
      const nodes = data.insertDist[0]!.rows;
      L.push(`| target | expected | ${nodes.map((n) => `${n.node} (${n.role}) rows`).join(' | ')} | rows equal | WAL positions | WAL equal | inserts/s | errors |`);
      L.push(`|---|---:|${nodes.map(() => '---:').join('|')}|---|---|---|---:|---|`);
      for (const d of data.insertDist) {
        L.push(
          `| ${d.target} | ${fmtInt(d.expectedRows)} | ${d.rows.map((r) => fmtInt(r.rows)).join(' | ')} | ${d.rowsEqual ? 'yes' : '**no**'} | ` +
            `${d.rows.map((r) => `${r.node} ${r.lsn}`).join(', ')} | ${d.lsnEqual ? 'yes' : '**no**'} | ${fmtInt(d.insertsPerSecond)} | ${d.errors.join('; ').replace(/\|/g, '\\|') || 'none'} |`,
        );
      }
      L.push('');
    }
  }

  if (data.memory) {
    const m = data.memory;
    L.push('## Memory: pgproxy with idle clients', '');
    L.push(
      `A fresh pgproxy process (${m.proxySetup}; open-files limit ${m.proxyMaxOpenFiles ?? '?'}); the clients are held by a separate Node process ` +
        'over raw sockets, each through startup and md5 authentication to ReadyForQuery, then idle. RSS is VmRSS from /proc/PID/status, read 3 s after ' +
        'each level was reached; MB = 10^6 bytes.',
      '',
    );
    L.push('| idle clients | held | RSS MB | per client (KB above baseline) | open time | problems |', '|---:|---:|---:|---:|---:|---|');
    L.push(`| 0 (baseline) | 0 | ${mb(m.baselineRssKb)} | | | |`);
    for (const l of m.levels) {
      // Below a hundred clients the difference is allocator noise, not a per-client cost.
      const per = l.rssKb !== null && m.baselineRssKb !== null && l.held >= 100 ? (((l.rssKb - m.baselineRssKb) * 1024) / 1000 / l.held).toFixed(1) : '–';
      const problems = [l.skipped, l.failed ? `${l.failed} failed` : '', ...l.errors].filter(Boolean).join('; ');
      L.push(`| ${fmtInt(l.clients)} | ${fmtInt(l.held)} | ${mb(l.rssKb)} | ${per} | ${(l.openMs / 1000).toFixed(1)} s | ${problems} |`);
    }
    L.push('', `Peak RSS (VmHWM) during the run: ${mb(m.peakRssKb)} MB.${m.dropped ? ` ${m.dropped} idle clients were disconnected by the proxy.` : ''}`, '');
    const tenK = m.levels.find((l) => l.clients === 10_000);
    if (tenK && tenK.rssKb !== null && !tenK.skipped) {
      const ok = tenK.held === 10_000 && (tenK.rssKb * 1024) / 1e6 <= IDLE_RSS_GOAL_MB;
      L.push(`Goal: 10,000 idle clients in at most ${IDLE_RSS_GOAL_MB} MB: **${ok ? 'met' : 'NOT met'}** (${mb(tenK.rssKb)} MB, ${fmtInt(tenK.held)} held).`, '');
    }
  }

  if (data.classify) {
    const c = data.classify;
    L.push('## Classification cost', '');
    L.push(
      `\`benchClassify()\` (bench/classify.ts), in the benchmark's own process before the cluster starts; best of 5 trials. The goal lines go through ` +
        `**\`${c.measuredCall}\`** (classifyBytes when src/router exports it, else decoding the text and classify(), as the session does), on SQL text ` +
        'inside a buffer as it arrives in a Query message.',
      '',
    );
    L.push('| what | call | ns per statement |', '|---|---|---:|');
    L.push(`| cached: a corpus of ${c.corpusSize} statements (pgbench, ORM with comments, long IN lists, CTEs, DDL, session), warm cache | \`${c.measuredCall}\` | ${fmtInt(c.cachedNsPerStatement)} |`);
    L.push(`| cached, per statement: the median statement of the corpus | \`${c.measuredCall}\` | ${fmtInt(c.cachedMedianNs)} |`);
    L.push(`| cached, per statement: the slowest, \`${cell(c.cachedSlowest.statement)}\` | \`${c.measuredCall}\` | ${fmtInt(c.cachedSlowest.ns)} |`);
    L.push(`| cached: pgbench's \`SELECT abalance FROM pgbench_accounts WHERE aid = 4242;\` | \`${c.measuredCall}\` | ${fmtInt(c.pgbenchCachedNs)} |`);
    L.push(`| literal-varying: the same statement with a random aid (1..1,000,000) every call | \`${c.measuredCall}\` | ${fmtInt(c.literalVaryingNs)} |`);
    L.push(
      `| cached corpus right after the literal-varying run (a cache keyed on the text is then full of random-aid selects, as in the proxy under \`pgbench -S\`), informational | \`${c.measuredCall}\` | ${fmtInt(c.cachedFullNs)} |`,
    );
    L.push(`| cached corpus, text already decoded (informational) | \`classify(sql)\` | ${fmtInt(c.predecodedCachedNs)} |`);
    L.push(`| uncached: a distinct text every call, lex + classify + LRU insert (informational) | \`classify(sql)\` | ${fmtInt(c.uncachedNsPerStatement)} |`, '');
  }

  if (data.profile) {
    L.push('## Profile: where pgproxy\'s time goes', '');
    L.push('`--profile`: a separate pgproxy (same setup) under `node --cpu-prof`; self time per function over the pgbench run, mapped to src/ through the source maps.', '');
    L.push('```', ...profileLines(data.profile), '```', '');
  }
  return `${L.join('\n')}\n`;
}

/** One workload's table: medians (spread over the rounds), ratios of medians, run orders. */
function workloadTable(L: string[], w: WorkloadResults): void {
  const cmd = w.workload.title.replace(/ \(tpcb-like\)$/, '');
  const rounds = w.rounds.length;
  L.push(`### \`${cmd}\`${cmd === w.workload.title ? '' : ' (tpcb-like)'}${rounds > 1 ? ` — ${rounds} rounds, median (min–max)` : ''}`, '');
  const ids = TARGET_IDS.filter((id) => w.rounds.some((r) => r.results[id] !== undefined));
  const stats = new Map(ids.map((id) => [id, targetStats(w, id)!]));
  const median = (id: TargetId): number | null => stats.get(id)?.tps?.median ?? null;
  // Relative columns only for targets that ran here; × pgproxy (1 worker) only beside pgproxy (workers: 2).
  const relTo = (['node-pipe', 'pgpool', 'pgbouncer', 'pgproxy'] as const).filter(
    (id) => stats.has(id) && (id !== 'pgproxy' || stats.has('pgproxy-workers')),
  );
  const relLabel = (id: TargetId): string => (id === 'pgproxy' ? '× pgproxy (1 worker)' : `× ${TARGET_LABELS[id]}`);
  L.push(`| target | TPS | avg latency ms | p99 latency ms | ${relTo.map(relLabel).join(' | ')}${relTo.length ? ' | ' : ''}transactions | proxy CPU µs/tx | problems |`);
  L.push(`|---|---:|---:|---:|${relTo.map(() => '---:|').join('')}---:|---:|---|`);
  for (const id of ids) {
    const s = stats.get(id)!;
    if (s.na !== undefined) {
      L.push(`| ${TARGET_LABELS[id]} | n/a | | | ${relTo.map(() => ' | ').join('')}| | ${cell(s.na)} |`);
      continue;
    }
    const t = median(id);
    const rel = relTo.map((o) => {
      const b = median(o);
      return t !== null && b !== null ? fmt(t / b) : '–';
    });
    const problems = cell([s.failures, ...s.errors].filter(Boolean).join('; '));
    L.push(
      `| ${TARGET_LABELS[id]} | ${spreadText(s.tps, fmtInt)} | ${fmt(s.avgLatencyMs?.median, 3)} | ${fmt(s.p99LatencyMs?.median, 3)} | ` +
        `${rel.map((r) => `${r} | `).join('')}${s.transactions === null ? '–' : fmtInt(s.transactions)} | ` +
        `${s.cpuUsPerTx === null ? '' : spreadText(s.cpuUsPerTx, (n) => n.toFixed(1))} | ${problems} |`,
    );
  }
  L.push('');
  if (rounds === 1) L.push(`Run order: ${w.rounds[0]!.order.map((id) => TARGET_LABELS[id]).join(' → ')}.`, '');
  else {
    L.push(`Run order per round (transactions are summed over the rounds): ${w.rounds.map((r) => `${r.round}: ${r.order.map((id) => TARGET_LABELS[id]).join(' → ')}`).join('; ')}.`, '');
  }
}

// -------------------------------------------------------------------------------------------------
// Plain-text summary for stdout

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function summary(data: BenchData): string {
  const L: string[] = [];
  if (data.reduced) L.push(`REDUCED RUN (${data.reduced}): indicative only.`, '');
  if (data.workloads.length > 0) {
    const targets = TARGET_IDS.filter((id) => data.workloads.some((w) => w.rounds.some((r) => r.results[id] !== undefined)));
    const title = (w: WorkloadResults): string => `${w.workload.title.replace(/^pgbench /, '')}${w.rounds.length > 1 ? ` ×${w.rounds.length}` : ''}`;
    const rows = data.workloads.map((w) => [
      title(w),
      ...targets.map((id) => {
        const s = targetStats(w, id);
        if (!s) return '';
        if (s.na !== undefined) return 'n/a';
        return s.tps === null ? 'failed' : `${spreadText(s.tps, fmtInt)}${s.failures ? ' !' : ''}`;
      }),
    ]);
    L.push(table(['TPS: median (min–max)', ...targets.map((t) => TARGET_LABELS[t])], rows), '');
    const proxies = targets.filter((id) => id !== 'direct');
    const cpuRows = data.workloads.map((w) => [
      title(w),
      ...proxies.map((id) => {
        const s = targetStats(w, id);
        return !s ? '' : s.na !== undefined ? 'n/a' : spreadText(s.cpuUsPerTx, (n) => n.toFixed(1));
      }),
    ]);
    if (proxies.length > 0) L.push(table(['proxy CPU µs/tx: median (min–max)', ...proxies.map((t) => TARGET_LABELS[t])], cpuRows), '');
  }
  for (const d of data.selectDist) {
    L.push(`SELECT distribution via ${d.target}: ${d.perNode.map((n) => `${n.node}/${n.role} ${n.count}`).join(', ')}${d.errors.length ? `; errors: ${d.errors.join('; ')}` : ''}`);
  }
  for (const d of data.insertDist) {
    L.push(
      `INSERT distribution via ${d.target}: ${d.rows.map((r) => `${r.node} ${r.rows}`).join(', ')} of ${d.expectedRows} (rows equal: ${d.rowsEqual ? 'yes' : 'NO'}, ` +
        `WAL equal: ${d.lsnEqual ? 'yes' : 'NO'}, ${d.insertsPerSecond} inserts/s)${d.errors.length ? `; errors: ${d.errors.join('; ')}` : ''}`,
    );
  }
  if (data.memory) {
    L.push(`pgproxy RSS: baseline ${mb(data.memory.baselineRssKb)} MB; ${data.memory.levels.map((l) => `${fmtInt(l.held)} idle clients ${mb(l.rssKb)} MB`).join('; ')}`);
  }
  if (data.classify) {
    const c = data.classify;
    L.push(
      `classification through ${c.measuredCall}: cached ${c.cachedNsPerStatement} ns (mean over a corpus of ${c.corpusSize}; median statement ${c.cachedMedianNs} ns, slowest ${c.cachedSlowest.ns} ns), pgbench select ${c.pgbenchCachedNs} ns, ` +
        `literal-varying ${c.literalVaryingNs} ns, cached after the literal-varying run ${c.cachedFullNs} ns; classify(sql) pre-decoded ${c.predecodedCachedNs} ns, uncached ${c.uncachedNsPerStatement} ns`,
    );
  }
  if (data.profile) L.push('', ...profileLines(data.profile));
  if (data.rywCost) L.push('', ...rywSummary(data.rywCost));
  if (data.distSettings?.pgproxy) L.push('', `Distribution through pgproxy with the shipped pool: ${data.distSettings.pgproxy.pool}; INSERTs: ${data.distSettings.pgproxy.insertQueue}`);
  if (data.dbbound) L.push('', ...dbBoundSummary(data.dbbound));
  L.push('', 'Targets:');
  for (const g of [...goals(data), ...(data.rywCost ? rywGoals(data.rywCost) : [])]) L.push(`  [${metText(g.met)}] ${g.name.replace(/`/g, '')}: ${g.measured}`);
  const wc = workersComparison(data.workloads);
  L.push(`  [info] ${wc.name}: ${wc.measured}`);
  if (data.skipped.length > 0) {
    L.push('', 'Not run:');
    for (const s of data.skipped) L.push(`  - ${s.what}: ${s.reason}`);
  }
  if (data.problems.length > 0) {
    L.push('', 'Failures:');
    for (const p of data.problems) L.push(`  - ${p}`);
  }
  return `${L.join('\n')}\n`;
}
