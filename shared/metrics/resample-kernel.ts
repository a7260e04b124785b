/**
 * The per-resample scoring of the paired bootstrap, in one module of self-contained functions: the worker threads
 * run the very same functions, from their source text (RESAMPLE_WORKER_SOURCE is built with Function#toString), so
 * there is one copy of the code and the threads compute bit for bit what this thread would. Keep these functions
 * free of imports and of nested function definitions: a call into another module compiles to a property access
 * that does not exist inside the worker.
 */

/** Sum over recall thresholds of the interpolated precision (what fillPrecision writes), without writing it. */
export function precisionSum(pr: Float64Array, rc: Float64Array, n: number, recThrs: Float64Array): number {
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

/**
 * Macro average: per class, the (weighted) mean over images where it is scored; then the mean over classes that
 * have any. `weights[i]` counts image i that many times (bootstrap); null = 1 each. NaN when nothing is scored.
 */
export function macroAverage(
  matrix: Float64Array,
  images: number,
  classes: number,
  weights: ArrayLike<number> | null,
  perClass?: Float64Array,
): number {
  let total = 0;
  let nClasses = 0;
  for (let c = 0; c < classes; c++) {
    let sum = 0;
    let wsum = 0;
    for (let i = 0; i < images; i++) {
      const v = matrix[i * classes + c];
      if (v !== v) continue; // NaN: left out
      const w = weights ? weights[i] : 1;
      sum += w * v;
      wsum += w;
    }
    const mean = wsum > 0 ? sum / wsum : NaN;
    if (perClass) perClass[c] = mean;
    if (wsum > 0) {
      total += mean;
      nClasses++;
    }
  }
  return nClasses ? total / nClasses : NaN;
}

/** Plain-data form of a weighted metric (see bootstrap.ts ResampleData); typed loosely here to stay import-free. */
interface KernelData {
  kind: 'coco' | 'mask';
  ap?: boolean;
  recThrs?: Float64Array;
  KK?: number;
  TT?: number;
  entStart?: Int32Array;
  ents?: Int32Array;
  tpStart?: Int32Array;
  tpPos?: Int32Array;
  varStart?: Int32Array;
  varPos?: Int32Array;
  gtStart?: Int32Array;
  gtImg?: Int32Array;
  gtCount?: Float64Array;
  matrix?: Float64Array;
  I?: number;
  C?: number;
  classIndex?: number;
}

/** Weighted ground truth that counts in category kk (npig of the resample). */
export function weightedGroundTruth(d: KernelData, kk: number, w: ArrayLike<number>): number {
  const gtStart = d.gtStart!;
  const gtImg = d.gtImg!;
  const gtCount = d.gtCount!;
  let npig = 0;
  for (let j = gtStart[kk]; j < gtStart[kk + 1]; j++) npig += w[gtImg[j]] * gtCount[j];
  return npig;
}

/**
 * cum[q] = weight of the category's entries before entry q that count at every threshold (the common ones): one
 * pass over the category shared by all thresholds, instead of one walk per threshold.
 */
export function prefixCommon(d: KernelData, kk: number, w: ArrayLike<number>, cum: Float64Array): void {
  const ents = d.ents!;
  const e0 = d.entStart![kk];
  const e1 = d.entStart![kk + 1];
  let acc = 0;
  for (let e = e0; e < e1; e++) {
    cum[e - e0] = acc;
    const v = ents[e];
    if (v & 1) acc += w[v >> 1];
  }
}

/**
 * The points of one precision/recall curve (category kk, threshold ti) at its true positives, written to pr/rc;
 * returns how many. Only true positives are visited: the false-positive weight before one is (counted weight
 * before it) − (true-positive weight before it), the counted weight being cum (common entries) plus the few
 * entries counted at this threshold only (a match to a crowd or out-of-range ground truth ignores a detection at
 * some thresholds and not others). With whole-number weights (bootstrap draw counts) every sum is an exact integer,
 * so pr = tp / (fp + tp + eps) is bit for bit what a walk over every entry gives (curve() in coco/accumulate.ts).
 */
export function curvePoints(
  d: KernelData,
  kk: number,
  ti: number,
  w: ArrayLike<number>,
  npig: number,
  pr: Float64Array,
  rc: Float64Array,
  cum: Float64Array,
): number {
  const ents = d.ents!;
  const e0 = d.entStart![kk];
  const slot = kk * d.TT! + ti;
  const tpPos = d.tpPos!;
  const varPos = d.varPos!;
  let vi = d.varStart![slot];
  const vEnd = d.varStart![slot + 1];
  let extra = 0;
  let tp = 0;
  let n = 0;
  for (let j = d.tpStart![slot]; j < d.tpStart![slot + 1]; j++) {
    const q = tpPos[j];
    while (vi < vEnd && varPos[vi] < q) extra += w[ents[e0 + varPos[vi++]] >> 1];
    const x = w[ents[e0 + q] >> 1];
    if (x === 0) continue;
    const fp = cum[q] + extra - tp;
    tp += x;
    pr[n] = tp / (fp + tp + 2.220446049250313e-16);
    rc[n] = tp / npig;
    n++;
  }
  return n;
}

/**
 * One model's metric on one resample (weights = how often each image was drawn). COCO: per category and
 * threshold the curve points at the true positives (curvePoints), then the mean of the interpolated precision (AP)
 * or the final recall (AR) over categories and thresholds, -1 when nothing counts. Masks: the macro average, or
 * one class's mean.
 */
export function resampleValue(d: KernelData, w: ArrayLike<number>, pr: Float64Array, rc: Float64Array, cum: Float64Array): number {
  if (d.kind === 'mask') {
    if (d.classIndex! < 0) return macroAverage(d.matrix!, d.I!, d.C!, w);
    const perClass = new Float64Array(d.C!);
    macroAverage(d.matrix!, d.I!, d.C!, w, perClass);
    return perClass[d.classIndex!];
  }
  const KK = d.KK!;
  const TT = d.TT!;
  const recThrs = d.recThrs!;
  const R = recThrs.length;
  let sum = 0;
  let count = 0;
  for (let kk = 0; kk < KK; kk++) {
    const npig = weightedGroundTruth(d, kk, w);
    if (npig === 0) continue;
    if (d.ap) prefixCommon(d, kk, w, cum);
    for (let ti = 0; ti < TT; ti++) {
      if (d.ap) {
        const n = curvePoints(d, kk, ti, w, npig, pr, rc, cum);
        sum += precisionSum(pr, rc, n, recThrs);
        count += R;
      } else {
        // recall only needs the true-positive weight
        const ents = d.ents!;
        const e0 = d.entStart![kk];
        const slot = kk * TT + ti;
        let tp = 0;
        for (let j = d.tpStart![slot]; j < d.tpStart![slot + 1]; j++) tp += w[ents[e0 + d.tpPos![j]] >> 1];
        sum += tp / npig;
        count++;
      }
    }
  }
  return count ? sum / count : -1;
}

/** A resample's difference, or NaN when either model has no defined metric on it (the resample is dropped). */
export function resampleDifference(c: number, p: number): number {
  return !Number.isFinite(c) || !Number.isFinite(p) || c < 0 || p < 0 ? NaN : c - p;
}

/**
 * The worker: scores blocks of resamples for both models and posts the differences back. Plain JavaScript built
 * from the functions above, run with `new Worker(source, { eval: true })`, so it works unchanged from TypeScript
 * tests, esbuild-register and single-file ncc bundles (none can hand a worker a module path on disk).
 */
export const RESAMPLE_WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
${precisionSum.toString()}
${macroAverage.toString()}
${weightedGroundTruth.toString()}
${prefixCommon.toString()}
${curvePoints.toString()}
${resampleValue.toString()}
${resampleDifference.toString()}
const { units, candidate, production, longest, entries } = workerData;
const pr = new Float64Array(longest);
const rc = new Float64Array(longest);
const cum = new Float64Array(entries);
parentPort.on('message', (m) => {
  const diffs = new Float64Array(m.count);
  for (let b = 0; b < m.count; b++) {
    const w = m.weights.subarray(b * units, (b + 1) * units);
    diffs[b] = ${resampleDifference.name}(${resampleValue.name}(candidate, w, pr, rc, cum), ${resampleValue.name}(production, w, pr, rc, cum));
  }
  parentPort.postMessage({ first: m.first, diffs }, [diffs.buffer]);
});
`;
