import { escapeHtml } from '../core/summary';

const COLORS = ['#4c78a8', '#f58518', '#54a24b', '#b279a2'];
const MAX_CLASSES = 30;

/**
 * Horizontal grouped bar chart of counts per class, one bar per series (split). Plain SVG with no script or
 * external font, so it renders inside a job summary as a data URI.
 */
export function classBarChart(series: readonly { name: string; counts: Readonly<Record<string, number>> }[], unit: string): string {
  const totals = new Map<string, number>();
  for (const s of series) for (const [c, n] of Object.entries(s.counts)) totals.set(c, (totals.get(c) ?? 0) + n);
  const ranked = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const classes = ranked.slice(0, MAX_CLASSES).map(([c]) => c);
  const hidden = ranked.length - classes.length;
  const max = Math.max(1, ...series.flatMap((s) => classes.map((c) => s.counts[c] ?? 0)));

  const labelWidth = 150;
  const plotWidth = 380;
  const bar = 10;
  const rowHeight = series.length * bar + 8;
  const top = 36;
  const height = top + classes.length * rowHeight + (hidden > 0 ? 24 : 8);
  const width = labelWidth + plotWidth + 70;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="8" y="16" font-size="12" font-weight="bold">${escapeHtml(`${unit} per class`)}</text>`);
  series.forEach((s, i) => {
    const x = labelWidth + i * 90;
    parts.push(`<rect x="${x}" y="8" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 14}" y="17">${escapeHtml(s.name)}</text>`);
  });
  classes.forEach((c, row) => {
    const y = top + row * rowHeight;
    const label = c.length > 22 ? `${c.slice(0, 21)}…` : c;
    parts.push(`<text x="${labelWidth - 6}" y="${y + (series.length * bar) / 2 + 4}" text-anchor="end">${escapeHtml(label)}</text>`);
    series.forEach((s, i) => {
      const n = s.counts[c] ?? 0;
      const w = Math.max(n > 0 ? 1 : 0, Math.round((n / max) * plotWidth));
      const by = y + i * bar;
      parts.push(`<rect x="${labelWidth}" y="${by}" width="${w}" height="${bar - 1}" fill="${COLORS[i % COLORS.length]}"/>`);
      parts.push(`<text x="${labelWidth + w + 4}" y="${by + bar - 2}" font-size="9" fill="#444">${n}</text>`);
    });
  });
  if (hidden > 0) parts.push(`<text x="8" y="${height - 8}" fill="#666">+ ${hidden} more classes (see report.json)</text>`);
  parts.push('</svg>');
  return parts.join('');
}
