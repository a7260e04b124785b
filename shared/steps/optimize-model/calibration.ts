import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StepContext } from '../../core/context';
import { StepError } from '../../core/errors';
import { sha256Hex } from '../../core/sha256';
import { listImages } from '../../benchmark/accuracy';
import type { OnnxValueInfo } from '../../onnx/model-info';
import { writeNpy } from '../../onnx/npy';
import { preprocessImage } from '../../preprocess/image';
import { loadSharp } from '../../preprocess/sharp-loader';
import type { PreprocessSpec } from '../../preprocess/spec';

/**
 * The INT8 calibration set: a sample of the images, prepared by the package's preprocessing spec (the same code the
 * device and benchmark-model use) and written as .npy tensors for ONNX Runtime's calibrator.
 */

export interface CalibrationSet {
  files: string[];
  images: string[];
  /** Recorded in each INT8 variant's metadata: how it was calibrated. */
  summary: { folder: string; images: number; of: number; method: string; preprocessingSha256: string; imagesSha256: string };
}

/** Up to `count` images spread evenly over the sorted folder, so the sample does not depend on file system order. */
export function sampleEvenly<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]);
}

export async function prepareCalibration(
  o: { folder: string; label: string; count: number; spec: PreprocessSpec; input: OnnxValueInfo; method: string; work: string },
  ctx: StepContext,
): Promise<CalibrationSet> {
  const all = listImages(o.folder, o.label);
  const images = sampleEvenly(all, o.count);
  const dir = path.join(o.work, 'calibration');
  fs.mkdirSync(dir, { recursive: true });
  const sharp = loadSharp();
  const files: string[] = [];
  for (const [i, image] of images.entries()) {
    const { tensor } = await preprocessImage(image, o.spec, sharp);
    const fixed = (o.input.shape ?? [])
      .map((d, axis) => (typeof d === 'number' && d !== tensor.dims[axis] ? axis : -1))
      .find((a) => a >= 0);
    if ((o.input.shape && tensor.dims.length !== o.input.shape.length) || fixed !== undefined) {
      throw new StepError(
        `Calibration image ${image} becomes a tensor of shape [${tensor.dims.join(', ')}], but model input ${o.input.name} is [${(o.input.shape ?? []).join(', ')}].`,
        {
          file: image,
          hint: 'Use the preprocessing spec the model was exported for (its resize must give the input size).',
        },
      );
    }
    if (tensor.type !== o.input.dtype) {
      throw new StepError(
        `Calibration image ${image} becomes a ${tensor.type} tensor, but model input ${o.input.name} is ${o.input.dtype}.`,
        { file: image, hint: 'Set the dtype of the preprocessing spec to the model input type.' },
      );
    }
    const npy = path.join(dir, `calib${i}.npy`);
    writeNpy(npy, tensor);
    files.push(npy);
    ctx.progress({ label: 'calibration images', done: i + 1, total: images.length, unit: 'items' });
  }
  ctx.log.info(`calibration: ${images.length} of ${all.length} image(s) in ${o.folder}, prepared with the preprocessing spec`);
  return {
    files,
    images,
    summary: {
      folder: o.folder,
      images: images.length,
      of: all.length,
      method: o.method,
      preprocessingSha256: sha256Hex(JSON.stringify(o.spec)),
      imagesSha256: sha256Hex(images.map((f) => path.basename(f)).join('\n')),
    },
  };
}
