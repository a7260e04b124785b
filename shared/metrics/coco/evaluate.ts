import { accumulate, type Accumulated } from './accumulate';
import type { CocoDetections, CocoGroundTruth, Id, IouType } from './load';
import { matchDetections, type MatchTable } from './match';
import { cocoParams, STAT_NAMES, type CocoParams, type StatName } from './params';
import { summarize, summarizeStat } from './summarize';

export interface CategoryStats {
  readonly id: Id;
  readonly name: string;
  /** The 12 numbers restricted to this category (-1 where it has no ground truth in that setting). */
  readonly stats: number[];
  readonly AP: number;
  readonly AP50: number;
  readonly AP75: number;
  readonly AR100: number;
}

export interface CocoEvaluation {
  readonly iouType: IouType;
  readonly useCats: boolean;
  /** AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl: pycocotools' summarize() order. */
  readonly stats: number[];
  readonly statNames: readonly StatName[];
  /** Per ground-truth category (empty when useCats is off). */
  readonly perCategory: CategoryStats[];
  readonly params: CocoParams;
  readonly table: MatchTable;
  /** precision [T][R][K][A][M] and recall [T][K][A][M] as numpy lays them out, for PR plots. */
  readonly accumulated: Accumulated;
  readonly counts: { images: number; categories: number; groundTruth: number; detections: number };
}

/**
 * evaluate() + accumulate() + summarize() of pycocotools COCOeval. `params` are COCOeval's Params (built and
 * checked by cocoParams or parseCocoParams; the defaults when left out); `useCats`, when given, overrides theirs.
 */
export function evaluateCoco(
  gt: CocoGroundTruth,
  dt: CocoDetections,
  options: { iouType: IouType; useCats?: boolean; params?: CocoParams },
): CocoEvaluation {
  const base = options.params ?? cocoParams();
  const params = options.useCats === undefined || options.useCats === base.useCats ? base : { ...base, useCats: options.useCats };
  const useCats = params.useCats;
  const table = matchDetections(gt, dt, options.iouType, params);
  const acc = accumulate(table);
  const stats = summarize(acc, params);
  const perCategory: CategoryStats[] = useCats
    ? gt.catIds.map((id, k) => {
        const s = STAT_NAMES.map((name) => summarizeStat(acc, params, name, k));
        return { id, name: gt.catNames[k], stats: s, AP: s[0], AP50: s[1], AP75: s[2], AR100: s[8] };
      })
    : [];
  return {
    iouType: options.iouType,
    useCats,
    stats,
    statNames: STAT_NAMES,
    perCategory,
    params,
    table,
    accumulated: acc,
    counts: { images: gt.imgIds.length, categories: gt.catIds.length, groundTruth: gt.n, detections: dt.n },
  };
}

/**
 * Mean precision over categories at each recall threshold (area "all", or the first range without one; the
 * maxDets the AP50/AP75 stats read, maxDets[2]), for one IoU index or all.
 */
export function precisionRecallCurve(
  ev: CocoEvaluation,
  options: { iouIndex?: number; category?: number } = {},
): { recall: number[]; precision: number[] } {
  const { precision, T, R, K, A, M } = ev.accumulated;
  const m = 2;
  const area = Math.max(0, ev.params.areaRngLbl.indexOf('all'));
  const ts = options.iouIndex === undefined ? Array.from({ length: T }, (_, t) => t) : [options.iouIndex];
  const ks = options.category === undefined ? Array.from({ length: K }, (_, k) => k) : [options.category];
  const out: number[] = [];
  for (let r = 0; r < R; r++) {
    let sum = 0;
    let n = 0;
    for (const t of ts)
      for (const k of ks) {
        const v = precision[((t * R + r) * K + k) * A * M + area * M + m];
        if (v > -1) {
          sum += v;
          n++;
        }
      }
    out.push(n ? sum / n : -1);
  }
  return { recall: Array.from(ev.params.recThrs), precision: out };
}
