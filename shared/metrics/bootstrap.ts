import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { fillPrecision } from './coco/accumulate';
import type { MatchTable } from './coco/match';
import { meanOfValid } from './coco/numeric';
import { statSpecs, thresholdIndices, type StatName } from './coco/params';
import { scoreMatrix, type CountTable, type EmptyRule, type MaskMetric } from './masks/scores';
import { Xoshiro128 } from '../core/random';
import {
  curvePoints,
  prefixCommon,
  RESAMPLE_WORKER_SOURCE,
  resampleDifference as differenceOf,
  resampleValue,
  weightedGroundTruth,
} from './resample-kernel';

/**
 * What a resample needs to score one model, as plain typed arrays, so it can be posted to a worker thread
 * (structured clone) and scored there by resampleValue(), the same function the main thread runs.
 */
export type ResampleData = CocoResampleData | MaskResampleData;

export interface CocoResampleData {
  readonly kind: 'coco';
  readonly ap: boolean;
  readonly recThrs: Float64Array;
  /** Categories (KK) and thresholds (TT) of the stat. */
  readonly KK: number;
  readonly TT: number;
  /** Category kk's entries (score order, within maxDets) are ents[entStart[kk] .. entStart[kk+1]), as image*2 + countsAtEveryThreshold. */
  readonly entStart: Int32Array;
  readonly ents: Int32Array;
  /** Per (kk, ti) slot kk*TT + ti: positions (within the category) of its true positives, tpPos[tpStart[slot] ..). */
  readonly tpStart: Int32Array;
  readonly tpPos: Int32Array;
  /** Per slot: positions of entries counted at this threshold but not at every one. */
  readonly varStart: Int32Array;
  readonly varPos: Int32Array;
  /** Per category, the images holding counted ground truth and how many: gtImg/gtCount[gtStart[kk] .. gtStart[kk+1]). */
  readonly gtStart: Int32Array;
  readonly gtImg: Int32Array;
  readonly gtCount: Float64Array;
  /** Most true positives of a slot, and most entries of a category (scratch sizes). */
  readonly longest: number;
  readonly entries: number;
}

export interface MaskResampleData {
  readonly kind: 'mask';
  /** Score of every (image, class), NaN where left out: [i*C + c]. */
  readonly matrix: Float64Array;
  readonly I: number;
  readonly C: number;
  /** One class, or -1 for the macro average over classes. */
  readonly classIndex: number;
}

/** A metric of a test set in which image i counts weights[i] times; null weights = each image once (the exact value). */
export type WeightedMetric = ((weights: ArrayLike<number> | null) => number) & { readonly data?: ResampleData };

export interface BootstrapOptions {
  readonly resamples: number;
  /** Two-sided level of the percentile interval, e.g. 0.95. */
  readonly confidence: number;
  readonly seed: number;
  /** Worker threads for the resamples; 0 or undefined = one per core for a large run (one thread for a small one), 1 = this thread only. */
  readonly threads?: number;
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
  /** Threads the resamples ran on (the interval does not depend on it). */
  readonly threads: number;
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

/** The difference of one resample, or NaN when a model has no defined metric on it (the resample is dropped). */
function resampleDifference(candidate: WeightedMetric, production: WeightedMetric, w: Float64Array): number {
  return differenceOf(candidate(w), production(w));
}

function finish(c0: number, p0: number, diffs: Float64Array, options: BootstrapOptions, threads: number): BootstrapResult {
  const kept = new Float64Array(diffs.length);
  let n = 0;
  // in resample order, whichever thread computed each one
  for (let b = 0; b < diffs.length; b++) if (!Number.isNaN(diffs[b])) kept[n++] = diffs[b];
  const sorted = kept.subarray(0, n).sort();
  const alpha = 1 - options.confidence;
  return {
    candidate: c0,
    production: p0,
    difference: c0 - p0,
    lower: quantileSorted(sorted, alpha / 2),
    upper: quantileSorted(sorted, 1 - alpha / 2),
    resamples: n,
    dropped: options.resamples - n,
    confidence: options.confidence,
    seed: options.seed,
    generator: 'xoshiro128**/splitmix32',
    threads,
  };
}

/**
 * Paired bootstrap over test images, on this thread: each resample draws images with replacement once and scores
 * both models on that same draw, so what is resampled is the difference, not two independent noises.
 */
export function pairedBootstrap(
  units: number,
  candidate: WeightedMetric,
  production: WeightedMetric,
  options: BootstrapOptions,
): BootstrapResult {
  const c0 = candidate(null);
  const p0 = production(null);
  const rng = new Xoshiro128(options.seed);
  const w = new Float64Array(units);
  const diffs = new Float64Array(options.resamples);
  for (let b = 0; b < options.resamples; b++) diffs[b] = resampleDifference(candidate, production, drawWeights(rng, units, w));
  return finish(c0, p0, diffs, options, 1);
}

const longestOf = (d: ResampleData) => (d.kind === 'coco' ? d.longest : 1);
const entriesOf = (d: ResampleData) => (d.kind === 'coco' ? d.entries : 1);

/** Entries a resample visits for one model, roughly. */
const workOf = (d: ResampleData) => (d.kind === 'coco' ? d.ents.length + d.tpPos.length : d.matrix.length);
/** Below this many visited entries in all (about half a second on one core), threads 0 means one thread. */
const AUTO_THREADS_WORK = 2e8;

/** Resamples per message to a worker: big enough that posting costs little, small enough to balance the threads. */
const BLOCK = 16;

/**
 * The same bootstrap with the resamples scored on worker threads. This thread draws every resample's weights
 * from the one seeded stream, in order, and hands blocks of them out; each difference lands at its resample's
 * index. The draws and the scoring function are the same as on one thread, so the interval is bit-identical
 * whatever the thread count. Falls back to this thread for metrics without ResampleData or tiny runs.
 */
export async function pairedBootstrapParallel(
  units: number,
  candidate: WeightedMetric,
  production: WeightedMetric,
  options: BootstrapOptions,
): Promise<BootstrapResult> {
  if (!candidate.data || !production.data) return pairedBootstrap(units, candidate, production, options);
  // left to choose (threads 0), small runs stay on this thread: a worker costs tens of milliseconds to start
  const auto = !options.threads;
  const work = options.resamples * (workOf(candidate.data) + workOf(production.data));
  const threads =
    auto && work < AUTO_THREADS_WORK ? 1 : Math.min(options.threads || os.availableParallelism(), Math.ceil(options.resamples / BLOCK));
  if (threads <= 1) return pairedBootstrap(units, candidate, production, options);
  const c0 = candidate(null);
  const p0 = production(null);
  const rng = new Xoshiro128(options.seed);
  const diffs = new Float64Array(options.resamples);
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let done = 0;
      const send = (worker: Worker) => {
        if (next >= options.resamples) return;
        const first = next;
        const count = Math.min(BLOCK, options.resamples - first);
        next += count;
        const weights = new Float64Array(count * units);
        for (let b = 0; b < count; b++) drawWeights(rng, units, weights.subarray(b * units, (b + 1) * units));
        worker.postMessage({ first, count, weights }, [weights.buffer]);
      };
      for (let t = 0; t < threads; t++) {
        const worker = new Worker(RESAMPLE_WORKER_SOURCE, {
          eval: true,
          workerData: {
            units,
            candidate: candidate.data,
            production: production.data,
            longest: Math.max(1, longestOf(candidate.data!), longestOf(production.data!)),
            entries: Math.max(1, entriesOf(candidate.data!), entriesOf(production.data!)),
          },
        });
        workers.push(worker);
        worker.on('message', (m: { first: number; diffs: Float64Array }) => {
          diffs.set(m.diffs, m.first);
          done += m.diffs.length;
          if (done === options.resamples) resolve();
          else send(worker);
        });
        worker.on('error', reject);
        send(worker);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return finish(c0, p0, diffs, options, threads);
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
  // a stat whose area label or maxDets is not in the parameters selects nothing: -1, as summarize() gives
  const ts = a < 0 || !p.maxDets.includes(maxDet) ? [] : thresholdIndices(p, spec.iouThr);
  const { K, A, T, I } = table;
  const R = p.recThrs.length;
  const ks = category === undefined ? Array.from({ length: K }, (_, k) => k) : [category];
  const KK = ks.length;
  const TT = ts.length;
  const entStart = new Int32Array(KK + 1);
  const ents: number[] = [];
  const tpLists: number[][] = Array.from({ length: KK * TT }, () => []);
  const varLists: number[][] = Array.from({ length: KK * TT }, () => []);
  let entries = 1;
  ks.forEach((k, kk) => {
    entStart[kk] = ents.length;
    const s0 = table.catStart[k];
    const s1 = table.catStart[k + 1];
    let q = 0;
    let end = 0;
    for (let e = s0; e < s1; e++) {
      if (table.rank[e] >= maxDet) continue;
      let common = 1;
      for (let ti = 0; ti < TT; ti++) if (table.codes[(e * A + a) * T + ts[ti]] === 2) common = 0;
      for (let ti = 0; ti < TT; ti++) {
        const code = table.codes[(e * A + a) * T + ts[ti]];
        if (code === 1) {
          tpLists[kk * TT + ti].push(q);
          end = q + 1;
        }
        if (code !== 2 && !common) varLists[kk * TT + ti].push(q);
      }
      ents.push(table.img[e] * 2 + common);
      q++;
    }
    // entries after the category's last true positive (at any threshold) change no curve point: cut them
    ents.length = entStart[kk] + end;
    for (let ti = 0; ti < TT; ti++) {
      const v = varLists[kk * TT + ti];
      while (v.length && v[v.length - 1] >= end) v.pop();
    }
    entries = Math.max(entries, end);
  });
  entStart[KK] = ents.length;
  const flatten = (lists: number[][]) => {
    const start = new Int32Array(lists.length + 1);
    lists.forEach((l, j) => (start[j + 1] = start[j] + l.length));
    const out = new Int32Array(start[lists.length]);
    lists.forEach((l, j) => out.set(l, start[j]));
    return [start, out] as const;
  };
  const [tpStart, tpPos] = flatten(tpLists);
  const [varStart, varPos] = flatten(varLists);
  const longest = Math.max(1, ...tpLists.map((l) => l.length));
  // Per category: images holding counted ground truth, and how many (npig of a resample = sum of weight * count).
  const gtStart = new Int32Array(KK + 1);
  const gtImgs: number[] = [];
  const gtCounts: number[] = [];
  ks.forEach((k, kk) => {
    gtStart[kk] = gtImgs.length;
    if (a < 0) return;
    const base = (k * A + a) * I;
    for (let i = 0; i < I; i++) {
      if (table.npigImg[base + i] > 0) {
        gtImgs.push(i);
        gtCounts.push(table.npigImg[base + i]);
      }
    }
  });
  gtStart[KK] = gtImgs.length;
  const data: CocoResampleData = {
    kind: 'coco',
    ap: spec.ap,
    recThrs: p.recThrs,
    KK,
    TT,
    entStart,
    ents: Int32Array.from(ents),
    tpStart,
    tpPos,
    varStart,
    varPos,
    gtStart,
    gtImg: Int32Array.from(gtImgs),
    gtCount: Float64Array.from(gtCounts),
    longest,
    entries,
  };
  const pr = new Float64Array(longest);
  const rc = new Float64Array(longest);
  const cum = new Float64Array(entries);
  const values = new Float64Array(spec.ap ? TT * R * KK : TT * KK);
  const unit = new Float64Array(I).fill(1);
  const metric = (weights: ArrayLike<number> | null): number => {
    if (weights !== null) return resampleValue(data, weights, pr, rc, cum);
    // the exact path: numpy's value order and pairwise mean, identical to summarize()
    values.fill(-1);
    for (let kk = 0; kk < KK; kk++) {
      const npig = weightedGroundTruth(data, kk, unit);
      if (npig === 0) continue;
      prefixCommon(data, kk, unit, cum);
      for (let ti = 0; ti < TT; ti++) {
        const n = curvePoints(data, kk, ti, unit, npig, pr, rc, cum);
        if (spec.ap) fillPrecision(pr, rc, n, p.recThrs, values, ti * R * KK + kk, KK);
        else values[ti * KK + kk] = n ? rc[n - 1] : 0;
      }
    }
    return meanOfValid(values);
  };
  return Object.assign(metric, { data });
}

/** Macro Dice or IoU of semantic masks as a weighted metric (per class mean over images, then over classes). */
export function maskMetric(table: CountTable, metric: MaskMetric, rule: EmptyRule, classIndex?: number): WeightedMetric {
  const data: MaskResampleData = {
    kind: 'mask',
    matrix: scoreMatrix(table, metric, rule),
    I: table.images.length,
    C: table.classes.length,
    classIndex: classIndex ?? -1,
  };
  const unit = new Float64Array(data.I).fill(1);
  return Object.assign((w: ArrayLike<number> | null) => resampleValue(data, w ?? unit, EMPTY, EMPTY, EMPTY), { data });
}

const EMPTY = new Float64Array(1);
