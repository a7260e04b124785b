import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRegistry } from '../../../shared/registry';
import { createSubmitTrainingStep } from '../../../shared/steps/submit-training';
import { until } from '../../fakes/http';
import { FAST_RETRY, host, tempWorkspace, write, run } from '../../training/helpers';

const step = createSubmitTrainingStep({ retry: FAST_RETRY });

/**
 * A tiny trainer with the local contract: reads its data folder and hyperparameters, logs per epoch, writes a
 * model file into $MLSHIP_OUTPUT_DIR and metrics JSON to $MLSHIP_METRICS_FILE.
 */
const TRAIN = `
const fs = require('fs'), path = require('path');
const epochs = Number(process.argv[2]);
const data = process.env.MLSHIP_INPUT_TRAIN;
const images = fs.readdirSync(data).length;
fs.appendFileSync(path.join(process.cwd(), 'runs.txt'), 'run\\n');
let loss = 1;
const history = [];
for (let e = 1; e <= epochs; e++) { loss /= 2; history.push({ epoch: e, loss, dice: 0.8 + e / 100 }); console.log('epoch ' + e + '/' + epochs + ' loss=' + loss.toFixed(4) + ' images=' + images); }
const hps = JSON.parse(process.env.MLSHIP_HYPERPARAMETERS);
fs.writeFileSync(path.join(process.env.MLSHIP_OUTPUT_DIR, 'model.onnx'), Buffer.from('fake-onnx-' + hps.lr));
fs.writeFileSync(process.env.MLSHIP_METRICS_FILE, JSON.stringify({ dice: 0.83, iou: 0.71, perClass: { cell: 0.8, nucleus: 0.62 }, note: 'text is ignored', history }));
`;

let workspace: string;

beforeEach(() => {
  workspace = tempWorkspace('mlship-local-');
  write(workspace, 'train.js', TRAIN);
  write(workspace, 'data/train/a.png', 'x');
  write(workspace, 'data/train/b.png', 'y');
  write(
    workspace,
    'local.yml',
    `name: cellseg
command: node train.js \${{inputs.epochs}}
inputs:
  train: data/train
hyperparameters: { epochs: 3, lr: 0.01 }
`,
  );
});

const base = { jobSpec: 'local.yml', pollInterval: 0.01 };

describe('submit-training with the local backend', () => {
  it('streams the log during the wait in one collapsible group per poll, at most log-lines-per-poll lines each', async () => {
    write(
      workspace,
      'chatty.js',
      "let i = 0; const t = setInterval(() => { for (let k = 0; k < 3; k++) console.log('step ' + ++i); if (i >= 12) { clearInterval(t); require('fs').writeFileSync(process.env.MLSHIP_METRICS_FILE, '{}'); } }, 120);",
    );
    const h = host({ command: 'node chatty.js', pollInterval: 0.05, logLinesPerPoll: 2 }, workspace, process.env);
    await run(step, h);
    expect(h.failure).toBeUndefined();
    const groups: string[][] = [];
    for (const entry of h.logs) {
      if (entry.level === 'group' && entry.message.startsWith('Training log ')) groups.push([]);
      else if (entry.level === 'group') groups.push(['(other group)']);
      else if (entry.message.startsWith('  | step ') && groups.length) groups[groups.length - 1].push(entry.message);
    }
    const logGroups = groups.filter((g) => g[0] !== '(other group)');
    expect(logGroups.length).toBeGreaterThanOrEqual(3);
    // Polls while the job runs print at most 2 lines; only the final drain after it ended may print up to 5 × 2.
    for (const g of logGroups.slice(0, -1)) expect(g.length).toBeLessThanOrEqual(2);
    expect(logGroups.flat()).toEqual(Array.from({ length: 12 }, (_, i) => `  | step ${i + 1}`).slice(0, logGroups.flat().length));
    const completed = h.logs.findIndex((l) => / Completed/.test(l.message));
    const firstGroup = h.logs.findIndex((l) => l.level === 'group' && l.message.startsWith('Training log '));
    expect(firstGroup).toBeLessThan(completed);
    expect(h.text).toContain('… more lines waiting; the next poll continues (at most 2 lines per poll)');
  });

  it('prints no training log with stream-logs false', async () => {
    const h = host({ ...base, streamLogs: false }, workspace, process.env);
    await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(h.text).not.toContain('  | epoch');
  });

  it('trains, streams the log, and registers the model with its metrics in the local registry', async () => {
    const h = host({ ...base, register: true, dataFingerprint: 'sha256:1f2e3d' }, workspace, process.env);
    await run(step, h);
    expect(h.failure).toBeUndefined();
    const name = h.outputs.jobName;
    const jobDir = path.join(workspace, '.mlship/jobs', name);
    expect(h.outputs.status).toBe('Completed');
    expect(h.outputs.modelUri).toBe(path.join(jobDir, 'output'));
    expect(fs.readFileSync(path.join(jobDir, 'output/model.onnx'), 'utf8')).toBe('fake-onnx-0.01');
    expect(JSON.parse(h.outputs.metrics)).toEqual({ dice: 0.83, iou: 0.71, 'perClass.cell': 0.8, 'perClass.nucleus': 0.62 });
    expect(h.text).toContain('  | epoch 1/3 loss=0.5000 images=2');
    expect(h.text).toContain('  | epoch 3/3 loss=0.1250 images=2');
    expect(h.outputs.modelVersion).toBe('1');

    const registry = createRegistry('local', { root: path.join(workspace, '.mlship/registry') });
    const v = await registry.get('cellseg', '1');
    expect(v).toMatchObject({
      name: 'cellseg',
      version: '1',
      artifactUri: path.join(jobDir, 'output'),
      metrics: { dice: 0.83, iou: 0.71, 'perClass.cell': 0.8, 'perClass.nucleus': 0.62 },
      dataFingerprint: 'sha256:1f2e3d',
      gitCommit: 'c0ffee1234567890',
      trainingJob: name,
      stage: 'candidate',
      approval: 'pending',
      properties: { backend: 'local', repository: 'acme/cells' },
    });
    expect(h.summary).toContain(`| Registered | cellseg v1 (candidate) |`);
    // The training section: hyperparameters, and one curve per metric from the metrics file's history.
    expect(h.summary).toContain('### Hyperparameters\n\n| name | value |\n| --- | --- |\n| epochs | 3 |\n| lr | 0.01 |');
    expect(h.summary).toContain('### Training curves (3 points)');
    expect(h.summary).toContain('  title "loss during training"\n  x-axis "epoch or step" 1 --> 3\n  y-axis "loss" 0 --> 0.5\n');
    expect(h.summary).toContain('  title "dice during training"');
    expect(h.summary).not.toMatch(/\| {2}\| {2}\|/);
  });

  it('a re-run attaches to the finished job: no second training, same registry version', async () => {
    for (const attempt of [1, 2, 3]) {
      const h = host({ ...base, register: true }, workspace, process.env, { attempt });
      await run(step, h);
      expect(h.failure).toBeUndefined();
      expect(h.outputs.modelVersion).toBe('1');
    }
    expect(fs.readFileSync(path.join(workspace, 'runs.txt'), 'utf8')).toBe('run\n');
    const registry = createRegistry('local', { root: path.join(workspace, '.mlship/registry') });
    expect((await registry.list('cellseg')).map((v) => v.version)).toEqual(['1']);
  });

  it('fails with the exit code and the last log lines of the script', async () => {
    write(
      workspace,
      'crash.js',
      `console.log('loading 2 images'); console.error('ValueError: labels and images differ in count (2 vs 3)'); process.exit(3);`,
    );
    const h = host({ ...base, command: 'node crash.js' }, workspace, process.env);
    await run(step, h);
    expect(h.failure).toContain(
      'failed (Failed): the command exited with code 3: loading 2 images | ValueError: labels and images differ in count (2 vs 3)',
    );
  });

  it('kills the training process when the run is cancelled', async () => {
    write(workspace, 'slow.js', `console.log('started ' + process.pid); setInterval(() => {}, 1000);`);
    const h = host({ ...base, command: 'node slow.js' }, workspace, process.env);
    const controller = new AbortController();
    const running = run(step, h, controller.signal);
    await until(() => h.text.includes('| started '));
    const pid = Number(/\| started (\d+)/.exec(h.text)![1]);
    controller.abort();
    await running;
    expect(h.failure).toMatch(/The run was cancelled; training job cellseg-[0-9a-f]{12} was stopped\./);
    await until(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    const status = JSON.parse(fs.readFileSync(path.join(workspace, '.mlship/jobs', h.getState('jobName')!, 'status.json'), 'utf8'));
    expect(status.state === 'stopped' || status.state === 'stopping').toBe(true);
    await until(
      () =>
        JSON.parse(fs.readFileSync(path.join(workspace, '.mlship/jobs', h.getState('jobName')!, 'status.json'), 'utf8')).state ===
        'stopped',
    );
  });

  it('says where the metrics file should have been', async () => {
    write(workspace, 'nometrics.js', `console.log('done')`);
    const h = host({ ...base, command: 'node nometrics.js' }, workspace, process.env);
    await run(step, h);
    expect(h.failure).toMatch(/finished but wrote no metrics file at .*output[/\\]metrics\.json/);
    expect(h.failure).toContain('$MLSHIP_METRICS_FILE');
  });

  it('enforces maxRuntimeMinutes like the cloud services do', async () => {
    write(workspace, 'forever.js', `setInterval(() => {}, 1000);`);
    write(workspace, 'short.yml', 'name: cellseg\ncommand: node forever.js\nmaxRuntimeMinutes: 0.005\n');
    const h = host({ ...base, jobSpec: 'short.yml' }, workspace, process.env);
    await run(step, h);
    expect(h.failure).toContain('MaxRuntimeExceeded: the command ran longer than 0.3 s and was stopped');
  });

  it('refuses cloud URIs as local inputs and unknown ${{inputs.x}} references', async () => {
    const h = host({ ...base, dataInputs: 'train=s3://bucket/train/' }, workspace, process.env);
    await run(step, h);
    expect(h.failure).toContain('Input "train" is s3://bucket/train/, but the local backend reads local folders and files only.');
    const h2 = host({ ...base, command: 'node train.js ${{inputs.batch}}' }, workspace, process.env);
    await run(step, h2);
    expect(h2.failure).toContain('The command refers to ${{inputs.batch}}, but the job spec has no input or hyperparameter "batch".');
  });
});
