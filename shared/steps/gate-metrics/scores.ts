import { cocoStatMetric, maskMetric, type WeightedMetric } from '../../metrics/bootstrap';
import { evaluateCoco, precisionRecallCurve } from '../../metrics/coco/evaluate';
import { loadDetections, type CocoGroundTruth, type IouType } from '../../metrics/coco/load';
import { STAT_NAMES, type CocoParams, type StatName } from '../../metrics/coco/params';
import { summarizeStat } from '../../metrics/coco/summarize';
import { evaluateCounts, type MaskEvalOptions } from '../../metrics/masks/evaluate';
import type { LabelCounts } from '../../metrics/masks/overlap';
import type { EmptyRule } from '../../metrics/masks/scores';
import { testSetId, type TestSetId } from '../../metrics/test-set';

/** One class's headline metric; null where the class has nothing to score (pycocotools' -1). */
export interface ClassScore {
  readonly id: number | string;
  readonly name: string;
  readonly value: number | null;
}

/** What the gate knows about one model on the test set. */
export interface ModelScores {
  readonly metric: string;
  readonly value: number;
  readonly perClass: ClassScore[];
  /** Identifies the test set (image ids / mask names), to refuse comparing numbers from different sets. */
  readonly testSet: TestSetId;
  /** All 12 COCO numbers (detection) or Dice/IoU variants (segmentation), for the report. */
  readonly details: Record<string, number | null>;
  /** Mean precision at each recall threshold, IoU .50 and .50:.95 (detection only). */
  readonly curves?: { recall: number[]; precision50: number[]; precision: number[] };
  /** The headline metric with image weights, for the bootstrap. */
  readonly weighted?: WeightedMetric;
  readonly images?: number;
}

const orNull = (v: number) => (v < 0 || Number.isNaN(v) ? null : v);

export function scoreDetections(
  gt: CocoGroundTruth,
  predictions: string,
  json: unknown,
  iouType: IouType,
  metric: StatName,
  params?: CocoParams,
): ModelScores {
  const dt = loadDetections(json, predictions, gt, iouType);
  const ev = evaluateCoco(gt, dt, { iouType, params });
  const acc = ev.accumulated;
  const t50 = ev.params.iouThrs.indexOf(0.5);
  const all = precisionRecallCurve(ev);
  // the chart shows IoU .50 and the whole range; without a .50 threshold there is no chart (per-class bars instead)
  const at50 = t50 >= 0 ? precisionRecallCurve(ev, { iouIndex: t50 }) : undefined;
  return {
    metric,
    value: ev.stats[STAT_NAMES.indexOf(metric)],
    // with useCats off there is one pooled "category": no per-class values
    perClass: ev.useCats
      ? gt.catIds.map((id, k) => ({ id, name: gt.catNames[k], value: orNull(summarizeStat(acc, ev.params, metric, k)) }))
      : [],
    testSet: testSetId(gt.imgIds),
    details: Object.fromEntries(STAT_NAMES.map((n, i) => [n, ev.stats[i]])),
    curves: at50 && { recall: all.recall, precision50: at50.precision, precision: all.precision },
    weighted: cocoStatMetric(ev.table, metric),
    images: gt.imgIds.length,
  };
}

/** Labels present in any ground truth or prediction of either model, so both models are scored on one class list. */
export function sharedClasses(countSets: readonly (readonly LabelCounts[])[], includeBackground: boolean): number[] {
  const seen = new Set<number>();
  for (const counts of countSets)
    for (const c of counts) for (let l = 0; l < c.size; l++) if (c.truth[l] > 0 || c.predicted[l] > 0) seen.add(l);
  if (!includeBackground) seen.delete(0);
  return [...seen].sort((a, b) => a - b);
}

export function scoreMasks(
  names: readonly string[],
  counts: readonly LabelCounts[],
  metric: 'dice' | 'iou',
  options: MaskEvalOptions & { emptyRule: EmptyRule; classes: readonly number[]; classNames?: ReadonlyMap<number, string> },
): ModelScores {
  const ev = evaluateCounts(names, counts, options);
  const value = metric === 'dice' ? ev.dice : ev.iou;
  return {
    metric,
    value: value ?? -1,
    perClass: ev.perClass.map((c) => ({
      id: c.label,
      name: options.classNames?.get(c.label) ?? `class ${c.label}`,
      value: metric === 'dice' ? c.dice : c.iou,
    })),
    testSet: testSetId(names),
    details: { dice: ev.dice, iou: ev.iou, microDice: ev.microDice, microIou: ev.microIou, meanDice: ev.meanDice, meanIou: ev.meanIou },
    weighted: maskMetric(ev.table, metric, options.emptyRule),
    images: names.length,
  };
}
