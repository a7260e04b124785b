import { escapeHtml } from '../core/summary';
import { quantile } from './stats';

/** A latency histogram as a small self-contained SVG for the job summary, with p50/p95/p99 marked. */
export function latencyHistogramSvg(series: { label: string; samples: readonly number[] }[], title: string, bins = 40): string {
  const width = 640;
  const height = 220;
  const left = 48;
  const right = 16;
  const top = 28;
  const bottom = 36;
  const all = series.flatMap((s) => s.samples);
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="40"><text x="8" y="24" font-family="sans-serif" font-size="12">no samples</text></svg>`;
  // Clip the axis at p99.5 of everything so one outlier does not squash the plot; the max is in the table.
  const lo = Math.min(...all);
  const hi = Math.max(quantile(all, 0.995), lo + 1e-6);
  const step = (hi - lo) / bins;
  const colors = ['#2f6fdf', '#e8742c', '#2a9d55', '#9b59b6'];
  const counts = series.map((s) => {
    const c = new Array<number>(bins).fill(0);
    for (const v of s.samples) c[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / step)))]++;
    return c.map((n) => n / s.samples.length);
  });
  const peak = Math.max(...counts.flat(), 1e-9);
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * plotW;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${left}" y="16" font-size="13" font-weight="bold">${escapeHtml(title)}</text>`);
  counts.forEach((c, si) => {
    const barW = plotW / bins / series.length;
    c.forEach((f, i) => {
      if (f === 0) return;
      const h = (f / peak) * plotH;
      parts.push(`<rect x="${(left + (i * plotW) / bins + si * barW).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${Math.max(barW - 0.5, 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="${colors[si % colors.length]}" fill-opacity="0.85"/>`);
    });
  });
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    parts.push(`<text x="${x(v).toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle">${v.toFixed(v < 10 ? 2 : 1)}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${height - 4}" text-anchor="middle">latency (ms)</text>`);
  series.forEach((s, si) => {
    const color = colors[si % colors.length];
    for (const [q, dash] of [
      [0.5, ''],
      [0.95, '4 3'],
      [0.99, '1 3'],
    ] as const) {
      const v = quantile(s.samples, q);
      if (v > hi) continue;
      parts.push(`<line x1="${x(v).toFixed(1)}" y1="${top}" x2="${x(v).toFixed(1)}" y2="${top + plotH}" stroke="${color}" stroke-width="1.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    }
    parts.push(`<rect x="${width - right - 150}" y="${top + 4 + si * 16}" width="10" height="10" fill="${color}"/><text x="${width - right - 136}" y="${top + 13 + si * 16}">${escapeHtml(s.label)}</text>`);
  });
  parts.push(`<text x="${width - right - 150}" y="${top + 13 + series.length * 16}" fill="#555">lines: p50, p95 (dashed), p99 (dotted)</text>`);
  parts.push('</svg>');
  return parts.join('');
}
