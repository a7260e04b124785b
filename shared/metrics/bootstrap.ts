import { fillPrecision } from './coco/accumulate';
import type { MatchTable } from './coco/match';
import { meanOfValid } from './coco/numeric';
import { statSpecs, thresholdIndices, type StatName } from './coco/params';
import { macroAverage, scoreMatrix, type CountTable, type EmptyRule, type MaskMetric } from './masks/scores';
import { Xoshiro128 } from './random';

/** A metric of a test set in which image i counts weights[i] times; null weights = each image once. */
export type WeightedMetric = (weights: Float64Array | null) => number;

export interface BootstrapOptions {
  readonly resamples: number;
  /** Two-sided level of the percentile interval, e.g. 0.95. */
  readonly confidence: number;
  readonly seed: number;
}

export interface BootstrapResult {
  readonly candidate: number;
  readonly production: number;
  /** candidate - production on the full test set. */
  readonly difference: number;
  /** Percentile interval of the resampled differences. */
  readonly lower: number;
  readonly upper: number;
  readonly resamples: number;
  /** Resamples left out because a model had no defined metric on them (e.g. no ground truth drawn). */
  readonly dropped: number;
  readonly confidence: number;
  readonly seed: number;
  readonly generator: 'xoshiro128**/splitmix32';
}

/** numpy.quantile's default ('linear', Hyndman & Fan type 7) on sorted values. */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Draws n images with replacement and returns how often each was drawn. */
export function drawWeights(rng: Xoshiro128, n: number, out: Float64Array): Float64Array {
  out.fill(0);
  for (let j = 0; j < n; j++) out[rng.nextBelow(n)]++;
  return out;
}

/**
 * Paired bootstrap over test images: each resample draws images with replacement once and scores both models
 * on that same draw, so what is resampled is the difference, not two independent noises.
 */
export function pairedBootstrap(units: number, candidate: WeightedMetric, production: WeightedMetric, options: BootstrapOptions): BootstrapResult {
  const c0 = candidate(null);
  const p0 = production(null);
  const rng = new Xoshiro128(options.seed);
  const w = new Float64Array(units);
  const diffs = new Float64Array(options.resamples);
  let kept = 0;
  for (let b = 0; b < options.resamples; b++) {
    drawWeights(rng, units, w);
    const c = candidate(w);
    const p = production(w);
    if (!Number.isFinite(c) || !Number.isFinite(p) || c < 0 || p < 0) continue;
    diffs[kept++] = c - p;
  }
  const sorted = diffs.subarray(0, kept).sort();
  const alpha = 1 - options.confidence;
  return {
    candidate: c0,
    production: p0,
    difference: c0 - p0,
    lower: quantileSorted(sorted, alpha / 2),
    upper: quantileSorted(sorted, 1 - alpha / 2),
    resamples: kept,
    dropped: options.resamples - kept,
    confidence: options.confidence,
    seed: options.seed,
    generator: 'xoshiro128**/splitmix32',
  };
}

/**
 * One of the 12 COCO numbers as a weighted metric. The matching is done once (the MatchTable); a resample only
 * re-walks each category's score-ordered detections with image weights, which for unit weights is exactly
 * accumulate() + summarize(). An image drawn twice counts its detections and ground truth twice.
 */
export function cocoStatMetric(table: MatchTable, name: StatName, category?: number): WeightedMetric {
  const p = table.params;
  const spec = statSpecs(p)[name];
  const a = p.areaRngLbl.indexOf(spec.area);
  const maxDet = spec.maxDets;
  const ts = thresholdIndices(p, spec.iouThr);
  const { K, A, T, I } = table;
  const R = p.recThrs.length;
  const ks = category === undefined ? Array.from({ length: K }, (_, k) => k) : [category];
  // Per (category, threshold): the counted entries, as image*2 + isTruePositive, in score order, cut after the
  // last true positive (later false positives change no recorded point).
  const lists: Int32Array[][] = ks.map((k) =>
    ts.map((t) => {
      const s0 = table.catStart[k];
      const s1 = table.catStart[k + 1];
      const out = new Int32Array(s1 - s0);
      let n = 0;
      let end = 0;
      for (let e = s0; e < s1; e++) {
        if (table.rank[e] >= maxDet) continue;
        const code = table.codes[(e * A + a) * T + t];
        if (code === 2) continue;
        out[n++] = table.img[e] * 2 + (code === 1 ? 1 : 0);
        if (code === 1) end = n;
      }
      return out.slice(0, end);
    }),
  );
  // Per category: images holding counted ground truth, and how many (npig of a resample = sum of weight * count).
  const gtImages = ks.map((k) => {
    const base = (k * A + a) * I;
    const imgs: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < I; i++) {
      if (table.npigImg[base + i] > 0) {
        imgs.push(i);
        counts.push(table.npigImg[base + i]);
      }
    }
    return { imgs: Int32Array.from(imgs), counts: Float64Array.from(counts) };
  });
  const longest = Math.max(1, ...lists.flat().map((l) => l.length));
  const pr = new Float64Array(longest);
  const rc = new Float64Array(longest);
  const KK = ks.length;
  const values = new Float64Array(spec.ap ? ts.length * R * KK : ts.length * KK);
  const unit = new Float64Array(I).fill(1);
  return (weights) => {
    const w = weights ?? unit;
    if (weights === null) values.fill(-1);
    let sum = 0;
    let count = 0;
    for (let kk = 0; kk < KK; kk++) {
      const gi = gtImages[kk];
      let npig = 0;
      for (let j = 0; j < gi.imgs.length; j++) npig += w[gi.imgs[j]] * gi.counts[j];
      if (npig === 0) continue;
      for (let ti = 0; ti < ts.length; ti++) {
        const list = lists[kk][ti];
        let tp = 0, fp = 0, n = 0;
        for (let j = 0; j < list.length; j++) {
          const v = list[j];
          const x = w[v >> 1];
          if ((v & 1) === 0) fp += x;
          else if (x !== 0) {
            tp += x;
            pr[n] = tp / (fp + tp + 2.220446049250313e-16);
            rc[n] = tp / npig;
            n++;
          }
        }
        if (weights === null) {
          // the exact path: numpy's value order and pairwise mean, identical to summarize()
          if (spec.ap) fillPrecision(pr, rc, n, p.recThrs, values, ti * R * KK + kk, KK);
          else values[ti * KK + kk] = n ? rc[n - 1] : 0;
        } else if (spec.ap) {
          sum += precisionSum(pr, rc, n, p.recThrs);
          count += R;
        } else {
          sum += n ? rc[n - 1] : 0;
          count++;
        }
      }
    }
    if (weights === null) return meanOfValid(values);
    return count ? sum / count : -1;
  };
}

/** Sum over recall thresholds of the interpolated precision (what fillPrecision writes), without writing it. */
function precisionSum(pr: Float64Array, rc: Float64Array, n: number, recThrs: Float64Array): number {
  for (let i = n - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
  let sum = 0;
  let pi = 0;
  for (let r = 0; r < recThrs.length; r++) {
    const thr = recThrs[r];
    while (pi < n && rc[pi] < thr) pi++;
    if (pi === n) break;
    sum += pr[pi];
  }
  return sum;
}

/** Macro Dice or IoU of semantic masks as a weighted metric (per class mean over images, then over classes). */
export function maskMetric(table: CountTable, metric: MaskMetric, rule: EmptyRule, classIndex?: number): WeightedMetric {
  const matrix = scoreMatrix(table, metric, rule);
  const I = table.images.length;
  const C = table.classes.length;
  if (classIndex === undefined) return (w) => macroAverage(matrix, I, C, w);
  const perClass = new Float64Array(C);
  return (w) => {
    macroAverage(matrix, I, C, w, perClass);
    return perClass[classIndex];
  };
}

