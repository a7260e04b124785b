import { seededRandom } from '../core/random';
import { quantile } from './stats';

/**
 * Latency regression gate: is the candidate slower than the baseline by more than `margin`, with confidence?
 * Shared runners are noisy, so the decision rests on the whole sample distributions, measured interleaved:
 *  - one-sided Mann–Whitney U test of candidate > baseline × (1 + margin) (the typical iteration);
 *  - percentile bootstrap of the p95 ratio candidate/baseline (the tail), failing when its lower bound exceeds
 *    1 + margin.
 */

export interface MannWhitneyResult {
  u: number;
  z: number;
  /** One-sided p-value of "x is stochastically greater than y". */
  p: number;
}

/**
 * Mid-ranks (1-based; tied values share the mean of their ranks) of values sorted ascending, with the tie
 * correction term Σ(t³ − t) over groups of t equal values: what rank tests (Mann–Whitney, Wilcoxon) need.
 */
export function midRanks(sorted: readonly number[]): { ranks: Float64Array; tieTerm: number } {
  const n = sorted.length;
  const ranks = new Float64Array(n);
  let tieTerm = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && sorted[j + 1] === sorted[i]) j++;
    const t = j - i + 1;
    tieTerm += t ** 3 - t;
    ranks.fill((i + j) / 2 + 1, i, j + 1);
    i = j + 1;
  }
  return { ranks, tieTerm };
}

/** Mann–Whitney U of x against y, normal approximation with tie and continuity correction (as scipy's asymptotic). */
export function mannWhitneyGreater(x: readonly number[], y: readonly number[]): MannWhitneyResult {
  const n1 = x.length;
  const n2 = y.length;
  const all = [...x.map((v) => ({ v, g: 0 })), ...y.map((v) => ({ v, g: 1 }))].sort((a, b) => a.v - b.v);
  const n = all.length;
  const { ranks, tieTerm } = midRanks(all.map((a) => a.v));
  let rankSumX = 0;
  for (let k = 0; k < n; k++) if (all[k].g === 0) rankSumX += ranks[k];
  const u = rankSumX - (n1 * (n1 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (sigma === 0) return { u, z: 0, p: 1 };
  const z = (u - mu - 0.5) / sigma;
  return { u, z, p: normalSf(z) };
}

/** Upper tail of the standard normal, P(Z > z). */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

export interface RatioInterval {
  ratio: number;
  low: number;
  high: number;
}

/** Percentile-bootstrap interval of quantile(candidate, q) / quantile(baseline, q); seeded, so reproducible. */
export function bootstrapQuantileRatio(
  candidate: readonly number[],
  baseline: readonly number[],
  q: number,
  confidence: number,
  resamples = 1000,
  seed = 12345,
): RatioInterval {
  const rnd = seededRandom(seed);
  const ratios = new Float64Array(resamples);
  // Typed arrays sort numerically in native code: 1000 resamples of 1000 samples take well under a second.
  const a = new Float64Array(candidate.length);
  const b = new Float64Array(baseline.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < a.length; i++) a[i] = candidate[Math.floor(rnd() * candidate.length)];
    for (let i = 0; i < b.length; i++) b[i] = baseline[Math.floor(rnd() * baseline.length)];
    ratios[r] = sortedQuantile(a.sort(), q) / sortedQuantile(b.sort(), q);
  }
  ratios.sort();
  const alpha = 1 - confidence;
  return {
    ratio: quantile(candidate, q) / quantile(baseline, q),
    low: sortedQuantile(ratios, alpha / 2),
    high: sortedQuantile(ratios, 1 - alpha / 2),
  };
}

function sortedQuantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface RegressionVerdict {
  margin: number;
  confidence: number;
  baselineSamples: number;
  candidateSamples: number;
  p50: RatioInterval;
  p95: RatioInterval;
  /** One-sided Mann–Whitney p of "candidate slower than baseline × (1 + margin)". */
  pSlower: number;
  slower: boolean;
  reasons: string[];
}

export function regressionVerdict(
  candidate: readonly number[],
  baseline: readonly number[],
  margin: number,
  confidence: number,
  seed = 12345,
): RegressionVerdict {
  const scaled = baseline.map((v) => v * (1 + margin));
  const mw = mannWhitneyGreater(candidate, scaled);
  const p50 = bootstrapQuantileRatio(candidate, baseline, 0.5, confidence, 1000, seed);
  const p95 = bootstrapQuantileRatio(candidate, baseline, 0.95, confidence, 1000, seed + 1);
  const reasons: string[] = [];
  const alpha = 1 - confidence;
  const pct = (r: number) => `${((r - 1) * 100).toFixed(1)}%`;
  if (mw.p < alpha)
    reasons.push(
      `typical latency is ${pct(p50.ratio)} slower (p50 ratio ${p50.ratio.toFixed(3)}, ${Math.round(confidence * 100)}% CI ${p50.low.toFixed(3)}–${p50.high.toFixed(3)}); Mann–Whitney p = ${mw.p.toExponential(2)} that it is within the ${(margin * 100).toFixed(1)}% margin`,
    );
  if (p95.low > 1 + margin)
    reasons.push(
      `p95 is ${pct(p95.ratio)} slower (ratio ${p95.ratio.toFixed(3)}, ${Math.round(confidence * 100)}% CI ${p95.low.toFixed(3)}–${p95.high.toFixed(3)} lies above ${(1 + margin).toFixed(3)})`,
    );
  return {
    margin,
    confidence,
    baselineSamples: baseline.length,
    candidateSamples: candidate.length,
    p50,
    p95,
    pSlower: mw.p,
    slower: reasons.length > 0,
    reasons,
  };
}
