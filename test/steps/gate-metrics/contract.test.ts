import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SHARED_FIXTURES } from '../../support/paths';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../../support/runners';

const FIXTURE = path.join(SHARED_FIXTURES, 'coco/bbox-basic');

/** A workspace with ground truth, the production detections, and a candidate that lost every other detection. */
function workspace(): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-contract-'));
  fs.copyFileSync(path.join(FIXTURE, 'gt.json'), path.join(ws, 'gt.json'));
  const dt = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'dt.json'), 'utf8')) as unknown[];
  fs.writeFileSync(path.join(ws, 'production.json'), JSON.stringify(dt));
  fs.writeFileSync(path.join(ws, 'same.json'), JSON.stringify(dt));
  fs.writeFileSync(path.join(ws, 'worse.json'), JSON.stringify(dt.filter((_, i) => i % 2 === 0)));
  return ws;
}

const inputs = (candidate: string) => ({
  'ground-truth': 'gt.json',
  'candidate-predictions': candidate,
  'production-predictions': 'production.json',
  margin: '0.02',
  'bootstrap-resamples': '200',
  'report-file': 'gate.json',
});

describe('gate-metrics as a GitHub Action', () => {
  const bundle = shippedBundle('github', 'gate-metrics');

  it('passes an equal candidate: outputs, report, summary with the PR chart', async () => {
    const ws = workspace();
    const run = await runGitHubAction(bundle, inputs('same.json'), { workspace: ws });
    expect(run.code).toBe(0);
    expect(run.outputs.passed).toBe('true');
    expect(Number(run.outputs.difference)).toBe(0);
    expect(run.outputs['candidate-metric']).toBe(run.outputs['production-metric']);
    expect(JSON.parse(fs.readFileSync(path.join(ws, 'gate.json'), 'utf8'))).toHaveProperty('passed', true);
    // The PR chart as GitHub renders it in a job summary: Mermaid, no data: image (GitHub strips those).
    expect(run.summary).toContain('```mermaid');
    expect(run.summary).not.toContain('data:');
  });

  it('fails a worse candidate on non-inferiority, naming the rule and the margin', async () => {
    const ws = workspace();
    const run = await runGitHubAction(bundle, inputs('worse.json'), { workspace: ws });
    expect(run.code).toBe(1);
    expect(run.outputs.passed).toBe('false');
    expect(Number(run.outputs['ci-upper'])).toBeLessThan(0);
    expect(run.stdout).toMatch(
      /::error::Metrics gate failed: non-inferiority: .*its lower bound -0\.\d+ is below −0\.0200, the allowed margin/,
    );
  });
});

describe('gate-metrics as an Azure DevOps task', () => {
  const bundle = shippedBundle('azure', 'gate-metrics');
  const camel = (candidate: string) => ({
    groundTruth: 'gt.json',
    candidatePredictions: candidate,
    productionPredictions: 'production.json',
    margin: '0.02',
    bootstrapResamples: '200',
  });

  it('passes and sets output variables', async () => {
    const run = await runAzureTask(bundle, camel('same.json'), { workspace: workspace() });
    expect(run.result).not.toBe('Failed');
    expect(run.outputs.passed).toBe('true');
  });

  it('fails the task on a worse candidate', async () => {
    const run = await runAzureTask(bundle, camel('worse.json'), { workspace: workspace() });
    expect(run.result).toBe('Failed');
    expect(run.outputs.passed).toBe('false');
  });
});

describe('gate-metrics and eval from the CLI', () => {
  it('exits 0 and 1 for pass and fail', async () => {
    const ws = workspace();
    const pass = await runCli(
      [
        'gate-metrics',
        '--ground-truth',
        'gt.json',
        '--candidate-predictions',
        'same.json',
        '--production-predictions',
        'production.json',
        '--bootstrap-resamples',
        '100',
        '--json',
      ],
      { cwd: ws },
    );
    expect(pass.code).toBe(0);
    expect(JSON.parse(pass.stdout)).toMatchObject({ passed: true });
    const fail = await runCli(
      [
        'gate-metrics',
        '--ground-truth',
        'gt.json',
        '--candidate-predictions',
        'worse.json',
        '--production-predictions',
        'production.json',
        '--max-drop',
        '0.01',
        '--bootstrap-resamples',
        '0',
      ],
      { cwd: ws },
    );
    expect(fail.code).toBe(1);
    expect(fail.stderr).toMatch(/max.?drop/i);
  });

  it('--json on a failed gate prints the outputs that were set and the error, and exits 1', async () => {
    const ws = workspace();
    const run = await runCli(
      [
        'gate-metrics',
        '--ground-truth',
        'gt.json',
        '--candidate-predictions',
        'worse.json',
        '--production-predictions',
        'production.json',
        '--max-drop',
        '0.01',
        '--bootstrap-resamples',
        '0',
        '--json',
      ],
      { cwd: ws },
    );
    expect(run.code).toBe(1);
    const printed = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(printed).toMatchObject({ passed: false, report: expect.stringContaining('gate-metrics-report.json') });
    expect(printed['candidate-metric']).toBeLessThan(printed['production-metric'] as number);
    expect(printed.error).toMatch(/^Metrics gate failed: max-drop: AP fell by/);
  });

  it('--json on bad usage prints the error and exits 2', async () => {
    const run = await runCli([
      'gate-metrics',
      '--ground-truth',
      'missing.json',
      '--candidate-predictions',
      'x.json',
      '--iou-type',
      'nope',
      '--json',
    ]);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toEqual({ error: expect.stringContaining('iou-type') });
  });

  it('mlship eval coco prints the 12 stats in pycocotools order, equal to pycocotools', async () => {
    const expected = JSON.parse(fs.readFileSync(path.resolve(FIXTURE, '../expected.json'), 'utf8')) as {
      cases: { folder: string; iouType: string; stats: number[] }[];
    };
    const reference = expected.cases.find((c) => c.folder === 'bbox-basic' && c.iouType === 'bbox')!;
    const run = await runCli([
      'eval',
      'coco',
      '--ground-truth',
      path.join(FIXTURE, 'gt.json'),
      '--predictions',
      path.join(FIXTURE, 'dt.json'),
      '--iou-type',
      'bbox',
      '--json',
    ]);
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout).stats as number[];
    expect(stats).toHaveLength(12);
    stats.forEach((s, i) => expect(Math.abs(s - reference.stats[i])).toBeLessThanOrEqual(1e-9));
  });

  it('mlship eval exits 2 on bad usage', async () => {
    const run = await runCli(['eval', 'coco', '--iou-type', 'keypoints', '--ground-truth', 'a', '--predictions', 'b']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('allowed: bbox, segm');
  });
});
