import type { LabelCounts } from './overlap';

/**
 * What a class scores in an image where it is absent from the ground truth:
 * - 'skip' (default): both empty → left out of every average; predicted but absent → 0.
 * - 'one': both empty → 1 (a correct "nothing here"); predicted but absent → 0. MONAI ignore_empty=False.
 * - 'zero': both empty → 0; predicted but absent → 0.
 * - 'skip-empty-truth': absent from the ground truth → left out, whatever was predicted. MONAI ignore_empty=True.
 */
export type EmptyRule = 'skip' | 'one' | 'zero' | 'skip-empty-truth';
export const EMPTY_RULES: readonly EmptyRule[] = ['skip', 'one', 'zero', 'skip-empty-truth'];

/** Dice 2|P∩G|/(|P|+|G|); NaN means "left out" under the rule. */
export function diceScore(intersection: number, predicted: number, truth: number, rule: EmptyRule): number {
  if (truth === 0) {
    if (rule === 'skip-empty-truth') return NaN;
    if (predicted === 0) return rule === 'one' ? 1 : rule === 'zero' ? 0 : NaN;
  }
  return (2 * intersection) / (predicted + truth);
}

/** IoU |P∩G|/|P∪G| with the same empty rule. */
export function iouScore(intersection: number, predicted: number, truth: number, rule: EmptyRule): number {
  if (truth === 0) {
    if (rule === 'skip-empty-truth') return NaN;
    if (predicted === 0) return rule === 'one' ? 1 : rule === 'zero' ? 0 : NaN;
  }
  return intersection / (predicted + truth - intersection);
}

export type MaskMetric = 'dice' | 'iou';

export function score(metric: MaskMetric, intersection: number, predicted: number, truth: number, rule: EmptyRule): number {
  return metric === 'dice' ? diceScore(intersection, predicted, truth, rule) : iouScore(intersection, predicted, truth, rule);
}

/** Per-image, per-class counts of a whole test set: counts[(i*C + c)*3 + {0: ∩, 1: predicted, 2: truth}]. */
export interface CountTable {
  readonly images: readonly string[];
  readonly classes: readonly number[];
  readonly counts: Float64Array;
}

export function buildCountTable(images: readonly string[], perImage: readonly LabelCounts[], classes: readonly number[]): CountTable {
  const C = classes.length;
  const counts = new Float64Array(images.length * C * 3);
  perImage.forEach((lc, i) => {
    classes.forEach((label, c) => {
      if (label >= lc.size) return;
      const o = (i * C + c) * 3;
      counts[o] = lc.intersection[label];
      counts[o + 1] = lc.predicted[label];
      counts[o + 2] = lc.truth[label];
    });
  });
  return { images, classes, counts };
}

/** Score of every (image, class), NaN where the empty rule leaves it out: [i*C + c]. */
export function scoreMatrix(table: CountTable, metric: MaskMetric, rule: EmptyRule): Float64Array {
  const C = table.classes.length;
  const n = table.images.length * C;
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = score(metric, table.counts[j * 3], table.counts[j * 3 + 1], table.counts[j * 3 + 2], rule);
  return out;
}

export { macroAverage } from '../resample-kernel';

/** Pooled score of summed counts (micro average) for a class, or over all classes with c = -1. */
export function microScore(table: CountTable, metric: MaskMetric, rule: EmptyRule, c: number): number {
  const C = table.classes.length;
  let inter = 0,
    pred = 0,
    truth = 0;
  for (let i = 0; i < table.images.length; i++) {
    for (let cc = c < 0 ? 0 : c; cc < (c < 0 ? C : c + 1); cc++) {
      const o = (i * C + cc) * 3;
      inter += table.counts[o];
      pred += table.counts[o + 1];
      truth += table.counts[o + 2];
    }
  }
  return score(metric, inter, pred, truth, rule);
}

export type Reduction = 'none' | 'mean' | 'sum' | 'mean_batch' | 'sum_batch' | 'mean_channel' | 'sum_channel';

/**
 * MONAI's do_metric_reduction over a batch×class matrix with NaN for left-out entries: 'mean' averages each
 * image over its scored classes, then the images that have any; '_batch' reduces over images per class,
 * '_channel' over classes per image. A reduction with nothing to average gives 0, as MONAI does.
 */
export function reduceScores(matrix: readonly (readonly number[])[], reduction: Reduction): number | number[] | number[][] {
  const B = matrix.length;
  const C = B ? matrix[0].length : 0;
  if (reduction === 'none') return matrix.map((r) => r.slice());
  const valid = (v: number) => !Number.isNaN(v);
  const rowStats = matrix.map((r) => ({ sum: r.filter(valid).reduce((s, v) => s + v, 0), n: r.filter(valid).length }));
  if (reduction === 'mean_channel') return rowStats.map((s) => (s.n ? s.sum / s.n : 0));
  if (reduction === 'sum_channel') return rowStats.map((s) => s.sum);
  const colStats = Array.from({ length: C }, (_, c) => {
    const col = matrix.map((r) => r[c]).filter(valid);
    return { sum: col.reduce((s, v) => s + v, 0), n: col.length };
  });
  if (reduction === 'mean_batch') return colStats.map((s) => (s.n ? s.sum / s.n : 0));
  if (reduction === 'sum_batch') return colStats.map((s) => s.sum);
  if (reduction === 'sum') return rowStats.reduce((s, r) => s + r.sum, 0);
  const perImage = rowStats.filter((s) => s.n > 0).map((s) => s.sum / s.n);
  return perImage.length ? perImage.reduce((s, v) => s + v, 0) / perImage.length : 0;
}
