import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../../support/runners';
import { convNetOnnx } from '../../benchmark/conv-model';
import { CUDA } from '../../support/gpu';

const FALLBACK =
  'Execution provider cuda (CUDAExecutionProvider) is not available: OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library. ONNX Runtime would fall back to CPUExecutionProvider';

function workspace(): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-contract-'));
  fs.writeFileSync(path.join(ws, 'conv.onnx'), convNetOnnx());
  return ws;
}

describe('benchmark-model as a GitHub Action (ncc bundle, onnxruntime-node loaded at run time)', () => {
  const bundle = shippedBundle('github', 'benchmark-model');

  it('benchmarks on the CPU: outputs, report and histogram summary', async () => {
    const run = await runGitHubAction(
      bundle,
      { model: 'conv.onnx', provider: 'cpu', iterations: '15', warmup: '2', 'batch-sizes': '1', 'max-p95-ms': '60000' },
      { workspace: workspace() },
    );
    expect(run.code).toBe(0);
    expect(run.outputs.provider).toBe('cpu');
    expect(Number(run.outputs['p50-ms'])).toBeGreaterThan(0);
    expect(JSON.parse(run.outputs.latency)[0]).toMatchObject({ batch: 1, shapes: { input: [1, 3, 64, 64] }, stats: { count: 15 } });
    expect(run.outputs.report).toBe(path.join(run.workspace, 'mlship-benchmark.json'));
    expect(run.summary).toContain('## Benchmark: conv.onnx on cpu ✅');
    // The latency chart as GitHub renders it in a job summary: Mermaid, no data: image (GitHub strips those).
    expect(run.summary).toContain('```mermaid');
    expect(run.summary).not.toContain('data:');
  });

  it(`provider cuda: ${CUDA.available ? 'runs on the GPU' : 'fails without a CUDA provider, naming the fallback'} (${CUDA.detail})`, async () => {
    const run = await runGitHubAction(bundle, { model: 'conv.onnx', provider: 'cuda' }, { workspace: workspace() });
    if (CUDA.available) {
      expect(run.code).toBe(0);
      expect(run.outputs.provider).toBe('cuda');
      return;
    }
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`::error::${FALLBACK}`);
    expect(run.stdout).not.toMatch(/\n\s+at /);
  });
});

describe('benchmark-model as an Azure DevOps task', () => {
  const bundle = shippedBundle('azure', 'benchmark-model');

  it('sets output variables and uploads the summary', async () => {
    const run = await runAzureTask(
      bundle,
      { model: 'conv.onnx', provider: 'cpu', iterations: '15', warmup: '2' },
      { workspace: workspace() },
    );
    expect(run.result).not.toBe('Failed');
    expect(run.outputs.provider).toBe('cpu');
    expect(Number(run.outputs.p95Ms)).toBeGreaterThan(0);
    expect(run.summaries.join('\n')).toContain('| batch | first | mean | stddev | p50 | p90 | p95 | p99 | max | runs | items/s |');
  });

  it('fails a latency budget with the task result Failed', async () => {
    const run = await runAzureTask(
      bundle,
      { model: 'conv.onnx', provider: 'cpu', iterations: '5', warmup: '1', maxP95Ms: '0.0001' },
      { workspace: workspace() },
    );
    expect(run.result).toBe('Failed');
    expect(run.commands.find((c) => c.command === 'task.complete')?.message).toMatch(
      /p95 latency [\d.]+ ms \(batch 1\) exceeds maxP95Ms 0\.0001 ms/,
    );
  });
});

describe('benchmark-model from the CLI', () => {
  it('prints outputs as JSON and exits 0', async () => {
    const ws = workspace();
    const run = await runCli(
      [
        'benchmark-model',
        '--model',
        path.join(ws, 'conv.onnx'),
        '--provider',
        'cpu',
        '--iterations',
        '10',
        '--warmup',
        '1',
        '--report',
        path.join(ws, 'r.json'),
        '--json',
      ],
      { cwd: ws },
    );
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.provider).toBe('cpu');
    expect(out.latency[0].stats.count).toBe(10);
    expect(fs.existsSync(path.join(ws, 'r.json'))).toBe(true);
  });

  it(`exits ${CUDA.available ? '0 on cuda (a GPU is present)' : '1 on cuda without a CUDA provider'}, 2 on a bad enum value`, async () => {
    const ws = workspace();
    const cuda = await runCli(['benchmark-model', '--model', 'conv.onnx', '--provider', 'cuda'], { cwd: ws });
    if (CUDA.available) expect(cuda.code).toBe(0);
    else {
      expect(cuda.code).toBe(1);
      expect(cuda.stderr).toContain(FALLBACK);
    }
    const bad = await runCli(['benchmark-model', '--model', 'conv.onnx', '--provider', 'CUDA'], { cwd: ws });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Input "--provider" has value "CUDA", which is not one of the allowed values: auto, cuda, tensorrt, cpu.');
  });
});
