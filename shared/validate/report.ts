import { formatBytes, type Summary } from '../core/summary';
import { classCountsChart } from './chart';
import type { CheckResult, Example } from './checks';
import type { DatasetFormat, SplitStats } from './dataset';
import type { DriftSplit, DriftThresholds, SplitProperties } from './drift';

export type FailOn = 'error' | 'warning' | 'never';

export interface SplitReport extends SplitStats {
  properties?: SplitProperties;
}

/** report.json: everything a reader or a later run (as `baseline`) needs. Deterministic for the same data. */
export interface ValidationReport {
  version: 1;
  tool: 'mlship validate-data';
  format: DatasetFormat;
  passed: boolean;
  failOn: FailOn;
  errors: number;
  warnings: number;
  /** Every check evaluated for this format, with zero counts included. */
  checks: CheckResult[];
  classes: string[];
  /** What classCounts count. */
  classCountUnit: 'instances' | 'images';
  splits: Record<string, SplitReport>;
  drift?: { baseline: string; thresholds: DriftThresholds; splits: Record<string, DriftSplit> };
  fingerprint: { digest: string; files: number; bytes: number };
}

export function totals(checks: readonly CheckResult[]): { errors: number; warnings: number } {
  let errors = 0;
  let warnings = 0;
  for (const c of checks) {
    if (c.severity === 'error') errors += c.count;
    else warnings += c.count;
  }
  return { errors, warnings };
}

export function passes(failOn: FailOn, errors: number, warnings: number): boolean {
  if (failOn === 'never') return true;
  return failOn === 'warning' ? errors + warnings === 0 : errors === 0;
}

/** One line per example: "[check] file:line id field=value — message". */
export function describeExample(check: string, e: Example): string {
  const location = e.file ? `${e.file}${e.line ? `:${e.line}${e.column ? `:${e.column}` : ''}` : ''}` : undefined;
  const parts = [
    e.split,
    location,
    e.id !== undefined ? `id ${e.id}` : undefined,
    e.field ? `${e.field}=${JSON.stringify(e.value)}` : undefined,
  ];
  return `[${check}] ${parts.filter((p) => p !== undefined).join(' ')} — ${e.message}`;
}

/** The failure: counts, then the first three examples of the severity that failed the run. */
export function failureMessage(report: ValidationReport): string {
  const failing = report.errors > 0 ? 'error' : 'warning';
  const first = report.checks
    .filter((c) => c.severity === failing && c.count > 0)
    .flatMap((c) => c.examples.map((e) => describeExample(c.id, e)));
  const head = `Dataset validation failed: ${report.errors} error(s), ${report.warnings} warning(s) (fail-on: ${report.failOn}).`;
  return [head, ...first.slice(0, 3).map((line, i) => `  ${i + 1}. ${line}`)].join('\n');
}

const fmtPct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function writeSummary(summary: Summary, report: ValidationReport, files: { report: string; fingerprint: string }): void {
  const status = report.passed ? '✅ passed' : '❌ failed';
  summary.heading(`Dataset validation: ${status}`);
  summary.paragraph(
    `Format **${report.format}**, ${Object.entries(report.splits)
      .map(([s, r]) => `${s}: ${r.images} images`)
      .join(', ')}. **${report.errors}** error(s), **${report.warnings}** warning(s), fail-on \`${report.failOn}\`.`,
  );
  summary.paragraph(
    `Fingerprint \`${report.fingerprint.digest}\` over ${report.fingerprint.files} files (${formatBytes(report.fingerprint.bytes)}). Report: \`${files.report}\`, manifest: \`${files.fingerprint}\`.`,
  );

  const failing = report.checks.filter((c) => c.count > 0);
  if (failing.length > 0) {
    summary.table(
      ['check', 'severity', 'count', 'first example'],
      failing.map((c) => [
        `\`${c.id}\``,
        c.severity === 'error' ? '🔴 error' : '🟡 warning',
        c.count,
        c.examples[0] ? describeExample(c.id, c.examples[0]).replace(/^\[[^\]]+\] /, '') : '',
      ]),
    );
  }
  const passed = report.checks.filter((c) => c.count === 0);
  summary.paragraph(`${passed.length} check(s) passed${passed.length ? `: ${passed.map((c) => `\`${c.id}\``).join(', ')}` : ''}.`);

  summary.table(
    ['split', 'images', report.classCountUnit === 'images' ? 'labelled images' : 'instances', 'unlabelled', 'classes present'],
    Object.entries(report.splits).map(([s, r]) => [
      s,
      r.images,
      r.annotations,
      `${r.unlabeledImages} (${fmtPct(r.images ? r.unlabeledImages / r.images : 0)})`,
      Object.keys(r.classCounts).length,
    ]),
  );
  const series = Object.entries(report.splits).map(([name, r]) => ({ name, counts: r.classCounts }));
  if (series.some((s) => Object.keys(s.counts).length > 0))
    summary.chart(classCountsChart(series, report.classCountUnit === 'images' ? 'Images' : 'Instances'));

  if (report.drift) {
    const rows = Object.entries(report.drift.splits).map(([s, d]) => [
      s,
      d.classPsi?.toFixed(3),
      d.chiSquare ? `${d.chiSquare.statistic.toFixed(1)} (p ${d.chiSquare.pValue.toExponential(1)})` : '',
      d.sizePsi?.toFixed(3),
      d.brightnessPsi?.toFixed(3),
      d.contrastPsi?.toFixed(3),
    ]);
    summary.heading(`Drift versus ${report.drift.baseline}`, 3);
    summary.table(['split', 'class PSI', 'chi-square', 'size PSI', 'brightness PSI', 'contrast PSI'], rows);
  }
  for (const c of failing) {
    summary.details(
      `${c.id}: ${c.count} (${c.severity})`,
      c.examples
        .map(
          (e) =>
            `- ${describeExample(c.id, e)
              .replace(/^\[[^\]]+\] /, '')
              .replace(/\|/g, '\\|')}`,
        )
        .join('\n'),
    );
  }
}
