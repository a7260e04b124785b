/** Latency statistics over samples in milliseconds. */

export interface LatencyStats {
  count: number;
  mean: number;
  stddev: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

/** Quantile by linear interpolation between closest ranks (numpy's default "linear" method). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function quantile(samples: readonly number[], q: number): number {
  return quantileSorted(
    [...samples].sort((a, b) => a - b),
    q,
  );
}

export function mean(samples: readonly number[]): number {
  let s = 0;
  for (const x of samples) s += x;
  return samples.length ? s / samples.length : NaN;
}

/** Sample standard deviation (n - 1). */
export function stddev(samples: readonly number[]): number {
  if (samples.length < 2) return 0;
  const m = mean(samples);
  let s = 0;
  for (const x of samples) s += (x - m) ** 2;
  return Math.sqrt(s / (samples.length - 1));
}

export function latencyStats(samples: readonly number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: samples.length,
    mean: mean(samples),
    stddev: stddev(samples),
    min: sorted[0] ?? NaN,
    p50: quantileSorted(sorted, 0.5),
    p90: quantileSorted(sorted, 0.9),
    p95: quantileSorted(sorted, 0.95),
    p99: quantileSorted(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

export function ms(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}
