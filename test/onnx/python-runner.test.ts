import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StepError } from '../../shared/core/errors';
import { exportScriptPath, optimizeScriptPath, runPythonJob } from '../../shared/onnx/python-runner';
import { repoPath } from '../support/paths';
import { requirePython } from '../support/python-env';

/**
 * shared/onnx/python-runner.ts: where the bundled scripts are found (beside the module, or an override that must
 * have mlship_script.py beside it), and how a script's error.json becomes the step's error.
 */

const SCRIPTS = repoPath('shared', 'onnx', 'python');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-runner-'));
}

describe('script paths', () => {
  it('finds both scripts beside the module, where mlship_script.py is too', () => {
    expect(exportScriptPath({})).toBe(path.join(SCRIPTS, 'export_onnx.py'));
    expect(optimizeScriptPath({})).toBe(path.join(SCRIPTS, 'optimize_model.py'));
  });

  it('takes an override that has mlship_script.py beside it', () => {
    const dir = tempDir();
    for (const f of ['export_onnx.py', 'optimize_model.py', 'mlship_script.py']) fs.copyFileSync(path.join(SCRIPTS, f), path.join(dir, f));
    expect(exportScriptPath({ MLSHIP_EXPORT_SCRIPT: path.join(dir, 'export_onnx.py') })).toBe(path.join(dir, 'export_onnx.py'));
  });

  it('refuses an override without mlship_script.py beside it, saying what to copy', () => {
    const dir = tempDir();
    fs.copyFileSync(path.join(SCRIPTS, 'optimize_model.py'), path.join(dir, 'optimize_model.py'));
    const override = path.join(dir, 'optimize_model.py');
    expect(() => optimizeScriptPath({ MLSHIP_OPTIMIZE_SCRIPT: override })).toThrow(
      new StepError(`MLSHIP_OPTIMIZE_SCRIPT is ${override}, but mlship_script.py, which it imports, is not beside it.`),
    );
  });

  it('refuses an export override without optimize_model.py, which its FP16 variant imports', () => {
    const dir = tempDir();
    for (const f of ['export_onnx.py', 'mlship_script.py']) fs.copyFileSync(path.join(SCRIPTS, f), path.join(dir, f));
    const override = path.join(dir, 'export_onnx.py');
    expect(() => exportScriptPath({ MLSHIP_EXPORT_SCRIPT: override })).toThrow(
      `MLSHIP_EXPORT_SCRIPT is ${override}, but optimize_model.py, which it imports, is not beside it.`,
    );
  });

  it('refuses an override that does not exist', () => {
    expect(() => exportScriptPath({ MLSHIP_EXPORT_SCRIPT: '/nonexistent/export_onnx.py' })).toThrow(
      'MLSHIP_EXPORT_SCRIPT is /nonexistent/export_onnx.py, which does not exist.',
    );
  });
});

describe('runPythonJob', () => {
  const python = requirePython(['onnx']);

  it("turns the script's error.json into a StepError with its message, hint and the last lines of its output", async () => {
    const work = tempDir();
    const configFile = path.join(work, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ workDir: work, model: path.join(work, 'missing.onnx'), outputs: {} }));
    const lines: string[] = [];
    const job = runPythonJob({
      python,
      script: optimizeScriptPath({}),
      workDir: work,
      configFile,
      cwd: work,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      onLine: (line) => lines.push(line),
      timeoutMinutes: 2,
      what: 'Optimization',
      crashHint: 'unused',
    });
    const error = await job.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StepError);
    expect((error as StepError).message).toMatch(/^Optimization failed \(model\): .*missing\.onnx is not an ONNX model onnx can load/);
    expect((error as StepError).message).toContain('Last lines of the Python output:');
    expect((error as StepError).hint).toBe('Give the FP32 model export-onnx wrote.');
    expect(lines.some((l) => l.includes('Traceback'))).toBe(true);
  });
});
