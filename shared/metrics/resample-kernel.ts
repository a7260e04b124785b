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
export function macroAverage(matrix: Float64Array, images: number, classes: number, weights: ArrayLike<number> | null, perClass?: Float64Array): number {
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
  listStart?: Int32Array;
  lists?: Int32Array;
  gtStart?: Int32Array;
  gtImg?: Int32Array;
  gtCount?: Float64Array;
  matrix?: Float64Array;
  I?: number;
  C?: number;
  classIndex?: number;
}

/**
 * One model's metric on one resample (weights = how often each image was drawn). COCO: each category's
 * score-ordered counted entries re-walked with the weights (recorded at true positives only; see curve() in
 * coco/accumulate.ts), the mean of the interpolated precision (AP) or the final recall (AR) over categories and
 * thresholds, -1 when nothing counts. Masks: the macro average, or one class's mean.
 */
export function resampleValue(d: KernelData, w: ArrayLike<number>, pr: Float64Array, rc: Float64Array): number {
  if (d.kind === 'mask') {
    if (d.classIndex! < 0) return macroAverage(d.matrix!, d.I!, d.C!, w);
    const perClass = new Float64Array(d.C!);
    macroAverage(d.matrix!, d.I!, d.C!, w, perClass);
    return perClass[d.classIndex!];
  }
  const KK = d.KK!;
  const TT = d.TT!;
  const lists = d.lists!;
  const listStart = d.listStart!;
  const gtStart = d.gtStart!;
  const gtImg = d.gtImg!;
  const gtCount = d.gtCount!;
  const recThrs = d.recThrs!;
  const R = recThrs.length;
  let sum = 0;
  let count = 0;
  for (let kk = 0; kk < KK; kk++) {
    let npig = 0;
    for (let j = gtStart[kk]; j < gtStart[kk + 1]; j++) npig += w[gtImg[j]] * gtCount[j];
    if (npig === 0) continue;
    for (let ti = 0; ti < TT; ti++) {
      const l0 = listStart[kk * TT + ti];
      const l1 = listStart[kk * TT + ti + 1];
      let tp = 0, fp = 0, n = 0;
      for (let j = l0; j < l1; j++) {
        const v = lists[j];
        const x = w[v >> 1];
        if ((v & 1) === 0) fp += x;
        else if (x !== 0) {
          tp += x;
          pr[n] = tp / (fp + tp + 2.220446049250313e-16);
          rc[n] = tp / npig;
          n++;
        }
      }
      if (d.ap) {
        sum += precisionSum(pr, rc, n, recThrs);
        count += R;
      } else {
        sum += n ? rc[n - 1] : 0;
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
${resampleValue.toString()}
${resampleDifference.toString()}
const { units, candidate, production, longest } = workerData;
const pr = new Float64Array(longest);
const rc = new Float64Array(longest);
parentPort.on('message', (m) => {
  const diffs = new Float64Array(m.count);
  for (let b = 0; b < m.count; b++) {
    const w = m.weights.subarray(b * units, (b + 1) * units);
    diffs[b] = ${resampleDifference.name}(${resampleValue.name}(candidate, w, pr, rc), ${resampleValue.name}(production, w, pr, rc));
  }
  parentPort.postMessage({ first: m.first, diffs }, [diffs.buffer]);
});
`;
