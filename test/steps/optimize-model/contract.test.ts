/** @jest-environment ./test/onnx/ort-environment.js */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateCellDataset } from '../../../shared/demo/cells';
import { toOnnx, train } from '../../../shared/demo/segmenter';
import { loadSplit } from '../../../shared/demo/train-cells';
import { readOnnxModelInfo } from '../../../shared/onnx/model-info';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../../support/runners';
import { requirePython } from '../../support/python-env';

/** optimize-model as the runners execute it: the ncc bundles (with optimize_model.py as an asset) and the CLI. */

jest.setTimeout(600_000);
const python = requirePython(['onnx', 'onnxruntime', 'onnxconverter_common']);

function workspace(): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-optimize-contract-'));
  generateCellDataset(path.join(ws, 'cells'), { split: { train: 8, val: 4, test: 4 }, size: 48, seed: 3 });
  fs.writeFileSync(path.join(ws, 'cells.onnx'), toOnnx(train(loadSplit(path.join(ws, 'cells', 'train')), { steps: 80, seed: 2 })));
  fs.writeFileSync(
    path.join(ws, 'spec.json'),
    JSON.stringify({ version: 1, color: 'gray', maxValue: 1, layout: 'NCHW', dtype: 'float32' }),
  );
  fs.mkdirSync(path.join(ws, 'empty'));
  return ws;
}

const base = {
  model: 'cells.onnx',
  task: 'segmentation',
  preprocessing: 'spec.json',
  testImages: 'cells/test/images',
  testMasks: 'cells/test/masks',
  segmentationMode: 'threshold',
};
const kebab = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), v]));

describe('optimize-model bundles and CLI', () => {
  it('GitHub Action: ships optimize_model.py with the mlship_script.py it imports, and writes a gated FP16 variant', async () => {
    const bundle = shippedBundle('github', 'optimize-model');
    expect(fs.existsSync(path.join(path.dirname(bundle), 'optimize_model.py'))).toBe(true);
    expect(fs.existsSync(path.join(path.dirname(bundle), 'mlship_script.py'))).toBe(true);
    const run = await runGitHubAction(bundle, kebab({ ...base, python, variants: 'fp16' }), { workspace: workspace() });
    expect(run.code).toBe(0);
    expect(run.outputs.passed).toBe('true');
    expect(readOnnxModelInfo(run.outputs['fp16-model-path']).metadata['mlship.variant']).toBe('fp16');
    expect(run.summary).toContain('## Model optimization: passed ✅');
  });

  it('Azure DevOps task: a calibration folder without images fails with the input named, result Failed', async () => {
    const run = await runAzureTask(
      shippedBundle('azure', 'optimize-model'),
      { ...base, python, variants: 'int8', calibrationImages: 'empty' },
      { workspace: workspace() },
    );
    expect(run.result).toBe('Failed');
    const message = run.commands.find((c) => c.command === 'task.complete')?.message ?? '';
    expect(message).toContain('calibrationImages (');
    expect(message).toContain('holds no PNG, JPEG or TIFF images.');
  });

  it('CLI: --json outputs, and exit 2 without the required task', async () => {
    const ws = workspace();
    const run = await runCli(
      ['optimize-model', ...Object.entries(kebab({ ...base, python, variants: 'fp16' })).flatMap(([k, v]) => [`--${k}`, v]), '--json'],
      { cwd: ws },
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).passed).toBe(true);
    const usage = await runCli(['optimize-model', '--model', 'cells.onnx', '--preprocessing', 'spec.json', '--test-images', 'x'], {
      cwd: ws,
    });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--task');
  });
});
