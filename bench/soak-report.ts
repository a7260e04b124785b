/**
 * Size of benchmark-model's report for long runs: the compact report (percentiles, statistics, fixed-bin
 * histogram, per-window soak timeline) against the raw-sample arrays reports held before, which a device package
 * (1 MiB limit on embedded reports) could not take past ~12 s of back-to-back runs. Sample streams are
 * simulated (2-4 ms runs, as batch 1 of a segmentation model on a GPU runner), so an hour costs seconds here.
 *
 *   node -r esbuild-register bench/soak-report.ts
 */
import { LatencyHistogram } from '../shared/benchmark/latency-histogram';
import { simulateSoak } from '../shared/benchmark/simulated-soak';
import { latencyStats } from '../shared/benchmark/stats';
import { seededRandom } from '../shared/core/random';

const LIMITS = { maxDriftPercent: 10, maxTailDriftPercent: 30, maxRssGrowthMb: 64, maxGpuMemoryGrowthMb: 64, failOnThrottle: true };
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

const rows: string[] = [];
for (const [label, seconds] of [
  ['12 s', 12],
  ['10 min', 600],
  ['1 h', 3600],
  ['8 h', 8 * 3600],
] as const) {
  const rnd = seededRandom(7);
  const raw: number[] = [];
  let t = 0;
  const t0 = process.hrtime.bigint();
  const soak = simulateSoak(seconds, 60, (_t, u) => 2 + 2 * u * u, LIMITS);
  const soakMs = Number(process.hrtime.bigint() - t0) / 1e6;
  // The same stream as a plain latency series: what latency[].samples held in a report before.
  const histogram = new LatencyHistogram();
  const rawLimit = 3_000_000; // JSON.stringify of longer arrays is the old report's problem, not this bench's
  while (t < seconds * 1000 && raw.length < rawLimit) {
    const ms = 2 + 2 * rnd() ** 2;
    t += ms;
    raw.push(ms);
    histogram.add(ms);
  }
  const rawBytes = raw.length < rawLimit ? JSON.stringify({ samples: raw }, null, 2).length : NaN;
  const compact = JSON.stringify({ stats: latencyStats(raw), histogram: histogram.toJSON(), soak }, null, 2).length;
  rows.push(
    `| ${label} | ${soak.iterations.toLocaleString('en-US')} | ${Number.isNaN(rawBytes) ? '> 50 MiB' : kib(rawBytes)} | ${kib(compact)} | ${soak.timeline.length} | ${(soakMs / 1000).toFixed(1)} s |`,
  );
}
console.log('| soak length | runs | raw samples (old report) | compact report (latency + soak) | timeline windows | recorder time |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
