import type { CocoDetections, CocoGroundTruth, IouType } from './load';
import type { CocoParams } from './params';
import { bboxIou, rleIou } from './rle';

/** Outcome of a detection at one IoU threshold and area range, as accumulate() reads dtMatches/dtIgnore. */
export const FP = 0;
export const TP = 1;
export const IGNORED = 2;

/**
 * COCOeval.evaluate() in columns. Every kept detection becomes an entry; entries are grouped by category and,
 * within a category, ordered exactly as accumulate() orders them: by score descending, ties broken by image
 * order and then by rank within the image (np.argsort(-scores, kind='mergesort') on the concatenation).
 */
export interface MatchTable {
  readonly params: CocoParams;
  /** Categories evaluated (1 when useCats is off). */
  readonly K: number;
  readonly I: number;
  readonly A: number;
  readonly T: number;
  /** Entries of category k are catStart[k] .. catStart[k+1]-1. */
  readonly catStart: Int32Array;
  readonly score: Float64Array;
  readonly img: Int32Array;
  /** Position of the detection in its image's score order (compared with maxDets). */
  readonly rank: Int32Array;
  /** FP/TP/IGNORED per entry, area range and threshold: codes[(e*A + a)*T + t]. */
  readonly codes: Uint8Array;
  /** Ground truths that count (not crowd, inside the area range) per category and area: npig[k*A + a]. */
  readonly npig: Float64Array;
  /** The same per image, for resampling: npigImg[(k*A + a)*I + i]. */
  readonly npigImg: Int32Array;
}

interface Groups {
  start: Int32Array;
  items: Int32Array;
}

/**
 * Counting sort of annotation indices into (category, image) groups, keeping file order inside a group. With
 * useCats off a group is one image, ordered by category first, as pycocotools concatenates them.
 */
function group(n: number, img: Int32Array, cat: Int32Array, I: number, K: number, useCats: boolean): Groups {
  let order: Int32Array;
  if (useCats) {
    order = new Int32Array(n);
    for (let j = 0; j < n; j++) order[j] = j;
  } else {
    order = countingSort(n, (j) => cat[j], K, null);
  }
  const groups = useCats ? K * I : I;
  const key = useCats ? (j: number) => cat[j] * I + img[j] : (j: number) => img[j];
  const start = new Int32Array(groups + 1);
  for (let j = 0; j < n; j++) start[key(j) + 1]++;
  for (let g = 0; g < groups; g++) start[g + 1] += start[g];
  const fill = start.slice(0, groups);
  const items = new Int32Array(n);
  for (let q = 0; q < n; q++) {
    const j = order[q];
    items[fill[key(j)]++] = j;
  }
  return { start, items };
}

function countingSort(n: number, key: (j: number) => number, buckets: number, input: Int32Array | null): Int32Array {
  const start = new Int32Array(buckets + 1);
  for (let j = 0; j < n; j++) start[key(input ? input[j] : j) + 1]++;
  for (let b = 0; b < buckets; b++) start[b + 1] += start[b];
  const out = new Int32Array(n);
  for (let q = 0; q < n; q++) {
    const j = input ? input[q] : q;
    out[start[key(j)]++] = j;
  }
  return out;
}

/** Stable sort of idx[0..n) by score descending (insertion sort for the small groups that dominate). */
function sortByScoreDesc(idx: Int32Array, n: number, score: Float64Array): void {
  if (n > 64) {
    const arr = Array.from(idx.subarray(0, n));
    arr.sort((a, b) => score[b] - score[a]); // Array.prototype.sort is stable
    idx.set(arr);
    return;
  }
  for (let i = 1; i < n; i++) {
    const v = idx[i];
    const s = score[v];
    let j = i - 1;
    while (j >= 0 && score[idx[j]] < s) {
      idx[j + 1] = idx[j];
      j--;
    }
    idx[j + 1] = v;
  }
}

export function matchDetections(gt: CocoGroundTruth, dt: CocoDetections, iouType: IouType, params: CocoParams): MatchTable {
  const useCats = params.useCats;
  const I = gt.imgIds.length;
  const K = useCats ? gt.catIds.length : 1;
  const A = params.areaRng.length;
  const T = params.iouThrs.length;
  const maxDet = params.maxDets[params.maxDets.length - 1];
  const thr = new Float64Array(T);
  for (let t = 0; t < T; t++) thr[t] = Math.min(params.iouThrs[t], 1 - 1e-10);
  const areaLo = new Float64Array(A);
  const areaHi = new Float64Array(A);
  params.areaRng.forEach(([lo, hi], a) => {
    areaLo[a] = lo;
    areaHi[a] = hi;
  });

  const gg = group(gt.n, gt.img, gt.cat, I, gt.catIds.length, useCats);
  const dg = group(dt.n, dt.img, dt.cat, I, gt.catIds.length, useCats);

  // Masks are compared only where their boxes overlap (rleIou does the same through bbIou).
  const gtMaskBox = gt.maskBox;
  const dtMaskBox = dt.maskBox;
  if (iouType === 'segm' && (!gtMaskBox || !dtMaskBox || !gt.rle || !dt.rle))
    throw new Error('segm evaluation needs ground truth and detections loaded with iouType segm');

  // Entries in category-then-image order; re-sorted per category at the end.
  let cap = 0;
  for (let gi = 0; gi < dg.start.length - 1; gi++) cap += Math.min(dg.start[gi + 1] - dg.start[gi], maxDet);
  const eScore = new Float64Array(cap);
  const eImg = new Int32Array(cap);
  const eRank = new Int32Array(cap);
  const eCodes = new Uint8Array(cap * A * T);
  const catStart = new Int32Array(K + 1);
  const npig = new Float64Array(K * A);
  const npigImg = new Int32Array(K * A * I);

  let maxG = 0;
  let maxD = 0;
  for (let gi = 0; gi < gg.start.length - 1; gi++) maxG = Math.max(maxG, gg.start[gi + 1] - gg.start[gi]);
  for (let gi = 0; gi < dg.start.length - 1; gi++) maxD = Math.max(maxD, dg.start[gi + 1] - dg.start[gi]);
  const dOrder = new Int32Array(maxD);
  const ious = new Float64Array(Math.min(maxD, maxDet) * maxG);
  const gOrder = new Int32Array(maxG);
  const gIgn = new Uint8Array(maxG);
  const gCrowd = new Uint8Array(maxG);
  const gIdSorted = new Float64Array(maxG);
  const gMatched = new Uint8Array(maxG);
  const ignOfGt = new Uint8Array(maxG);

  let e = 0;
  for (let k = 0; k < K; k++) {
    catStart[k] = e;
    for (let i = 0; i < I; i++) {
      const grp = useCats ? k * I + i : i;
      const g0 = gg.start[grp];
      const G = gg.start[grp + 1] - g0;
      const d0 = dg.start[grp];
      const Dall = dg.start[grp + 1] - d0;
      if (G === 0 && Dall === 0) continue;
      for (let q = 0; q < Dall; q++) dOrder[q] = dg.items[d0 + q];
      sortByScoreDesc(dOrder, Dall, dt.score);
      const D = Math.min(Dall, maxDet);

      if (D > 0 && G > 0) {
        for (let q = 0; q < D; q++) {
          const dj = dOrder[q];
          for (let p = 0; p < G; p++) {
            const gj = gg.items[g0 + p];
            const crowd = gt.crowd[gj] === 1;
            let v: number;
            if (iouType === 'bbox') {
              v = bboxIou(
                dt.box[dj * 4],
                dt.box[dj * 4 + 1],
                dt.box[dj * 4 + 2],
                dt.box[dj * 4 + 3],
                gt.box[gj * 4],
                gt.box[gj * 4 + 1],
                gt.box[gj * 4 + 2],
                gt.box[gj * 4 + 3],
                crowd,
              );
            } else {
              const db = dtMaskBox!;
              const gb = gtMaskBox!;
              v = bboxIou(
                db[dj * 4],
                db[dj * 4 + 1],
                db[dj * 4 + 2],
                db[dj * 4 + 3],
                gb[gj * 4],
                gb[gj * 4 + 1],
                gb[gj * 4 + 2],
                gb[gj * 4 + 3],
                crowd,
              );
              if (v > 0) {
                const dr = dt.rle![dj];
                const gr = gt.rle![gj];
                v = dr.h !== gr.h || dr.w !== gr.w ? -1 : rleIou(dr, gr, crowd);
              }
            }
            ious[q * G + p] = v;
          }
        }
      }

      for (let q = 0; q < D; q++) {
        const dj = dOrder[q];
        eScore[e + q] = dt.score[dj];
        eImg[e + q] = i;
        eRank[e + q] = q;
      }

      for (let a = 0; a < A; a++) {
        const lo = areaLo[a];
        const hi = areaHi[a];
        // gt sorted with ignored ones last, stable (np.argsort(..., kind='mergesort'))
        let nIg = 0;
        for (let p = 0; p < G; p++) {
          const gj = gg.items[g0 + p];
          const ar = gt.area[gj];
          ignOfGt[p] = gt.crowd[gj] || ar < lo || ar > hi ? 1 : 0;
          if (ignOfGt[p]) nIg++;
        }
        let u = 0;
        let w = G - nIg;
        for (let p = 0; p < G; p++) {
          const pos = ignOfGt[p] ? w++ : u++;
          const gj = gg.items[g0 + p];
          gOrder[pos] = p;
          gIgn[pos] = ignOfGt[p];
          gCrowd[pos] = gt.crowd[gj];
          gIdSorted[pos] = gt.id[gj];
        }
        const counted = G - nIg;
        npig[k * A + a] += counted;
        npigImg[(k * A + a) * I + i] += counted;

        if (G === 0) {
          // nothing to match: unmatched detections, ignored when outside the area range
          for (let q = 0; q < D; q++) {
            const ar = dt.area[dOrder[q]];
            eCodes.fill(ar < lo || ar > hi ? IGNORED : FP, ((e + q) * A + a) * T, ((e + q) * A + a) * T + T);
          }
          continue;
        }
        for (let t = 0; t < T; t++) {
          gMatched.fill(0, 0, G);
          const t0 = thr[t];
          for (let q = 0; q < D; q++) {
            let best = t0;
            let m = -1;
            if (G > 0) {
              const row = q * G;
              for (let pos = 0; pos < G; pos++) {
                if (gMatched[pos] && !gCrowd[pos]) continue;
                if (m > -1 && gIgn[m] === 0 && gIgn[pos] === 1) break;
                const v = ious[row + gOrder[pos]];
                if (v < best) continue;
                best = v;
                m = pos;
              }
            }
            const ar = dt.area[dOrder[q]];
            const outside = ar < lo || ar > hi;
            let code: number;
            if (m === -1) code = outside ? IGNORED : FP;
            else {
              gMatched[m] = 1;
              // dtm holds the matched gt id: a gt with id 0 reads as "unmatched" in pycocotools
              if (gIgn[m]) code = IGNORED;
              else if (gIdSorted[m] !== 0) code = TP;
              else code = outside ? IGNORED : FP;
            }
            eCodes[((e + q) * A + a) * T + t] = code;
          }
        }
      }
      e += D;
    }
  }
  catStart[K] = e;

  // Per category: stable sort by score, descending, over the image-ordered concatenation.
  const N = e;
  const score = new Float64Array(N);
  const img = new Int32Array(N);
  const rank = new Int32Array(N);
  const AT = A * T;
  const codes = new Uint8Array(N * AT);
  for (let k = 0; k < K; k++) {
    const s0 = catStart[k];
    const n = catStart[k + 1] - s0;
    const order = stableOrderByScore(eScore, s0, n);
    for (let q = 0; q < n; q++) {
      const src = s0 + order[q];
      const dst = s0 + q;
      score[dst] = eScore[src];
      img[dst] = eImg[src];
      rank[dst] = eRank[src];
      const from = src * AT;
      const to = dst * AT;
      for (let j = 0; j < AT; j++) codes[to + j] = eCodes[from + j];
    }
  }
  return { params, K, I, A, T, catStart, score, img, rank, codes, npig, npigImg };
}

/**
 * Offsets 0..n-1 of s[s0..s0+n) ordered by score descending, ties by position: what np.argsort(-s,
 * kind='mergesort') gives. A natural merge sort: the input is already a series of descending runs (one per image),
 * and merging takes from the left run on ties, which keeps it stable.
 */
export function stableOrderByScore(s: Float64Array, s0: number, n: number): Uint32Array {
  let a = new Uint32Array(n);
  let b = new Uint32Array(n);
  for (let q = 0; q < n; q++) a[q] = q;
  if (n < 2) return a;
  // run boundaries: a new run starts where the score rises
  const bounds: number[] = [0];
  for (let q = 1; q < n; q++) if (s[s0 + q] > s[s0 + q - 1]) bounds.push(q);
  bounds.push(n);
  let runs = bounds;
  while (runs.length > 2) {
    const next: number[] = [0];
    for (let r = 0; r + 1 < runs.length; r += 2) {
      const lo = runs[r];
      const mid = runs[r + 1];
      const hi = r + 2 < runs.length ? runs[r + 2] : mid;
      let i = lo;
      let j = mid;
      let o = lo;
      while (i < mid && j < hi) {
        // take from the right run only when strictly higher: ties keep the earlier (left) entry first
        if (s[s0 + a[j]] > s[s0 + a[i]]) b[o++] = a[j++];
        else b[o++] = a[i++];
      }
      while (i < mid) b[o++] = a[i++];
      while (j < hi) b[o++] = a[j++];
      next.push(hi);
    }
    if (next[next.length - 1] !== n) next.push(n);
    const t = a;
    a = b;
    b = t;
    runs = next;
  }
  return a;
}
