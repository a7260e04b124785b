import * as fs from 'node:fs';
import type { InferenceSession } from 'onnxruntime-node';
import { StepError } from '../../core/errors';
import { sha256File } from '../../core/sha256';
import {
  type DetectionAccuracy,
  detectionAccuracy,
  type DetectionReadout,
  listImages,
  type SegmentationAccuracy,
  segmentationAccuracy,
  type SegmentationReadout,
} from '../../benchmark/accuracy';
import { compareTensors } from '../../onnx/parity';
import type { Ort } from '../../onnx/runtime';
import { createSession, firstLine, fromOrtTensor, runSession, toOrtTensor } from '../../onnx/session';
import { preprocessImage } from '../../preprocess/image';
import { loadSharp } from '../../preprocess/sharp-loader';
import type { PreprocessSpec } from '../../preprocess/spec';

/**
 * What a variant is worth, measured in ONNX Runtime on the labelled test set: its accuracy by the project's metrics
 * engine (Dice/IoU of masks, COCO-exact mAP), how far its outputs are from the FP32 model's, and its size.
 */

export type Metric = 'dice' | 'iou' | 'AP' | 'AP50' | 'AP75';

export interface TestSet {
  task: 'segmentation' | 'detection';
  metric: Metric;
  images: string;
  masks?: string;
  annotations?: string;
  spec: PreprocessSpec;
  inputName: string;
  segmentation: SegmentationReadout;
  detection: DetectionReadout;
}

export interface Agreement {
  images: number;
  /** Worst max abs / max rel difference from the FP32 model per output, over the images whose output shapes agree. */
  outputs: Record<string, { maxAbs: number; maxRel: number; shapeMismatches: number }>;
}

export interface Measured {
  name: string;
  file: string;
  sha256: string;
  size: number;
  value: number;
  accuracy: SegmentationAccuracy | DetectionAccuracy;
}

/** Loads a variant in ONNX Runtime (CPU); a missing kernel names the operator and what to do about it. */
export async function openVariant(ort: Ort, file: string, variant: string): Promise<InferenceSession> {
  try {
    return await createSession(ort, file, { executionProviders: ['cpu'] });
  } catch (error) {
    const text = firstLine(error);
    const kernel = /Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'/.exec(text);
    if (kernel) {
      const [, op, version, node] = kernel;
      throw new StepError(
        `The ${variant} variant ${file} uses operator ${op} (opset ${version}, node '${node}') in a type ONNX Runtime's CPU provider has no kernel for, so its accuracy cannot be measured.`,
        {
          file,
          hint:
            variant === 'fp16'
              ? `Keep ${op} in FP32: add it to fp16-op-block-list.`
              : `Leave that node unquantized: add '${node}' to int8-exclude-nodes.`,
        },
      );
    }
    throw error;
  }
}

export async function measure(ort: Ort, name: string, file: string, t: TestSet): Promise<Measured> {
  const session = await openVariant(ort, file, name);
  try {
    const common = { ort, session, inputName: t.inputName, imagesDir: t.images, spec: t.spec };
    let accuracy: SegmentationAccuracy | DetectionAccuracy;
    let value: number | null;
    if (t.task === 'segmentation') {
      const s = await segmentationAccuracy({
        ...common,
        ...t.segmentation,
        masksDir: t.masks!,
      });
      accuracy = s;
      value = t.metric === 'iou' ? s.iou : s.dice;
    } else {
      const d = await detectionAccuracy({
        ...common,
        ...t.detection,
        annotations: t.annotations!,
      });
      accuracy = d;
      value = d.metrics[t.metric] ?? null;
      if (value !== null && value < 0) value = null;
    }
    if (value === null || !Number.isFinite(value)) {
      const where = t.task === 'segmentation' ? t.masks : t.annotations;
      throw new StepError(
        `The accuracy of the ${name} model ${file} cannot be measured: ${t.metric} is undefined on ${where} (${accuracy.images} test images${t.task === 'detection' ? `, ${(accuracy as DetectionAccuracy).detections} detections` : ''}).`,
        {
          file: where,
          hint:
            t.task === 'segmentation'
              ? 'The test masks need labelled pixels of the classes the model predicts; check test-masks and accuracy-output.'
              : 'The test annotations need boxes in the images of test-images; check test-annotations, and boxes-output/scores-output/labels-output.',
        },
      );
    }
    return { name, file, sha256: await sha256File(file), size: fs.statSync(file).size, value, accuracy };
  } finally {
    await session.release();
  }
}

/** FP32 and a variant on the same prepared inputs (up to `limit` test images), output by output. */
export async function agreement(ort: Ort, fp32: string, variant: string, name: string, t: TestSet, limit: number): Promise<Agreement> {
  const images = listImages(t.images, 'test-images').slice(0, limit);
  const a = await openVariant(ort, fp32, 'fp32');
  const b = await openVariant(ort, variant, name);
  const outputs: Agreement['outputs'] = {};
  const sharp = loadSharp();
  try {
    for (const image of images) {
      const { tensor } = await preprocessImage(image, t.spec, sharp);
      const feeds = { [t.inputName]: toOrtTensor(ort, tensor) };
      const ea = await runSession(a, feeds, `the FP32 model on ${image}`);
      const eb = await runSession(b, feeds, `the ${name} variant on ${image}`);
      for (const [key, value] of Object.entries(ea)) {
        const other = eb[key];
        if (!other) continue;
        // atol only decides which elements count for the relative difference (not ones near zero).
        const c = compareTensors(key, fromOrtTensor(value), fromOrtTensor(other), { atol: 1e-6, rtol: 0 });
        const o = (outputs[key] ??= { maxAbs: 0, maxRel: 0, shapeMismatches: 0 });
        if (c.shape) o.shapeMismatches++;
        else {
          o.maxAbs = Math.max(o.maxAbs, c.maxAbs);
          o.maxRel = Math.max(o.maxRel, c.maxRel);
        }
      }
    }
  } finally {
    await a.release();
    await b.release();
  }
  return { images: images.length, outputs };
}
