import { formatBytes, type Summary } from '../../core/summary';
import type { Agreement, Measured } from './measure';

/** The gate over the variants, the JSON report and the job summary; all read one OptimizeResult. */

export interface VariantResult extends Measured {
  /** FP32 value − this variant's value (positive: the variant is worse). */
  drop: number;
  maxDrop: number;
  passed: boolean;
  agreement: Agreement;
  details: Record<string, number | string | boolean>;
}

export interface OptimizeResult {
  passed: boolean;
  task: string;
  metric: string;
  fp32: Measured;
  variants: VariantResult[];
  calibration: object | null;
  versions: Record<string, string>;
}

const fmt = (v: number) => v.toFixed(4);

export function gateFailures(r: OptimizeResult): string[] {
  return r.variants
    .filter((v) => !v.passed)
    .map(
      (v) =>
        `the ${v.name.toUpperCase()} variant's ${r.metric} is ${fmt(v.value)} against FP32 ${fmt(r.fp32.value)}: a drop of ${fmt(v.drop)}, more than the allowed ${fmt(v.maxDrop)}.`,
    );
}

/** The JSON report: the result without the parts only the summary needs, paths as written. */
export function optimizeReport(r: OptimizeResult): object {
  const plain = (m: Measured) => ({ name: m.name, path: m.file, sha256: m.sha256, size: m.size, value: m.value, accuracy: m.accuracy });
  return {
    passed: r.passed,
    task: r.task,
    metric: r.metric,
    fp32: plain(r.fp32),
    variants: r.variants.map((v) => ({
      ...plain(v),
      drop: v.drop,
      maxDrop: v.maxDrop,
      passed: v.passed,
      agreement: v.agreement,
      details: v.details,
    })),
    calibration: r.calibration,
    versions: r.versions,
  };
}

export function writeSummary(s: Summary, r: OptimizeResult): void {
  s.heading(`Model optimization: ${r.passed ? 'passed ✅' : 'failed ❌'}`);
  const rows: (string | number)[][] = [['fp32', formatBytes(r.fp32.size), '1.00×', fmt(r.fp32.value), '', '', '', '']];
  for (const v of r.variants) {
    const worst = Object.entries(v.agreement.outputs)
      .map(
        ([k, a]) =>
          `${k}: ${a.maxAbs.toExponential(2)} / ${a.maxRel.toExponential(2)}${a.shapeMismatches ? ` (${a.shapeMismatches} shape differences)` : ''}`,
      )
      .join('; ');
    rows.push([
      v.name,
      formatBytes(v.size),
      `${(r.fp32.size / v.size).toFixed(2)}×`,
      fmt(v.value),
      `${v.drop >= 0 ? '−' : '+'}${fmt(Math.abs(v.drop))}`,
      fmt(v.maxDrop),
      worst,
      v.passed ? '✅' : '❌',
    ]);
  }
  s.table(['variant', 'size', 'smaller', r.metric, 'drop', 'max drop', 'max abs / max rel vs FP32', ''], rows);
  for (const f of gateFailures(r)) s.paragraph(`❌ ${f}`);
  if (r.calibration) s.details('INT8 calibration', '```json\n' + JSON.stringify(r.calibration, null, 2) + '\n```');
}
