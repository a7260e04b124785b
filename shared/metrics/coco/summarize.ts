import type { Accumulated } from './accumulate';
import { meanOfValid } from './numeric';
import { STAT_NAMES, statSpecs, thresholdIndices, type CocoParams, type StatName } from './params';

/**
 * One summarize() number: the mean of the selected precision (or recall) values above -1, in numpy's C order
 * (threshold, recall threshold, category), or -1 when none is left. `k` restricts it to one category.
 */
export function summarizeStat(acc: Accumulated, p: CocoParams, name: StatName, k?: number): number {
  const spec = statSpecs(p)[name];
  const a = p.areaRngLbl.indexOf(spec.area);
  const m = p.maxDets.indexOf(spec.maxDets);
  if (a < 0 || m < 0) return -1;
  const ts = thresholdIndices(p, spec.iouThr);
  const { R, K, A, M } = acc;
  const ks = k === undefined ? Array.from({ length: K }, (_, i) => i) : [k];
  const values: number[] = [];
  for (const t of ts) {
    if (spec.ap) {
      for (let r = 0; r < R; r++) for (const kk of ks) values.push(acc.precision[((t * R + r) * K + kk) * A * M + a * M + m]);
    } else {
      for (const kk of ks) values.push(acc.recall[((t * K + kk) * A + a) * M + m]);
    }
  }
  return meanOfValid(values);
}

/** The 12 numbers of summarize() in pycocotools order. */
export function summarize(acc: Accumulated, p: CocoParams): number[] {
  return STAT_NAMES.map((name) => summarizeStat(acc, p, name));
}
