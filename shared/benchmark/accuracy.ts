import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { StepError } from '../core/errors';
import { evaluateCoco } from '../metrics/coco/evaluate';
import { loadDetections, loadGroundTruth, readJsonFile } from '../metrics/coco/load';
import { STAT_NAMES } from '../metrics/coco/params';
import { evaluateCounts, type MaskClassResult } from '../metrics/masks/evaluate';
import { countLabels, type LabelCounts } from '../metrics/masks/overlap';
import { readLabelImage } from '../metrics/masks/read';
import type { Ort } from '../onnx/runtime';
import { fromOrtTensor, runSession, toOrtTensor } from '../onnx/session';
import { valueAt } from '../onnx/tensors';
import { type Geometry, preprocessImage } from '../preprocess/image';
import { loadSharp } from '../preprocess/sharp-loader';
import type { PreprocessSpec } from '../preprocess/spec';
import { labelsFromOutput, projectPrediction, type SegmentationMode } from './segmentation';

/**
 * Accuracy on the device: the model runs on the benchmark's provider, on real images prepared by the spec the
 * device uses, and is scored by the core metrics engine, as the cloud evaluation is.
 */

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff']);

export function listImages(dir: string, label: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (error) {
    throw new StepError(`${label} is ${dir}, which cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: `Point ${label} at a folder of PNG, JPEG or TIFF images.`,
    });
  }
  const files = entries.filter((f) => IMAGE_EXTENSIONS.has(path.extname(f).toLowerCase())).sort();
  if (files.length === 0)
    throw new StepError(`${label} (${dir}) holds no PNG, JPEG or TIFF images.`, { hint: `Point ${label} at a folder of images.` });
  return files.map((f) => path.join(dir, f));
}

/** The mask of an image: same file stem (or stem + "_mask") in the masks folder. */
export function findMask(image: string, masksDir: string, masks: readonly string[]): string {
  const stem = path.basename(image, path.extname(image));
  const found = masks.find((m) => {
    const s = path.basename(m, path.extname(m));
    return s === stem || s === `${stem}_mask`;
  });
  if (!found)
    throw new StepError(`No mask for test image ${image} in ${masksDir} (looked for ${stem}.png/.tif or ${stem}_mask.*).`, {
      hint: 'Each test image needs a label mask with the same file name.',
      file: image,
    });
  return found;
}

interface Common {
  ort: Ort;
  session: InferenceSession;
  inputName: string;
  imagesDir: string;
  spec: PreprocessSpec;
}

async function predict(
  o: Common,
  image: string,
  sharp: ReturnType<typeof loadSharp>,
): Promise<{ out: Record<string, Tensor>; geometry: Geometry }> {
  const prepared = await preprocessImage(image, o.spec, sharp);
  const out = await runSession(o.session, { [o.inputName]: toOrtTensor(o.ort, prepared.tensor) }, `the model on ${image}`);
  return { out, geometry: prepared.geometry };
}

function output(out: Record<string, Tensor>, name: string, input: string): Tensor {
  const t = out[name];
  if (!t)
    throw new StepError(`The model has no output "${name}" (outputs: ${Object.keys(out).join(', ')}).`, {
      hint: `Set ${input} to the right output name.`,
    });
  return t;
}

export interface SegmentationAccuracy {
  kind: 'segmentation';
  images: number;
  output: string;
  mode: SegmentationMode;
  classes: number[];
  /** The engine's headline: per-class mean over images, then mean over classes. */
  dice: number | null;
  iou: number | null;
  microDice: number | null;
  microIou: number | null;
  perClass: MaskClassResult[];
  /** Per test image (file name without extension): the mask the device predicted and the image's pixel counts. */
  perImage?: { name: string; mask: string; truth: string; counts: LabelCounts }[];
}

/** How a segmentation model's output becomes a label mask (the accuracy inputs of benchmark-model and optimize-model). */
export interface SegmentationReadout {
  outputName: string;
  mode: SegmentationMode;
  threshold: number;
  classes?: number;
}

/**
 * `predictionsDir`: where to write each image's predicted labels as an 8-bit PNG (labels above 255 are drawn as 255),
 * for the prediction gallery.
 */
export async function segmentationAccuracy(
  o: Common &
    SegmentationReadout & {
      masksDir: string;
      predictionsDir?: string;
    },
): Promise<SegmentationAccuracy> {
  const sharp = loadSharp();
  const images = listImages(o.imagesDir, 'test-images');
  const masks = listImages(o.masksDir, 'test-masks');
  const names: string[] = [];
  const counts: LabelCounts[] = [];
  const perImage: NonNullable<SegmentationAccuracy['perImage']> = [];
  let binary = false;
  for (const image of images) {
    const { out, geometry } = await predict(o, image, sharp);
    const pred = labelsFromOutput(fromOrtTensor(output(out, o.outputName, 'accuracy-output')), o.mode, o.threshold);
    const classes = pred.classes || o.classes;
    if (!classes)
      throw new StepError(`Output ${o.outputName} holds class labels, so the number of classes is not known.`, {
        hint: 'Set classes to the number of classes, background included.',
      });
    // Two classes: any non-zero mask value is foreground, so 0/255 masks work.
    binary = classes <= 2;
    const maskFile = findMask(image, o.masksDir, masks);
    const truth = await readLabelImage(maskFile);
    if (truth.width !== geometry.sourceWidth || truth.height !== geometry.sourceHeight) {
      throw new StepError(
        `Mask ${maskFile} is ${truth.width}x${truth.height}, but its image is ${geometry.sourceWidth}x${geometry.sourceHeight}.`,
        { hint: 'Each mask must have the size of its image.', file: maskFile },
      );
    }
    const projected = projectPrediction(pred, geometry);
    const c = countLabels(truth.data, projected.data, binary);
    if (o.predictionsDir) {
      const stem = path.basename(image).replace(/\.[^.]+$/, '');
      const file = path.join(o.predictionsDir, `${stem}.png`);
      const bytes = Uint8Array.from(projected.data, (v) => Math.min(255, v));
      await sharp(Buffer.from(bytes), { raw: { width: projected.width, height: projected.height, channels: 1 } })
        .png()
        .toFile(file);
      perImage.push({ name: stem, mask: file, truth: maskFile, counts: c });
    }
    if (!binary) {
      for (let label = classes; label < c.size; label++) {
        if (c.truth[label] > 0)
          throw new StepError(`Mask ${maskFile} has label ${label}, but the model predicts ${classes} classes (0..${classes - 1}).`, {
            hint: 'Masks hold class indices; check the mask files and the model output.',
            file: maskFile,
          });
      }
    }
    names.push(path.basename(image));
    counts.push(c);
  }
  const ev = evaluateCounts(names, counts, { binary });
  return {
    kind: 'segmentation',
    images: images.length,
    output: o.outputName,
    mode: o.mode,
    classes: [...ev.classes],
    dice: ev.dice,
    iou: ev.iou,
    microDice: ev.microDice,
    microIou: ev.microIou,
    perClass: ev.perClass,
    ...(o.predictionsDir ? { perImage } : {}),
  };
}

export interface DetectionAccuracy {
  kind: 'detection';
  images: number;
  detections: number;
  /** pycocotools' 12 numbers by name; mAP is AP (IoU .50:.95). */
  metrics: Record<string, number>;
  map: number;
}

export type BoxFormat = 'xyxy' | 'xywh' | 'cxcywh';

/** Which outputs of a detector hold its boxes, scores and labels, and how to read them. */
export interface DetectionReadout {
  boxesOutput: string;
  scoresOutput: string;
  labelsOutput: string;
  boxFormat: BoxFormat;
  labelMapping: 'index' | 'id';
}

/**
 * mAP of a detector whose graph outputs boxes, scores and labels (NMS inside), against COCO ground truth whose
 * images[].file_name lie in the images folder. Boxes are mapped from tensor to image pixels through the
 * preprocessing geometry.
 */
export async function detectionAccuracy(o: Common & DetectionReadout & { annotations: string }): Promise<DetectionAccuracy> {
  const sharp = loadSharp();
  const json = readJsonFile(o.annotations, 'Test annotations');
  const gt = loadGroundTruth(json, o.annotations, 'bbox');
  const images = ((json as { images?: { id: number | string; file_name?: string }[] }).images ?? []).filter((im) => gt.imgIndex.has(im.id));
  const detections: { image_id: number | string; category_id: number | string; bbox: number[]; score: number }[] = [];
  for (const im of images) {
    if (!im.file_name)
      throw new StepError(`${o.annotations}: image ${im.id} has no file_name.`, {
        hint: 'Each ground-truth image needs the file_name of its image in test-images.',
        file: o.annotations,
      });
    const file = path.join(o.imagesDir, im.file_name);
    if (!fs.existsSync(file))
      throw new StepError(`Image ${im.file_name} of ${o.annotations} (id ${im.id}) is not in ${o.imagesDir}.`, {
        hint: 'test-images must hold the images the annotations name.',
        file: o.annotations,
      });
    const { out, geometry: g } = await predict(o, file, sharp);
    const boxes = fromOrtTensor(output(out, o.boxesOutput, 'boxes-output'));
    const scores = fromOrtTensor(output(out, o.scoresOutput, 'scores-output'));
    const labels = fromOrtTensor(output(out, o.labelsOutput, 'labels-output'));
    const n = scores.dims.reduce((a, b) => a * b, 1);
    if (boxes.dims[boxes.dims.length - 1] !== 4 || boxes.data.length !== n * 4 || labels.data.length !== n) {
      throw new StepError(
        `Detector outputs disagree: ${o.boxesOutput} [${boxes.dims.join(', ')}], ${o.scoresOutput} [${scores.dims.join(', ')}], ${o.labelsOutput} [${labels.dims.join(', ')}].`,
        { hint: 'Expected N boxes of 4 numbers, N scores and N labels (a leading batch axis of 1 is fine).' },
      );
    }
    for (let i = 0; i < n; i++) {
      const [a, b, c, d] = [0, 1, 2, 3].map((k) => valueAt(boxes, i * 4 + k));
      let [x1, y1, x2, y2] =
        o.boxFormat === 'xyxy'
          ? [a, b, c, d]
          : o.boxFormat === 'xywh'
            ? [a, b, a + c, b + d]
            : [a - c / 2, b - d / 2, a + c / 2, b + d / 2];
      // Tensor pixels → image pixels, clipped to the image.
      x1 = clamp((x1 - g.offsetX) / g.scaleX, g.sourceWidth);
      x2 = clamp((x2 - g.offsetX) / g.scaleX, g.sourceWidth);
      y1 = clamp((y1 - g.offsetY) / g.scaleY, g.sourceHeight);
      y2 = clamp((y2 - g.offsetY) / g.scaleY, g.sourceHeight);
      const label = valueAt(labels, i);
      const category = o.labelMapping === 'id' ? label : gt.catIds[label];
      if (category === undefined)
        throw new StepError(
          `The model predicted label ${label}, but ${o.annotations} has ${gt.catIds.length} categories (label-mapping index).`,
          { hint: 'Use label-mapping id when labels are category ids.' },
        );
      detections.push({
        image_id: im.id,
        category_id: category,
        bbox: [x1, y1, Math.max(0, x2 - x1), Math.max(0, y2 - y1)],
        score: valueAt(scores, i),
      });
    }
  }
  const dt = loadDetections(detections, `detections of the model on ${o.imagesDir}`, gt, 'bbox');
  const ev = evaluateCoco(gt, dt, { iouType: 'bbox' });
  const metrics = Object.fromEntries(STAT_NAMES.map((name, i) => [name, ev.stats[i]]));
  return { kind: 'detection', images: images.length, detections: detections.length, metrics, map: ev.stats[0] };
}

function clamp(v: number, max: number): number {
  return Math.min(Math.max(v, 0), max);
}
