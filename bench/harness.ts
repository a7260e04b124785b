/**
 * How much does benchmark-model's timing harness add to what it measures?
 *
 * Compares, on the same model, session and inputs, alternating run by run (so drift on a shared machine hits both
 * alike):
 *   - bare:      t0 = hrtime(); await session.run(feeds); samples.push(hrtime() - t0)
 *   - harness:   shared/benchmark/latency.ts measure(), the loop the step runs;
 *   - untimed:   for (...) await session.run(feeds), total time / runs (no per-run clock reads at all), per block.
 * Target: harness p50 within 2% of bare p50.
 *
 * The model (a small conv net written in TypeScript, test/benchmark/conv-model.ts, so the bench needs no Python)
 * goes to a temp folder. Run: node -r esbuild-register bench/harness.ts [--runs 300] [--blocks 10]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measure } from '../shared/benchmark/latency';
import { latencyStats, mean, quantile } from '../shared/benchmark/stats';
import { getOnnxRuntime } from '../shared/onnx/runtime';
import { toOrtTensor } from '../shared/onnx/session';
import { randomTensor } from '../shared/onnx/tensors';
import { convNetOnnx } from '../test/benchmark/conv-model';

// --- the comparison ---------------------------------------------------------------------------------------------
function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const runs = arg('runs', 100);
  const blocks = arg('blocks', 30);
  // One intra-op thread by default: on a shared CI machine a spinning thread pool adds more noise than signal.
  const threads = arg('threads', 1);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-')), 'convnet.onnx');
  fs.writeFileSync(file, convNetOnnx());
  const runtime = await getOnnxRuntime({});
  const session = await runtime.ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
  });
  const feeds = { input: toOrtTensor(runtime.ort, randomTensor('float32', [1, 3, 64, 64], 1)) };
  const run = () => session.run(feeds);
  for (let i = 0; i < 50; i++) await run();

  const bare: number[] = [];
  const harness: number[] = [];
  const untimed: number[] = [];
  // Per block, harness p50 / bare p50: the median of these ratios is robust to the load swings of a shared
  // machine. Within a block the two alternate run by run (ABBA), so both see the same moment.
  const ratios: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const blockBare: number[] = [];
    const blockHarness: number[] = [];
    for (let i = 0; i < runs; i++) {
      const harnessFirst = (i + b) % 2 === 1;
      if (harnessFirst) blockHarness.push(...(await measure(run, { warmup: 0, iterations: 1 })));
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      blockBare.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (!harnessFirst) blockHarness.push(...(await measure(run, { warmup: 0, iterations: 1 })));
    }
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) await session.run(feeds);
    untimed.push(Number(process.hrtime.bigint() - t0) / 1e6 / runs);
    bare.push(...blockBare);
    harness.push(...blockHarness);
    ratios.push(quantile(blockHarness, 0.5) / quantile(blockBare, 0.5));
  }
  await session.release();

  const b = latencyStats(bare);
  const h = latencyStats(harness);
  const pct = (x: number, ref: number) => `${((x / ref - 1) * 100).toFixed(2)}%`;
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  process.stdout.write(
    `## Benchmark harness overhead\n\nModel: 5-layer conv net, 1×3×64×64, CPU provider with ${threads} intra-op thread(s), onnxruntime-node ${runtime.version}; ${blocks} blocks × ${runs} runs per method, bare and harness alternating run by run; ${cpu} × ${os.cpus().length}.\n\n`,
  );
  process.stdout.write('| method | runs | p50 (ms) | p95 (ms) | mean (ms) | p50 vs bare |\n| --- | --- | --- | --- | --- | --- |\n');
  process.stdout.write(`| bare session.run loop | ${b.count} | ${b.p50.toFixed(4)} | ${b.p95.toFixed(4)} | ${b.mean.toFixed(4)} | — |\n`);
  process.stdout.write(
    `| benchmark-model harness | ${h.count} | ${h.p50.toFixed(4)} | ${h.p95.toFixed(4)} | ${h.mean.toFixed(4)} | ${pct(h.p50, b.p50)} |\n`,
  );
  process.stdout.write(`| untimed loop (total / runs) | ${untimed.length * runs} | — | — | ${mean(untimed).toFixed(4)} | — |\n\n`);
  const r50 = quantile(ratios, 0.5);
  const overhead = Math.abs(r50 - 1) * 100;
  process.stdout.write(
    `Harness p50 overhead (median over ${blocks} blocks of harness p50 / bare p50): ${pct(r50, 1)}, blocks' interquartile range ${pct(quantile(ratios, 0.25), 1)} to ${pct(quantile(ratios, 0.75), 1)}; target within ±2%: ${overhead <= 2 ? 'met' : 'NOT met'}.\n` +
      `Pooled p50s differ by ${pct(h.p50, b.p50)}. The untimed loop runs in its own blocks, so its mean (${mean(untimed).toFixed(4)} ms) shows the machine's load swings more than the cost of reading the clock.\n`,
  );
}

void main();
