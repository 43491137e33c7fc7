/** The benchmark's results as a Markdown report, a hand-written SVG bar chart, and a plain-text summary. */
import type { InsertDistribution, SelectDistribution } from './distribution.js';
import type { MemoryResult } from './memory.js';
import type { PgbenchResult, Workload } from './pgbench.js';
import { TARGET_IDS, TARGET_LABELS, type TargetId, WORKERS, WORKERS_WORKLOAD } from './targets/target.js';

export interface ClassifyResult {
  cachedNsPerStatement: number;
  uncachedNsPerStatement: number;
  corpusSize: number;
}

export interface WorkloadResults {
  workload: Workload;
  /** In the order the targets ran. */
  order: TargetId[];
  results: Partial<Record<TargetId, PgbenchResult>>;
}

export interface BenchData {
  startedAt: Date;
  finishedAt: Date;
  command: string;
  machine: { cores: number; cpuModel: string; memGiB: number; kernel: string };
  /** 1-minute load average before the run: other work on the machine skews everything. */
  loadAvg: { start: number };
  versions: Record<string, string>;
  durationS: number;
  scale: number;
  /** Targets that ran, with their setup line. */
  targets: { id: TargetId; label: string; version: string; setup: string }[];
  /** What did not run and why (targets, sections, n/a workloads). */
  skipped: { what: string; reason: string }[];
  workloads: WorkloadResults[];
  selectDist: SelectDistribution[];
  insertDist: InsertDistribution[];
  distSettings: { sessions: number; selects: number; inserts: number } | null;
  memory: MemoryResult | null;
  classify: ClassifyResult | null;
  /** pgproxy failures seen (errors through pgproxy are pgproxy bugs), and other run problems. */
  problems: string[];
}

export interface Goal {
  name: string;
  /** null: could not be measured. */
  met: boolean | null;
  measured: string;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmt = (n: number | null | undefined, digits = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));
const mb = (kb: number | null): string => (kb === null ? '–' : ((kb * 1024) / 1e6).toFixed(1));

function result(data: BenchData, name: string, t: TargetId): PgbenchResult | undefined {
  return data.workloads.find((w) => w.workload.name === name)?.results[t];
}

function tpsOf(r: PgbenchResult | undefined): number | null {
  return r && r.na === undefined && r.tps !== null && r.tps > 0 ? r.tps : null;
}

function ratio(a: number | null, b: number | null): number | null {
  return a !== null && b !== null ? a / b : null;
}

function failureNote(r: PgbenchResult | undefined): string {
  if (!r || r.na !== undefined) return '';
  const bits: string[] = [];
  if (r.failedTransactions) bits.push(`${r.failedTransactions} failed transactions`);
  if (r.exitCode !== 0) bits.push(`pgbench exit ${String(r.exitCode)}`);
  if (r.timedOut) bits.push('timed out');
  return bits.join(', ');
}

export function goals(data: BenchData): Goal[] {
  const out: Goal[] = [];
  const cmp = (name: string, wl: string, other: TargetId, factor: number): void => {
    const p = result(data, wl, 'pgproxy');
    const o = result(data, wl, other);
    const r = ratio(tpsOf(p), tpsOf(o));
    const ran = data.workloads.some((w) => w.workload.name === wl);
    const why = !ran
      ? `workload ${wl} not run`
      : !p
        ? 'pgproxy did not run'
        : !o
          ? `${TARGET_LABELS[other]} did not run`
          : o.na ?? (tpsOf(p) === null ? 'pgproxy run failed' : `${TARGET_LABELS[other]} run failed`);
    const note = [failureNote(p) && `pgproxy: ${failureNote(p)}`].filter(Boolean).join('; ');
    out.push({
      name,
      met: r === null ? null : r >= factor && failureNote(p) === '',
      measured: r === null ? `not measured (${why})` : `${r.toFixed(2)}× (${fmtInt(tpsOf(p)!)} vs ${fmtInt(tpsOf(o)!)} TPS)${note ? `; ${note}` : ''}`,
    });
  };
  cmp('`-S -M simple -c 16`: pgproxy ≥ 2× pgpool-II', 'select-simple-c16', 'pgpool', 2);
  cmp('`-S -M simple -c 16`: pgproxy ≥ PgBouncer', 'select-simple-c16', 'pgbouncer', 1);
  cmp('`-S -M extended -c 16`: pgproxy ≥ 3× pgpool-II', 'select-extended-c16', 'pgpool', 3);
  cmp('`-S -M extended -c 16`: pgproxy ≥ PgBouncer', 'select-extended-c16', 'pgbouncer', 1);
  cmp('tpcb-like `-c 16`: pgproxy ≥ PgBouncer', 'tpcb-c16', 'pgbouncer', 1);
  cmp('`-S -M simple -c 1`: pgproxy ≥ 0.90× direct', 'select-simple-c1', 'direct', 0.9);
  const tenK = data.memory?.levels.find((l) => l.clients === 10_000);
  out.push({
    name: '10,000 idle clients: pgproxy RSS ≤ 200 MB',
    met: tenK && tenK.rssKb !== null && tenK.held === 10_000 ? (tenK.rssKb * 1024) / 1e6 <= 200 : null,
    measured: !tenK
      ? 'not measured (memory run skipped)'
      : tenK.skipped
        ? `not measured (${tenK.skipped})`
        : `${mb(tenK.rssKb)} MB with ${fmtInt(tenK.held)} clients held${tenK.held !== 10_000 ? ` (${tenK.failed} failed to connect)` : ''}`,
  });
  const c = data.classify;
  out.push({
    name: 'cached classification ≤ 2 µs per statement',
    met: c ? c.cachedNsPerStatement <= 2000 : null,
    measured: c ? `${(c.cachedNsPerStatement / 1000).toFixed(3)} µs` : 'not measured (skipped)',
  });
  return out;
}

/**
 * pgproxy with `workers: 2` against pgproxy with 1 at `-S -M simple -c 64`: informational, no threshold. The TPS
 * ratio, then latency, proxy CPU per transaction and RSS (summed over each target's processes) side by side.
 */
export function workersComparison(data: BenchData): { name: string; ratio: number | null; detail: string; measured: string } {
  const name = `workers: ${WORKERS} vs 1 at -S -c 64`;
  const one = result(data, WORKERS_WORKLOAD, 'pgproxy');
  const many = result(data, WORKERS_WORKLOAD, 'pgproxy-workers');
  const r = ratio(tpsOf(many), tpsOf(one));
  const ran = data.workloads.some((w) => w.workload.name === WORKERS_WORKLOAD);
  const why = !ran
    ? `workload ${WORKERS_WORKLOAD} not run`
    : !many
      ? `${TARGET_LABELS['pgproxy-workers']} did not run`
      : !one
        ? 'pgproxy (1 worker) did not run'
        : tpsOf(many) === null
          ? `${TARGET_LABELS['pgproxy-workers']} run failed`
          : 'pgproxy (1 worker) run failed';
  if (r === null || !one || !many) return { name, ratio: null, detail: why, measured: `not measured (${why})` };
  const pair = (f: (x: PgbenchResult) => string): string => `${f(many)} vs ${f(one)}`;
  const bits = [
    `${pair((x) => fmtInt(tpsOf(x)!))} TPS`,
    `avg ${pair((x) => fmt(x.avgLatencyMs, 2))} ms`,
    `p99 ${pair((x) => fmt(x.p99LatencyMs, 2))} ms`,
  ];
  if (many.proxyCpuUsPerTx != null && one.proxyCpuUsPerTx != null) bits.push(`proxy CPU ${pair((x) => fmt(x.proxyCpuUsPerTx, 1))} µs/tx`);
  if (many.proxyRssKb != null && one.proxyRssKb != null) {
    bits.push(`RSS ${pair((x) => mb(x.proxyRssKb ?? null))} MB in ${pair((x) => String(x.proxyProcesses ?? '?'))} processes`);
  }
  const notes = [failureNote(many) && `${TARGET_LABELS['pgproxy-workers']}: ${failureNote(many)}`, failureNote(one) && `pgproxy: ${failureNote(one)}`].filter(Boolean);
  const detail = `${bits.join('; ')}${notes.length ? `; ${notes.join('; ')}` : ''}`;
  return { name, ratio: r, detail, measured: `${r.toFixed(2)}× (${detail})` };
}

const metText = (m: boolean | null): string => (m === null ? 'not measured' : m ? 'met' : 'NOT met');

// -------------------------------------------------------------------------------------------------
// Markdown

export function markdown(data: BenchData, svgName: string): string {
  const L: string[] = [];
  const elapsed = Math.round((data.finishedAt.getTime() - data.startedAt.getTime()) / 1000);
  L.push('# pgproxy benchmark', '');
  L.push(`Run ${data.startedAt.toISOString()} (${Math.floor(elapsed / 60)} min ${elapsed % 60} s), \`${data.command}\`.`, '');
  L.push('## Setup', '');
  L.push(
    `- Machine: ${data.machine.cores} cores (${data.machine.cpuModel}), ${data.machine.memGiB} GiB RAM, ${data.machine.kernel}; everything on loopback, ` +
      'so clients, proxies and the three PostgreSQL servers share these cores.',
  );
  L.push(
    '- "proxy CPU µs/tx" is the CPU time (user + system, from /proc) the proxy\'s own processes used during a run, divided by its transactions: ' +
      'what the proxy costs per transaction, less sensitive to other load on the machine than TPS. "Own processes" are the one started and ' +
      'all its descendants and process-group members (pgpool-II\'s children; with `workers`, pgproxy\'s primary process and its workers).',
  );
  L.push(
    `- Load average (1 min) before the run: ${data.loadAvg.start.toFixed(2)}` +
      (data.loadAvg.start > 0.5
        ? ' — something else was using the CPUs, so absolute numbers are low and noisy (the interleaved order keeps the comparison fair-ish).'
        : ' (an otherwise idle machine).'),
  );

  L.push(`- Versions: ${Object.entries(data.versions).map(([k, v]) => `${k} ${v}`).join('; ')}.`);
  L.push(
    `- Cluster: a primary and 2 streaming standbys (pgproxy devcluster, fsync off), \`pgbench -i -s ${data.scale}\` on the primary. ` +
      'pgproxy and pgpool-II send reads to the standbys (weights 0/1/1); PgBouncer and "direct" use the primary only.',
  );
  L.push(
    `- Each pgbench run lasts ${data.durationS} s (\`-T ${data.durationS}\`, \`-n\`, \`-j 2\` for 2+ clients); within a workload the targets run one after another ` +
      '(order alternating between workloads), so drift hits them alike. Before each tpcb-like run the primary gets what pgbench -n skips ' +
      '(VACUUM of branches and tellers, TRUNCATE of history). p99 comes from pgbench\'s per-transaction logs.',
  );
  for (const t of data.targets) L.push(`- **${t.label}** (${t.version}): ${t.setup}.`);
  L.push('');

  L.push('## Targets', '');
  L.push('| goal | result | measured |', '|---|---|---|');
  for (const g of goals(data)) L.push(`| ${g.name} | ${g.met === null ? 'not measured' : g.met ? '**met**' : '**not met**'} | ${g.measured} |`);
  L.push('');
  const wc = workersComparison(data);
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
    for (const w of data.workloads) {
      const cmd = w.workload.title.replace(/ \(tpcb-like\)$/, '');
      L.push(`### \`${cmd}\`${cmd === w.workload.title ? '' : ' (tpcb-like)'}`, '');
      // With pgproxy (workers: 2) in this workload, a column of TPS relative to pgproxy with 1 worker.
      const vsOne = w.results['pgproxy-workers'] !== undefined;
      L.push(`| target | TPS | avg latency ms | p99 latency ms | × pgpool-II | × PgBouncer |${vsOne ? ' × pgproxy (1 worker) |' : ''} transactions | proxy CPU µs/tx | problems |`);
      L.push(`|---|---:|---:|---:|---:|---:|${vsOne ? '---:|' : ''}---:|---:|---|`);
      const pool = tpsOf(w.results.pgpool);
      const bouncer = tpsOf(w.results.pgbouncer);
      const one = tpsOf(w.results.pgproxy);
      for (const id of TARGET_IDS) {
        const r = w.results[id];
        if (!r) continue;
        if (r.na !== undefined) {
          L.push(`| ${TARGET_LABELS[id]} | n/a | | | | |${vsOne ? ' |' : ''} | | ${r.na} |`);
          continue;
        }
        const t = tpsOf(r);
        const problems = [failureNote(r), ...r.errors].filter(Boolean).join('; ').replace(/\|/g, '\\|');
        L.push(
          `| ${TARGET_LABELS[id]} | ${t === null ? '–' : fmtInt(t)} | ${fmt(r.avgLatencyMs, 3)} | ${fmt(r.p99LatencyMs, 3)} | ` +
            `${fmt(ratio(t, pool))} | ${fmt(ratio(t, bouncer))} | ${vsOne ? `${fmt(ratio(t, one))} | ` : ''}${r.transactions === null ? '–' : fmtInt(r.transactions)} | ` +
            `${r.proxyCpuUsPerTx === null || r.proxyCpuUsPerTx === undefined ? '' : fmt(r.proxyCpuUsPerTx, 1)} | ${problems} |`,
        );
      }
      L.push('', `Run order: ${w.order.map((id) => TARGET_LABELS[id]).join(' → ')}.`, '');
    }
  }

  if (data.selectDist.length > 0 || data.insertDist.length > 0) {
    L.push('## Distribution', '');
    const ds = data.distSettings;
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
  }

  if (data.classify) {
    const c = data.classify;
    L.push('## Classification cost', '');
    L.push(`\`benchClassify()\` (bench/classify.ts), in the benchmark's own process before the cluster starts, over a corpus of ${c.corpusSize} statements:`, '');
    L.push('| path | ns per statement |', '|---|---:|');
    L.push(`| cached (LRU hit) | ${fmtInt(c.cachedNsPerStatement)} |`, `| uncached (lex + classify) | ${fmtInt(c.uncachedNsPerStatement)} |`, '');
  }
  return `${L.join('\n')}\n`;
}

// -------------------------------------------------------------------------------------------------
// SVG: one small panel per workload (own scale), a bar per target.

const COLORS: Readonly<Record<TargetId, string>> = {
  direct: '#8c8c8c',
  pgproxy: '#2f6fdf',
  'pgproxy-workers': '#8a5cd6',
  pgpool: '#e8842c',
  pgbouncer: '#3a9a4a',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function shortNumber(n: number): string {
  if (n >= 10_000) return `${(n / 1000).toFixed(0)}k`;
  if (n >= 1_000) return `${(n / 1000).toFixed(1)}k`;
  return n.toFixed(0);
}

export function svg(data: BenchData): string {
  const cols = 3;
  const pw = 300;
  const ph = 230;
  const top = 56;
  const rows = Math.max(1, Math.ceil(data.workloads.length / cols));
  const width = cols * pw + 20;
  const height = top + rows * ph + 10;
  const targets = TARGET_IDS.filter((id) => data.workloads.some((w) => w.results[id] !== undefined));
  // pgproxy (workers: 2) runs in one workload: a bar there, no "not run" placeholder in the other panels.
  const panelTargets = (w: WorkloadResults): TargetId[] => targets.filter((id) => id !== 'pgproxy-workers' || w.results[id] !== undefined);
  const axisLabel = (id: TargetId): string[] => (id === 'pgproxy-workers' ? ['pgproxy', `${WORKERS} workers`] : [TARGET_LABELS[id].replace(' (primary)', '')]);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="10" y="20" font-size="15" font-weight="bold">pgbench TPS per target (${data.durationS} s runs, ${esc(data.startedAt.toISOString().slice(0, 10))}; each panel has its own scale)</text>`,
  );
  targets.forEach((id, i) => {
    const x = 10 + i * 165;
    out.push(`<rect x="${x}" y="32" width="12" height="12" fill="${COLORS[id]}"/>`);
    out.push(`<text x="${x + 17}" y="42">${esc(TARGET_LABELS[id])}</text>`);
  });
  data.workloads.forEach((w, i) => {
    const px = 10 + (i % cols) * pw;
    const py = top + Math.floor(i / cols) * ph;
    const plotTop = py + 34;
    const plotBottom = py + ph - 50;
    const plotH = plotBottom - plotTop;
    const ids = panelTargets(w);
    const values = ids.map((id) => tpsOf(w.results[id]));
    const max = Math.max(1, ...values.map((v) => v ?? 0));
    out.push(`<g>`);
    out.push(`<text x="${px + pw / 2 - 5}" y="${py + 18}" text-anchor="middle" font-weight="bold">${esc(w.workload.title.replace(/^pgbench /, ''))}</text>`);
    out.push(`<line x1="${px + 20}" y1="${plotBottom}" x2="${px + pw - 30}" y2="${plotBottom}" stroke="#444"/>`);
    const slot = (pw - 50) / Math.max(1, ids.length);
    const axisFont = slot < 55 ? 8.5 : 9.5;
    ids.forEach((id, j) => {
      const r = w.results[id];
      const v = values[j] ?? null;
      const bx = px + 20 + j * slot + slot * 0.15;
      const bw = slot * 0.7;
      const cx = bx + bw / 2;
      if (r === undefined || v === null) {
        const label = r === undefined ? 'not run' : r.na !== undefined ? 'n/a' : 'failed';
        out.push(`<text x="${cx}" y="${plotBottom - 6}" text-anchor="middle" fill="#888">${label}</text>`);
      } else {
        const h = (v / max) * plotH;
        out.push(`<rect x="${bx.toFixed(1)}" y="${(plotBottom - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[id]}"><title>${esc(`${TARGET_LABELS[id]}: ${fmtInt(v)} TPS`)}</title></rect>`);
        out.push(`<text x="${cx}" y="${(plotBottom - h - 4).toFixed(1)}" text-anchor="middle">${shortNumber(v)}</text>`);
      }
      axisLabel(id).forEach((line, k) => {
        out.push(`<text x="${cx}" y="${plotBottom + 13 + k * 10}" text-anchor="middle" font-size="${axisFont}">${esc(line)}</text>`);
      });
    });
    const p = tpsOf(w.results.pgproxy);
    const rel = (['pgpool', 'pgbouncer'] as const)
      .map((id) => ({ id, r: ratio(p, tpsOf(w.results[id])) }))
      .filter((x) => x.r !== null)
      .map((x) => `${x.r!.toFixed(2)}× ${TARGET_LABELS[x.id]}`);
    if (rel.length > 0) out.push(`<text x="${px + pw / 2 - 5}" y="${plotBottom + 34}" text-anchor="middle" fill="#2f6fdf">pgproxy = ${esc(rel.join(', '))}</text>`);
    const wr = ratio(tpsOf(w.results['pgproxy-workers']), p);
    if (wr !== null) {
      out.push(`<text x="${px + pw / 2 - 5}" y="${plotBottom + 47}" text-anchor="middle" fill="${COLORS['pgproxy-workers']}">workers: ${WORKERS} = ${wr.toFixed(2)}× workers: 1</text>`);
    }
    out.push(`</g>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
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
  if (data.workloads.length > 0) {
    const targets = TARGET_IDS.filter((id) => data.workloads.some((w) => w.results[id] !== undefined));
    const head = ['workload (TPS, p99 ms)', ...targets.map((t) => TARGET_LABELS[t]), 'pgproxy/pgpool', 'pgproxy/bouncer'];
    const rows = data.workloads.map((w) => {
      const cells = targets.map((id) => {
        const r = w.results[id];
        if (!r) return '';
        if (r.na !== undefined) return 'n/a';
        const t = tpsOf(r);
        return t === null ? 'failed' : `${fmtInt(t)} (${fmt(r.p99LatencyMs, 2)})${failureNote(r) ? ' !' : ''}`;
      });
      const p = tpsOf(w.results.pgproxy);
      return [w.workload.title.replace(/^pgbench /, ''), ...cells, fmt(ratio(p, tpsOf(w.results.pgpool))), fmt(ratio(p, tpsOf(w.results.pgbouncer)))];
    });
    L.push(table(head, rows), '');
    const proxies = targets.filter((id) => id !== 'direct');
    const cpuRows = data.workloads.map((w) => [
      w.workload.title.replace(/^pgbench /, ''),
      ...proxies.map((id) => {
        const r = w.results[id];
        return r?.proxyCpuUsPerTx == null ? (r?.na !== undefined ? 'n/a' : '') : r.proxyCpuUsPerTx.toFixed(1);
      }),
    ]);
    if (proxies.length > 0) L.push(table(['proxy CPU µs per transaction', ...proxies.map((t) => TARGET_LABELS[t])], cpuRows), '');
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
    L.push(`classification: cached ${data.classify.cachedNsPerStatement} ns, uncached ${data.classify.uncachedNsPerStatement} ns per statement (${data.classify.corpusSize} statements)`);
  }
  L.push('', 'Targets:');
  for (const g of goals(data)) L.push(`  [${metText(g.met)}] ${g.name.replace(/`/g, '')}: ${g.measured}`);
  const wc = workersComparison(data);
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
