/**
 * The one chart module: a chart is plain data (`Chart`), drawn three ways for the three places people read it.
 *
 * - `chartSvg`: inline SVG for the HTML release report (no fonts, scripts or external hosts; scales to its card).
 * - `chartMermaid`: a Mermaid `xychart-beta` / `pie` block for GitHub job summaries. GitHub's markdown sanitiser
 *   drops `<img>` with `data:` URIs and inline `<svg>`, but renders ```mermaid fences in job summaries.
 * - `chartTable`: a markdown table with Unicode bars for Azure DevOps, whose build-summary markdown documents
 *   neither Mermaid (only wiki pages have `::: mermaid`) nor inline images; a table renders everywhere.
 */
import { escapeHtml } from '../core/html';

/** One palette for every chart and overlay: candidate blue, production orange, ground truth green. */
export const PALETTE = {
  candidate: '#1f77b4',
  production: '#ff7f0e',
  groundTruth: '#2ca02c',
  series: ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'],
  grid: '#e4e7eb',
  axis: '#57606a',
  text: '#1f2328',
} as const;

export interface Axis {
  readonly label: string;
  readonly min?: number;
  readonly max?: number;
  /** Logarithmic scale (latency: a slow tail and a fast bulk both stay visible). */
  readonly log?: boolean;
}

export interface LineSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly color?: string;
  readonly dashed?: boolean;
}

export interface LineChart {
  readonly kind: 'line';
  readonly title: string;
  readonly x: Axis;
  readonly y: Axis;
  readonly series: readonly LineSeries[];
}

export interface BarSeries {
  readonly name: string;
  /** One value per category; null draws no bar. */
  readonly values: readonly (number | null)[];
  readonly color?: string;
}

export interface BarChart {
  readonly kind: 'bar';
  readonly title: string;
  /** Axis label of the categories (e.g. "class"). */
  readonly category: string;
  readonly categories: readonly string[];
  readonly value: Axis;
  readonly series: readonly BarSeries[];
  /** Bars left to right (many categories with long names read better horizontally). */
  readonly horizontal?: boolean;
}

/** Latency distribution drawn from compact data: percentiles and (optionally) a histogram, not raw samples. */
export interface LatencySeries {
  readonly name: string;
  readonly percentiles: { readonly p50: number; readonly p95: number; readonly p99: number };
  /** Bin edges (length n + 1, increasing, milliseconds) and run counts per bin (length n). */
  readonly histogram?: { readonly edges: readonly number[]; readonly counts: readonly number[] };
  readonly color?: string;
}

export interface LatencyChart {
  readonly kind: 'latency';
  readonly title: string;
  readonly unit: string;
  readonly series: readonly LatencySeries[];
}

/** Parts of a whole (e.g. where end-to-end time goes). */
export interface ShareChart {
  readonly kind: 'share';
  readonly title: string;
  readonly unit: string;
  readonly parts: readonly { readonly name: string; readonly value: number }[];
}

export type Chart = LineChart | BarChart | LatencyChart | ShareChart;

// ---------------------------------------------------------------------------------------------- numbers and ticks

const r1 = (v: number) => (Math.round(v * 10) / 10).toString();

/** A number as people read it on an axis: few significant digits, no trailing zeros. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return trim(v.toFixed(1));
  if (a >= 1) return trim(v.toFixed(2));
  if (a >= 0.01) return trim(v.toFixed(3));
  return v.toExponential(1);
}

const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

function linearTicks(lo: number, hi: number, target = 5): number[] {
  const span = hi - lo || 1;
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= target + 0.5) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push(Math.round(t / step) * step);
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  // A narrow range (1.0–1.3 ms) has fewer than three 1-2-5 ticks: label it linearly instead.
  if (hi / lo < 4) return linearTicks(lo, hi, 4).filter((t) => t > 0);
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** e;
      if (t >= lo * 0.999 && t <= hi * 1.001) out.push(Number(t.toPrecision(3)));
    }
  }
  return out;
}

interface Scale {
  at(v: number): number; // 0..1
  ticks: number[];
  lo: number;
  hi: number;
}

function scale(lo: number, hi: number, log: boolean): Scale {
  if (log) {
    const l = Math.log10(lo);
    const h = Math.log10(Math.max(hi, lo * 1.0001));
    return { lo, hi, ticks: logTicks(lo, hi), at: (v) => (Math.log10(Math.max(v, lo)) - l) / (h - l) };
  }
  const span = hi - lo || 1;
  return { lo, hi, ticks: linearTicks(lo, hi), at: (v) => (v - lo) / span };
}

// ------------------------------------------------------------------------------------------------------ SVG

interface Frame {
  width: number;
  height: number;
  left: number;
  top: number;
  plotW: number;
  plotH: number;
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function svgOpen(kind: string, width: number, height: number, title: string): string[] {
  // width 100% with a max of the drawn size: the chart never overflows its card and never grows blurry.
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${kind}" role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${width} ${height}" width="100%" style="max-width:${width}px" ${FONT} font-size="11" fill="${PALETTE.text}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="chart-title" x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(title)}</text>`,
  ];
}

function axesSvg(fr: Frame, x: Scale, y: Scale, xLabel: string, yLabel: string, xFormat = formatNumber, yFormat = formatNumber): string[] {
  const out: string[] = [];
  const bottom = fr.top + fr.plotH;
  for (const t of y.ticks) {
    const py = bottom - fr.plotH * y.at(t);
    out.push(`<line x1="${fr.left}" y1="${r1(py)}" x2="${fr.left + fr.plotW}" y2="${r1(py)}" stroke="${PALETTE.grid}"/>`);
    out.push(`<text x="${fr.left - 6}" y="${r1(py + 4)}" text-anchor="end">${escapeHtml(yFormat(t))}</text>`);
  }
  for (const t of x.ticks) {
    const px = fr.left + fr.plotW * x.at(t);
    out.push(`<line x1="${r1(px)}" y1="${bottom}" x2="${r1(px)}" y2="${bottom + 4}" stroke="${PALETTE.axis}"/>`);
    out.push(`<text x="${r1(px)}" y="${bottom + 16}" text-anchor="middle">${escapeHtml(xFormat(t))}</text>`);
  }
  out.push(`<rect x="${fr.left}" y="${fr.top}" width="${fr.plotW}" height="${fr.plotH}" fill="none" stroke="${PALETTE.axis}"/>`);
  out.push(
    `<text class="x-label" x="${fr.left + fr.plotW / 2}" y="${bottom + 32}" text-anchor="middle" font-size="12">${escapeHtml(xLabel)}</text>`,
  );
  const cy = fr.top + fr.plotH / 2;
  out.push(
    `<text class="y-label" x="14" y="${cy}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${cy})">${escapeHtml(yLabel)}</text>`,
  );
  return out;
}

/** Legend in its own band under the plot, so it never covers data; wraps into rows. */
function legendSvg(
  items: readonly { name: string; color: string; dashed?: boolean; box?: boolean }[],
  x0: number,
  y0: number,
  width: number,
): { parts: string[]; height: number } {
  const parts: string[] = [];
  let x = x0;
  let y = y0 + 10;
  for (const it of items) {
    const w = 34 + it.name.length * 6.2;
    if (x > x0 && x + w > x0 + width) {
      x = x0;
      y += 16;
    }
    parts.push(
      it.box
        ? `<rect x="${r1(x)}" y="${y - 9}" width="12" height="10" fill="${it.color}"/>`
        : `<line x1="${r1(x)}" y1="${y - 4}" x2="${r1(x + 22)}" y2="${y - 4}" stroke="${it.color}" stroke-width="3"${it.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    parts.push(`<text class="legend" x="${r1(x + (it.box ? 16 : 28))}" y="${y}">${escapeHtml(it.name)}</text>`);
    x += w;
  }
  return { parts, height: y - y0 + 8 };
}

const colorOf = (i: number, color?: string) => color ?? PALETTE.series[i % PALETTE.series.length];

function lineSvg(c: LineChart): string {
  const width = 600;
  const legendItems = c.series.map((s, i) => ({ name: s.name, color: colorOf(i, s.color), dashed: s.dashed }));
  const legend = legendSvg(legendItems, 60, 0, width - 76);
  const fr: Frame = { width, height: 0, left: 60, top: 30, plotW: width - 76, plotH: 260 };
  fr.height = fr.top + fr.plotH + 44 + legend.height;
  const all = c.series.flatMap((s) => s.points.filter(([px, py]) => Number.isFinite(px) && Number.isFinite(py)));
  const xs = scale(c.x.min ?? Math.min(...all.map((p) => p[0])), c.x.max ?? Math.max(...all.map((p) => p[0])), !!c.x.log);
  const ys = scale(c.y.min ?? Math.min(0, ...all.map((p) => p[1])), c.y.max ?? Math.max(...all.map((p) => p[1])), !!c.y.log);
  const out = svgOpen('line', fr.width, fr.height, c.title);
  out.push(...axesSvg(fr, xs, ys, c.x.label, c.y.label));
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  c.series.forEach((s, i) => {
    const pts = s.points.filter(([px, py]) => Number.isFinite(px) && Number.isFinite(py) && py >= ys.lo && py <= ys.hi);
    if (pts.length === 0) return;
    const d = pts
      .map(
        ([px, py], k) => `${k ? 'L' : 'M'}${r1(fr.left + fr.plotW * clamp(xs.at(px)))} ${r1(fr.top + fr.plotH * (1 - clamp(ys.at(py))))}`,
      )
      .join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${colorOf(i, s.color)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
  });
  out.push(`<g transform="translate(0 ${fr.top + fr.plotH + 40})">`, ...legend.parts, '</g>', '</svg>');
  return out.join('');
}

function barSvg(c: BarChart): string {
  const n = c.categories.length;
  const k = Math.max(1, c.series.length);
  const values = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const vs = scale(c.value.min ?? 0, c.value.max ?? Math.max(1e-9, ...values), false);
  const legendItems = c.series.map((s, i) => ({ name: s.name, color: colorOf(i, s.color), box: true }));
  if (c.horizontal) {
    const labelW = Math.min(160, 12 + Math.max(...c.categories.map((x) => Math.min(24, x.length))) * 6.2);
    const width = 600;
    const row = k * 11 + 8;
    const fr: Frame = { width, height: 0, left: labelW + 30, top: 30, plotW: width - labelW - 70, plotH: n * row };
    const legend = legendSvg(legendItems, fr.left, 0, fr.plotW);
    fr.height = fr.top + fr.plotH + 44 + legend.height;
    const out = svgOpen('bar', fr.width, fr.height, c.title);
    // x is the value axis here; the category axis label sits at the left edge.
    out.push(...axesSvg(fr, vs, { lo: 0, hi: 1, ticks: [], at: (v) => v }, c.value.label, c.category));
    c.categories.forEach((cat, ci) => {
      const y = fr.top + ci * row + 4;
      const label = cat.length > 24 ? `${cat.slice(0, 23)}…` : cat;
      out.push(`<text x="${fr.left - 6}" y="${r1(y + (k * 11) / 2 + 3)}" text-anchor="end">${escapeHtml(label)}</text>`);
      c.series.forEach((s, si) => {
        const v = s.values[ci];
        if (v === null || v === undefined || !Number.isFinite(v)) return;
        const w = Math.max(v > 0 ? 1 : 0, fr.plotW * Math.min(1, vs.at(v)));
        out.push(`<rect x="${fr.left}" y="${r1(y + si * 11)}" width="${r1(w)}" height="10" fill="${colorOf(si, s.color)}"/>`);
        out.push(`<text x="${r1(fr.left + w + 3)}" y="${r1(y + si * 11 + 9)}" font-size="9">${escapeHtml(formatNumber(v))}</text>`);
      });
    });
    out.push(`<g transform="translate(0 ${fr.top + fr.plotH + 40})">`, ...legend.parts, '</g>', '</svg>');
    return out.join('');
  }
  const width = Math.min(900, Math.max(420, 100 + n * (18 * k + 16)));
  const fr: Frame = { width, height: 0, left: 60, top: 30, plotW: width - 76, plotH: 220 };
  const legend = legendSvg(legendItems, fr.left, 0, fr.plotW);
  fr.height = fr.top + fr.plotH + 44 + legend.height;
  const slot = fr.plotW / Math.max(1, n);
  const out = svgOpen('bar', fr.width, fr.height, c.title);
  const every = Math.max(1, Math.ceil((n * 40) / fr.plotW));
  out.push(...axesSvg(fr, { lo: 0, hi: 1, ticks: [], at: (v) => v }, vs, c.category, c.value.label));
  c.categories.forEach((cat, ci) => {
    if (ci % every === 0) {
      const label = cat.length > 10 ? `${cat.slice(0, 9)}…` : cat;
      out.push(
        `<text x="${r1(fr.left + slot * (ci + 0.5))}" y="${fr.top + fr.plotH + 16}" text-anchor="middle">${escapeHtml(label)}</text>`,
      );
    }
  });
  const barW = (slot * 0.8) / k;
  c.series.forEach((s, si) => {
    s.values.forEach((v, ci) => {
      if (v === null || !Number.isFinite(v)) return;
      const h = fr.plotH * Math.min(1, Math.max(0, vs.at(v)));
      out.push(
        `<rect x="${r1(fr.left + slot * ci + slot * 0.1 + barW * si)}" y="${r1(fr.top + fr.plotH - h)}" width="${r1(barW)}" height="${r1(h)}" fill="${colorOf(si, s.color)}"/>`,
      );
    });
  });
  out.push(`<g transform="translate(0 ${fr.top + fr.plotH + 40})">`, ...legend.parts, '</g>', '</svg>');
  return out.join('');
}

/** Where labels of vertical markers go: rows from the top, a label moving down a row when it would overlap. */
function placeLabels(xs: readonly number[], width: number): number[] {
  const rows: number[] = [];
  return xs.map((x) => {
    let row = rows.findIndex((end) => end + 4 < x - width / 2);
    if (row < 0) {
      rows.push(-Infinity);
      row = rows.length - 1;
    }
    rows[row] = x + width / 2;
    return row;
  });
}

function latencySvg(c: LatencyChart): string {
  const width = 640;
  const series = c.series;
  const edges = series.flatMap((s) => s.histogram?.edges ?? []);
  const marks = series.flatMap((s) => [s.percentiles.p50, s.percentiles.p95, s.percentiles.p99]);
  const values = [...edges, ...marks].filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.min(...values) / 1.15;
  const hi = Math.max(...values) * 1.15;
  const xs = scale(lo, hi, true);
  const shares = series.map((s) =>
    s.histogram
      ? s.histogram.counts.map(
          (n) =>
            (100 * n) /
            Math.max(
              1,
              s.histogram!.counts.reduce((a, b) => a + b, 0),
            ),
        )
      : [],
  );
  const peak = Math.max(1, ...shares.flat());
  const ys = scale(0, Math.max(peak, linearTicks(0, peak).at(-1) ?? peak), false);
  // Marker labels need rows above the plot: one per overlap level.
  const markers = series
    .flatMap((s, si) => (['p50', 'p95', 'p99'] as const).map((q) => ({ q, v: s.percentiles[q], si })))
    .filter((m) => Number.isFinite(m.v) && m.v > 0)
    .sort((a, b) => a.v - b.v);
  const plotW = width - 76;
  const labelRows = placeLabels(
    markers.map((m) => 60 + plotW * xs.at(m.v)),
    series.length > 1 ? 92 : 74,
  );
  const rowsAbove = Math.max(1, ...labelRows.map((r) => r + 1));
  const legendItems = series.map((s, i) => ({ name: s.name, color: colorOf(i, s.color), box: true }));
  const legend = legendSvg(legendItems, 60, 0, plotW);
  const fr: Frame = { width, height: 0, left: 60, top: 28 + rowsAbove * 14, plotW, plotH: 200 };
  fr.height = fr.top + fr.plotH + 44 + legend.height;
  const out = svgOpen('latency', fr.width, fr.height, c.title);
  out.push(...axesSvg(fr, xs, ys, `${c.unit === 'ms' ? 'latency (ms)' : c.unit}, log scale`, 'share of runs (%)'));
  series.forEach((s, si) => {
    const h = s.histogram;
    if (!h) return;
    const color = colorOf(si, s.color);
    const d: string[] = [];
    h.counts.forEach((_, b) => {
      const x0 = fr.left + fr.plotW * Math.max(0, xs.at(h.edges[b]));
      const x1 = fr.left + fr.plotW * Math.min(1, xs.at(h.edges[b + 1]));
      const y = fr.top + fr.plotH * (1 - Math.min(1, ys.at(shares[si][b])));
      d.push(`${b ? 'L' : `M${r1(x0)} ${fr.top + fr.plotH} L`}${r1(x0)} ${r1(y)} L${r1(x1)} ${r1(y)}`);
      if (b === h.counts.length - 1) d.push(`L${r1(x1)} ${fr.top + fr.plotH} Z`);
    });
    out.push(
      `<path d="${d.join(' ')}" fill="${color}" fill-opacity="${series.length > 1 ? 0.35 : 0.6}" stroke="${color}" stroke-width="1.5"/>`,
    );
  });
  markers.forEach((m, i) => {
    const color = colorOf(m.si, series[m.si].color);
    const px = fr.left + fr.plotW * Math.min(1, xs.at(m.v));
    const ly = 28 + labelRows[i] * 14 + 10;
    out.push(
      `<line x1="${r1(px)}" y1="${ly + 3}" x2="${r1(px)}" y2="${fr.top + fr.plotH}" stroke="${color}" stroke-width="1.2" stroke-dasharray="${m.q === 'p50' ? '' : m.q === 'p95' ? '5 3' : '2 2'}"/>`,
    );
    const name = series.length > 1 ? `${m.q} ${formatNumber(m.v)} (${m.si + 1})` : `${m.q} ${formatNumber(m.v)}`;
    out.push(`<text class="marker" x="${r1(px)}" y="${ly}" text-anchor="middle" fill="${color}">${escapeHtml(name)}</text>`);
  });
  const legendNamed = series.length > 1 ? legendItems.map((it, i) => ({ ...it, name: `(${i + 1}) ${it.name}` })) : legendItems;
  out.push(`<g transform="translate(0 ${fr.top + fr.plotH + 40})">`, ...legendSvg(legendNamed, 60, 0, plotW).parts, '</g>', '</svg>');
  return out.join('');
}

function shareSvg(c: ShareChart): string {
  const width = 600;
  const total = c.parts.reduce((a, p) => a + Math.max(0, p.value), 0) || 1;
  const items = c.parts.map((p, i) => ({
    name: `${p.name} ${formatNumber(p.value)} ${c.unit} (${Math.round((100 * p.value) / total)}%)`,
    color: colorOf(i),
    box: true,
  }));
  const legend = legendSvg(items, 20, 0, width - 40);
  const height = 30 + 30 + 16 + 8 + legend.height;
  const out = svgOpen('share', width, height, c.title);
  let x = 20;
  c.parts.forEach((p, i) => {
    const w = ((width - 40) * Math.max(0, p.value)) / total;
    out.push(`<rect x="${r1(x)}" y="30" width="${r1(w)}" height="30" fill="${colorOf(i)}"/>`);
    x += w;
  });
  out.push(
    `<text class="x-label" x="${width / 2}" y="76" text-anchor="middle">${escapeHtml(`share of ${formatNumber(total)} ${c.unit}`)}</text>`,
  );
  out.push(`<text class="y-label" x="12" y="48" font-size="10" transform="rotate(-90 12 48)">time</text>`);
  out.push(`<g transform="translate(0 84)">`, ...legend.parts, '</g>', '</svg>');
  return out.join('');
}

/** The chart as inline SVG (for HTML). */
export function chartSvg(c: Chart): string {
  switch (c.kind) {
    case 'line':
      return lineSvg(c);
    case 'bar':
      return barSvg(c);
    case 'latency':
      return latencySvg(c);
    case 'share':
      return shareSvg(c);
  }
}

// -------------------------------------------------------------------------------------------------- Mermaid

/** Mermaid strings are double-quoted; a quote or bracket inside would end them early. */
const mq = (s: string) => `"${s.replace(/["\n\r]/g, "'").replace(/[[\]]/g, ' ')}"`;
const mn = (v: number) => (Number.isFinite(v) ? String(Number(v.toPrecision(4))) : '0');

/** Up to `n` evenly spaced x positions with linearly interpolated y (xychart-beta spaces line points evenly). */
function resample(points: readonly (readonly [number, number])[], x0: number, x1: number, n: number): number[] {
  const pts = [...points].filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = x0 + ((x1 - x0) * i) / (n - 1);
    let k = pts.findIndex((p) => p[0] >= x);
    if (k < 0) k = pts.length - 1;
    const b = pts[k];
    const a = pts[Math.max(0, k - 1)];
    if (!a || !b) out.push(0);
    else out.push(b[0] === a[0] ? b[1] : a[1] + ((b[1] - a[1]) * (x - a[0])) / (b[0] - a[0]));
  }
  return out;
}

function mermaidHeader(colors: readonly string[]): string {
  return `%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "${colors.join(', ')}"}}}}%%`;
}

/** The chart as a ```mermaid fence, with a one-line legend under it (xychart-beta draws no legend). */
export function chartMermaid(c: Chart): string {
  const lines: string[] = [];
  let legend = '';
  if (c.kind === 'share') {
    lines.push(`pie showData title ${c.title.replace(/[\n\r]/g, ' ')}`);
    for (const p of c.parts) lines.push(`  ${mq(`${p.name} (${c.unit})`)} : ${mn(Math.max(0, p.value))}`);
    return '```mermaid\n' + lines.join('\n') + '\n```\n';
  }
  if (c.kind === 'line') {
    const all = c.series.flatMap((s) => s.points);
    const x0 = c.x.min ?? Math.min(...all.map((p) => p[0]));
    const x1 = c.x.max ?? Math.max(...all.map((p) => p[0]));
    const colors = c.series.map((s, i) => colorOf(i, s.color));
    lines.push(mermaidHeader(colors), 'xychart-beta', `  title ${mq(c.title)}`, `  x-axis ${mq(c.x.label)} ${mn(x0)} --> ${mn(x1)}`);
    lines.push(`  y-axis ${mq(c.y.label)} ${mn(c.y.min ?? 0)} --> ${mn(c.y.max ?? Math.max(...all.map((p) => p[1])))}`);
    for (const s of c.series)
      lines.push(
        `  line [${resample(s.points, x0, x1, 21)
          .map((v) => mn(Math.max(c.y.min ?? -Infinity, v)))
          .join(', ')}]`,
      );
    legend = c.series.map((s, i) => `${colorDot(colors[i])} ${s.name}${s.dashed ? ' (dashed in the report)' : ''}`).join(' · ');
  } else if (c.kind === 'bar') {
    const colors = c.series.map((s, i) => colorOf(i, s.color));
    const values = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
    lines.push(mermaidHeader(colors), `xychart-beta${c.horizontal ? ' horizontal' : ''}`, `  title ${mq(c.title)}`);
    lines.push(
      `  x-axis ${mq(c.category)} [${c.categories.map(mq).join(', ')}]`,
      `  y-axis ${mq(c.value.label)} ${mn(c.value.min ?? 0)} --> ${mn(c.value.max ?? Math.max(1e-9, ...values))}`,
    );
    // xychart-beta overlays bar series instead of grouping them: the first series is bars, the others lines.
    c.series.forEach((s, i) => lines.push(`  ${i === 0 ? 'bar' : 'line'} [${s.values.map((v) => mn(v ?? 0)).join(', ')}]`));
    legend = c.series.map((s, i) => `${colorDot(colors[i])} ${s.name} (${i === 0 ? 'bars' : 'line'})`).join(' · ');
  } else {
    // One histogram per series on shared log-spaced bins: the category labels are the bins' lower edges.
    const colors = c.series.map((s, i) => colorOf(i, s.color));
    const withHist = c.series.filter((s) => s.histogram);
    const bins = commonLogBins(c.series, 16);
    lines.push(
      mermaidHeader(colors),
      'xychart-beta',
      `  title ${mq(c.title)}`,
      `  x-axis ${mq(`${c.unit === 'ms' ? 'latency (ms)' : c.unit}, log-spaced bins`)} [${bins
        .slice(0, -1)
        .map((e) => mq(formatNumber(e)))
        .join(', ')}]`,
    );
    const shares = withHist.map((s) => rebin(s.histogram!, bins));
    lines.push(`  y-axis "share of runs (%)" 0 --> ${mn(Math.max(1, ...shares.flat()))}`);
    for (const sh of shares) lines.push(`  line [${sh.map(mn).join(', ')}]`);
    legend = c.series
      .map(
        (s, i) =>
          `${colorDot(colors[i])} ${s.name}: p50 ${formatNumber(s.percentiles.p50)}, p95 ${formatNumber(s.percentiles.p95)}, p99 ${formatNumber(s.percentiles.p99)} ${c.unit}`,
      )
      .join(' · ');
  }
  return '```mermaid\n' + lines.join('\n') + '\n```\n\n' + legend + '\n';
}

const DOTS: Record<string, string> = {
  '#1f77b4': '🔵',
  '#ff7f0e': '🟠',
  '#2ca02c': '🟢',
  '#9467bd': '🟣',
  '#8c564b': '🟤',
  '#e377c2': '🔴',
};
const colorDot = (c: string) => DOTS[c] ?? '⚫';

function commonLogBins(series: readonly LatencySeries[], n: number): number[] {
  const values = series
    .flatMap((s) => [...(s.histogram?.edges ?? []), s.percentiles.p50, s.percentiles.p99])
    .filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.min(...values);
  const hi = Math.max(...values) * 1.0001;
  return Array.from({ length: n + 1 }, (_, i) => lo * (hi / lo) ** (i / n));
}

/** Shares (%) of a histogram moved onto other bins, assuming runs spread evenly (in log space) inside a bin. */
function rebin(h: { edges: readonly number[]; counts: readonly number[] }, bins: readonly number[]): number[] {
  const total = Math.max(
    1,
    h.counts.reduce((a, b) => a + b, 0),
  );
  const out = new Array<number>(bins.length - 1).fill(0);
  h.counts.forEach((count, b) => {
    const a0 = Math.log(h.edges[b]);
    const a1 = Math.log(h.edges[b + 1]);
    for (let k = 0; k < out.length; k++) {
      const o = Math.min(a1, Math.log(bins[k + 1])) - Math.max(a0, Math.log(bins[k]));
      if (o > 0) out[k] += (100 * count * (a1 > a0 ? o / (a1 - a0) : 1)) / total;
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------- tables

const BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A value as a bar of Unicode blocks, `width` characters at `max`. */
export function textBar(value: number, max: number, width = 16): string {
  if (!(value > 0) || !(max > 0)) return '';
  const eighths = Math.round((Math.min(value, max) / max) * width * 8);
  return '█'.repeat(Math.floor(eighths / 8)) + BLOCKS[eighths % 8];
}

/** Header and rows of the data behind a chart (the Azure DevOps rendering, and the report's accessible fallback). */
export function chartRows(c: Chart): { header: string[]; rows: string[][] } {
  if (c.kind === 'share') {
    const total = c.parts.reduce((a, p) => a + Math.max(0, p.value), 0) || 1;
    return {
      header: ['part', c.unit, 'share'],
      rows: c.parts.map((p) => [p.name, formatNumber(p.value), `${textBar(p.value, total)} ${Math.round((100 * p.value) / total)}%`]),
    };
  }
  if (c.kind === 'bar') {
    const max = c.value.max ?? Math.max(1e-9, ...c.series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
    return {
      header: [c.category, ...c.series.map((s) => `${s.name} (${c.value.label})`)],
      rows: c.categories.map((cat, i) => [
        cat,
        ...c.series.map((s) =>
          s.values[i] === null || s.values[i] === undefined ? '—' : `${formatNumber(s.values[i]!)} ${textBar(s.values[i]!, max, 10)}`,
        ),
      ]),
    };
  }
  if (c.kind === 'line') {
    const all = c.series.flatMap((s) => s.points);
    const x0 = c.x.min ?? Math.min(...all.map((p) => p[0]));
    const x1 = c.x.max ?? Math.max(...all.map((p) => p[0]));
    const cols = c.series.map((s) => resample(s.points, x0, x1, 11));
    const max = c.y.max ?? Math.max(...cols.flat());
    return {
      header: [c.x.label, ...c.series.map((s) => `${s.name} (${c.y.label})`)],
      rows: Array.from({ length: 11 }, (_, i) => [
        formatNumber(x0 + ((x1 - x0) * i) / 10),
        ...cols.map((col) => `${formatNumber(col[i])} ${textBar(col[i], max, 8)}`),
      ]),
    };
  }
  const bins = commonLogBins(c.series, 12);
  const shares = c.series.map((s) => (s.histogram ? rebin(s.histogram, bins) : []));
  const max = Math.max(1, ...shares.flat());
  const rows = bins
    .slice(0, -1)
    .map((e, b) => [
      `${formatNumber(e)}–${formatNumber(bins[b + 1])}`,
      ...shares.map((sh) => (sh.length ? `${textBar(sh[b], max, 12)} ${sh[b].toFixed(1)}%` : '')),
    ]);
  rows.push([
    '**p50 / p95 / p99**',
    ...c.series.map((s) => `${formatNumber(s.percentiles.p50)} / ${formatNumber(s.percentiles.p95)} / ${formatNumber(s.percentiles.p99)}`),
  ]);
  return { header: [`latency (${c.unit})`, ...c.series.map((s) => `${s.name}: share of runs`)], rows };
}

/** The chart as a markdown table headed by its title. */
export function chartTable(c: Chart): string {
  const { header, rows } = chartRows(c);
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return (
    [
      `**${c.title}**`,
      '',
      `| ${header.map(cell).join(' | ')} |`,
      `| ${header.map(() => '---').join(' | ')} |`,
      ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    ].join('\n') + '\n'
  );
}
