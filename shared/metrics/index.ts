/**
 * Metrics engine: COCO detection / instance-segmentation evaluation identical to pycocotools, semantic-mask
 * Dice/IoU, and the paired bootstrap the gate uses. Plain functions, so the CLI (`mlship eval coco|masks`) and
 * steps share them.
 */
import { evaluateCoco, type CocoEvaluation } from './coco/evaluate';
import { loadDetections, loadGroundTruth, readJsonFile, type IouType } from './coco/load';
import { describeParams, summaryLines, type CocoParams } from './coco/params';
import { evaluateMaskFolders, type MaskEvaluation, type MaskEvalOptions } from './masks/evaluate';
import { testSetId, type TestSetId } from './test-set';

export interface CocoFilesResult {
  readonly iouType: IouType;
  readonly useCats: boolean;
  /** The 12 numbers of pycocotools' summarize(), in its order. */
  readonly stats: number[];
  /** The same numbers by name (AP, AP50, ... ARl). */
  readonly metrics: Record<string, number>;
  readonly perCategory: { id: number | string; name: string; AP: number; AP50: number; AP75: number; AR100: number; stats: number[] }[];
  readonly counts: CocoEvaluation['counts'];
  /** Fingerprint of the ground truth's image ids; the gate refuses stored metrics of another test set. */
  readonly testSet: TestSetId;
  /** The COCOeval parameters used (maxDets sorted, as evaluate() sorts them). */
  readonly params: ReturnType<typeof describeParams>;
  /** The 12 lines pycocotools' summarize() prints for these parameters. */
  readonly summary: string[];
  /** Full evaluation (precision/recall arrays, match table); not part of the JSON output. */
  readonly evaluation: CocoEvaluation;
}

/** `mlship eval coco`: loads a COCO ground truth and a results file and evaluates them as COCOeval does. */
export function evaluateCocoFiles(options: {
  groundTruth: string;
  predictions: string;
  iouType: IouType;
  useCats?: boolean;
  params?: CocoParams;
}): CocoFilesResult {
  const gt = loadGroundTruth(readJsonFile(options.groundTruth, 'Ground-truth'), options.groundTruth, options.iouType);
  const dt = loadDetections(readJsonFile(options.predictions, 'Predictions'), options.predictions, gt, options.iouType);
  const ev = evaluateCoco(gt, dt, { iouType: options.iouType, useCats: options.useCats, params: options.params });
  return {
    iouType: ev.iouType,
    useCats: ev.useCats,
    stats: ev.stats,
    metrics: Object.fromEntries(ev.statNames.map((n, i) => [n, ev.stats[i]])),
    perCategory: ev.perCategory.map((c) => ({
      id: c.id,
      name: c.name,
      AP: c.AP,
      AP50: c.AP50,
      AP75: c.AP75,
      AR100: c.AR100,
      stats: c.stats,
    })),
    counts: ev.counts,
    testSet: testSetId(gt.imgIds),
    params: describeParams(ev.params),
    summary: summaryLines(ev.params, ev.stats),
    evaluation: ev,
  };
}

/** JSON-ready form of a COCO result (what `mlship eval coco --json` prints). */
export function cocoResultJson(r: CocoFilesResult): object {
  return {
    iouType: r.iouType,
    useCats: r.useCats,
    stats: r.stats,
    metrics: r.metrics,
    perCategory: r.perCategory,
    counts: r.counts,
    testSet: r.testSet,
    params: r.params,
  };
}

/** JSON-ready form of a mask evaluation (what `mlship eval masks --json` prints). */
export function maskResultJson(r: MaskEvaluation): object {
  return {
    dice: r.dice,
    iou: r.iou,
    microDice: r.microDice,
    microIou: r.microIou,
    meanDice: r.meanDice,
    meanIou: r.meanIou,
    emptyRule: r.emptyRule,
    classes: r.classes,
    perClass: r.perClass,
    perImage: r.perImage,
    testSet: testSetId(r.images),
  };
}

export { evaluateMaskFolders, type MaskEvaluation, type MaskEvalOptions };
export { evaluateMaskPairs, evaluateCounts, pairMaskFolders, countMaskFiles } from './masks/evaluate';
export { readLabelImage, decodeLabelImage, type LabelImage } from './masks/read';
export { countLabels, type LabelCounts } from './masks/overlap';
export { diceScore, iouScore, reduceScores, EMPTY_RULES, type EmptyRule, type MaskMetric, type Reduction } from './masks/scores';
export {
  evaluateCoco,
  precisionRecallCurve,
  loadGroundTruth,
  loadDetections,
  readJsonFile,
  STAT_NAMES,
  cocoParams,
  parseCocoParams,
  CocoParamsError,
  summaryLines,
  type CocoEvaluation,
  type CocoParams,
  type IouType,
  type StatName,
} from './coco';
export {
  pairedBootstrap,
  pairedBootstrapParallel,
  cocoStatMetric,
  maskMetric,
  quantileSorted,
  type BootstrapResult,
  type BootstrapOptions,
  type WeightedMetric,
} from './bootstrap';
export { Xoshiro128 } from '../core/random';
export { testSetId, type TestSetId } from './test-set';
