/** The database-bound mode in the report: its Markdown section, its lines of the stdout summary, its SVG chart. */
import { spreadText } from './goals.js';
import {
  cell,
  DB_WORKLOAD_TITLES,
  DB_WORKLOADS,
  type DbBoundData,
  type DbCell,
  dbGoals,
  type DbWorkloadId,
  efficiencyOf,
  failuresOf,
  MIXED_TPS_GOAL,
  READ_SCALING_GOAL,
  rowLabel,
  staleOf,
  tpsOf,
  VARIANTS,
  type Variant,
} from './scaling.js';
import { spread } from './stats.js';
import type { TargetId } from './targets/target.js';

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const f2 = (n: number | null | undefined): string => (n == null || !Number.isFinite(n) ? '–' : n.toFixed(2));
const metText = (m: boolean | null): string => (m === null ? 'info' : m ? 'met' : 'NOT met');
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const mdCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Variants that ran workload `w`, in report order. */
function ranIn(d: DbBoundData, w: DbWorkloadId): { v: Variant; c: DbCell }[] {
  return VARIANTS.flatMap((v) => {
    const c = cell(d, w, v.id);
    return c ? [{ v, c }] : [];
  });
}

/** Median cores per server over the rounds ("0.01 / 0.30 / 0.30"), and throttled periods summed. */
function serverText(c: DbCell): { cores: string; throttled: string } {
  const nodes = c.runs[0]?.servers.map((s) => s.node) ?? [];
  const cores = nodes.map((_, i) => spread(c.runs.map((r) => r.servers[i]?.cores ?? null))?.median ?? null);
  const throttled = nodes.map((_, i) => c.runs.reduce((n, r) => n + (r.servers[i]?.throttled ?? 0), 0));
  return { cores: cores.map((x) => f2(x)).join(' / '), throttled: throttled.map(int).join(' / ') };
}

export function dbBoundMarkdown(d: DbBoundData, svgName: string): string[] {
  const L: string[] = [];
  L.push(`## Database-bound: read scaling with each server capped at ${d.capCores} core`, '');
  L.push(
    'On this machine three PostgreSQL servers, the clients and the proxy share a few cores, so the other sections measure proxy CPU. ' +
      `Here each server is capped at ${d.capCores} of a core (${d.cgroups}), so each behaves like a separate, smaller machine and the ` +
      'servers limit throughput: does every node that takes reads add a whole server\'s worth of reads?',
    '',
  );
  L.push(
    `- Clients: ${d.clientsPerNode} per node that takes reads (a target with 2 read nodes gets ${2 * d.clientsPerNode} pgbench clients, or ` +
      `${2 * d.clientsPerNode} pairs of connections in the mixed workload), so the direct baseline runs at the same clients per node as each node behind a proxy.`,
    `- **Scaling efficiency** = TPS / (nodes taking reads × TPS of one node reached directly with ${d.clientsPerNode} clients). ` +
      `Goals: read-only ≥ ${READ_SCALING_GOAL} with 2 and with 3 read nodes; mixed: read_your_writes database keeps ≥ ${MIXED_TPS_GOAL}× off's TPS with 0 stale reads.`,
    '- **Mixed** (bench/mixed.ts): pairs of connections A and B, each pair one statement at a time in a cycle of ten: an UPDATE of the pair\'s own row on A, ' +
      'the read-back of that row on B as soon as the UPDATE is acknowledged, then eight reads of random pgbench_accounts rows on B (90 % reads, 10 % writes). ' +
      'A read-back that does not return the value just written is **stale**. TPS counts statements (each is its own transaction); p99 is per statement.',
    `- ${d.durationS} s per run, ${d.rounds} interleaved round${d.rounds === 1 ? '' : 's'} (order rotated per round and workload); medians, with the spread (min–max) over the rounds. ` +
      '"server cores" is each server\'s CPU use over the run from its cgroup (node0 / node1 / node2, median over the rounds), "throttled" the CFS periods in which it hit its cap (summed). ' +
      '"idle" is the whole machine\'s idle cores over the run (/proc/stat): near 0, clients, proxy and servers together used up the machine, and the run measured the machine rather than the servers behind the proxy.',
    '',
  );
  for (const v of d.variants) L.push(`- **${v.label}** (${v.version}): ${v.setup}.`);
  L.push('', `![scaling efficiency per target](${svgName})`, '');
  L.push('### Goals', '', '| goal | result | measured |', '|---|---|---|');
  for (const g of dbGoals(d)) L.push(`| ${g.name} | ${g.met === null ? (g.name.includes('informational') ? 'info' : 'not measured') : g.met ? '**met**' : '**NOT met**'} | ${mdCell(g.measured)} |`);
  L.push('');
  for (const w of DB_WORKLOADS) {
    const rows = ranIn(d, w);
    if (rows.length === 0) continue;
    const rounds = Math.max(...rows.map((r) => r.c.runs.length));
    const mixed = w === 'mixed';
    L.push(`### ${DB_WORKLOAD_TITLES[w]}${rounds > 1 ? ` — ${rounds} rounds, median (min–max)` : ''}`, '');
    L.push(
      `| target | read nodes | ${mixed ? 'pairs' : 'clients'} | TPS | efficiency | ${mixed ? '× off | stale read-backs | ' : ''}p99 ms | proxy CPU µs/tx | server cores | throttled | idle | problems |`,
      `|---|---:|---:|---:|---:|${mixed ? '---:|---:|' : ''}---:|---:|---|---|---:|---|`,
    );
    const off = tpsOf(cell(d, 'mixed', 'pgproxy-off'))?.median ?? null;
    for (const { v, c } of rows) {
      const tps = tpsOf(c);
      const p99 = spread(c.runs.map((r) => r.p99LatencyMs));
      const cpu = spread(c.runs.map((r) => r.proxyCpuUsPerTx));
      const st = staleOf(c);
      const sv = serverText(c);
      const problems = mdCell([failuresOf(c), ...new Set(c.runs.flatMap((r) => r.errors))].filter(Boolean).join('; '));
      const mixCols = mixed ? `${off !== null && tps ? f2(tps.median / off) : '–'} | ${st ? `${int(st.stale)} of ${int(st.readBacks)}` : '–'} | ` : '';
      L.push(
        `| ${rowLabel(v, w)} | ${v.readNodes} | ${v.readNodes * d.clientsPerNode} | ${spreadText(tps, int)} | ${f2(efficiencyOf(d, w, v.id))} | ${mixCols}` +
          `${f2(p99?.median)} | ${cpu ? cpu.median.toFixed(1) : ''} | ${sv.cores} | ${sv.throttled} | ${f2(spread(c.runs.map((r) => r.idleCores))?.median)} | ${problems} |`,
      );
    }
    L.push('');
  }
  if (d.servers.length > 0) {
    L.push(`### The servers over the whole mode (${d.cappedSeconds.toFixed(0)} s capped)`, '');
    L.push('| node | role | CPU s used | average cores | CFS periods | throttled periods | throttled time s |', '|---|---|---:|---:|---:|---:|---:|');
    for (const s of d.servers) {
      L.push(
        `| ${s.node} | ${s.role} | ${s.usageSeconds === null ? '–' : s.usageSeconds.toFixed(1)} | ${s.usageSeconds === null || d.cappedSeconds <= 0 ? '–' : (s.usageSeconds / d.cappedSeconds).toFixed(2)} | ` +
          `${int(s.nrPeriods)} | ${int(s.nrThrottled)} | ${s.throttledSeconds.toFixed(1)} |`,
      );
    }
    L.push('');
  }
  if (d.skipped.length > 0) {
    L.push('Not run in this mode:', '');
    for (const s of d.skipped) L.push(`- ${s.what}: ${s.reason}`);
    L.push('');
  }
  return L;
}

/** The scaling table and the goals, for stdout. */
export function dbBoundSummary(d: DbBoundData): string[] {
  const L: string[] = [`Database-bound (each server capped at ${d.capCores} core, ${d.clientsPerNode} clients per read node): TPS median, efficiency`];
  const labels = VARIANTS.filter((v) => DB_WORKLOADS.some((w) => cell(d, w, v.id)));
  const width = Math.max(...labels.map((v) => rowLabel(v, 'mixed').length), 10);
  L.push(`  ${'target'.padEnd(width)}  ${DB_WORKLOADS.map((w) => w.padStart(22)).join('')}`);
  for (const v of labels) {
    const cols = DB_WORKLOADS.map((w) => {
      const c = cell(d, w, v.id);
      const tps = tpsOf(c);
      if (!c || !tps) return ''.padStart(22);
      const st = staleOf(c);
      return `${int(tps.median)} ${f2(efficiencyOf(d, w, v.id))}${st ? ` s${st.stale}` : ''}${failuresOf(c) ? ' !' : ''}`.padStart(22);
    });
    L.push(`  ${rowLabel(v, 'mixed').padEnd(width)}  ${cols.join('')}`);
  }
  L.push('  (s = stale read-backs; ! = failures, see the report)');
  for (const g of dbGoals(d)) L.push(`  [${metText(g.met)}] ${g.name}: ${g.measured}`);
  for (const s of d.servers) {
    L.push(
      `  ${s.node} (${s.role}): ${s.usageSeconds === null ? '?' : (s.usageSeconds / Math.max(1, d.cappedSeconds)).toFixed(2)} cores on average, ` +
        `throttled in ${int(s.nrThrottled)} of ${int(s.nrPeriods)} periods`,
    );
  }
  return L;
}

const COLORS: Readonly<Partial<Record<TargetId, string>>> = { direct: '#8c8c8c', pgproxy: '#2f6fdf', pgpool: '#e8842c', pgbouncer: '#3a9a4a' };

/** Scaling efficiency per target, a panel per workload, the goal as a dashed line. */
export function scalingSvg(d: DbBoundData): string {
  const panels = DB_WORKLOADS.filter((w) => ranIn(d, w).length > 0);
  const pw = 360;
  const ph = 300;
  const top = 48;
  const width = Math.max(1, panels.length) * pw + 20;
  const height = top + ph + 10;
  const effs = panels.flatMap((w) => ranIn(d, w).map(({ v }) => efficiencyOf(d, w, v.id) ?? 0));
  const max = Math.max(1.2, ...effs.map((e) => e * 1.1));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="10" y="20" font-size="15" font-weight="bold">Read scaling efficiency, each PostgreSQL server capped at ${d.capCores} core</text>`);
  out.push(
    `<text x="10" y="36" fill="#444">efficiency = TPS / (nodes taking reads × TPS of one node reached directly), ${d.clientsPerNode} clients per read node; ` +
      `median of ${d.rounds} round${d.rounds === 1 ? '' : 's'} of ${d.durationS} s; red: stale read-backs</text>`,
  );
  panels.forEach((w, i) => {
    const px = 10 + i * pw;
    const plotTop = top + 30;
    const plotBottom = top + ph - 70;
    const plotH = plotBottom - plotTop;
    const y = (v: number): string => (plotBottom - (v / max) * plotH).toFixed(1);
    const rows = ranIn(d, w);
    out.push('<g>');
    out.push(`<text x="${px + pw / 2}" y="${top + 16}" text-anchor="middle" font-weight="bold">${esc(DB_WORKLOAD_TITLES[w].replace(/^pgbench /, ''))}</text>`);
    out.push(`<line x1="${px + 30}" y1="${plotBottom}" x2="${px + pw - 10}" y2="${plotBottom}" stroke="#444"/>`);
    for (const tick of [0, 0.5, 1]) {
      out.push(`<text x="${px + 26}" y="${Number(y(tick)) + 4}" text-anchor="end" fill="#666">${tick.toFixed(1)}</text>`);
      if (tick > 0) out.push(`<line x1="${px + 30}" y1="${y(tick)}" x2="${px + pw - 10}" y2="${y(tick)}" stroke="#ddd"/>`);
    }
    if (w !== 'mixed') {
      out.push(`<line x1="${px + 30}" y1="${y(READ_SCALING_GOAL)}" x2="${px + pw - 10}" y2="${y(READ_SCALING_GOAL)}" stroke="#c00" stroke-dasharray="4 3"/>`);
      out.push(`<text x="${px + pw - 12}" y="${Number(y(READ_SCALING_GOAL)) - 3}" text-anchor="end" fill="#c00">goal ${READ_SCALING_GOAL}</text>`);
    }
    const slot = (pw - 45) / Math.max(1, rows.length);
    rows.forEach(({ v, c }, j) => {
      const e = efficiencyOf(d, w, v.id);
      const bx = px + 35 + j * slot + slot * 0.15;
      const bw = slot * 0.7;
      const cx = bx + bw / 2;
      const color = COLORS[v.base] ?? '#888';
      if (e !== null) {
        const tps = tpsOf(c)!;
        out.push(
          `<rect x="${bx.toFixed(1)}" y="${y(e)}" width="${bw.toFixed(1)}" height="${((e / max) * plotH).toFixed(1)}" fill="${color}">` +
            `<title>${esc(`${rowLabel(v, w)}: ${int(tps.median)} TPS, efficiency ${e.toFixed(2)}`)}</title></rect>`,
        );
        out.push(`<text x="${cx}" y="${Number(y(e)) - 4}" text-anchor="middle">${e.toFixed(2)}</text>`);
      } else out.push(`<text x="${cx}" y="${plotBottom - 6}" text-anchor="middle" fill="#888">–</text>`);
      const lines = axisLines(v, w);
      const st = staleOf(c);
      if (st) lines.push(`stale ${int(st.stale)}`);
      lines.forEach((line, k) => {
        out.push(`<text x="${cx}" y="${plotBottom + 13 + k * 11}" text-anchor="middle" font-size="9" ${line.startsWith('stale') && st!.stale > 0 ? 'fill="#c00"' : ''}>${esc(line)}</text>`);
      });
    });
    out.push('</g>');
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** A bar's label in short lines: "pgproxy", "0/1/1", "ryw off". */
function axisLines(v: Variant, w: DbWorkloadId): string[] {
  const base = v.label.split(' ')[0]!;
  if (v.base === 'direct') return ['direct', v.node === 0 ? 'primary' : 'standby'];
  if (v.base === 'pgbouncer') return ['PgBouncer', 'primary'];
  const lines = [base, v.weights?.join('/') ?? ''];
  if (w === 'mixed' && v.readYourWrites) lines.push(`ryw ${v.readYourWrites}`);
  return lines;
}

