import { StepError } from '../core/errors';
import type { LabelImage } from '../metrics/masks/read';
import { type PlainTensor, valueAt } from '../onnx/tensors';
import { type Geometry, tensorPixel } from '../preprocess/image';

/**
 * From a segmentation model's output to a label image comparable with a ground-truth mask. Scoring itself is the
 * core metrics engine's (shared/metrics/masks), so the device's Dice is computed exactly as the cloud's.
 */

export type SegmentationMode = 'argmax' | 'threshold';

/**
 * Per-pixel labels from a model output: [1, K, H, W] logits/probabilities (argmax, or threshold on channel
 * K-1 when K <= 2), or [1, H, W] / [1, 1, H, W] already-labelled or single-channel outputs.
 */
export function labelsFromOutput(
  out: PlainTensor,
  mode: SegmentationMode,
  threshold: number,
): { labels: Int32Array; width: number; height: number; classes: number } {
  const d = out.dims;
  let K: number;
  let H: number;
  let W: number;
  if (d.length === 4 && d[0] === 1) [K, H, W] = [d[1], d[2], d[3]];
  else if (d.length === 3 && d[0] === 1) [K, H, W] = [1, d[1], d[2]];
  else
    throw new StepError(`Segmentation output has shape [${d.join(', ')}]; expected [1, classes, height, width] or [1, height, width].`, {
      hint: 'Set accuracy-output to the per-pixel output of the model.',
    });
  const labels = new Int32Array(H * W);
  const plane = H * W;
  const integer = !out.type.startsWith('float');
  if (integer && K === 1) {
    for (let i = 0; i < plane; i++) labels[i] = valueAt(out, i);
    return { labels, width: W, height: H, classes: 0 };
  }
  if (mode === 'threshold' || K === 1) {
    if (K > 2)
      throw new StepError(`segmentation-mode threshold needs an output with 1 or 2 channels, this one has ${K}.`, {
        hint: 'Use segmentation-mode argmax for multi-class outputs.',
      });
    const channel = K - 1;
    for (let i = 0; i < plane; i++) labels[i] = valueAt(out, channel * plane + i) > threshold ? 1 : 0;
    return { labels, width: W, height: H, classes: 2 };
  }
  for (let i = 0; i < plane; i++) {
    let best = 0;
    let bestValue = valueAt(out, i);
    for (let k = 1; k < K; k++) {
      const v = valueAt(out, k * plane + i);
      if (v > bestValue) {
        bestValue = v;
        best = k;
      }
    }
    labels[i] = best;
  }
  return { labels, width: W, height: H, classes: K };
}

/**
 * The prediction as a label image of the ground-truth mask's size (the source image's), each mask pixel taking
 * the label at its centre mapped through the preprocessing geometry; pixels cropped away by `crop` read 0.
 */
export function projectPrediction(pred: { labels: Int32Array; width: number; height: number }, geometry: Geometry): LabelImage {
  const { sourceWidth: w, sourceHeight: h } = geometry;
  const data = new Uint16Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const at = tensorPixel(geometry, x, y, pred.width, pred.height);
      data[y * w + x] = at < 0 ? 0 : pred.labels[at];
    }
  }
  return { width: w, height: h, data };
}
