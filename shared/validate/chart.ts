import type { BarChart } from '../report/charts';

const MAX_CLASSES = 30;

/** Counts per class of each split as one horizontal bar chart: the 30 largest classes, the rest named in the title. */
export function classCountsChart(series: readonly { name: string; counts: Readonly<Record<string, number>> }[], unit: string): BarChart {
  const totals = new Map<string, number>();
  for (const s of series) for (const [c, n] of Object.entries(s.counts)) totals.set(c, (totals.get(c) ?? 0) + n);
  const ranked = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const classes = ranked.slice(0, MAX_CLASSES).map(([c]) => c);
  const hidden = ranked.length - classes.length;
  return {
    kind: 'bar',
    horizontal: true,
    title: `${unit} per class${hidden > 0 ? ` (largest ${classes.length}; ${hidden} more in report.json)` : ''}`,
    category: 'class',
    categories: classes,
    value: { label: unit.toLowerCase() },
    series: series.map((s) => ({ name: s.name, values: classes.map((c) => s.counts[c] ?? 0) })),
  };
}
