import { ms } from '../../benchmark/stats';
import { formatError } from '../../onnx/parity';
import type { BenchmarkInputs } from './inputs';
import type { BenchmarkResult } from './measure';

/**
 * The step's verdict on what was measured: latency budgets (first batch size), outputs against the PyTorch
 * reference, device against cloud metric, the latency regression gate and the soak. One line per failure, naming
 * the figure, the limit and the input that set it.
 */
export function benchmarkFailures(result: BenchmarkResult, inputs: BenchmarkInputs, label: (key: string) => string): string[] {
  const failures: string[] = [];
  const head = result.latency[0];
  if (inputs.maxP95Ms !== undefined && head.stats.p95 > inputs.maxP95Ms)
    failures.push(`p95 latency ${ms(head.stats.p95)} ms (batch ${head.batch}) exceeds ${label('maxP95Ms')} ${inputs.maxP95Ms} ms`);
  if (inputs.maxP99Ms !== undefined && head.stats.p99 > inputs.maxP99Ms)
    failures.push(`p99 latency ${ms(head.stats.p99)} ms (batch ${head.batch}) exceeds ${label('maxP99Ms')} ${inputs.maxP99Ms} ms`);
  if (inputs.minThroughput !== undefined && head.throughput < inputs.minThroughput)
    failures.push(
      `throughput ${head.throughput.toFixed(1)} items/s (batch ${head.batch}) is below ${label('minThroughput')} ${inputs.minThroughput}`,
    );

  const reference = result.reference;
  const bad = reference?.filter((c) => !c.ok) ?? [];
  if (reference && bad.length) {
    const o = bad[0].outputs.find((x) => !x.ok)!;
    failures.push(
      `outputs on ${result.provider} differ from the PyTorch reference in ${bad.length} of ${reference.length} cases (first: ${bad[0].name}, output ${o.output}, ${o.shape ? `shape [${o.shape.actual.join(', ')}] vs [${o.shape.expected.join(', ')}]` : `max abs ${formatError(o.maxAbs)}, ${o.mismatches} values outside atol ${inputs.referenceAtol}/rtol ${inputs.referenceRtol}`})`,
    );
  }

  const m = result.metricCheck;
  if (m && !(Math.abs(m.difference) <= m.tolerance)) {
    failures.push(
      `${m.name} on the device is ${m.device.toFixed(4)}, the cloud evaluation reported ${m.cloud.toFixed(4)}: a difference of ${m.difference.toFixed(4)}, beyond ${label('metricTolerance')} ${m.tolerance}`,
    );
  }
  if (result.regression?.slower)
    failures.push(`latency regression against ${result.regression.baseline}: ${result.regression.reasons.join('; ')}`);
  if (result.soak) failures.push(...result.soak.failures.map((f) => `soak: ${f}`));
  return failures;
}
