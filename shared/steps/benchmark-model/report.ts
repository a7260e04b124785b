import * as path from 'node:path';
import { writeOutputFile } from '../../core/output-file';
import type { Summary } from '../../core/summary';
import { fingerprintRows } from '../../benchmark/environment';
import { latencyHistogram } from '../../benchmark/latency-histogram';
import { ms } from '../../benchmark/stats';
import { opsetVersion } from '../../onnx/model-info';
import { formatError, summarizeParity } from '../../onnx/parity';
import { fmt, type BenchmarkResult } from './measure';

/**
 * The report benchmark-model writes (format mlship-benchmark/1) and the job summary. The report is compact:
 * percentiles, summary statistics and a fixed-bin histogram per series (shared/benchmark/latency-histogram.ts),
 * never the raw samples, so it embeds in a device package whatever the run length; the raw samples go to a
 * separate file (samplesFile) that baseline-report reads and that is never embedded.
 */

export const SAMPLES_FORMAT = 'mlship-benchmark-samples/1';

export function defaultSamplesFile(report: string): string {
  return report.endsWith('.json') ? `${report.slice(0, -'.json'.length)}.samples.json` : `${report}.samples.json`;
}

export function benchmarkReport(
  result: BenchmarkResult,
  failures: string[],
  options: { dataFingerprint?: string; samplesFile: string; report: string },
) {
  const r = result;
  const { samples: _regressionSamples, ...regression } = r.regression ?? {};
  return {
    format: 'mlship-benchmark/1',
    task: r.task,
    model: {
      path: r.model,
      sha256: r.modelSha256,
      opset: opsetVersion(r.info),
      inputs: r.signature.inputs,
      outputs: r.signature.outputs,
      metadata: r.info.metadata,
    },
    dataFingerprint: options.dataFingerprint ?? r.info.metadata['mlship.data_fingerprint'] ?? null,
    provider: r.provider,
    loadMs: r.loadMs,
    placement: r.placement,
    environment: r.environment,
    latency: r.latency.map(({ samples, ...rest }) => ({ ...rest, histogram: latencyHistogram(samples) })),
    endToEnd: r.endToEnd && {
      stats: r.endToEnd.stats,
      decodeMs: r.endToEnd.decodeMs,
      normalizeMs: r.endToEnd.normalizeMs,
      images: r.endToEnd.images,
      histogram: latencyHistogram(r.endToEnd.samples),
    },
    reference: r.reference && { cases: r.reference.length, outputs: summarizeParity(r.reference) },
    accuracy: r.accuracy && { ...r.accuracy, cloud: r.metricCheck },
    regression: r.regression && regression,
    soak: r.soak,
    samplesFile: path
      .relative(path.dirname(path.resolve(options.report)), path.resolve(options.samplesFile))
      .split(path.sep)
      .join('/'),
    failures,
  };
}

export type BenchmarkReport = ReturnType<typeof benchmarkReport>;

export function samplesDocument(result: BenchmarkResult) {
  return {
    format: SAMPLES_FORMAT,
    model: { path: result.model, sha256: result.modelSha256 },
    provider: result.provider,
    latency: result.latency.map((l) => ({ batch: l.batch, samples: l.samples })),
    endToEnd: result.endToEnd ? result.endToEnd.samples : null,
    regression: result.regression?.samples ?? null,
  };
}

/** Samples first, then the report that names them, each whole or not at all. */
export async function writeBenchmarkFiles(
  reportFile: string,
  report: BenchmarkReport,
  samplesFile: string,
  samples: ReturnType<typeof samplesDocument>,
  inputs: string,
): Promise<void> {
  await writeOutputFile(samplesFile, JSON.stringify(samples) + '\n', inputs);
  await writeOutputFile(reportFile, JSON.stringify(report, null, 2) + '\n', inputs);
}

/** A ratio interval as a change in percent; an interval too wide to mean anything says so instead of "0.032–66.570". */
function ratioInterval(r: { low: number; high: number }): string {
  const pct = (v: number) => `${v >= 1 ? '+' : '−'}${Math.abs((v - 1) * 100).toFixed(1)}%`;
  if (!(r.low > 0) || r.high / r.low > 4) return `too wide to judge (${r.low.toFixed(2)}× to ${r.high.toFixed(2)}×): measure more runs`;
  return `${pct(r.low)} to ${pct(r.high)}`;
}

export function writeSummary(s: Summary, r: BenchmarkResult, failures: string[]): void {
  s.heading(`Benchmark: ${path.basename(r.model)} on ${r.provider} ${failures.length ? '❌' : '✅'}`);
  s.table(['environment', 'value'], fingerprintRows(r.environment));
  if (r.placement) {
    s.table(
      ['execution provider', 'nodes', 'operators'],
      Object.entries(r.placement.providers).map(([p, v]) => [
        p,
        v.nodes,
        Object.entries(v.ops)
          .map(([op, n]) => `${op}×${n}`)
          .join(', '),
      ]),
    );
  }
  s.heading('Latency (ms)', 3);
  s.paragraph(`Model load ${ms(r.loadMs, 1)} ms.`);
  s.table(
    ['batch', 'first', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'max', 'runs', 'items/s'],
    r.latency.map((l) => [
      l.batch,
      `${ms(l.firstMs)}${l.cold ? ' (cold)' : ''}`,
      ms(l.stats.mean),
      ms(l.stats.stddev),
      ms(l.stats.p50),
      ms(l.stats.p90),
      ms(l.stats.p95),
      ms(l.stats.p99),
      ms(l.stats.max),
      l.stats.count,
      l.throughput.toFixed(1),
    ]),
  );
  // The chart draws from the report's compact data (percentiles + the fixed-bin histogram), not raw samples.
  const hist = (samples: readonly number[]) => {
    const h = latencyHistogram(samples);
    return { edges: h.edgesMs, counts: h.counts };
  };
  const series = r.latency.map((l) => ({ name: `batch ${l.batch}`, percentiles: l.stats, histogram: hist(l.samples) }));
  if (r.endToEnd) series.push({ name: 'end to end, batch 1', percentiles: r.endToEnd.stats, histogram: hist(r.endToEnd.samples) });
  s.chart({ kind: 'latency', title: `Latency of ${path.basename(r.model)} on ${r.provider}`, unit: 'ms', series });
  const e = r.endToEnd;
  if (e) {
    s.paragraph(
      `End to end (decode + preprocessing + inference, ${e.images} image(s)): p50 ${ms(e.stats.p50)} ms, p95 ${ms(e.stats.p95)} ms, p99 ${ms(e.stats.p99)} ms; of which decode/resize ${ms(e.decodeMs)} ms and normalize/layout ${ms(e.normalizeMs)} ms on average.`,
    );
    const inference = Math.max(0, e.stats.mean - e.decodeMs - e.normalizeMs);
    s.chart({
      kind: 'share',
      title: 'Where end-to-end time goes (mean per image)',
      unit: 'ms',
      parts: [
        { name: 'decode + resize', value: e.decodeMs },
        { name: 'normalize + layout', value: e.normalizeMs },
        { name: 'inference', value: inference },
      ],
    });
  }
  if (r.reference) {
    const summary = summarizeParity(r.reference);
    s.heading('Outputs vs PyTorch reference', 3);
    s.table(
      ['output', 'max abs', 'max rel', 'mismatches', ''],
      Object.entries(summary).map(([o, v]) => [o, formatError(v.maxAbs), formatError(v.maxRel), v.mismatches, v.ok ? '✅' : '❌']),
    );
  }
  const a = r.accuracy;
  if (a) {
    s.heading(`Accuracy on ${a.images} test images`, 3);
    if (a.kind === 'segmentation') {
      s.table(
        ['class', 'Dice', 'IoU', 'micro Dice', 'micro IoU', 'images'],
        [
          ...a.perClass.map((c) => [c.label, fmt(c.dice), fmt(c.iou), fmt(c.microDice), fmt(c.microIou), c.images]),
          ['mean', fmt(a.dice), fmt(a.iou), fmt(a.microDice), fmt(a.microIou), ''],
        ],
      );
    } else {
      s.table(
        ['metric', 'value'],
        Object.entries(a.metrics).map(([k, v]) => [k, v.toFixed(4)]),
      );
    }
    const m = r.metricCheck;
    if (m)
      s.paragraph(
        `${m.name}: device ${m.device.toFixed(4)}, cloud ${m.cloud.toFixed(4)}, difference ${m.difference.toFixed(4)} (tolerance ${m.tolerance}) ${Math.abs(m.difference) <= m.tolerance ? '✅' : '❌'}`,
      );
  }
  const g = r.regression;
  if (g) {
    s.heading('Latency regression gate', 3);
    s.table(
      ['latency', 'baseline', 'candidate', 'ratio', `change, ${Math.round(g.confidence * 100)}% CI`],
      [
        ['p50 (ms)', ms(g.baselineStats.p50), ms(g.candidateStats.p50), g.p50.ratio.toFixed(3), ratioInterval(g.p50)],
        ['p95 (ms)', ms(g.baselineStats.p95), ms(g.candidateStats.p95), g.p95.ratio.toFixed(3), ratioInterval(g.p95)],
      ],
    );
    s.paragraph(
      `Margin ${(g.margin * 100).toFixed(1)}%, ${g.interleaved ? 'interleaved' : 'against a stored report'}; Mann–Whitney p(slower beyond margin) = ${g.pSlower.toExponential(2)}: ${g.slower ? '❌ slower' : '✅ not slower'}.`,
    );
  }
  const k = r.soak;
  if (k) {
    s.heading(`Soak (${k.durationS.toFixed(0)} s, ${k.iterations} runs)`, 3);
    const drift = (v: number | null) => (v === null ? 'not gated' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);
    const rows: (string | number)[][] = [
      ['median latency', `${ms(k.first.p50)} ms`, `${ms(k.last.p50)} ms`, drift(k.driftPercent)],
      ['p95 latency', `${ms(k.first.p95)} ms`, `${ms(k.last.p95)} ms`, drift(k.tailDriftPercent.p95)],
      ['p99 latency', `${ms(k.first.p99)} ms`, `${ms(k.last.p99)} ms`, drift(k.tailDriftPercent.p99)],
      [
        'resident memory',
        `${k.rssStartMb.toFixed(1)} MB`,
        `${(k.rssStartMb + k.rssGrowthMb).toFixed(1)} MB`,
        `${k.rssGrowthMb >= 0 ? '+' : ''}${k.rssGrowthMb.toFixed(1)} MB`,
      ],
    ];
    const gpu = k.gpu;
    if (gpu?.memoryGrowthMb !== undefined)
      rows.push(['GPU memory', '', '', `${gpu.memoryGrowthMb >= 0 ? '+' : ''}${gpu.memoryGrowthMb.toFixed(0)} MiB`]);
    if (gpu?.temperature)
      rows.push(['GPU temperature', `${gpu.temperature.start} °C`, `${gpu.temperature.end} °C`, `max ${gpu.temperature.max} °C`]);
    if (gpu?.smClockMHz) rows.push(['SM clock', `${gpu.smClockMHz.first} MHz`, `${gpu.smClockMHz.last} MHz`, '']);
    s.table(['measure', `first ${k.windowS.toFixed(0)} s`, `last ${k.windowS.toFixed(0)} s`, 'change'], rows);
    if (gpu?.throttle.length) s.list(gpu.throttle.map((t) => `${t.reason}: ${t.samples} samples${t.fails ? ' (fails)' : ''}`));
  }
  if (failures.length) s.heading('Failures', 3).list(failures);
}
