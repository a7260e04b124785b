import { LatencyHistogram, type LatencyHistogramData } from './latency-histogram';
import { GpuSampler, type GpuSample, throttleNames } from './nvidia-smi';
import { latencyStats, type LatencyStats, median } from './stats';

/**
 * Soak mode: run the model back to back for a set time, then compare the first and the last window. A model (or
 * runtime) that leaks grows resident or GPU memory; a device that overheats gets slower and reports thermal
 * throttling. Either fails the step. The tails are gated as well as the median: a run whose p95 grows while its
 * median stays flat (queueing, allocator fragmentation, a neighbour's clock changes) is what an instrument's user
 * feels as stutter.
 *
 * Samples are not kept: a SoakRecorder holds the first window, a rolling last window, one summary per window of
 * the run (the timeline) and a fixed-bin histogram, so an hour of back-to-back inference costs the memory and the
 * report size of a few windows.
 */

export interface SoakOptions {
  durationMs: number;
  /** Length of the first and last windows compared (at most a third of the run). */
  windowMs: number;
  rssEveryMs?: number;
  gpu?: { index: number; command: string; intervalMs: number };
  signal?: AbortSignal;
}

export interface SoakRaw {
  durationMs: number;
  windowMs: number;
  latency: SoakLatency;
  rss: { t: number; mb: number }[];
  gpu: GpuSample[];
}

/** One window of the timeline. */
export interface SoakWindow {
  startS: number;
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface SoakLatency {
  count: number;
  /** Samples (ms) of the first `windowMs` of the run, with their times. */
  first: { t: number; ms: number }[];
  /** Samples of the last `windowMs` before the end. */
  last: { t: number; ms: number }[];
  timeline: SoakWindow[];
  histogram: LatencyHistogramData;
}

/** Takes latency samples as they come (time since the start, duration; both ms) and keeps only what the analysis needs. */
export class SoakRecorder {
  private count = 0;
  private readonly first: { t: number; ms: number }[] = [];
  private last: { t: number; ms: number }[] = [];
  private lastHead = 0;
  private readonly timeline: SoakWindow[] = [];
  private bucket: number[] = [];
  private bucketIndex = 0;
  private readonly histogram = new LatencyHistogram();

  constructor(private readonly windowMs: number) {}

  add(t: number, ms: number): void {
    this.count++;
    this.histogram.add(ms);
    if (t <= this.windowMs) this.first.push({ t, ms });
    this.last.push({ t, ms });
    while (this.lastHead < this.last.length && this.last[this.lastHead].t < t - this.windowMs) this.lastHead++;
    // Drop the consumed head now and then rather than shifting on every sample.
    if (this.lastHead > 4096 && this.lastHead * 2 > this.last.length) {
      this.last = this.last.slice(this.lastHead);
      this.lastHead = 0;
    }
    const index = Math.floor(t / this.windowMs);
    if (index !== this.bucketIndex) {
      this.closeBucket();
      this.bucketIndex = index;
    }
    this.bucket.push(ms);
  }

  finish(): SoakLatency {
    this.closeBucket();
    return {
      count: this.count,
      first: this.first,
      last: this.last.slice(this.lastHead),
      timeline: this.timeline,
      histogram: this.histogram.toJSON(),
    };
  }

  private closeBucket(): void {
    if (this.bucket.length === 0) return;
    const s = latencyStats(this.bucket);
    this.timeline.push({
      startS: (this.bucketIndex * this.windowMs) / 1000,
      count: s.count,
      p50: s.p50,
      p95: s.p95,
      p99: s.p99,
      max: s.max,
    });
    this.bucket = [];
  }
}

export async function soak(run: () => Promise<unknown>, options: SoakOptions): Promise<SoakRaw> {
  const rssEvery = options.rssEveryMs ?? 1000;
  const sampler = options.gpu ? new GpuSampler(options.gpu.index, options.gpu.intervalMs, options.gpu.command) : undefined;
  sampler?.start();
  const latency = new SoakRecorder(options.windowMs);
  const rss: SoakRaw['rss'] = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(options.durationMs * 1e6));
  let nextRss = 0;
  try {
    for (;;) {
      const t0 = process.hrtime.bigint();
      await run();
      const t1 = process.hrtime.bigint();
      const t = Number(t1 - start) / 1e6;
      latency.add(t, Number(t1 - t0) / 1e6);
      if (t >= nextRss) {
        rss.push({ t, mb: process.memoryUsage.rss() / 1048576 });
        nextRss = t + rssEvery;
      }
      if (t1 >= end || options.signal?.aborted) break;
    }
  } finally {
    sampler?.stop();
  }
  const durationMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { durationMs, windowMs: Math.min(options.windowMs, durationMs / 3), latency: latency.finish(), rss, gpu: sampler?.samples ?? [] };
}

export interface SoakLimits {
  maxDriftPercent: number;
  /** Allowed growth of p95 and of p99, first to last window, in percent. */
  maxTailDriftPercent: number;
  maxRssGrowthMb: number;
  maxGpuMemoryGrowthMb: number;
  failOnThrottle: boolean;
}

export interface SoakAnalysis {
  durationS: number;
  iterations: number;
  windowS: number;
  first: LatencyStats;
  last: LatencyStats;
  /** Change of the median latency from the first to the last window, in percent. */
  driftPercent: number;
  /** Change of p95 and p99; null where a window holds too few samples for that percentile to mean anything. */
  tailDriftPercent: { p95: number | null; p99: number | null };
  /** Per window of the run (soak-window long): count and percentiles, for a chart of latency over time. */
  timeline: SoakWindow[];
  histogram: LatencyHistogramData;
  rssStartMb: number;
  rssGrowthMb: number;
  gpu?: {
    samples: number;
    memoryGrowthMb?: number;
    temperature?: { start: number; max: number; end: number };
    smClockMHz?: { first: number; last: number };
    throttle: { reason: string; fails: boolean; samples: number; firstAtS: number }[];
  };
  failures: string[];
  warnings: string[];
}

/** Fewest samples per window for a percentile's drift to be gated: 1 in 20 (p95) or 1 in 100 (p99) beyond it, times 5. */
const MIN_SAMPLES = { p95: 100, p99: 500 };

function inWindow<T extends { t: number }>(items: readonly T[], from: number, to: number): T[] {
  return items.filter((i) => i.t >= from && i.t <= to);
}

export function analyzeSoak(raw: SoakRaw, limits: SoakLimits): SoakAnalysis {
  const w = raw.windowMs;
  const end = raw.durationMs;
  const first = inWindow(raw.latency.first, 0, w).map((s) => s.ms);
  const last = inWindow(raw.latency.last, end - w, end).map((s) => s.ms);
  const firstStats = latencyStats(first);
  const lastStats = latencyStats(last);
  const driftPercent = (lastStats.p50 / firstStats.p50 - 1) * 100;
  const fewest = Math.min(first.length, last.length);
  const tail = (q: 'p95' | 'p99', minSamples: number) => (fewest >= minSamples ? (lastStats[q] / firstStats[q] - 1) * 100 : null);
  const tailDriftPercent = { p95: tail('p95', MIN_SAMPLES.p95), p99: tail('p99', MIN_SAMPLES.p99) };
  const rssFirst = inWindow(raw.rss, 0, w).map((s) => s.mb);
  const rssLast = inWindow(raw.rss, end - w, end).map((s) => s.mb);
  const rssStartMb = rssFirst.length ? median(rssFirst) : (raw.rss[0]?.mb ?? 0);
  const rssGrowthMb = (rssLast.length ? median(rssLast) : (raw.rss[raw.rss.length - 1]?.mb ?? rssStartMb)) - rssStartMb;
  const failures: string[] = [];
  const warnings: string[] = [];
  if (driftPercent > limits.maxDriftPercent)
    failures.push(
      `latency drifted ${driftPercent.toFixed(1)}% (median ${firstStats.p50.toFixed(3)} ms in the first ${(w / 1000).toFixed(0)} s, ${lastStats.p50.toFixed(3)} ms in the last), more than max-drift-percent ${limits.maxDriftPercent}`,
    );
  for (const q of ['p95', 'p99'] as const) {
    const drift = tailDriftPercent[q];
    if (drift === null)
      warnings.push(
        `${q} drift is not gated: a window holds ${fewest} samples, fewer than the ${MIN_SAMPLES[q]} a ${q} needs; lengthen soak-window`,
      );
    else if (drift > limits.maxTailDriftPercent)
      failures.push(
        `${q} latency drifted ${drift.toFixed(1)}% (${firstStats[q].toFixed(3)} ms in the first ${(w / 1000).toFixed(0)} s, ${lastStats[q].toFixed(3)} ms in the last; median ${driftPercent >= 0 ? '+' : ''}${driftPercent.toFixed(1)}%), more than max-tail-drift-percent ${limits.maxTailDriftPercent}`,
      );
  }
  if (rssGrowthMb > limits.maxRssGrowthMb)
    failures.push(
      `resident memory grew ${rssGrowthMb.toFixed(1)} MB (from ${rssStartMb.toFixed(1)} MB), more than max-rss-growth-mb ${limits.maxRssGrowthMb}: a leak`,
    );

  let gpu: SoakAnalysis['gpu'];
  if (raw.gpu.length > 0) {
    const g = raw.gpu;
    const firstG = inWindow(g, 0, w);
    const lastG = inWindow(g, end - w, end + 1000);
    const med = (items: GpuSample[], f: (s: GpuSample) => number | undefined) => {
      const v = items.map(f).filter((x): x is number => x !== undefined);
      return v.length ? median(v) : undefined;
    };
    const memFirst = med(firstG, (s) => s.memoryUsedMiB);
    const memLast = med(lastG, (s) => s.memoryUsedMiB);
    const temps = g.map((s) => s.temperatureC).filter((x): x is number => x !== undefined);
    const throttle = new Map<string, { reason: string; fails: boolean; samples: number; firstAtS: number }>();
    for (const s of g) {
      for (const r of throttleNames(s.throttleMask ?? 0)) {
        const entry = throttle.get(r.name) ?? { reason: r.name, fails: r.fails, samples: 0, firstAtS: s.t / 1000 };
        entry.samples++;
        throttle.set(r.name, entry);
      }
    }
    const smFirst = med(firstG, (s) => s.smClockMHz);
    const smLast = med(lastG, (s) => s.smClockMHz);
    gpu = {
      samples: g.length,
      memoryGrowthMb: memFirst !== undefined && memLast !== undefined ? memLast - memFirst : undefined,
      temperature: temps.length ? { start: temps[0], max: Math.max(...temps), end: temps[temps.length - 1] } : undefined,
      smClockMHz: smFirst !== undefined && smLast !== undefined ? { first: smFirst, last: smLast } : undefined,
      throttle: [...throttle.values()],
    };
    if (gpu.memoryGrowthMb !== undefined && gpu.memoryGrowthMb > limits.maxGpuMemoryGrowthMb)
      failures.push(
        `GPU memory grew ${gpu.memoryGrowthMb.toFixed(0)} MiB, more than max-gpu-memory-growth-mb ${limits.maxGpuMemoryGrowthMb}: a leak`,
      );
    for (const t of gpu.throttle) {
      const text = `GPU reported ${t.reason} in ${t.samples} of ${g.length} samples (first at ${t.firstAtS.toFixed(0)} s${gpu.temperature ? `, max ${gpu.temperature.max} °C` : ''})`;
      if (t.fails && limits.failOnThrottle) failures.push(`${text}: the device throttles under this load`);
      else if (t.reason !== 'gpu_idle') warnings.push(text);
    }
  }
  return {
    durationS: raw.durationMs / 1000,
    iterations: raw.latency.count,
    windowS: w / 1000,
    first: firstStats,
    last: lastStats,
    driftPercent,
    tailDriftPercent,
    timeline: raw.latency.timeline,
    histogram: raw.latency.histogram,
    rssStartMb,
    rssGrowthMb,
    gpu,
    failures,
    warnings,
  };
}
