import { spawnSync } from 'node:child_process';
import { ROOT } from './paths';

/**
 * Whether ONNX Runtime here can run a model on CUDA: onnxruntime-node is asked to create a CUDA session for
 * the test conv model, in a child process (a failed provider load must not leave state in the test's own
 * runtime). Tests of the CUDA path assert the refusal of the CPU fallback where this is false, and a real CUDA
 * run where it is true, so the same suite holds on the CPU runners and on the GPU runners the product is for.
 */
function probe(): { available: boolean; detail: string } {
  const script = `
    const ort = require('onnxruntime-node');
    const { convNetOnnx } = require('./test/benchmark/conv-model.ts');
    ort.InferenceSession.create(convNetOnnx(), { executionProviders: ['cuda'] })
      .then(() => console.log('cuda ok'), (e) => { console.log('no cuda: ' + String(e && e.message).split('\\n')[0]); });`;
  const r = spawnSync(process.execPath, ['-r', 'esbuild-register', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const out = (r.stdout ?? '').trim();
  return { available: out === 'cuda ok', detail: out || (r.stderr ?? '').trim().split('\n')[0] };
}

export const CUDA = probe();
