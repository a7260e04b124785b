import type { Summary } from '../../core/summary';
import type { BootstrapResult } from '../../metrics/bootstrap';
import { type BarSeries, type LineSeries, PALETTE } from '../../report/charts';
import { fmt, type GateOutcome } from './rules';
import type { ModelScores } from './scores';

const signed = (v: number | null) => (v === null ? 'n/a' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(4)}`);

export function writeSummary(
  summary: Summary,
  s: {
    metric: string;
    candidate: ModelScores;
    production?: ModelScores;
    productionValue?: number;
    outcome: GateOutcome;
    bootstrap?: BootstrapResult;
    task: string;
  },
): void {
  const { metric, candidate, outcome, bootstrap } = s;
  summary.heading(`Metrics gate: ${outcome.passed ? 'passed ✅' : 'failed ❌'}`);
  let line = `Candidate **${metric} ${fmt(candidate.value)}**`;
  if (s.productionValue !== undefined)
    line += ` vs production ${fmt(s.productionValue)} (Δ ${signed(candidate.value - s.productionValue)})`;
  if (bootstrap)
    line += `, ${Math.round(bootstrap.confidence * 1000) / 10}% bootstrap interval of Δ [${fmt(bootstrap.lower)}, ${fmt(bootstrap.upper)}] (${bootstrap.resamples} resamples, seed ${bootstrap.seed})`;
  summary.paragraph(`${line}; ${candidate.testSet.images} test images.`);
  if (outcome.results.length) {
    summary.table(
      ['rule', 'limit', 'observed', 'verdict'],
      outcome.results.map((r) => [r.rule, r.limit, r.observed, r.passed ? 'pass' : 'FAIL']),
    );
  }
  const rows = [
    [
      '**overall**',
      fmt(candidate.value),
      fmt(s.productionValue ?? null),
      s.productionValue === undefined ? 'n/a' : signed(candidate.value - s.productionValue),
      outcome.passed ? 'pass' : 'FAIL',
    ],
    ...outcome.classes.map((c) => [
      `${c.name} (${c.id})`,
      fmt(c.candidate),
      fmt(c.production),
      signed(c.delta),
      c.verdict === 'fail' ? 'FAIL' : c.verdict,
    ]),
  ];
  const header = ['class', `candidate ${metric}`, `production ${metric}`, 'Δ', 'verdict'];
  if (outcome.classes.length <= 30) summary.table(header, rows);
  else {
    summary.table(header, rows.slice(0, 1));
    const failing = outcome.classes.filter((c) => c.verdict === 'fail');
    if (failing.length) summary.paragraph(`Classes over the drop limit: ${failing.map((c) => c.name).join(', ')}.`);
    const md = [
      `| ${header.join(' | ')} |`,
      `| ${header.map(() => '---').join(' | ')} |`,
      ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    summary.details(`Per class (${outcome.classes.length} classes)`, md);
  }
  if (s.task === 'detection' && candidate.curves) {
    const series: LineSeries[] = [];
    const add = (m: ModelScores, name: string, color: string) => {
      const c = m.curves!;
      series.push({ name: `${name} IoU=.50`, color, points: c.recall.map((r, i) => [r, c.precision50[i]] as const) });
      series.push({ name: `${name} IoU=.50:.95`, color, dashed: true, points: c.recall.map((r, i) => [r, c.precision[i]] as const) });
    };
    add(candidate, 'candidate', PALETTE.candidate);
    if (s.production?.curves) add(s.production, 'production', PALETTE.production);
    summary.chart({
      kind: 'line',
      title: 'Precision–recall (mean over classes, all areas, 100 detections)',
      x: { label: 'recall', min: 0, max: 1 },
      y: { label: 'precision', min: 0, max: 1 },
      series,
    });
  } else if (outcome.classes.length) {
    const series: BarSeries[] = [{ name: 'candidate', color: PALETTE.candidate, values: outcome.classes.map((c) => c.candidate) }];
    if (s.productionValue !== undefined)
      series.push({ name: 'production', color: PALETTE.production, values: outcome.classes.map((c) => c.production) });
    summary.chart({
      kind: 'bar',
      title: `${metric} per class`,
      category: 'class',
      categories: outcome.classes.map((c) => c.name),
      value: { label: metric, min: 0, max: 1 },
      series,
      horizontal: outcome.classes.length > 12,
    });
  }
  const keys = Object.keys(candidate.details);
  summary.details(
    'All metrics',
    [
      `| metric | candidate | production |`,
      `| --- | --- | --- |`,
      ...keys.map((k) => `| ${k} | ${fmt(candidate.details[k])} | ${fmt(s.production?.details[k] ?? null)} |`),
    ].join('\n'),
  );
}
