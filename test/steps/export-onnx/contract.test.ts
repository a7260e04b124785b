import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readOnnxModelInfo } from '../../../shared/onnx/model-info';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../../support/runners';
import { FIXTURES, python } from '../../onnx/torch-python';

const ws = () => fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-export-contract-'));

describe('export-onnx as a GitHub Action (ncc bundle with the Python script as an asset)', () => {
  const bundle = shippedBundle('github', 'export-onnx');

  it('ships export_onnx.py next to the bundle and exports a verified model', async () => {
    expect(fs.existsSync(path.join(path.dirname(bundle), 'export_onnx.py'))).toBe(true);
    // export_onnx.py imports its FP16 conversion from optimize_model.py beside it, and both import mlship_script.py.
    expect(fs.existsSync(path.join(path.dirname(bundle), 'optimize_model.py'))).toBe(true);
    expect(fs.existsSync(path.join(path.dirname(bundle), 'mlship_script.py'))).toBe(true);
    const run = await runGitHubAction(
      bundle,
      {
        python: python,
        'source-dir': FIXTURES,
        'model-factory': 'tiny_models:unet',
        exporter: 'torchscript',
        'input-shape': '1,3,32,32',
        'dynamic-axes': 'batch',
        output: 'model.onnx',
        'parity-inputs': '1',
        'model-version': '3.0.0',
      },
      { workspace: ws() },
    );
    expect(run.code).toBe(0);
    expect(run.outputs['model-path']).toBe(path.join(run.workspace, 'model.onnx'));
    expect(run.outputs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(run.outputs.opset).toBe('17');
    // The run's commit comes from GITHUB_SHA.
    expect(readOnnxModelInfo(path.join(run.workspace, 'model.onnx')).metadata).toMatchObject({
      'mlship.version': '3.0.0',
      'mlship.git_commit': '0123456789abcdef0123456789abcdef01234567',
    });
    expect(run.summary).toContain('## ONNX export: model.onnx');
  });
});

describe('export-onnx as an Azure DevOps task', () => {
  const bundle = shippedBundle('azure', 'export-onnx');

  it('fails on an operator ONNX cannot express, with the hint, result Failed', async () => {
    const run = await runAzureTask(
      bundle,
      {
        python: python,
        sourceDir: FIXTURES,
        modelFactory: 'tiny_models:unexportable',
        exporter: 'torchscript',
        inputShape: '1,3,16,16',
        output: 'fft.onnx',
      },
      { workspace: ws() },
    );
    expect(run.result).toBe('Failed');
    const message = run.commands.find((c) => c.command === 'task.complete')?.message ?? '';
    expect(message).toContain('Export failed (unsupported-operator): torch.onnx.export cannot export operator aten::fft_rfft2 at opset 17');
    expect(message).toContain('register_custom_op_symbolic');
  });
});

describe('export-onnx from the CLI', () => {
  it('exports with --json outputs, and exits 2 when neither model-factory nor torchscript is given', async () => {
    const dir = ws();
    const run = await runCli(
      [
        'export-onnx',
        '--python',
        python,
        '--source-dir',
        FIXTURES,
        '--model-factory',
        'tiny_models:mismatch',
        '--exporter',
        'torchscript',
        '--input-shape',
        '1,3,8,8',
        '--output',
        'm.onnx',
        '--parity-inputs',
        '1',
        '--atol',
        '1',
        '--rtol',
        '1',
        '--json',
      ],
      { cwd: dir },
    );
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out['model-path']).toBe(path.join(dir, 'm.onnx'));
    expect(out.parity.fp32.cases).toBe(1);
    const usage = await runCli(['export-onnx', '--input-shape', '1,3,8,8', '--output', 'm.onnx'], { cwd: dir });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('Give exactly one of "--model-factory" and "--torchscript".');
  });
});
