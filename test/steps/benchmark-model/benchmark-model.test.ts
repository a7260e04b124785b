/** @jest-environment ./test/onnx/ort-environment.js */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { runStep } from '../../../shared/core/runtime';
import { MemoryHost } from '../../../shared/hosts/memory-host';
import { benchmarkModelStep } from '../../../shared/steps/benchmark-model';
import { seededRandom } from '../../../shared/core/random';
import { getOnnxRuntime } from '../../../shared/onnx/runtime';
import { toOrtTensor } from '../../../shared/onnx/session';
import { preprocessImage } from '../../../shared/preprocess/image';
import { loadPreprocessSpec } from '../../../shared/preprocess/spec';
import { runExport, tempDir } from '../../onnx/torch-python';
import { CUDA } from '../../support/gpu';

async function bench(inputs: Record<string, string | number | boolean>, ws: string, env: NodeJS.ProcessEnv = {}): Promise<MemoryHost> {
  const host = new MemoryHost({ warmup: 3, iterations: 20, ...inputs }, { workspace: ws, env });
  await runStep(benchmarkModelStep, host, new AbortController().signal);
  return host;
}

describe('benchmark-model on the CPU with exported models', () => {
  const ws = tempDir('mlship-bench-');

  beforeAll(async () => {
    for (const [factory, output, extra] of [
      ['tiny_models:unet', 'unet.onnx', { dynamicAxes: 'batch,height,width', inputName: 'image', outputNames: 'logits', parityInputs: 1 }],
      ['tiny_models:slower_unet', 'slower.onnx', { dynamicAxes: 'batch,height,width', inputName: 'image', parityInputs: 1 }],
      ['tiny_models:red_threshold', 'red.onnx', { dynamicAxes: 'height,width', parityInputs: 1 }],
      ['tiny_models:detector', 'detector.onnx', { outputNames: 'boxes\nscores\nlabels', parityInputs: 1 }],
    ] as const) {
      // The TorchScript exporter: the tiny detector's NMS is a traced autograd.Function torch.export cannot capture.
      const host = await runExport({ modelFactory: factory, inputShape: '1,3,64,64', output, exporter: 'torchscript', ...extra }, ws);
      if (host.failure) throw new Error(host.failure);
    }
    // Images of another size than the model input, for end-to-end latency through resize and normalize.
    fs.mkdirSync(path.join(ws, 'images'));
    const rnd = seededRandom(3);
    for (let i = 0; i < 3; i++) {
      const pixels = Buffer.from(Array.from({ length: 40 * 30 * 3 }, () => Math.floor(rnd() * 256)));
      await sharp(pixels, { raw: { width: 40, height: 30, channels: 3 } })
        .png()
        .toFile(path.join(ws, 'images', `img${i}.png`));
    }
    fs.writeFileSync(
      path.join(ws, 'spec.json'),
      JSON.stringify({
        version: 1,
        color: 'rgb',
        resize: { width: 64, height: 64 },
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        layout: 'NCHW',
        dtype: 'float32',
      }),
    );
  });

  it('measures latency per batch size with real numbers, end to end with preprocessing, and checks outputs against the PyTorch reference', async () => {
    const host = await bench(
      {
        model: 'unet.onnx',
        provider: 'cpu',
        inputShape: '1,3,64,64',
        batchSizes: '1\n2',
        referenceDir: 'unet.reference',
        preprocessing: 'spec.json',
        images: 'images',
        maxP95Ms: 60000,
        report: 'out/report.json',
      },
      ws,
    );
    expect(host.failure).toBeUndefined();
    const out = host.outputs;
    expect(out.provider).toBe('cpu');
    const latency = JSON.parse(out.latency);
    expect(latency.map((l: { batch: number; shapes: unknown; stats: { count: number } }) => [l.batch, l.shapes, l.stats.count])).toEqual([
      [1, { image: [1, 3, 64, 64] }, 20],
      [2, { image: [2, 3, 64, 64] }, 20],
    ]);
    for (const l of latency) {
      expect(l.stats.p50).toBeGreaterThan(0);
      expect(l.stats.min).toBeLessThanOrEqual(l.stats.p50);
      expect(l.stats.p50).toBeLessThanOrEqual(l.stats.p95);
      expect(l.stats.p95).toBeLessThanOrEqual(l.stats.p99);
      expect(l.stats.p99).toBeLessThanOrEqual(l.stats.max);
      expect(l.throughput).toBeCloseTo((l.batch * 1000) / l.stats.mean, 6);
    }
    // The output is the report's p50 rounded to the microsecond.
    expect(Number(out.p50Ms)).toBe(Math.round(latency[0].stats.p50 * 1000) / 1000);
    expect(latency[0].cold).toBe(true);
    const accuracy = JSON.parse(out.accuracy);
    expect(accuracy.cases).toBe(3);
    expect(accuracy.outputs.logits.ok).toBe(true);
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'out/report.json'), 'utf8'));
    expect(report.format).toBe('mlship-benchmark/1');
    expect(report.latency[0].samples).toBeUndefined();
    expect(report.latency[0].histogram.counts.reduce((a: number, b: number) => a + b, 0)).toBe(20);
    expect(report.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The TorchScript exporter names the output's dynamic axes itself, unrelated to the input's "height"/"width",
    // and this model carries no mlship.task metadata: the report says the task is unknown rather than guess.
    expect(report.task).toBeNull();
    expect(report.samplesFile).toBe('report.samples.json');
    const samples = JSON.parse(fs.readFileSync(path.join(ws, 'out/report.samples.json'), 'utf8'));
    expect(samples.latency[0].samples).toHaveLength(20);
    expect(report.endToEnd.images).toBe(3);
    expect(report.endToEnd.stats.count).toBe(20);
    expect(report.endToEnd.decodeMs).toBeGreaterThan(0);
    expect(report.environment.onnxruntime.version).toBe('1.23.2');
    expect(report.environment.cpu.cores).toBeGreaterThan(0);
    expect(host.summary).toContain('xychart-beta\n  title "Latency of unet.onnx on cpu"');
    expect(host.summary).toContain('pie showData title Where end-to-end time goes (mean per image)');
    expect(host.summary).not.toContain('data:');
    expect(host.summary).toContain('| batch | first | mean | stddev | p50 | p90 | p95 | p99 | max | runs | items/s |');
    expect(host.summary).toContain('End to end (decode + preprocessing + inference, 3 image(s))');
  });

  it(`provider cuda: ${CUDA.available ? 'runs every node on CUDA' : 'fails where ONNX Runtime has no CUDA provider, naming the CPU fallback'}`, async () => {
    const host = await bench({ model: 'unet.onnx', provider: 'cuda', inputShape: '1,3,64,64' }, ws);
    if (CUDA.available) {
      expect(host.failure).toBeUndefined();
      expect(host.outputs.provider).toBe('cuda');
      return;
    }
    expect(host.failure).toContain(
      'Execution provider cuda (CUDAExecutionProvider) is not available: OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library.',
    );
    expect(host.failure).toContain(
      'ONNX Runtime would fall back to CPUExecutionProvider, so the model would run on the CPU, not the GPU; this step refuses that fallback.',
    );
    expect(host.failure).toContain('→ Run on a GPU runner');
  });

  it('fails a latency budget and writes the report anyway', async () => {
    const host = await bench(
      { model: 'unet.onnx', provider: 'cpu', inputShape: '1,3,64,64', maxP99Ms: 0.001, minThroughput: 1e9, report: 'budget.json' },
      ws,
    );
    expect(host.failure).toMatch(
      /- p99 latency [\d.]+ ms \(batch 1\) exceeds max-p99-ms 0\.001 ms\n- throughput [\d.]+ items\/s \(batch 1\) is below min-throughput 1000000000/,
    );
    expect(JSON.parse(fs.readFileSync(path.join(ws, 'budget.json'), 'utf8')).failures).toHaveLength(2);
  });

  it('passes the regression gate for the same model and fails it for a model several times slower, measured interleaved', async () => {
    const same = await bench(
      {
        model: 'unet.onnx',
        provider: 'cpu',
        inputShape: '1,3,64,64',
        baselineModel: 'unet.onnx',
        iterations: 40,
        // The same model against itself: a margin that two test workers sharing the 2 cores cannot exceed. The
        // several-times-slower model below is judged at the default 10%.
        regressionMargin: 100,
        report: 'same.json',
      },
      ws,
    );
    expect(same.failure).toBeUndefined();
    const verdict = JSON.parse(same.outputs.regression);
    expect(verdict).toMatchObject({ slower: false, interleaved: true, baselineSamples: 40, candidateSamples: 40, margin: 1 });

    const slow = await bench(
      { model: 'slower.onnx', provider: 'cpu', inputShape: '1,3,64,64', baselineModel: 'unet.onnx', iterations: 40, report: 'slow.json' },
      ws,
    );
    expect(slow.failure).toContain('latency regression against');
    expect(slow.failure).toMatch(/typical latency is [\d.]+% slower \(p50 ratio [\d.]+, 95% CI/);
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'slow.json'), 'utf8'));
    expect(report.regression.p50.ratio).toBeGreaterThan(1.5);
    expect(report.regression.pSlower).toBeLessThan(0.05);

    // A stored report serves as the baseline from an earlier run. Its samples are scaled down 20× so the verdict
    // does not depend on how busy this machine was between the two runs (a stored baseline is not interleaved).
    // The compact report names its raw samples file; the regression gate reads the samples from there.
    const stored = JSON.parse(fs.readFileSync(path.join(ws, 'same.json'), 'utf8'));
    const storedSamples = JSON.parse(fs.readFileSync(path.join(ws, stored.samplesFile), 'utf8'));
    for (const entry of storedSamples.latency) entry.samples = entry.samples.map((ms: number) => ms / 20);
    fs.writeFileSync(path.join(ws, 'earlier.samples.json'), JSON.stringify(storedSamples));
    fs.writeFileSync(path.join(ws, 'earlier.json'), JSON.stringify({ ...stored, samplesFile: 'earlier.samples.json' }));
    const vsReport = await bench(
      { model: 'slower.onnx', provider: 'cpu', inputShape: '1,3,64,64', baselineReport: 'earlier.json', report: 'vs-report.json' },
      ws,
    );
    expect(vsReport.failure).toContain('latency regression against');
    expect(vsReport.text).toContain('not interleaved');
  });

  it('measures Dice on a test set through the preprocessing geometry (metrics engine) and compares it with the cloud metric', async () => {
    const images = path.join(ws, 'test/images');
    const masks = path.join(ws, 'test/masks');
    fs.mkdirSync(images, { recursive: true });
    fs.mkdirSync(masks, { recursive: true });
    const rnd = seededRandom(11);
    const foreground: number[] = [0, 0, 0];
    const firstMask: number[] = [];
    for (let i = 0; i < 3; i++) {
      const rgb = Buffer.alloc(20 * 16 * 3);
      const mask = Buffer.alloc(20 * 16);
      for (let p = 0; p < 20 * 16; p++) {
        const red = Math.floor(rnd() * 256);
        rgb[p * 3] = red;
        rgb[p * 3 + 1] = Math.floor(rnd() * 256);
        mask[p] = red > 127 ? 1 : 0;
        foreground[i] += mask[p];
        if (i === 0) firstMask.push(mask[p]);
      }
      await sharp(rgb, { raw: { width: 20, height: 16, channels: 3 } })
        .png()
        .toFile(path.join(images, `cell${i}.png`));
      await sharp(mask, { raw: { width: 20, height: 16, channels: 1 } })
        .png()
        .toFile(path.join(masks, `cell${i}.png`));
    }
    // Upscaled ×2 (nearest) and letterboxed: predictions must map back onto the 20×16 masks exactly.
    for (const [name, resize] of [
      ['stretch.json', { width: 40, height: 32, interpolation: 'nearest' }],
      ['letterbox.json', { width: 40, height: 40, fit: 'letterbox', interpolation: 'nearest' }],
    ] as const) {
      fs.writeFileSync(path.join(ws, name), JSON.stringify({ version: 1, color: 'rgb', resize, layout: 'NCHW', dtype: 'float32' }));
      const host = await bench(
        {
          model: 'red.onnx',
          provider: 'cpu',
          inputShape: '1,3,64,64',
          iterations: 2,
          preprocessing: name,
          testImages: 'test/images',
          testMasks: 'test/masks',
          cloudMetric: 1,
          metricTolerance: 0.001,
          report: 'acc.json',
        },
        ws,
      );
      expect(host.failure).toBeUndefined();
      const acc = JSON.parse(host.outputs.accuracy);
      expect(acc).toMatchObject({ kind: 'segmentation', images: 3, classes: [1], dice: 1, iou: 1, microDice: 1, microIou: 1 });
    }

    // Ten foreground pixels of the first mask relabelled background: tp = F - 10, fp = 10, fn = 0.
    let flipped = 0;
    for (let p = 0; p < firstMask.length && flipped < 10; p++) {
      if (firstMask[p] === 1) {
        firstMask[p] = 0;
        flipped++;
      }
    }
    await sharp(Buffer.from(firstMask), { raw: { width: 20, height: 16, channels: 1 } })
      .png()
      .toFile(path.join(masks, 'cell0.png'));
    // The engine's headline Dice is the mean over images (image 0 loses, the others stay perfect); micro pools pixels.
    const tp0 = foreground[0] - 10;
    const dice = ((2 * tp0) / (2 * tp0 + 10) + 2) / 3;
    const total = foreground[0] + foreground[1] + foreground[2];
    const host = await bench(
      {
        model: 'red.onnx',
        provider: 'cpu',
        inputShape: '1,3,64,64',
        iterations: 2,
        preprocessing: 'stretch.json',
        testImages: 'test/images',
        testMasks: 'test/masks',
        cloudMetric: 1,
        metricTolerance: 0.001,
        report: 'acc2.json',
      },
      ws,
    );
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'acc2.json'), 'utf8'));
    expect(report.accuracy.dice).toBeCloseTo(dice, 12);
    expect(report.accuracy.iou).toBeCloseTo((tp0 / foreground[0] + 2) / 3, 12);
    expect(report.accuracy.microDice).toBeCloseTo((2 * (total - 10)) / (2 * (total - 10) + 10), 12);
    expect(host.failure).toContain(
      `dice on the device is ${dice.toFixed(4)}, the cloud evaluation reported 1.0000: a difference of ${(dice - 1).toFixed(4)}, beyond metric-tolerance 0.001`,
    );
  });

  it('measures COCO mAP of a detector with NMS in its graph, boxes mapped back to image pixels', async () => {
    const images = path.join(ws, 'det/images');
    fs.mkdirSync(images, { recursive: true });
    const rnd = seededRandom(5);
    for (let i = 0; i < 3; i++) {
      const pixels = Buffer.from(Array.from({ length: 48 * 40 * 3 }, () => Math.floor(rnd() * 256)));
      await sharp(pixels, { raw: { width: 48, height: 40, channels: 3 } })
        .png()
        .toFile(path.join(images, `frame${i}.png`));
    }
    fs.writeFileSync(
      path.join(ws, 'det/spec.json'),
      JSON.stringify({ version: 1, color: 'rgb', resize: { width: 64, height: 64 }, layout: 'NCHW', dtype: 'float32' }),
    );
    // Ground truth = the model's own boxes, scaled from the 64×64 tensor to 48×40 pixels here by hand: mAP must be 1.
    const runtime = await getOnnxRuntime({});
    const session = await runtime.ort.InferenceSession.create(path.join(ws, 'detector.onnx'));
    const spec = loadPreprocessSpec(path.join(ws, 'det/spec.json'));
    const annotations: { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: 0 }[] = [];
    for (let i = 0; i < 3; i++) {
      const { tensor } = await preprocessImage(path.join(images, `frame${i}.png`), spec);
      const out = await session.run({ input: toOrtTensor(runtime.ort, tensor) });
      const boxes = out.boxes.data as Float32Array;
      const labels = out.labels.data as BigInt64Array;
      for (let k = 0; k < labels.length; k++) {
        const x1 = Math.min(Math.max(boxes[k * 4] * (48 / 64), 0), 48);
        const y1 = Math.min(Math.max(boxes[k * 4 + 1] * (40 / 64), 0), 40);
        const x2 = Math.min(Math.max(boxes[k * 4 + 2] * (48 / 64), 0), 48);
        const y2 = Math.min(Math.max(boxes[k * 4 + 3] * (40 / 64), 0), 40);
        annotations.push({
          id: annotations.length + 1,
          image_id: i + 1,
          category_id: Number(labels[k]) + 1,
          bbox: [x1, y1, x2 - x1, y2 - y1],
          area: (x2 - x1) * (y2 - y1),
          iscrowd: 0,
        });
      }
    }
    await session.release();
    const gt = {
      images: [0, 1, 2].map((i) => ({ id: i + 1, file_name: `frame${i}.png`, width: 48, height: 40 })),
      categories: [1, 2, 3].map((id) => ({ id, name: `cell${id}` })),
      annotations,
    };
    fs.writeFileSync(path.join(ws, 'det/gt.json'), JSON.stringify(gt));
    const host = await bench(
      {
        model: 'detector.onnx',
        provider: 'cpu',
        iterations: 2,
        preprocessing: 'det/spec.json',
        testImages: 'det/images',
        testAnnotations: 'det/gt.json',
        cloudMetric: 1,
        cloudMetricName: 'map',
        metricTolerance: 0.001,
        report: 'det.json',
      },
      ws,
    );
    expect(host.failure).toBeUndefined();
    const acc = JSON.parse(host.outputs.accuracy);
    expect(acc).toMatchObject({ kind: 'detection', images: 3, detections: annotations.length, map: 1 });
    expect(acc.metrics.AP50).toBe(1);

    // Half the ground truth of every image gone: the model's extra boxes are false positives now.
    fs.writeFileSync(path.join(ws, 'det/gt-half.json'), JSON.stringify({ ...gt, annotations: annotations.filter((a) => a.id % 2 === 0) }));
    const half = await bench(
      {
        model: 'detector.onnx',
        provider: 'cpu',
        iterations: 2,
        preprocessing: 'det/spec.json',
        testImages: 'det/images',
        testAnnotations: 'det/gt-half.json',
        cloudMetric: 1,
        cloudMetricName: 'map',
        report: 'det2.json',
      },
      ws,
    );
    const map = JSON.parse(fs.readFileSync(path.join(ws, 'det2.json'), 'utf8')).accuracy.map;
    expect(map).toBeLessThan(0.9);
    expect(half.failure).toContain(`map on the device is ${map.toFixed(4)}, the cloud evaluation reported 1.0000`);
  });

  it('soaks, samples the GPU through nvidia-smi, and fails on thermal throttling', async () => {
    const smi = path.join(ws, 'nvidia-smi');
    fs.writeFileSync(
      smi,
      [
        '#!/bin/sh',
        'case "$*" in',
        '  *index,name*) echo "0, NVIDIA Test GPU, 550.54.15, 24576, 8.6" ;;',
        '  *-lms*) t=0; while true; do if [ $t -ge 2 ]; then r=0x0000000000000040; else r=0x0000000000000000; fi; echo "2026/01/01 00:00:0$t.000, $((60 + t)), 1800, 7000, 1200, 150.5, $r"; t=$((t + 1)); sleep 0.2; done ;;',
        '  "") echo "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |" ;;',
        'esac',
      ].join('\n'),
      { mode: 0o755 },
    );
    const host = await bench(
      {
        model: 'unet.onnx',
        provider: 'cpu',
        inputShape: '1,3,32,32',
        soakDuration: 1.5,
        soakWindow: 0.4,
        gpuSampleMs: 200,
        maxDriftPercent: 1000,
        report: 'soak.json',
      },
      ws,
      { MLSHIP_NVIDIA_SMI: smi },
    );
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'soak.json'), 'utf8'));
    expect(report.environment.gpu).toEqual({
      index: 0,
      name: 'NVIDIA Test GPU',
      driver: '550.54.15',
      memoryMiB: 24576,
      computeCapability: '8.6',
      cuda: '12.4',
    });
    expect(report.soak.iterations).toBeGreaterThan(10);
    expect(report.soak.gpu.samples).toBeGreaterThanOrEqual(4);
    expect(report.soak.gpu.temperature.start).toBe(60);
    expect(report.soak.gpu.throttle[0]).toMatchObject({ reason: 'hw_thermal_slowdown', fails: true });
    expect(report.soak.rssStartMb).toBeGreaterThan(10);
    expect(host.failure).toMatch(
      /soak: GPU reported hw_thermal_slowdown in \d+ of \d+ samples \(first at \d s, max \d+ °C\): the device throttles under this load/,
    );
  });
});
