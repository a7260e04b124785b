import type { MatchTable } from './match';
import { EPS } from './numeric';

/** COCOeval.eval: precision [T][R][K][A][M] and recall [T][K][A][M], -1 where a category has nothing to count. */
export interface Accumulated {
  readonly T: number;
  readonly R: number;
  readonly K: number;
  readonly A: number;
  readonly M: number;
  readonly precision: Float64Array;
  readonly recall: Float64Array;
}

/** Scratch buffers reused across calls, so resampling allocates nothing per resample. */
export class CurveScratch {
  prAt = new Float64Array(0);
  rcAt = new Float64Array(0);
  ensure(n: number): void {
    if (this.prAt.length < n) {
      this.prAt = new Float64Array(n);
      this.rcAt = new Float64Array(n);
    }
  }
}

/**
 * One precision/recall curve (one category, area range, maxDets, threshold) from the score-ordered entries,
 * exactly as accumulate(): cumulative tp/fp, pr = tp/(tp+fp+eps), the monotone envelope, then precision at the
 * first point whose recall reaches each recall threshold (np.searchsorted side='left').
 * Only true positives are recorded: recall rises only at a true positive, and a false positive never has higher
 * precision than the point before it, so neither the envelope nor a searchsorted result can land elsewhere.
 * Ignored entries change nothing for the same reason. With `weight`, an image counts weight[i] times (a
 * bootstrap resample); null is weight 1 everywhere. Writes precision into q (R values, 0 where recall is never
 * reached) and returns the final recall, or -1 when nothing counts (npig = 0).
 */
export function curve(
  table: MatchTable,
  k: number,
  a: number,
  maxDet: number,
  t: number,
  npig: number,
  recThrs: Float64Array,
  q: Float64Array | null,
  qOffset: number,
  qStride: number,
  scratch: CurveScratch,
  weight: ArrayLike<number> | null,
): number {
  if (npig === 0) return -1;
  const { A, T, catStart, codes, rank, img } = table;
  const s0 = catStart[k];
  const s1 = catStart[k + 1];
  scratch.ensure(s1 - s0);
  const pr = scratch.prAt;
  const rc = scratch.rcAt;
  let tp = 0;
  let fp = 0;
  let n = 0;
  const stride = A * T;
  let at = s0 * stride + a * T + t;
  for (let e = s0; e < s1; e++, at += stride) {
    if (rank[e] >= maxDet) continue;
    const code = codes[at];
    if (code === 2) continue;
    const w = weight ? weight[img[e]] : 1;
    if (code === 1) {
      if (w === 0) continue;
      tp += w;
      pr[n] = tp / (fp + tp + EPS);
      rc[n] = tp / npig;
      n++;
    } else fp += w;
  }
  if (q) fillPrecision(pr, rc, n, recThrs, q, qOffset, qStride);
  return n ? rc[n - 1] : 0;
}

/** Envelope (max precision to the right) and precision at each recall threshold, from the true-positive points. */
export function fillPrecision(
  pr: Float64Array,
  rc: Float64Array,
  n: number,
  recThrs: Float64Array,
  q: Float64Array,
  qOffset: number,
  qStride: number,
): void {
  for (let i = n - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
  const R = recThrs.length;
  let pi = 0;
  for (let r = 0; r < R; r++) {
    const thr = recThrs[r];
    while (pi < n && rc[pi] < thr) pi++;
    q[qOffset + r * qStride] = pi < n ? pr[pi] : 0;
  }
}

export function accumulate(table: MatchTable): Accumulated {
  const p = table.params;
  const { K, A } = table;
  const T = p.iouThrs.length;
  const R = p.recThrs.length;
  const M = p.maxDets.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const scratch = new CurveScratch();
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const npig = table.npig[k * A + a];
      if (npig === 0) continue;
      for (let m = 0; m < M; m++) {
        for (let t = 0; t < T; t++) {
          // precision[t, r, k, a, m] at offset ((t*R + r)*K + k)*A*M + a*M + m
          const off = (t * R * K + k) * A * M + a * M + m;
          recall[((t * K + k) * A + a) * M + m] = curve(
            table,
            k,
            a,
            p.maxDets[m],
            t,
            npig,
            p.recThrs,
            precision,
            off,
            K * A * M,
            scratch,
            null,
          );
        }
      }
    }
  }
  return { T, R, K, A, M, precision, recall };
}
