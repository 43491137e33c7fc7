/**
 * The benchmark's TPS chart as a hand-written SVG: one small panel per workload (own scale), a bar per target at
 * its median TPS, with a min–max whisker when the workload ran in several rounds.
 */
import { fmtInt } from './goals.js';
import type { BenchData } from './report.js';
import { targetStats, type WorkloadResults } from './stats.js';
import { TARGET_IDS, TARGET_LABELS, type TargetId, WORKERS } from './targets/target.js';

const COLORS: Readonly<Record<TargetId, string>> = {
  direct: '#8c8c8c',
  pgproxy: '#2f6fdf',
  'pgproxy-workers': '#8a5cd6',
  'node-pipe': '#c94f7c',
  pgpool: '#e8842c',
  pgbouncer: '#3a9a4a',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function shortNumber(n: number): string {
  if (n >= 10_000) return `${(n / 1000).toFixed(0)}k`;
  if (n >= 1_000) return `${(n / 1000).toFixed(1)}k`;
  return n.toFixed(0);
}

const ran = (w: WorkloadResults, id: TargetId): boolean => w.rounds.some((r) => r.results[id] !== undefined);

export function svg(data: BenchData): string {
  const cols = 3;
  const pw = 320;
  const ph = 240;
  const top = 56;
  const rows = Math.max(1, Math.ceil(data.workloads.length / cols));
  const width = cols * pw + 20;
  const height = top + rows * ph + 10;
  const targets = TARGET_IDS.filter((id) => data.workloads.some((w) => ran(w, id)));
  // pgproxy (workers: 2) runs in one workload: a bar there, no "not run" placeholder in the other panels.
  const panelTargets = (w: WorkloadResults): TargetId[] => targets.filter((id) => id !== 'pgproxy-workers' || ran(w, id));
  const axisLabel = (id: TargetId): string[] => (id === 'pgproxy-workers' ? ['pgproxy', `${WORKERS} workers`] : [TARGET_LABELS[id].replace(' (primary)', '')]);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="10" y="20" font-size="15" font-weight="bold">pgbench TPS per target (${data.durationS} s runs, median of ${data.rounds} rounds for the key workloads, ` +
      `${esc(data.startedAt.toISOString().slice(0, 10))}; each panel has its own scale)</text>`,
  );
  targets.forEach((id, i) => {
    const x = 10 + i * 160;
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
    const stats = ids.map((id) => targetStats(w, id));
    const max = Math.max(1, ...stats.map((s) => s?.tps?.max ?? 0));
    const rounds = w.rounds.length;
    out.push(`<g>`);
    out.push(
      `<text x="${px + pw / 2 - 5}" y="${py + 18}" text-anchor="middle" font-weight="bold">${esc(w.workload.title.replace(/^pgbench /, ''))}${rounds > 1 ? ` (${rounds} rounds)` : ''}</text>`,
    );
    out.push(`<line x1="${px + 20}" y1="${plotBottom}" x2="${px + pw - 30}" y2="${plotBottom}" stroke="#444"/>`);
    const slot = (pw - 50) / Math.max(1, ids.length);
    const axisFont = slot < 55 ? 8.5 : 9.5;
    ids.forEach((id, j) => {
      const s = stats[j];
      const bx = px + 20 + j * slot + slot * 0.15;
      const bw = slot * 0.7;
      const cx = bx + bw / 2;
      const y = (v: number): string => (plotBottom - (v / max) * plotH).toFixed(1);
      if (!s || s.tps === null) {
        const label = !s ? 'not run' : s.na !== undefined ? 'n/a' : 'failed';
        out.push(`<text x="${cx}" y="${plotBottom - 6}" text-anchor="middle" fill="#888">${label}</text>`);
      } else {
        const { median, min, max: hi, n } = s.tps;
        const tip = n > 1 ? `${fmtInt(median)} TPS (median of ${n}; ${fmtInt(min)}–${fmtInt(hi)})` : `${fmtInt(median)} TPS`;
        out.push(
          `<rect x="${bx.toFixed(1)}" y="${y(median)}" width="${bw.toFixed(1)}" height="${((median / max) * plotH).toFixed(1)}" fill="${COLORS[id]}">` +
            `<title>${esc(`${TARGET_LABELS[id]}: ${tip}`)}</title></rect>`,
        );
        if (n > 1) {
          out.push(`<line x1="${cx}" y1="${y(min)}" x2="${cx}" y2="${y(hi)}" stroke="#222" stroke-width="1"/>`);
          for (const v of [min, hi]) out.push(`<line x1="${cx - 4}" y1="${y(v)}" x2="${cx + 4}" y2="${y(v)}" stroke="#222" stroke-width="1"/>`);
        }
        out.push(`<text x="${cx}" y="${(Number(y(n > 1 ? hi : median)) - 4).toFixed(1)}" text-anchor="middle">${shortNumber(median)}</text>`);
      }
      axisLabel(id).forEach((line, k) => {
        out.push(`<text x="${cx}" y="${plotBottom + 13 + k * 10}" text-anchor="middle" font-size="${axisFont}">${esc(line)}</text>`);
      });
    });
    const p = targetStats(w, 'pgproxy')?.tps?.median ?? null;
    const rel = (['node-pipe', 'pgpool', 'pgbouncer'] as const)
      .map((id) => {
        const b = targetStats(w, id)?.tps?.median ?? null;
        return { id, r: p !== null && b !== null ? p / b : null };
      })
      .filter((x) => x.r !== null)
      .map((x) => `${x.r!.toFixed(2)}× ${TARGET_LABELS[x.id]}`);
    if (rel.length > 0) out.push(`<text x="${px + pw / 2 - 5}" y="${plotBottom + 34}" text-anchor="middle" fill="#2f6fdf">pgproxy = ${esc(rel.join(', '))}</text>`);
    const many = targetStats(w, 'pgproxy-workers')?.tps?.median ?? null;
    if (many !== null && p !== null) {
      out.push(`<text x="${px + pw / 2 - 5}" y="${plotBottom + 47}" text-anchor="middle" fill="${COLORS['pgproxy-workers']}">workers: ${WORKERS} = ${(many / p).toFixed(2)}× workers: 1</text>`);
    }
    out.push(`</g>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
