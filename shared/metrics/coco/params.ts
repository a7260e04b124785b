import { linspace } from './numeric';

/** COCOeval's default detection parameters (Params.setDetParams). */
export interface CocoParams {
  /** np.linspace(.5, 0.95, 10): 0.5, 0.55, ... with numpy's exact float values. */
  readonly iouThrs: Float64Array;
  /** np.linspace(0, 1, 101). */
  readonly recThrs: Float64Array;
  readonly maxDets: readonly number[];
  readonly areaRng: readonly (readonly [number, number])[];
  readonly areaRngLbl: readonly string[];
  readonly useCats: boolean;
}

export function defaultParams(useCats = true): CocoParams {
  return {
    iouThrs: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
    recThrs: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
    maxDets: [1, 10, 100],
    areaRng: [
      [0 ** 2, 1e5 ** 2],
      [0 ** 2, 32 ** 2],
      [32 ** 2, 96 ** 2],
      [96 ** 2, 1e5 ** 2],
    ],
    areaRngLbl: ['all', 'small', 'medium', 'large'],
    useCats,
  };
}

export const STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;
export type StatName = (typeof STAT_NAMES)[number];

/** What each of the 12 summarize() numbers averages: AP or AR, one IoU threshold or all, area range, maxDets. */
export interface StatSpec {
  readonly ap: boolean;
  readonly iouThr?: number;
  readonly area: string;
  readonly maxDets: number;
}

export const STAT_SPECS: Readonly<Record<StatName, StatSpec>> = {
  AP: { ap: true, area: 'all', maxDets: 100 },
  AP50: { ap: true, iouThr: 0.5, area: 'all', maxDets: 100 },
  AP75: { ap: true, iouThr: 0.75, area: 'all', maxDets: 100 },
  APs: { ap: true, area: 'small', maxDets: 100 },
  APm: { ap: true, area: 'medium', maxDets: 100 },
  APl: { ap: true, area: 'large', maxDets: 100 },
  AR1: { ap: false, area: 'all', maxDets: 1 },
  AR10: { ap: false, area: 'all', maxDets: 10 },
  AR100: { ap: false, area: 'all', maxDets: 100 },
  ARs: { ap: false, area: 'small', maxDets: 100 },
  ARm: { ap: false, area: 'medium', maxDets: 100 },
  ARl: { ap: false, area: 'large', maxDets: 100 },
};

/** Indices of the thresholds a stat averages: all, or those equal to iouThr (np.where(iouThr == p.iouThrs)). */
export function thresholdIndices(p: CocoParams, iouThr: number | undefined): number[] {
  const out: number[] = [];
  for (let t = 0; t < p.iouThrs.length; t++) if (iouThr === undefined || p.iouThrs[t] === iouThr) out.push(t);
  return out;
}
