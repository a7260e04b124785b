/** @jest-environment ./test/onnx/ort-environment.js */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runStep } from '../../../shared/core/runtime';
import { sha256File } from '../../../shared/core/sha256';
import { generateCellDataset } from '../../../shared/demo/cells';
import { toOnnx, train } from '../../../shared/demo/segmenter';
import { loadSplit } from '../../../shared/demo/train-cells';
import { MemoryHost } from '../../../shared/hosts/memory-host';
import { readOnnxModelInfo } from '../../../shared/onnx/model-info';
import { generateSigningKeyPair } from '../../../shared/package';
import { benchmarkModelStep } from '../../../shared/steps/benchmark-model';
import { buildDevicePackageStep } from '../../../shared/steps/build-device-package';
import { optimizeModelStep } from '../../../shared/steps/optimize-model';
import { FIXTURES, runExport } from '../../onnx/torch-python';
import { requirePython } from '../../support/python-env';
import { summaryRenders } from '../../support/chromium';

/**
 * optimize-model end to end, with the real tools in the pinned Python environment (onnxconverter-common,
 * onnxruntime.quantization) and the variants scored in onnxruntime-node by the project's metrics engine:
 * a cell segmenter trained here (the demo's trainer) and a small detector trained here in PyTorch.
 */

jest.setTimeout(900_000);
const python = requirePython(['onnx', 'onnxruntime', 'onnxconverter_common', 'torch', 'PIL']);
const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-optimize-'));

async function optimize(inputs: Record<string, string | number | boolean>): Promise<MemoryHost> {
  const host = new MemoryHost({ python, ...inputs }, { workspace: ws });
  await runStep(optimizeModelStep, host, new AbortController().signal);
  return host;
}

const writeJson = (file: string, value: unknown) => fs.writeFileSync(file, JSON.stringify(value, null, 2));

describe('optimize-model on a segmentation model trained in the test', () => {
  const data = path.join(ws, 'cells');
  const model = path.join(ws, 'seg', 'cells.onnx');
  const spec = path.join(ws, 'seg', 'preprocessing.json');
  const rawSpec = path.join(ws, 'seg', 'raw-pixels.json');

  beforeAll(() => {
    generateCellDataset(data, { split: { train: 16, val: 12, test: 8 }, size: 64, seed: 11 });
    const w = train(loadSplit(path.join(data, 'train')), { steps: 150, seed: 1 });
    fs.mkdirSync(path.dirname(model), { recursive: true });
    // The device normalizes (spec mean/std), so this graph takes normalized pixels: its own normalization is made
    // the identity (x / 255 * 255). Calibrating on raw pixels is then exactly the mistake the gate must catch.
    fs.writeFileSync(model, toOnnx({ ...w, mean: 0, std: 1 / 255 }, { 'mlship.version': '1.2.0' }));
    writeJson(spec, { version: 1, color: 'gray', mean: [w.mean], std: [w.std], layout: 'NCHW', dtype: 'float32' });
    writeJson(rawSpec, { version: 1, color: 'gray', maxValue: 1, layout: 'NCHW', dtype: 'float32' });
  });

  const common = () => ({
    model,
    task: 'segmentation',
    preprocessing: spec,
    calibrationImages: path.join(data, 'val', 'images'),
    testImages: path.join(data, 'test', 'images'),
    testMasks: path.join(data, 'test', 'masks'),
    segmentationMode: 'threshold',
    outputDir: path.join(ws, 'seg', 'out'),
  });

  it('builds FP16 and INT8 variants, both within their Dice margin, with provenance, agreement and size', async () => {
    const host = await optimize({ ...common(), reportFile: path.join(ws, 'seg', 'report.json') });
    expect(host.failure).toBeUndefined();
    const out = host.outputs;
    expect(out.passed).toBe('true');
    const fp32 = Number(out.fp32Metric);
    expect(fp32).toBeGreaterThan(0.7); // the trained segmenter finds the cells
    expect(fp32 - Number(out.fp16Metric)).toBeLessThanOrEqual(0.005);
    expect(fp32 - Number(out.int8Metric)).toBeLessThanOrEqual(0.02);
    const sha = await sha256File(model);
    for (const variant of ['fp16', 'int8']) {
      const file = out[`${variant}ModelPath`];
      expect(file).toBe(path.join(ws, 'seg', 'out', `cells.${variant}.onnx`));
      const info = readOnnxModelInfo(file);
      expect(info.metadata).toMatchObject({
        'mlship.variant': variant,
        'mlship.source_sha256': sha,
        'mlship.source_model': 'cells.onnx',
        'mlship.version': '1.2.0',
      });
      expect(info.inputs[0].dtype).toBe('float32');
    }
    const int8 = readOnnxModelInfo(out.int8ModelPath);
    expect(int8.opTypes.QuantizeLinear).toBeGreaterThan(0);
    expect(int8.opTypes.DequantizeLinear).toBeGreaterThan(0);
    expect(JSON.parse(int8.metadata['mlship.calibration'])).toMatchObject({ images: 12, of: 12, method: 'minmax' });
    expect(int8.metadata['mlship.optimizer']).toMatch(/^onnxruntime \d+\.\d+\.\d+ quantize_static \(QDQ, per-channel, minmax\)$/);
    expect(readOnnxModelInfo(out.fp16ModelPath).metadata['mlship.optimizer']).toMatch(
      /^onnxconverter-common \d+\.\d+\.\d+ float16 \(keep_io_types=True\)$/,
    );

    const report = JSON.parse(fs.readFileSync(path.join(ws, 'seg', 'report.json'), 'utf8'));
    expect(report.fp32).toMatchObject({ sha256: sha, size: fs.statSync(model).size });
    const byName = Object.fromEntries(report.variants.map((v: { name: string }) => [v.name, v]));
    for (const v of ['fp16', 'int8']) {
      const a = byName[v].agreement;
      expect(a.images).toBe(8);
      expect(a.outputs.cell_probability.shapeMismatches).toBe(0);
      expect(a.outputs.cell_probability.maxAbs).toBeGreaterThan(0); // reduced precision shows …
      expect(byName[v].size).toBe(fs.statSync(out[`${v}ModelPath`]).size);
    }
    // … more for INT8 than for FP16.
    expect(byName.int8.agreement.outputs.cell_probability.maxAbs).toBeGreaterThan(byName.fp16.agreement.outputs.cell_probability.maxAbs);
    expect(host.summary).toContain('## Model optimization: passed ✅');
    expect(await summaryRenders('optimize-model', host.summary)).toEqual({
      step: 'optimize-model',
      dataUri: false,
      image: false,
      axes: expect.not.arrayContaining([false]),
      overflowing: [],
    });

    // The variants plug into the next steps: benchmark-model scores the INT8 model on the same test set, and one
    // device package carries FP32 + FP16 + INT8.
    const bench = new MemoryHost(
      {
        model: out.int8ModelPath,
        provider: 'cpu',
        inputShape: '1,1,64,64',
        warmup: 1,
        iterations: 3,
        preprocessing: spec,
        testImages: path.join(data, 'test', 'images'),
        testMasks: path.join(data, 'test', 'masks'),
        segmentationMode: 'threshold',
        report: path.join(ws, 'seg', 'bench.json'),
      },
      { workspace: ws },
    );
    await runStep(benchmarkModelStep, bench, new AbortController().signal);
    expect(bench.failure).toBeUndefined();
    expect(JSON.parse(bench.outputs.accuracy).dice).toBeCloseTo(Number(out.int8Metric), 10);
    const pkg = new MemoryHost(
      {
        models: [model, out.fp16ModelPath, out.int8ModelPath].join('\n'),
        name: 'cells',
        version: '1.2.0',
        preprocessing: spec,
        signingKey: generateSigningKeyPair().privateKeyPem,
        outputDir: path.join(ws, 'seg', 'pkg'),
      },
      { workspace: ws },
    );
    await runStep(buildDevicePackageStep, pkg, new AbortController().signal);
    expect(pkg.failure).toBeUndefined();
    expect(fs.existsSync(pkg.outputs.archive)).toBe(true);
    process.stdout.write(
      `segmentation: ${JSON.stringify(report.variants.map((v: { name: string; value: number; size: number; agreement: unknown }) => [v.name, v.value, v.size, v.agreement]))}, fp32 ${report.fp32.value} ${report.fp32.size}\n`,
    );
  });

  it('fails the INT8 gate, naming the metric and the drop, when calibration images skip the normalization', async () => {
    const outDir = path.join(ws, 'seg', 'bad');
    const host = await optimize({
      ...common(),
      variants: 'int8',
      calibrationPreprocessing: rawSpec,
      outputDir: outDir,
      reportFile: path.join(ws, 'seg', 'bad-report.json'),
    });
    expect(host.failure).toMatch(
      /^Accuracy gate failed: the INT8 variant's dice is 0\.\d{4} against FP32 0\.\d{4}: a drop of 0\.\d{4}, more than the allowed 0\.0200\. No variant was written\./,
    );
    expect(host.failure).toContain(
      '→ An INT8 drop this large usually means the calibration images were not prepared like the device input',
    );
    expect(host.outputs.passed).toBe('false');
    expect(fs.existsSync(outDir)).toBe(false);
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'seg', 'bad-report.json'), 'utf8'));
    expect(report.passed).toBe(false);
    expect(report.variants[0].drop).toBeGreaterThan(0.02);
    process.stdout.write(`bad calibration: ${host.failure?.split('\n')[0]}\n`);
  });

  it('names the input and the folder when the calibration folder has no images', async () => {
    const empty = path.join(ws, 'empty');
    fs.mkdirSync(empty, { recursive: true });
    fs.writeFileSync(path.join(empty, 'notes.txt'), 'no images here');
    const host = await optimize({ ...common(), variants: 'int8', calibrationImages: empty });
    expect(host.failure).toBe(
      `calibration-images (${empty}) holds no PNG, JPEG or TIFF images.\n  → Point calibration-images at a folder of images.`,
    );
  });

  it('rejects an unknown variant and int8 without calibration images before any work', async () => {
    expect((await optimize({ ...common(), variants: 'fp16\nint4' })).failure).toContain(
      'Input "variants" names "int4", which is not a variant.',
    );
    const { calibrationImages: _c, ...noCalibration } = common();
    expect((await optimize({ ...noCalibration, variants: 'int8' })).failure).toContain('The int8 variant needs "calibration-images".');
  });
});

describe('optimize-model on a detector trained in the test', () => {
  const dir = path.join(ws, 'det');
  const spec = path.join(dir, 'preprocessing.json');
  let model = '';

  beforeAll(async () => {
    fs.mkdirSync(dir, { recursive: true });
    const r = spawnSync(python, [path.join(FIXTURES, 'train_detector.py'), dir, '150'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`training the detector failed: ${r.stderr}`);
    const host = await runExport(
      {
        modelFactory: 'tiny_models:detector2',
        checkpoint: path.join(dir, 'detector.pt'),
        exporter: 'torchscript',
        inputShape: '1,3,64,64',
        outputNames: 'boxes\nscores\nlabels',
        output: path.join(dir, 'detector.onnx'),
        parityInputs: 1,
      },
      ws,
    );
    if (host.failure) throw new Error(host.failure);
    model = host.outputs.modelPath;
    writeJson(spec, { version: 1, color: 'rgb', layout: 'NCHW', dtype: 'float32' });
  });

  it('builds FP16 and INT8 variants with NMS in the graph and scores them by COCO mAP', async () => {
    const host = await optimize({
      model,
      task: 'detection',
      preprocessing: spec,
      calibrationImages: path.join(dir, 'calib'),
      testImages: path.join(dir, 'test'),
      testAnnotations: path.join(dir, 'test.json'),
      metric: 'AP50',
      reportFile: path.join(dir, 'report.json'),
    });
    expect(host.failure).toBeUndefined();
    expect(Number(host.outputs.fp32Metric)).toBeGreaterThan(0.3);
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    for (const v of report.variants) {
      expect(v.accuracy.kind).toBe('detection');
      expect(Object.keys(v.agreement.outputs).sort()).toEqual(['boxes', 'labels', 'scores']);
    }
    expect(readOnnxModelInfo(host.outputs.int8ModelPath).opTypes.NonMaxSuppression).toBe(1);
    process.stdout.write(
      `detection: ${JSON.stringify(report.variants.map((v: { name: string; value: number; size: number; agreement: unknown }) => [v.name, v.value, v.size, v.agreement]))}, fp32 ${report.fp32.value} ${report.fp32.size}\n`,
    );
  });

  it('says the accuracy cannot be measured, naming the annotations, when the test set has no boxes', async () => {
    const gt = JSON.parse(fs.readFileSync(path.join(dir, 'test.json'), 'utf8'));
    const empty = path.join(dir, 'no-boxes.json');
    writeJson(empty, { ...gt, annotations: [] });
    const host = await optimize({
      model,
      task: 'detection',
      variants: 'fp16',
      preprocessing: spec,
      testImages: path.join(dir, 'test'),
      testAnnotations: empty,
    });
    expect(host.failure).toMatch(
      new RegExp(
        `^The accuracy of the fp32 model .*detector\\.onnx cannot be measured: AP is undefined on ${empty.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(12 test images, \\d+ detections\\)\\.`,
      ),
    );
    expect(host.failure).toContain('→ The test annotations need boxes in the images of test-images');
  });
});
