import { GpuSampler, type GpuSample, throttleNames } from './nvidia-smi';
import { latencyStats, type LatencyStats, median } from './stats';

/**
 * Soak mode: run the model back to back for a set time, then compare the first and the last window. A model (or
 * runtime) that leaks grows resident or GPU memory; a device that overheats gets slower and reports thermal
 * throttling. Either fails the step.
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
  latency: { t: number; ms: number }[];
  rss: { t: number; mb: number }[];
  gpu: GpuSample[];
}

export async function soak(run: () => Promise<unknown>, options: SoakOptions): Promise<SoakRaw> {
  const rssEvery = options.rssEveryMs ?? 1000;
  const sampler = options.gpu ? new GpuSampler(options.gpu.index, options.gpu.intervalMs, options.gpu.command) : undefined;
  sampler?.start();
  const latency: SoakRaw['latency'] = [];
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
      latency.push({ t, ms: Number(t1 - t0) / 1e6 });
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
  return { durationMs, windowMs: Math.min(options.windowMs, durationMs / 3), latency, rss, gpu: sampler?.samples ?? [] };
}

export interface SoakLimits {
  maxDriftPercent: number;
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

function inWindow<T extends { t: number }>(items: readonly T[], from: number, to: number): T[] {
  return items.filter((i) => i.t >= from && i.t <= to);
}

export function analyzeSoak(raw: SoakRaw, limits: SoakLimits): SoakAnalysis {
  const w = raw.windowMs;
  const end = raw.durationMs;
  const first = inWindow(raw.latency, 0, w).map((s) => s.ms);
  const last = inWindow(raw.latency, end - w, end).map((s) => s.ms);
  const firstStats = latencyStats(first);
  const lastStats = latencyStats(last);
  const driftPercent = (lastStats.p50 / firstStats.p50 - 1) * 100;
  const rssFirst = inWindow(raw.rss, 0, w).map((s) => s.mb);
  const rssLast = inWindow(raw.rss, end - w, end).map((s) => s.mb);
  const rssStartMb = rssFirst.length ? median(rssFirst) : (raw.rss[0]?.mb ?? 0);
  const rssGrowthMb = (rssLast.length ? median(rssLast) : (raw.rss[raw.rss.length - 1]?.mb ?? rssStartMb)) - rssStartMb;
  const failures: string[] = [];
  const warnings: string[] = [];
  if (driftPercent > limits.maxDriftPercent) failures.push(`latency drifted ${driftPercent.toFixed(1)}% (median ${firstStats.p50.toFixed(3)} ms in the first ${(w / 1000).toFixed(0)} s, ${lastStats.p50.toFixed(3)} ms in the last), more than max-drift-percent ${limits.maxDriftPercent}`);
  if (rssGrowthMb > limits.maxRssGrowthMb) failures.push(`resident memory grew ${rssGrowthMb.toFixed(1)} MB (from ${rssStartMb.toFixed(1)} MB), more than max-rss-growth-mb ${limits.maxRssGrowthMb}: a leak`);

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
    if (gpu.memoryGrowthMb !== undefined && gpu.memoryGrowthMb > limits.maxGpuMemoryGrowthMb) failures.push(`GPU memory grew ${gpu.memoryGrowthMb.toFixed(0)} MiB, more than max-gpu-memory-growth-mb ${limits.maxGpuMemoryGrowthMb}: a leak`);
    for (const t of gpu.throttle) {
      const text = `GPU reported ${t.reason} in ${t.samples} of ${g.length} samples (first at ${t.firstAtS.toFixed(0)} s${gpu.temperature ? `, max ${gpu.temperature.max} °C` : ''})`;
      if (t.fails && limits.failOnThrottle) failures.push(`${text}: the device throttles under this load`);
      else if (t.reason !== 'gpu_idle') warnings.push(text);
    }
  }
  return {
    durationS: raw.durationMs / 1000,
    iterations: raw.latency.length,
    windowS: w / 1000,
    first: firstStats,
    last: lastStats,
    driftPercent,
    rssStartMb,
    rssGrowthMb,
    gpu,
    failures,
    warnings,
  };
}
