import * as path from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write';
import { StepError } from '../../core/errors';
import type { Summary } from '../../core/summary';
import { fingerprintRows } from '../../benchmark/environment';
import { latencyHistogramSvg } from '../../benchmark/histogram';
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

export function benchmarkReport(result: BenchmarkResult, failures: string[], options: { dataFingerprint?: string; samplesFile: string; report: string }) {
  const r = result;
  const { samples: _regressionSamples, ...regression } = r.regression ?? {};
  return {
    format: 'mlship-benchmark/1',
    task: r.task,
    model: { path: r.model, sha256: r.modelSha256, opset: opsetVersion(r.info), inputs: r.signature.inputs, outputs: r.signature.outputs, metadata: r.info.metadata },
    dataFingerprint: options.dataFingerprint ?? r.info.metadata['mlship.data_fingerprint'] ?? null,
    provider: r.provider,
    loadMs: r.loadMs,
    placement: r.placement,
    environment: r.environment,
    latency: r.latency.map(({ samples, ...rest }) => ({ ...rest, histogram: latencyHistogram(samples) })),
    endToEnd: r.endToEnd && { stats: r.endToEnd.stats, decodeMs: r.endToEnd.decodeMs, normalizeMs: r.endToEnd.normalizeMs, images: r.endToEnd.images, histogram: latencyHistogram(r.endToEnd.samples) },
    reference: r.reference && { cases: r.reference.length, outputs: summarizeParity(r.reference) },
    accuracy: r.accuracy && { ...r.accuracy, cloud: r.metricCheck },
    regression: r.regression && regression,
    soak: r.soak,
    samplesFile: path.relative(path.dirname(path.resolve(options.report)), path.resolve(options.samplesFile)).split(path.sep).join('/'),
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
export async function writeBenchmarkFiles(reportFile: string, report: BenchmarkReport, samplesFile: string, samples: ReturnType<typeof samplesDocument>): Promise<void> {
  for (const [file, value] of [
    [samplesFile, samples],
    [reportFile, report],
  ] as const) {
    try {
      await writeFileAtomic(file, JSON.stringify(value, null, file === reportFile ? 2 : 0) + '\n');
    } catch (error) {
      throw new StepError(`Cannot write ${file}: ${(error as Error).message}.`, { file, hint: 'Choose a writable report / samples-file path.' });
    }
  }
}

export function writeSummary(s: Summary, r: BenchmarkResult, failures: string[]): void {
  s.heading(`Benchmark: ${path.basename(r.model)} on ${r.provider} ${failures.length ? '❌' : '✅'}`);
  s.table(['environment', ''], fingerprintRows(r.environment));
  if (r.placement) {
    s.table(['execution provider', 'nodes', 'operators'], Object.entries(r.placement.providers).map(([p, v]) => [p, v.nodes, Object.entries(v.ops).map(([op, n]) => `${op}×${n}`).join(', ')]));
  }
  s.heading('Latency (ms)', 3);
  s.paragraph(`Model load ${ms(r.loadMs, 1)} ms.`);
  s.table(
    ['batch', 'first', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'max', 'runs', 'items/s'],
    r.latency.map((l) => [l.batch, `${ms(l.firstMs)}${l.cold ? ' (cold)' : ''}`, ms(l.stats.mean), ms(l.stats.stddev), ms(l.stats.p50), ms(l.stats.p90), ms(l.stats.p95), ms(l.stats.p99), ms(l.stats.max), l.stats.count, l.throughput.toFixed(1)]),
  );
  const series = r.latency.map((l) => ({ label: `batch ${l.batch}`, samples: l.samples }));
  if (r.endToEnd) series.push({ label: 'end to end, batch 1', samples: r.endToEnd.samples });
  s.image('latency histogram', { svg: latencyHistogramSvg(series, `${path.basename(r.model)} on ${r.provider}`) });
  const e = r.endToEnd;
  if (e) {
    s.paragraph(`End to end (decode + preprocessing + inference, ${e.images} image(s)): p50 ${ms(e.stats.p50)} ms, p95 ${ms(e.stats.p95)} ms, p99 ${ms(e.stats.p99)} ms; of which decode/resize ${ms(e.decodeMs)} ms and normalize/layout ${ms(e.normalizeMs)} ms on average.`);
  }
  if (r.reference) {
    const summary = summarizeParity(r.reference);
    s.heading('Outputs vs PyTorch reference', 3);
    s.table(['output', 'max abs', 'max rel', 'mismatches', ''], Object.entries(summary).map(([o, v]) => [o, formatError(v.maxAbs), formatError(v.maxRel), v.mismatches, v.ok ? '✅' : '❌']));
  }
  const a = r.accuracy;
  if (a) {
    s.heading(`Accuracy on ${a.images} test images`, 3);
    if (a.kind === 'segmentation') {
      s.table(['class', 'Dice', 'IoU', 'micro Dice', 'micro IoU', 'images'], [...a.perClass.map((c) => [c.label, fmt(c.dice), fmt(c.iou), fmt(c.microDice), fmt(c.microIou), c.images]), ['mean', fmt(a.dice), fmt(a.iou), fmt(a.microDice), fmt(a.microIou), '']]);
    } else {
      s.table(['metric', 'value'], Object.entries(a.metrics).map(([k, v]) => [k, v.toFixed(4)]));
    }
    const m = r.metricCheck;
    if (m) s.paragraph(`${m.name}: device ${m.device.toFixed(4)}, cloud ${m.cloud.toFixed(4)}, difference ${m.difference.toFixed(4)} (tolerance ${m.tolerance}) ${Math.abs(m.difference) <= m.tolerance ? '✅' : '❌'}`);
  }
  const g = r.regression;
  if (g) {
    s.heading('Latency regression gate', 3);
    s.table(
      ['', 'baseline', 'candidate', 'ratio', `${Math.round(g.confidence * 100)}% CI`],
      [
        ['p50 (ms)', ms(g.baselineStats.p50), ms(g.candidateStats.p50), g.p50.ratio.toFixed(3), `${g.p50.low.toFixed(3)}–${g.p50.high.toFixed(3)}`],
        ['p95 (ms)', ms(g.baselineStats.p95), ms(g.candidateStats.p95), g.p95.ratio.toFixed(3), `${g.p95.low.toFixed(3)}–${g.p95.high.toFixed(3)}`],
      ],
    );
    s.paragraph(`Margin ${(g.margin * 100).toFixed(1)}%, ${g.interleaved ? 'interleaved' : 'against a stored report'}; Mann–Whitney p(slower beyond margin) = ${g.pSlower.toExponential(2)}: ${g.slower ? '❌ slower' : '✅ not slower'}.`);
  }
  const k = r.soak;
  if (k) {
    s.heading(`Soak (${k.durationS.toFixed(0)} s, ${k.iterations} runs)`, 3);
    const drift = (v: number | null) => (v === null ? 'not gated' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);
    const rows: (string | number)[][] = [
      ['median latency', `${ms(k.first.p50)} ms`, `${ms(k.last.p50)} ms`, drift(k.driftPercent)],
      ['p95 latency', `${ms(k.first.p95)} ms`, `${ms(k.last.p95)} ms`, drift(k.tailDriftPercent.p95)],
      ['p99 latency', `${ms(k.first.p99)} ms`, `${ms(k.last.p99)} ms`, drift(k.tailDriftPercent.p99)],
      ['resident memory', `${k.rssStartMb.toFixed(1)} MB`, `${(k.rssStartMb + k.rssGrowthMb).toFixed(1)} MB`, `${k.rssGrowthMb >= 0 ? '+' : ''}${k.rssGrowthMb.toFixed(1)} MB`],
    ];
    const gpu = k.gpu;
    if (gpu?.memoryGrowthMb !== undefined) rows.push(['GPU memory', '', '', `${gpu.memoryGrowthMb >= 0 ? '+' : ''}${gpu.memoryGrowthMb.toFixed(0)} MiB`]);
    if (gpu?.temperature) rows.push(['GPU temperature', `${gpu.temperature.start} °C`, `${gpu.temperature.end} °C`, `max ${gpu.temperature.max} °C`]);
    if (gpu?.smClockMHz) rows.push(['SM clock', `${gpu.smClockMHz.first} MHz`, `${gpu.smClockMHz.last} MHz`, '']);
    s.table(['', `first ${k.windowS.toFixed(0)} s`, `last ${k.windowS.toFixed(0)} s`, 'change'], rows);
    if (gpu?.throttle.length) s.list(gpu.throttle.map((t) => `${t.reason}: ${t.samples} samples${t.fails ? ' (fails)' : ''}`));
  }
  if (failures.length) s.heading('Failures', 3).list(failures);
}
