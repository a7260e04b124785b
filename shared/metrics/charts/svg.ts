/**
 * Small self-contained SVG charts for job summaries: no fonts, scripts or external hosts, so they render as a
 * data URI in GitHub and Azure DevOps summaries, also offline.
 */
export interface LineSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly color: string;
  readonly dashed?: boolean;
}

export interface BarSeries {
  readonly name: string;
  /** One value per category; null draws no bar. */
  readonly values: readonly (number | null)[];
  readonly color: string;
}

export const CANDIDATE_COLOR = '#1f77b4';
export const PRODUCTION_COLOR = '#ff7f0e';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const f = (v: number) => (Math.round(v * 10) / 10).toString();

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function axes(fr: Frame, title: string, xLabel: string, yLabel: string, yTicks: readonly number[], xTicks: readonly { at: number; label: string }[]): string[] {
  const out: string[] = [];
  const plotW = fr.width - fr.left - fr.right;
  const plotH = fr.height - fr.top - fr.bottom;
  out.push(`<rect x="0" y="0" width="${fr.width}" height="${fr.height}" fill="#ffffff"/>`);
  out.push(`<text x="${fr.width / 2}" y="18" text-anchor="middle" font-family="sans-serif" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const v of yTicks) {
    const y = fr.top + plotH * (1 - v);
    out.push(`<line x1="${fr.left}" y1="${f(y)}" x2="${fr.left + plotW}" y2="${f(y)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${fr.left - 6}" y="${f(y + 4)}" text-anchor="end" font-family="sans-serif" font-size="11">${v.toFixed(1)}</text>`);
  }
  for (const t of xTicks) {
    out.push(`<text x="${f(fr.left + plotW * t.at)}" y="${fr.top + plotH + 16}" text-anchor="middle" font-family="sans-serif" font-size="11">${esc(t.label)}</text>`);
  }
  out.push(`<rect x="${fr.left}" y="${fr.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#606060"/>`);
  out.push(`<text x="${fr.left + plotW / 2}" y="${fr.height - 8}" text-anchor="middle" font-family="sans-serif" font-size="12">${esc(xLabel)}</text>`);
  out.push(`<text x="14" y="${fr.top + plotH / 2}" text-anchor="middle" font-family="sans-serif" font-size="12" transform="rotate(-90 14 ${fr.top + plotH / 2})">${esc(yLabel)}</text>`);
  return out;
}

function legend(fr: Frame, items: readonly { name: string; color: string; dashed?: boolean }[]): string[] {
  const out: string[] = [];
  let y = fr.top + 14;
  const x = fr.width - fr.right - 170;
  out.push(`<rect x="${x - 6}" y="${fr.top + 2}" width="170" height="${items.length * 16 + 6}" fill="#ffffff" fill-opacity="0.85"/>`);
  for (const it of items) {
    out.push(`<line x1="${x}" y1="${y - 4}" x2="${x + 22}" y2="${y - 4}" stroke="${it.color}" stroke-width="3"${it.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${x + 28}" y="${y}" font-family="sans-serif" font-size="11">${esc(it.name)}</text>`);
    y += 16;
  }
  return out;
}

/** Line chart on [0,1]×[0,1] (precision–recall). */
export function lineChartSvg(options: { title: string; xLabel: string; yLabel: string; series: readonly LineSeries[]; width?: number; height?: number }): string {
  const fr: Frame = { width: options.width ?? 560, height: options.height ?? 380, left: 56, right: 16, top: 30, bottom: 46 };
  const plotW = fr.width - fr.left - fr.right;
  const plotH = fr.height - fr.top - fr.bottom;
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const out = axes(fr, options.title, options.xLabel, options.yLabel, ticks, ticks.map((t) => ({ at: t, label: t.toFixed(1) })));
  for (const s of options.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && y >= 0);
    if (pts.length === 0) continue;
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${f(fr.left + plotW * Math.min(1, Math.max(0, x)))} ${f(fr.top + plotH * (1 - Math.min(1, Math.max(0, y))))}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
  }
  out.push(...legend(fr, options.series));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${fr.width}" height="${fr.height}" viewBox="0 0 ${fr.width} ${fr.height}">${out.join('')}</svg>`;
}

/** Grouped bars per category on [0,1] (per-class scores of two models). */
export function barChartSvg(options: { title: string; yLabel: string; categories: readonly string[]; series: readonly BarSeries[]; width?: number; height?: number }): string {
  const n = options.categories.length;
  const fr: Frame = { width: options.width ?? Math.max(420, 80 + n * 44), height: options.height ?? 340, left: 56, right: 16, top: 30, bottom: 46 };
  const plotW = fr.width - fr.left - fr.right;
  const plotH = fr.height - fr.top - fr.bottom;
  const slot = plotW / Math.max(1, n);
  const out = axes(fr, options.title, 'class', options.yLabel, [0, 0.2, 0.4, 0.6, 0.8, 1], options.categories.map((c, i) => ({ at: (i + 0.5) / Math.max(1, n), label: c.length > 10 ? c.slice(0, 9) + '…' : c })));
  const barW = (slot * 0.8) / Math.max(1, options.series.length);
  options.series.forEach((s, si) => {
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v) || v < 0) return;
      const h = plotH * Math.min(1, v);
      out.push(`<rect x="${f(fr.left + slot * i + slot * 0.1 + barW * si)}" y="${f(fr.top + plotH - h)}" width="${f(barW)}" height="${f(h)}" fill="${s.color}"/>`);
    });
  });
  out.push(...legend(fr, options.series));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${fr.width}" height="${fr.height}" viewBox="0 0 ${fr.width} ${fr.height}">${out.join('')}</svg>`;
}
