import * as fs from 'node:fs';
import * as path from 'node:path';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../../support/runners';
import { cocoDataset, TempDirs } from '../../validate/fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

/** A clean set, and the same set with one image missing from val. */
function datasets() {
  const clean = cocoDataset(temp.make());
  const broken = cocoDataset(temp.make(), (s) => {
    s.docs.val.images[1].file_name = 'lost.png';
  });
  return { clean, broken };
}

describe('validate-data as a GitHub Action', () => {
  const bundle = shippedBundle('github', 'validate-data');

  it('passes: outputs, summary, report in the workspace', async () => {
    const { clean } = datasets();
    const run = await runGitHubAction(
      bundle,
      { format: 'coco', train: 'annotations/train.json', val: 'annotations/val.json', 'images-root': 'images' },
      { workspace: clean.root },
    );
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({
      passed: 'true',
      errors: '0',
      warnings: '0',
      fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(fs.existsSync(path.join(clean.root, '.mlship/validate-data/report.json'))).toBe(true);
    expect(run.summary).toContain('## Dataset validation: ✅ passed');
  });

  it('fails with an annotated error and exit code 1', async () => {
    const { broken } = datasets();
    const run = await runGitHubAction(
      bundle,
      { format: 'coco', train: 'annotations/train.json', val: 'annotations/val.json', 'images-root': 'images' },
      { workspace: broken.root },
    );
    expect(run.code).toBe(1);
    expect(run.lines).toContainEqual(
      expect.stringMatching(/^::error title=image.missing,file=annotations\/val.json::image.missing: 1 finding\(s\)\./),
    );
    expect(run.stdout).toContain('Dataset validation failed: 1 error(s), 0 warning(s) (fail-on: error).');
    expect(run.summary).toContain('| `image.missing` | 🔴 error | 1 |');
  });
});

describe('validate-data as an Azure DevOps task', () => {
  const bundle = shippedBundle('azure', 'validate-data');

  it('passes and sets output variables', async () => {
    const { clean } = datasets();
    const run = await runAzureTask(
      bundle,
      { format: 'coco', train: 'annotations/train.json', val: 'annotations/val.json', imagesRoot: 'images' },
      { workspace: clean.root },
    );
    expect(run.result).not.toBe('Failed');
    expect(run.outputs).toMatchObject({ passed: 'true', errors: '0' });
    expect(run.summaries.join('')).toContain('Dataset validation: ✅ passed');
  });

  it('fails with an issue on the annotation file', async () => {
    const { broken } = datasets();
    const run = await runAzureTask(
      bundle,
      { format: 'coco', train: 'annotations/train.json', val: 'annotations/val.json', imagesRoot: 'images' },
      { workspace: broken.root },
    );
    expect(run.result).toBe('Failed');
    expect(run.issues.some((i) => i.properties.type === 'error' && i.properties.sourcepath === 'annotations/val.json')).toBe(true);
    expect(run.commands.find((c) => c.command === 'task.complete')?.message).toContain('Dataset validation failed: 1 error(s)');
  });
});

describe('validate-data from the CLI', () => {
  it('exits 0 with --json outputs on a clean set', async () => {
    const { clean } = datasets();
    const run = await runCli(
      [
        'validate-data',
        '--format',
        'coco',
        '--train',
        'annotations/train.json',
        '--val',
        'annotations/val.json',
        '--images-root',
        'images',
        '--json',
      ],
      { cwd: clean.root },
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ passed: 'true', errors: 0, warnings: 0 });
  });

  it('exits 1 naming the missing image', async () => {
    const { broken } = datasets();
    const run = await runCli(
      [
        'validate-data',
        '--format',
        'coco',
        '--train',
        'annotations/train.json',
        '--val',
        'annotations/val.json',
        '--images-root',
        'images',
      ],
      { cwd: broken.root },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      '1. [image.missing] val annotations/val.json id 102 file_name="images/lost.png" — images/lost.png: file not found',
    );
  });

  it('exits 2 on an unknown format', async () => {
    const run = await runCli(['validate-data', '--format', 'kitti', '--train', 'x'], { cwd: temp.make() });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('not one of the allowed values: coco, yolo, voc, segmentation');
  });
});
