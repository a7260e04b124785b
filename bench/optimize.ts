/**
 * optimize-model benchmark: the example model (the demo's cell segmenter, trained here on generated cells) as
 * FP32, FP16 and INT8, through the optimize-model step itself: size, CPU latency in onnxruntime-node (one
 * thread, 256×256 input) and Dice on the test split. Prints a markdown table.
 * Run: npm run bench:optimize [-- --python PATH] [--hidden N] [--size PX] [--iterations N]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runStep } from '../shared/core/runtime';
import { generateCellDataset } from '../shared/demo/cells';
import { toOnnx, train } from '../shared/demo/segmenter';
import { loadSplit } from '../shared/demo/train-cells';
import { MemoryHost } from '../shared/hosts/memory-host';
import { measure } from '../shared/benchmark/latency';
import { latencyStats } from '../shared/benchmark/stats';
import { getOnnxRuntime } from '../shared/onnx/runtime';
import { optimizeModelStep } from '../shared/steps/optimize-model';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const python = arg('python', path.resolve(__dirname, '..', '.venv-test', 'bin', 'python'));
const hidden = Number(arg('hidden', '16'));
const size = Number(arg('size', '256'));
const iterations = Number(arg('iterations', '200'));

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-optimize-'));
  const data = path.join(dir, 'cells');
  generateCellDataset(data, { split: { train: 16, val: 32, test: 16 }, size, seed: 21 });
  const w = train(loadSplit(path.join(data, 'train')), { steps: 300, hidden, seed: 1 });
  const model = path.join(dir, 'cells.onnx');
  fs.writeFileSync(model, toOnnx(w));
  // The demo's spec: raw 8-bit intensities, normalization inside the graph.
  const spec = path.join(dir, 'preprocessing.json');
  fs.writeFileSync(
    spec,
    JSON.stringify({ version: 1, color: 'gray', bitDepth: 8, maxValue: 1, mean: [0], std: [1], layout: 'NCHW', dtype: 'float32' }),
  );
  const report = path.join(dir, 'report.json');
  const host = new MemoryHost(
    {
      python,
      model,
      task: 'segmentation',
      preprocessing: spec,
      calibrationImages: path.join(data, 'val', 'images'),
      testImages: path.join(data, 'test', 'images'),
      testMasks: path.join(data, 'test', 'masks'),
      segmentationMode: 'threshold',
      reportFile: report,
      failOnGate: false,
    },
    { workspace: dir },
  );
  await runStep(optimizeModelStep, host, new AbortController().signal);
  if (host.failure) throw new Error(host.failure);
  const r = JSON.parse(fs.readFileSync(report, 'utf8')) as {
    fp32: { path: string; size: number; value: number };
    variants: {
      name: string;
      path: string;
      size: number;
      value: number;
      drop: number;
      passed: boolean;
      agreement: { outputs: Record<string, { maxAbs: number }> };
    }[];
  };

  const { ort } = await getOnnxRuntime({ need: 'cpu' });
  const input = new ort.Tensor(
    'float32',
    Float32Array.from({ length: size * size }, (_, i) => (i * 37) % 256),
    [1, 1, size, size],
  );
  const rows: string[] = [];
  for (const v of [
    {
      name: 'fp32',
      path: r.fp32.path,
      size: r.fp32.size,
      value: r.fp32.value,
      drop: 0,
      passed: true,
      agreement: { outputs: {} as Record<string, { maxAbs: number }> },
    },
    ...r.variants,
  ]) {
    const file = v.name === 'fp32' ? model : host.outputs[`${v.name}ModelPath`];
    const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
    const s = latencyStats(await measure(() => session.run({ image: input }), { warmup: 20, iterations }));
    await session.release();
    const agree = Object.values(v.agreement.outputs)[0];
    rows.push(
      `| ${v.name.toUpperCase()} | ${v.size} | ${s.p50.toFixed(2)} | ${s.p90.toFixed(2)} | ${v.value.toFixed(4)} | ${v.name === 'fp32' ? '' : (v.drop >= 0 ? '−' : '+') + Math.abs(v.drop).toFixed(4)} | ${agree ? agree.maxAbs.toExponential(2) : ''} |`,
    );
  }
  console.log(
    `\nExample model: demo cell segmenter, conv 3×3 (1→${hidden}) → ReLU → conv 1×1 → sigmoid, ${size}×${size} gray input, ${iterations} timed runs per variant, 1 thread.\n`,
  );
  console.log('| variant | size (bytes) | CPU p50 ms | CPU p90 ms | Dice (test, 16 images) | Dice drop | max abs diff vs FP32 |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
