import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../../support/runners';

/** A trainer with the local contract; `mode` fails it or makes it run until it is stopped. */
const TRAIN = `
const fs = require('fs'), path = require('path');
const mode = process.argv[2];
console.log('training started');
if (mode === 'fail') { console.error('CUDA out of memory'); process.exit(3); }
if (mode === 'hang') { fs.writeFileSync('pid.txt', String(process.pid)); setInterval(() => console.log('still training'), 100); return; }
fs.writeFileSync(path.join(process.env.MLSHIP_OUTPUT_DIR, 'model.onnx'), 'onnx');
fs.writeFileSync(process.env.MLSHIP_METRICS_FILE, JSON.stringify({ dice: 0.83 }));
`;

function workspace(mode: 'ok' | 'fail' | 'hang'): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'train-contract-'));
  fs.writeFileSync(path.join(ws, 'train.js'), `(() => {${TRAIN}})();`);
  fs.mkdirSync(path.join(ws, 'data'));
  fs.writeFileSync(path.join(ws, 'job.yml'), `name: cellseg\nbackend: local\ncommand: node train.js ${mode}\ninputs:\n  train: data\n`);
  return ws;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilDead(pid: number): Promise<boolean> {
  for (let i = 0; i < 200 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !processAlive(pid);
}

describe('submit-training as a GitHub Action', () => {
  const bundle = shippedBundle('github', 'submit-training');

  it('submits, waits and registers: outputs and summary', async () => {
    const ws = workspace('ok');
    const run = await runGitHubAction(bundle, { 'job-spec': 'job.yml', 'poll-interval': '0.05', register: 'true' }, { workspace: ws });
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ status: 'Completed', 'job-name': expect.stringContaining('cellseg'), 'model-version': '1' });
    expect(JSON.parse(run.outputs.metrics)).toEqual({ dice: 0.83 });
    expect(fs.readFileSync(path.join(run.outputs['model-uri'], 'model.onnx'), 'utf8')).toBe('onnx');
    expect(run.summary).toContain('cellseg');
  });

  it('stops the job when the runner cancels the step', async () => {
    const ws = workspace('hang');
    const run = await runGitHubAction(
      bundle,
      { 'job-spec': 'job.yml', 'poll-interval': '0.05' },
      { workspace: ws, cancel: { when: 'still training', signal: 'SIGINT' } },
    );
    expect(run.code).not.toBe(0);
    const pid = Number(fs.readFileSync(path.join(ws, 'pid.txt'), 'utf8'));
    expect(await waitUntilDead(pid)).toBe(true);
  });
});

describe('submit-training as an Azure DevOps task', () => {
  const bundle = shippedBundle('azure', 'submit-training');

  it('fails when training fails, with the exit code and last log lines', async () => {
    const ws = workspace('fail');
    const run = await runAzureTask(bundle, { jobSpec: 'job.yml', pollInterval: '0.05' }, { workspace: ws });
    expect(run.result).toBe('Failed');
    const message = run.commands.find((c) => c.command === 'task.complete')!.message;
    expect(message).toMatch(/exit code 3|exited with code 3/);
    expect(message).toContain('CUDA out of memory');
  });

  it('succeeds and sets output variables', async () => {
    const ws = workspace('ok');
    const run = await runAzureTask(bundle, { jobSpec: 'job.yml', pollInterval: '0.05' }, { workspace: ws });
    expect(run.result).not.toBe('Failed');
    expect(run.outputs.status).toBe('Completed');
  });
});

describe('submit-training from the CLI', () => {
  it('exits 0 with the outputs as JSON', async () => {
    const ws = workspace('ok');
    const run = await runCli(['submit-training', '--job-spec', 'job.yml', '--poll-interval', '0.05', '--json'], { cwd: ws });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'Completed', metrics: { dice: 0.83 } });
  });

  it('exits 1 when training fails', async () => {
    const ws = workspace('fail');
    const run = await runCli(['submit-training', '--job-spec', 'job.yml', '--poll-interval', '0.05'], { cwd: ws });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('CUDA out of memory');
  });

  it('exits 2 naming a wrong backend', async () => {
    const run = await runCli(['submit-training', '--backend', 'kubeflow'], { cwd: workspace('ok') });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      'Input "--backend" has value "kubeflow", which is not one of the allowed values: local, sagemaker, azureml.',
    );
  });
});
