import { onnx } from 'onnx-proto';
import { gaussian, seededRandom } from '../core/random';

/**
 * The demo's cell segmenter: conv 3×3 (1→H) → ReLU → conv 1×1 (H→1) → sigmoid, a per-pixel cell probability.
 * Small enough to train in plain JavaScript in seconds, real enough to export to ONNX and run in ONNX Runtime.
 */
export interface SegmenterWeights {
  hidden: number;
  /** [hidden][3][3] */
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  /** Input normalization: x = (pixel / 255 - mean) / std. */
  mean: number;
  std: number;
}

export interface TrainingImage {
  width: number;
  height: number;
  pixels: Uint8Array;
  labels: Uint8Array;
}

export function initWeights(hidden: number, seed: number, mean: number, std: number): SegmenterWeights {
  const random = seededRandom(seed);
  const w1 = new Float32Array(hidden * 9).map(() => 0.3 * gaussian(random));
  const w2 = new Float32Array(hidden).map(() => 0.5 * gaussian(random));
  return { hidden, w1, b1: new Float32Array(hidden), w2, b2: new Float32Array(1), mean, std };
}

function normalized(image: TrainingImage, w: SegmenterWeights): Float32Array {
  const x = new Float32Array(image.pixels.length);
  for (let i = 0; i < x.length; i++) x[i] = (image.pixels[i] / 255 - w.mean) / w.std;
  return x;
}

/** Probability map of one image, computed exactly as the exported graph does. */
export function predict(image: TrainingImage, w: SegmenterWeights): Float32Array {
  const x = normalized(image, w);
  const { width, height } = image;
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let xx = 0; xx < width; xx++) {
      let z = w.b2[0];
      for (let k = 0; k < w.hidden; k++) {
        let a = w.b1[k];
        for (let dy = -1; dy <= 1; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= height) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xc = xx + dx;
            if (xc < 0 || xc >= width) continue;
            a += w.w1[k * 9 + (dy + 1) * 3 + (dx + 1)] * x[yy * width + xc];
          }
        }
        if (a > 0) z += w.w2[k] * a;
      }
      out[y * width + xx] = 1 / (1 + Math.exp(-z));
    }
  }
  return out;
}

/** Mini-batch Adam on pixel-wise binary cross-entropy. Deterministic for a given seed. */
export function train(
  images: readonly TrainingImage[],
  options: {
    hidden?: number;
    steps?: number;
    batch?: number;
    lr?: number;
    seed?: number;
    onStep?: (step: number, loss: number) => void;
  } = {},
): SegmenterWeights {
  const hidden = options.hidden ?? 4;
  const steps = options.steps ?? 300;
  const batch = options.batch ?? 4096;
  const lr = options.lr ?? 0.05;
  const random = seededRandom((options.seed ?? 1) + 1000);
  let sum = 0;
  let sq = 0;
  let count = 0;
  for (const im of images) {
    for (const p of im.pixels) {
      sum += p / 255;
      sq += (p / 255) ** 2;
    }
    count += im.pixels.length;
  }
  const mean = sum / count;
  const std = Math.sqrt(sq / count - mean * mean) || 1;
  const w = initWeights(hidden, options.seed ?? 1, mean, std);
  const inputs = images.map((im) => normalized(im, w));
  const params = [w.w1, w.b1, w.w2, w.b2];
  const m = params.map((p) => new Float32Array(p.length));
  const v = params.map((p) => new Float32Array(p.length));
  const grads = params.map((p) => new Float32Array(p.length));
  const patch = new Float32Array(9);
  const pre = new Float32Array(hidden);
  for (let step = 1; step <= steps; step++) {
    for (const g of grads) g.fill(0);
    let loss = 0;
    for (let s = 0; s < batch; s++) {
      const n = Math.floor(random() * images.length);
      const im = images[n];
      const x = inputs[n];
      const px = Math.floor(random() * im.width);
      const py = Math.floor(random() * im.height);
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = py + dy;
          const xc = px + dx;
          patch[(dy + 1) * 3 + dx + 1] = yy < 0 || yy >= im.height || xc < 0 || xc >= im.width ? 0 : x[yy * im.width + xc];
        }
      let z = w.b2[0];
      for (let k = 0; k < hidden; k++) {
        let a = w.b1[k];
        for (let j = 0; j < 9; j++) a += w.w1[k * 9 + j] * patch[j];
        pre[k] = a;
        if (a > 0) z += w.w2[k] * a;
      }
      const p = 1 / (1 + Math.exp(-z));
      const t = im.labels[py * im.width + px];
      loss -= t ? Math.log(p + 1e-7) : Math.log(1 - p + 1e-7);
      const dz = (p - t) / batch;
      grads[3][0] += dz;
      for (let k = 0; k < hidden; k++) {
        if (pre[k] <= 0) continue;
        grads[2][k] += dz * pre[k];
        const dh = dz * w.w2[k];
        grads[1][k] += dh;
        for (let j = 0; j < 9; j++) grads[0][k * 9 + j] += dh * patch[j];
      }
    }
    for (let i = 0; i < params.length; i++) {
      for (let j = 0; j < params[i].length; j++) {
        m[i][j] = 0.9 * m[i][j] + 0.1 * grads[i][j];
        v[i][j] = 0.999 * v[i][j] + 0.001 * grads[i][j] ** 2;
        const mh = m[i][j] / (1 - 0.9 ** step);
        const vh = v[i][j] / (1 - 0.999 ** step);
        params[i][j] -= (lr * mh) / (Math.sqrt(vh) + 1e-8);
      }
    }
    options.onStep?.(step, loss / batch);
  }
  return w;
}

/**
 * The ONNX graph of the segmenter (opset 17): input `image` float32 [N,1,H,W] with pixel values in 0..255,
 * output `cell_probability` float32 [N,1,H,W]. Normalization is in the graph (Sub, Div) as the device expects raw
 * intensities; batch, height and width are dynamic.
 */
export function toOnnx(w: SegmenterWeights, metadata: Record<string, string> = {}): Uint8Array {
  const tensor = (name: string, dims: number[], data: Float32Array) =>
    onnx.TensorProto.create({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
    });
  const valueInfo = (name: string) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: { dim: [{ dimParam: 'batch' }, { dimValue: 1 }, { dimParam: 'height' }, { dimParam: 'width' }] },
        },
      },
    });
  const ints = (name: string, values: number[]) =>
    onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });
  const graph = onnx.GraphProto.create({
    name: 'cell_segmenter',
    node: [
      onnx.NodeProto.create({ opType: 'Div', input: ['image', 'scale'], output: ['unit'], name: 'to_unit' }),
      onnx.NodeProto.create({ opType: 'Sub', input: ['unit', 'mean'], output: ['centered'], name: 'center' }),
      onnx.NodeProto.create({ opType: 'Div', input: ['centered', 'std'], output: ['x'], name: 'scale_std' }),
      onnx.NodeProto.create({
        opType: 'Conv',
        input: ['x', 'w1', 'b1'],
        output: ['h'],
        name: 'conv1',
        attribute: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])],
      }),
      onnx.NodeProto.create({ opType: 'Relu', input: ['h'], output: ['hr'], name: 'relu' }),
      onnx.NodeProto.create({
        opType: 'Conv',
        input: ['hr', 'w2', 'b2'],
        output: ['z'],
        name: 'conv2',
        attribute: [ints('kernel_shape', [1, 1])],
      }),
      onnx.NodeProto.create({ opType: 'Sigmoid', input: ['z'], output: ['cell_probability'], name: 'sigmoid' }),
    ],
    initializer: [
      tensor('scale', [], new Float32Array([255])),
      tensor('mean', [], new Float32Array([w.mean])),
      tensor('std', [], new Float32Array([w.std])),
      tensor('w1', [w.hidden, 1, 3, 3], w.w1),
      tensor('b1', [w.hidden], w.b1),
      tensor('w2', [1, w.hidden, 1, 1], w.w2),
      tensor('b2', [1], w.b2),
    ],
    input: [valueInfo('image')],
    output: [valueInfo('cell_probability')],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'mlship-demo',
    producerVersion: '1',
    graph,
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Dice of the cell class at a 0.5 threshold, pooled over all pixels of all images. */
export function pooledDice(images: readonly TrainingImage[], w: SegmenterWeights): number {
  let inter = 0;
  let total = 0;
  for (const im of images) {
    const p = predict(im, w);
    for (let i = 0; i < p.length; i++) {
      const a = p[i] >= 0.5 ? 1 : 0;
      const b = im.labels[i];
      inter += a & b;
      total += a + b;
    }
  }
  return total === 0 ? 1 : (2 * inter) / total;
}
