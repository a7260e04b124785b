import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { labelsFromOutput, projectPrediction } from '../../shared/benchmark/segmentation';
import { evaluateCounts } from '../../shared/metrics/masks/evaluate';
import { countLabels } from '../../shared/metrics/masks/overlap';
import { planGeometry, preprocessImage, tensorPixel } from '../../shared/preprocess/image';
import { loadPreprocessSpec, type PreprocessSpec, validatePreprocessSpec } from '../../shared/preprocess/spec';
import { fromFloat16Bits } from '../../shared/onnx/tensors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-pre-'));

/** Baseline uncompressed 16-bit grayscale TIFF (what microscopes write), little-endian. */
function tiff16(width: number, height: number, values: number[]): Buffer {
  const entries: [number, number, number][] = [
    [256, 3, width],
    [257, 3, height],
    [258, 3, 16],
    [259, 3, 1],
    [262, 3, 1],
    [273, 4, 0],
    [277, 3, 1],
    [278, 3, height],
    [279, 4, width * height * 2],
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  const dataOffset = 8 + ifdSize;
  const b = Buffer.alloc(dataOffset + width * height * 2);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    b.writeUInt16LE(tag, at);
    b.writeUInt16LE(type, at + 2);
    b.writeUInt32LE(1, at + 4);
    const v = tag === 273 ? dataOffset : value;
    if (type === 3) b.writeUInt16LE(v, at + 8);
    else b.writeUInt32LE(v, at + 8);
  });
  values.forEach((v, i) => b.writeUInt16LE(v, dataOffset + i * 2));
  return b;
}

async function png(name: string, width: number, height: number, channels: 1 | 3, values: number[]): Promise<string> {
  const file = path.join(dir, name);
  await sharp(Buffer.from(values), { raw: { width, height, channels } }).png().toFile(file);
  return file;
}

const base: PreprocessSpec = { version: 1, color: 'rgb', layout: 'NCHW', dtype: 'float32' };

describe('preprocessing spec', () => {
  it('accepts a full spec and names the field, value and allowed values of a bad one', () => {
    const full = {
      version: 1,
      inputName: 'image',
      color: 'bgr',
      bitDepth: 16,
      resize: { width: 512, height: 512, fit: 'letterbox', interpolation: 'cubic', padValue: 114 },
      maxValue: 4095,
      mean: [0.5],
      std: [0.25],
      layout: 'NHWC',
      dtype: 'float16',
    };
    expect(validatePreprocessSpec(full, 'spec.json')).toEqual(full);
    expect(() => validatePreprocessSpec({ ...full, color: 'rgba' }, 'spec.json')).toThrow(
      'Preprocessing spec spec.json: field color must be equal to one of the allowed values: rgb, bgr, gray (value "rgba").',
    );
    expect(() => validatePreprocessSpec({ ...full, resize: { width: 0, height: 4 } }, 'spec.json')).toThrow(
      'Preprocessing spec spec.json: field resize.width must be >= 1 (value 0).',
    );
    expect(() => validatePreprocessSpec({ ...full, colour: 'rgb' }, 'spec.json')).toThrow(
      'Preprocessing spec spec.json: field (top level) unknown field "colour"',
    );
    expect(() => validatePreprocessSpec({ version: 1, color: 'rgb', dtype: 'float32' }, 's.json')).toThrow(
      "field (top level) must have required property 'layout'",
    );
    expect(() => validatePreprocessSpec({ ...base, mean: [0.4, 0.5] }, 's.json')).toThrow(
      'Preprocessing spec s.json: mean has 2 values, but color "rgb" has 3 channel(s).',
    );
    expect(() => validatePreprocessSpec({ ...base, dtype: 'uint8', mean: [0.5] }, 's.json')).toThrow(
      'dtype uint8 feeds raw pixels, so mean, std and maxValue cannot apply.',
    );
  });

  it('reads spec files with clear errors', () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"version": 1,');
    expect(() => loadPreprocessSpec(bad)).toThrow(`Preprocessing spec ${bad} is not valid JSON`);
    expect(() => loadPreprocessSpec(path.join(dir, 'none.json'))).toThrow(
      `Cannot read preprocessing spec ${path.join(dir, 'none.json')}: ENOENT.`,
    );
  });
});

describe('image → tensor', () => {
  it('normalizes an 8-bit RGB PNG with mean/std into NCHW', async () => {
    const file = await png('rgb.png', 2, 1, 3, [255, 0, 51, 0, 255, 102]);
    const { tensor, geometry, sourceDepth } = await preprocessImage(file, { ...base, mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5] });
    expect(sourceDepth).toBe(8);
    expect(tensor.dims).toEqual([1, 3, 1, 2]);
    // (v / 255 - 0.5) / std: R = [1, -1], G = [-2, 2], B = [-0.6, -0.2]
    expect(Array.from(tensor.data as Float32Array).map((v) => Math.round(v * 1e5) / 1e5)).toEqual([1, -1, -2, 2, -0.6, -0.2]);
    expect(geometry).toEqual({ sourceWidth: 2, sourceHeight: 1, width: 2, height: 1, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 });
  });

  it('swaps to BGR and lays out NHWC, keeps raw uint8, and writes float16 bits', async () => {
    const file = await png('bgr.png', 2, 1, 3, [10, 20, 30, 40, 50, 60]);
    const raw = await preprocessImage(file, { ...base, color: 'bgr', layout: 'NHWC', dtype: 'uint8' });
    expect(raw.tensor).toEqual({ type: 'uint8', dims: [1, 1, 2, 3], data: new Uint8Array([30, 20, 10, 60, 50, 40]) });
    const half = await preprocessImage(file, { ...base, dtype: 'float16', maxValue: 10 });
    expect(Array.from(half.tensor.data as Uint16Array).map(fromFloat16Bits)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('keeps 16 bits of PNG and TIFF microscopy images, with maxValue for 12-bit data', async () => {
    const values = [0, 1000, 4095, 65535];
    const pngFile = path.join(dir, 'gray16.png');
    const png16 = new PNG({ width: 2, height: 2, bitDepth: 16, colorType: 0, inputColorType: 0, inputHasAlpha: false });
    png16.data = Buffer.from(new Uint16Array(values).buffer);
    fs.writeFileSync(pngFile, PNG.sync.write(png16, { colorType: 0, bitDepth: 16, inputColorType: 0, inputHasAlpha: false }));
    const tifFile = path.join(dir, 'gray16.tif');
    fs.writeFileSync(tifFile, tiff16(2, 2, values));
    const spec: PreprocessSpec = { ...base, color: 'gray', maxValue: 4095, bitDepth: 16 };
    for (const file of [pngFile, tifFile]) {
      const img = await preprocessImage(file, spec);
      expect(img.sourceDepth).toBe(16);
      expect(Array.from(img.tensor.data as Float32Array).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0, 0.2442, 1, 16.003662]);
    }
    // Default maxValue for 16-bit sources is 65535; as RGB the gray value is replicated.
    const rgb = await preprocessImage(tifFile, { ...base });
    expect(rgb.tensor.dims).toEqual([1, 3, 2, 2]);
    expect(
      Array.from(rgb.tensor.data as Float32Array)
        .slice(8, 12)
        .map((v) => Math.round(v * 1e6) / 1e6),
    ).toEqual([0, 0.015259, 0.062486, 1]);
    await expect(preprocessImage(tifFile, { ...spec, bitDepth: 8 })).rejects.toThrow(
      `Image ${tifFile} has 16-bit samples, but the preprocessing spec says bitDepth 8.`,
    );
    await expect(preprocessImage(tifFile, { ...base, dtype: 'uint8' })).rejects.toThrow(
      'is 16-bit, but the preprocessing spec feeds raw uint8 pixels.',
    );
  });

  it('letterboxes with padding in source units and crops, and maps tensor pixels back exactly', async () => {
    // 4×2 gray image 10, 20, 30, 40 / 50, 60, 70, 80.
    const file = await png('wide.png', 4, 2, 1, [10, 20, 30, 40, 50, 60, 70, 80]);
    const box = await preprocessImage(file, {
      ...base,
      color: 'gray',
      dtype: 'uint8',
      resize: { width: 4, height: 4, fit: 'letterbox', padValue: 7 },
    });
    expect(Array.from(box.tensor.data as Uint8Array)).toEqual([7, 7, 7, 7, 10, 20, 30, 40, 50, 60, 70, 80, 7, 7, 7, 7]);
    expect(box.geometry).toMatchObject({ scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 1 });
    const crop = await preprocessImage(file, { ...base, color: 'gray', dtype: 'uint8', resize: { width: 2, height: 2, fit: 'crop' } });
    expect(Array.from(crop.tensor.data as Uint8Array)).toEqual([20, 30, 60, 70]);
    expect(tensorPixel(crop.geometry, 0, 0, 2, 2)).toBe(-1);
    expect(tensorPixel(crop.geometry, 2, 1, 2, 2)).toBe(3);
    // Stretch 4×2 → 8×8 and an output at half the input resolution.
    const g = planGeometry(4, 2, { resize: { width: 8, height: 8 } });
    expect(g).toMatchObject({ scaleX: 2, scaleY: 4, offsetX: 0, offsetY: 0 });
    expect(tensorPixel(g, 3, 1, 4, 4)).toBe(3 * 4 + 3);
  });

  it('decodes JPEG and names undecodable files', async () => {
    const jpg = path.join(dir, 'photo.jpg');
    await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 200, g: 100, b: 50 } } })
      .jpeg()
      .toFile(jpg);
    const { tensor } = await preprocessImage(jpg, { ...base, resize: { width: 4, height: 4 } });
    expect(tensor.dims).toEqual([1, 3, 4, 4]);
    expect((tensor.data as Float32Array)[0]).toBeCloseTo(200 / 255, 1);
    const junk = path.join(dir, 'junk.png');
    fs.writeFileSync(junk, 'not an image');
    await expect(preprocessImage(junk, base)).rejects.toThrow(`Cannot decode image ${junk}:`);
  });
});

describe('segmentation metrics', () => {
  it('labels pixels by argmax, by threshold, or takes labels as they are', () => {
    // Channel planes: class 0 [0, 5], class 1 [3, 0], class 2 [2, 1].
    const logits = { type: 'float32' as const, dims: [1, 3, 1, 2], data: new Float32Array([0, 5, 3, 0, 2, 1]) };
    expect(Array.from(labelsFromOutput(logits, 'argmax', 0).labels)).toEqual([1, 0]);
    const prob = { type: 'float32' as const, dims: [1, 1, 1, 3], data: new Float32Array([0.2, 0.7, 0.5]) };
    expect(labelsFromOutput(prob, 'threshold', 0.5)).toEqual({ labels: new Int32Array([0, 1, 0]), width: 3, height: 1, classes: 2 });
    const labels = { type: 'int64' as const, dims: [1, 1, 2], data: new BigInt64Array([3n, 1n]) };
    expect(labelsFromOutput(labels, 'argmax', 0)).toEqual({ labels: new Int32Array([3, 1]), width: 2, height: 1, classes: 0 });
    expect(() => labelsFromOutput(logits, 'threshold', 0.5)).toThrow(
      'segmentation-mode threshold needs an output with 1 or 2 channels, this one has 3.',
    );
  });

  it('projects a prediction back onto the mask grid through the preprocessing geometry', () => {
    // Prediction at 4×4 for a 2×2 image stretched ×2: each mask pixel reads the prediction at (2x + 1, 2y + 1).
    const pred = { labels: new Int32Array([0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]), width: 4, height: 4 };
    expect(projectPrediction(pred, planGeometry(2, 2, { resize: { width: 4, height: 4 } }))).toEqual({
      width: 2,
      height: 2,
      data: new Uint16Array([0, 1, 2, 2]),
    });
    // Letterboxed 2×1 into 4×4: scale 2, rows 1..2 hold the image; an output at half resolution (2×2).
    const boxed = planGeometry(2, 1, { resize: { width: 4, height: 4, fit: 'letterbox' } });
    expect(boxed).toMatchObject({ scaleX: 2, scaleY: 2, offsetX: 0, offsetY: 1 });
    expect(projectPrediction({ labels: new Int32Array([5, 6, 7, 8]), width: 2, height: 2 }, boxed).data).toEqual(new Uint16Array([7, 8]));
    // Cropped pixels read background.
    const crop = planGeometry(4, 2, { resize: { width: 2, height: 2, fit: 'crop' } });
    expect(projectPrediction({ labels: new Int32Array([1, 1, 1, 1]), width: 2, height: 2 }, crop).data).toEqual(
      new Uint16Array([0, 1, 1, 0, 0, 1, 1, 0]),
    );
  });

  it('scores projected predictions with the core metrics engine, as the cloud evaluation does', () => {
    const truth = new Uint16Array([0, 1, 2, 1]);
    const pred = projectPrediction(
      { labels: new Int32Array([0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]), width: 4, height: 4 },
      planGeometry(2, 2, { resize: { width: 4, height: 4 } }),
    );
    const ev = evaluateCounts(['a.png'], [countLabels(truth, pred.data)]);
    // class 1: truth {1, 3}, predicted {1} → Dice 2/3; class 2: truth {2}, predicted {2, 3} → Dice 2/3.
    expect(ev.classes).toEqual([1, 2]);
    expect(ev.dice).toBeCloseTo(2 / 3, 12);
    expect(ev.iou).toBeCloseTo(0.5, 12);
  });
});
