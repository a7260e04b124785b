import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StepError } from '../../core/errors';
import { countLabels, type LabelCounts } from './overlap';
import { MASK_EXTENSIONS, readLabelImage, type LabelImage } from './read';
import { buildCountTable, macroAverage, microScore, scoreMatrix, type CountTable, type EmptyRule } from './scores';

export interface MaskEvalOptions {
  /** Any non-zero pixel is foreground (class 1). Default false: pixel values are class labels. */
  readonly binary?: boolean;
  /** Score label 0 too. Default false. */
  readonly includeBackground?: boolean;
  /**
   * Labels to score; default every label present in a ground truth or prediction. A listed label absent from
   * every image is scored under the empty rule (MONAI scores every one-hot channel); a present label that is not
   * listed is an error.
   */
  readonly classes?: readonly number[];
  readonly emptyRule?: EmptyRule;
}

export interface MaskClassResult {
  readonly label: number;
  /** Mean over the images where the class is scored. */
  readonly dice: number | null;
  readonly iou: number | null;
  /** From pixel counts summed over all images. */
  readonly microDice: number | null;
  readonly microIou: number | null;
  /** Images where the class is scored under the empty rule. */
  readonly images: number;
}

export interface MaskEvaluation {
  readonly classes: readonly number[];
  readonly images: readonly string[];
  /** Mean over classes of the per-class mean Dice (the headline "dice"). */
  readonly dice: number | null;
  readonly iou: number | null;
  /** Pixel counts pooled over images and classes. */
  readonly microDice: number | null;
  readonly microIou: number | null;
  /** Per image mean over classes, then mean over images (MONAI reduction "mean"). */
  readonly meanDice: number | null;
  readonly meanIou: number | null;
  readonly perClass: MaskClassResult[];
  readonly perImage: { name: string; dice: number | null; iou: number | null }[];
  readonly emptyRule: EmptyRule;
  readonly table: CountTable;
  readonly diceMatrix: Float64Array;
  readonly iouMatrix: Float64Array;
}

const orNull = (v: number) => (Number.isNaN(v) ? null : v);

/** Labels seen in any ground truth or prediction (label 0 only with includeBackground). */
function presentLabels(counts: readonly LabelCounts[], includeBackground: boolean): number[] {
  const seen = new Set<number>();
  for (const c of counts) for (let l = 0; l < c.size; l++) if (c.truth[l] > 0 || c.predicted[l] > 0) seen.add(l);
  if (!includeBackground) seen.delete(0);
  return [...seen].sort((a, b) => a - b);
}

export function evaluateCounts(names: readonly string[], counts: readonly LabelCounts[], options: MaskEvalOptions = {}): MaskEvaluation {
  const rule = options.emptyRule ?? 'skip';
  const includeBackground = options.includeBackground ?? false;
  const classes = options.classes
    ? [...options.classes]
    : options.binary
      ? includeBackground
        ? [0, 1]
        : [1]
      : presentLabels(counts, includeBackground);
  if (options.classes) checkListed(names, counts, classes, includeBackground);
  const table = buildCountTable(names, counts, classes);
  const I = names.length;
  const C = classes.length;
  const diceMatrix = scoreMatrix(table, 'dice', rule);
  const iouMatrix = scoreMatrix(table, 'iou', rule);
  const perClassDice = new Float64Array(C);
  const perClassIou = new Float64Array(C);
  const dice = macroAverage(diceMatrix, I, C, null, perClassDice);
  const iou = macroAverage(iouMatrix, I, C, null, perClassIou);
  const perClass = classes.map((label, c) => {
    let n = 0;
    for (let i = 0; i < I; i++) if (!Number.isNaN(diceMatrix[i * C + c])) n++;
    return {
      label,
      dice: orNull(perClassDice[c]),
      iou: orNull(perClassIou[c]),
      microDice: orNull(microScore(table, 'dice', rule, c)),
      microIou: orNull(microScore(table, 'iou', rule, c)),
      images: n,
    };
  });
  const perImage = names.map((name, i) => {
    const mean = (m: Float64Array) => {
      let s = 0,
        n = 0;
      for (let c = 0; c < C; c++) {
        const v = m[i * C + c];
        if (!Number.isNaN(v)) {
          s += v;
          n++;
        }
      }
      return n ? s / n : NaN;
    };
    return { name, dice: orNull(mean(diceMatrix)), iou: orNull(mean(iouMatrix)) };
  });
  const meanOver = (key: 'dice' | 'iou') => {
    const v = perImage.map((p) => p[key]).filter((x): x is number => x !== null);
    return v.length ? v.reduce((s, x) => s + x, 0) / v.length : null;
  };
  return {
    classes,
    images: names,
    dice: orNull(dice),
    iou: orNull(iou),
    microDice: orNull(microScore(table, 'dice', rule, -1)),
    microIou: orNull(microScore(table, 'iou', rule, -1)),
    meanDice: meanOver('dice'),
    meanIou: meanOver('iou'),
    perClass,
    perImage,
    emptyRule: rule,
    table,
    diceMatrix,
    iouMatrix,
  };
}

/** A label present in a mask but missing from the given classes would silently drop out of the score: refuse it. */
function checkListed(
  names: readonly string[],
  counts: readonly LabelCounts[],
  classes: readonly number[],
  includeBackground: boolean,
): void {
  const listed = new Set(classes);
  counts.forEach((c, i) => {
    for (let l = includeBackground ? 0 : 1; l < c.size; l++) {
      if ((c.truth[l] > 0 || c.predicted[l] > 0) && !listed.has(l)) {
        throw new StepError(
          `Mask "${names[i]}" (ground truth or prediction) holds label ${l}, which the classes to score (${classes.join(', ')}) do not list.`,
          { hint: `Add label ${l} to the classes, or check that the masks hold class indices.` },
        );
      }
    }
  });
}

/** Scores label images held in memory (raw arrays). */
export function evaluateMaskPairs(
  pairs: readonly { name: string; truth: LabelImage; prediction: LabelImage }[],
  options: MaskEvalOptions = {},
): MaskEvaluation {
  const counts = pairs.map((p) => {
    if (
      p.truth.width !== p.prediction.width ||
      p.truth.height !== p.prediction.height ||
      p.truth.data.length !== p.prediction.data.length
    ) {
      throw new StepError(
        `Mask ${p.name}: prediction is ${p.prediction.width}x${p.prediction.height} but the ground truth is ${p.truth.width}x${p.truth.height}.`,
        {
          hint: 'Predict masks at the resolution of the ground truth (resize with nearest-neighbour before saving).',
        },
      );
    }
    return countLabelsChecked(p.truth, p.prediction, options.binary ?? false, p.name);
  });
  return evaluateCounts(
    pairs.map((p) => p.name),
    counts,
    options,
  );
}

function countLabelsChecked(truth: LabelImage, pred: LabelImage, binary: boolean, name: string): LabelCounts {
  try {
    return countLabels(truth.data, pred.data, binary);
  } catch (error) {
    if (error instanceof RangeError)
      throw new StepError(`Mask ${name}: ${error.message}.`, {
        hint: 'Semantic masks hold class indices; instance label images belong in COCO (segm) evaluation.',
      });
    throw error;
  }
}

/** Mask files under `dir` (recursively), keyed by relative path without extension. */
export async function listMasks(dir: string): Promise<Map<string, string>> {
  let entries: string[];
  try {
    entries = (await fs.readdir(dir, { recursive: true })) as string[];
  } catch (error) {
    throw new StepError(`Mask folder ${dir} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}).`, {
      hint: 'Pass a folder of PNG or TIFF label masks.',
      file: dir,
    });
  }
  const out = new Map<string, string>();
  for (const rel of entries.sort()) {
    const ext = path.extname(rel).toLowerCase();
    if (!MASK_EXTENSIONS.includes(ext)) continue;
    const key = rel
      .slice(0, rel.length - ext.length)
      .split(path.sep)
      .join('/');
    if (out.has(key))
      throw new StepError(`Mask folder ${dir} has two masks for "${key}": ${path.basename(out.get(key)!)} and ${path.basename(rel)}.`, {
        hint: 'Keep one mask per image.',
        file: path.join(dir, rel),
      });
    out.set(key, path.join(dir, rel));
  }
  return out;
}

/**
 * Pairs predictions with ground truth by relative path (extension ignored), so a.png may be scored against
 * a.tif. Every ground-truth mask needs a prediction and every prediction a ground truth.
 */
export async function pairMaskFolders(
  groundTruth: string,
  predictions: string,
): Promise<{ name: string; truth: string; prediction: string }[]> {
  const gt = await listMasks(groundTruth);
  const pred = await listMasks(predictions);
  if (gt.size === 0)
    throw new StepError(`Ground-truth folder ${groundTruth} holds no masks (${MASK_EXTENSIONS.join(', ')}).`, {
      file: groundTruth,
      hint: 'Point ground-truth at the folder of label masks.',
    });
  if (pred.size === 0)
    throw new StepError(`Predictions folder ${predictions} holds no masks (${MASK_EXTENSIONS.join(', ')}).`, {
      file: predictions,
      hint: 'Write one predicted label mask per test image.',
    });
  for (const key of gt.keys()) {
    if (!pred.has(key))
      throw new StepError(`Predictions folder ${predictions} has no mask for ground truth ${gt.get(key)} ("${key}").`, {
        file: gt.get(key),
        hint: 'Predict every test image; names must match the ground truth (extension may differ).',
      });
  }
  for (const key of pred.keys()) {
    if (!gt.has(key))
      throw new StepError(`Prediction ${pred.get(key)} ("${key}") has no ground truth in ${groundTruth}.`, {
        file: pred.get(key),
        hint: 'Predictions and ground truth must cover the same test images.',
      });
  }
  return [...gt.keys()].map((name) => ({ name, truth: gt.get(name)!, prediction: pred.get(name)! }));
}

/** Reads and counts each pair, holding at most two decoded masks at a time. */
export async function countMaskFiles(
  pairs: readonly { name: string; truth: string; prediction: string }[],
  binary: boolean,
  onProgress?: (done: number, total: number) => void,
): Promise<LabelCounts[]> {
  const out: LabelCounts[] = [];
  if (pairs.length === 0) return out;
  let next = readPair(pairs[0]);
  for (let i = 0; i < pairs.length; i++) {
    const [truth, pred] = await next;
    // read the next pair while this one is counted
    if (i + 1 < pairs.length) next = readPair(pairs[i + 1]);
    if (truth.width !== pred.width || truth.height !== pred.height) {
      throw new StepError(
        `Mask ${pairs[i].prediction} is ${pred.width}x${pred.height} but its ground truth ${pairs[i].truth} is ${truth.width}x${truth.height}.`,
        {
          file: pairs[i].prediction,
          hint: 'Predict masks at the resolution of the ground truth (resize with nearest-neighbour before saving).',
        },
      );
    }
    out.push(countLabelsChecked(truth, pred, binary, pairs[i].prediction));
    onProgress?.(i + 1, pairs.length);
  }
  return out;
}

function readPair(p: { truth: string; prediction: string }): Promise<[LabelImage, LabelImage]> {
  return Promise.all([readLabelImage(p.truth), readLabelImage(p.prediction)]);
}

export async function evaluateMaskFolders(
  options: { groundTruth: string; predictions: string } & MaskEvalOptions,
): Promise<MaskEvaluation> {
  const pairs = await pairMaskFolders(options.groundTruth, options.predictions);
  const counts = await countMaskFiles(pairs, options.binary ?? false);
  return evaluateCounts(
    pairs.map((p) => p.name),
    counts,
    options,
  );
}
