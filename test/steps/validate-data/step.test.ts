import * as fs from 'node:fs';
import * as path from 'node:path';
import { runStep } from '../../../shared/core/runtime';
import { MemoryHost } from '../../../shared/hosts/memory-host';
import { validateDataStep } from '../../../shared/steps/validate-data';
import type { ValidationReport } from '../../../shared/validate/report';
import { cocoDataset, H, pngImage, TempDirs, W } from '../../validate/fixtures';
import type { CocoSet } from '../../validate/fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

function inputs(set: CocoSet, extra: Record<string, string | number | boolean> = {}) {
  return { format: 'coco', train: 'annotations/train.json', val: 'annotations/val.json', imagesRoot: 'images', threads: 2, ...extra };
}

/** Three missing images and one box outside its image: four errors. */
function broken(root: string): CocoSet {
  return cocoDataset(root, (s) => {
    for (const k of [0, 1]) s.docs.val.images[k].file_name = `lost_${k}.png`;
    s.docs.train.images[3].file_name = 'lost_t.png';
    s.docs.train.annotations[0].bbox = [60, 2, 10, 5];
  });
}

describe('validate-data step', () => {
  it('passes a clean dataset: outputs, report and fingerprint files, summary with chart', async () => {
    const set = cocoDataset(temp.make());
    const host = new MemoryHost(inputs(set), { workspace: set.root });
    const outcome = await runStep(validateDataStep, host);
    expect(outcome.ok).toBe(true);
    expect(host.failure).toBeUndefined();
    const reportFile = path.join(set.root, '.mlship/validate-data/report.json');
    const fingerprintFile = path.join(set.root, '.mlship/validate-data/fingerprint.json');
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as ValidationReport;
    const manifest = JSON.parse(fs.readFileSync(fingerprintFile, 'utf8'));
    expect(host.outputs).toEqual({
      passed: 'true',
      errors: '0',
      warnings: '0',
      fingerprint: manifest.digest,
      report: reportFile,
      fingerprintFile,
    });
    expect(manifest.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(report.fingerprint).toEqual({ digest: manifest.digest, files: 8, bytes: manifest.bytes });
    expect(Object.keys(manifest.splits)).toEqual(['train', 'val']);
    expect(manifest.splits.train.map((f: { path: string }) => f.path)).toEqual([
      'annotations/train.json',
      'images/train_0.png',
      'images/train_1.png',
      'images/train_2.png',
      'images/train_3.png',
    ]);
    expect(host.summary).toContain('## Dataset validation: ✅ passed');
    expect(host.summary).toContain('| train | 4 | 8 | 0 (0.0%) | 2 |');
    expect(host.summary).toMatch(/xychart-beta horizontal\n  title "Instances per class"\n  x-axis "class" \["(cat|dog)", "(cat|dog)"\]/);
    expect(host.summary).not.toContain('data:');
    expect(host.text).toContain(`Fingerprint ${manifest.digest} (8 files).`);
    const reads = host.progressReports.filter((r) => r.label === 'read annotations/train.json');
    expect(reads.at(-1)).toMatchObject({ unit: 'bytes', done: fs.statSync(set.train).size, total: fs.statSync(set.train).size });
    expect(host.progressReports.filter((r) => r.label === 'hash and check headers').at(-1)).toMatchObject({ done: 8, total: 8 });
  });

  it('fails with the error count and the first three errors; report and summary are still written', async () => {
    const set = broken(temp.make());
    const host = new MemoryHost(inputs(set, { reportFile: 'out/report.json' }), { workspace: set.root });
    const outcome = await runStep(validateDataStep, host);
    expect(outcome.ok).toBe(false);
    const lines = (host.failure ?? '').split('\n');
    expect(lines[0]).toBe('Dataset validation failed: 4 error(s), 0 warning(s) (fail-on: error).');
    expect(lines.slice(1, 4)).toEqual([
      '  1. [image.missing] train annotations/train.json id 4 file_name="images/lost_t.png" — images/lost_t.png: file not found',
      '  2. [image.missing] val annotations/val.json id 101 file_name="images/lost_0.png" — images/lost_0.png: file not found',
      '  3. [image.missing] val annotations/val.json id 102 file_name="images/lost_1.png" — images/lost_1.png: file not found',
    ]);
    expect(lines).not.toContainEqual(expect.stringContaining('  4. '));
    expect(host.failure).toContain('All findings are in out/report.json.');
    const report = JSON.parse(fs.readFileSync(path.join(set.root, 'out/report.json'), 'utf8')) as ValidationReport;
    expect(report).toMatchObject({ passed: false, errors: 4, warnings: 0 });
    expect(host.summary).toContain('## Dataset validation: ❌ failed');
    expect(host.summary).toContain('| `image.missing` | 🔴 error | 3 |');
    expect(host.summary).toContain('| `geometry.box-outside` | 🔴 error | 1 |');
    expect(host.logs).toContainEqual({
      level: 'error',
      message: expect.stringMatching(/^image\.missing: 3 finding\(s\)\. First: train annotations\/train\.json id 4/),
      annotation: { file: 'annotations/train.json', line: undefined, column: undefined, title: 'image.missing' },
    });
    expect(host.outputs).toEqual({});
  });

  it('fail-on never reports without failing; fail-on warning fails on warnings alone', async () => {
    const set = broken(temp.make());
    const never = new MemoryHost(inputs(set, { failOn: 'never' }), { workspace: set.root });
    expect((await runStep(validateDataStep, never)).ok).toBe(true);
    expect(never.outputs).toMatchObject({ passed: 'true', errors: '4', warnings: '0' });

    const warned = cocoDataset(temp.make(), (s) => {
      s.image('copy.png', pngImage(W, H, { seed: 1 }));
      s.docs.train.images.push({ id: 300, file_name: 'copy.png', width: W, height: H });
      s.docs.train.annotations.push({ id: 900, image_id: 300, category_id: 1, bbox: [1, 1, 5, 5] });
    });
    const strict = new MemoryHost(inputs(warned, { failOn: 'warning' }), { workspace: warned.root });
    expect((await runStep(validateDataStep, strict)).ok).toBe(false);
    expect(strict.failure).toMatch(
      /^Dataset validation failed: 0 error\(s\), 1 warning\(s\) \(fail-on: warning\)\.\n {2}1\. \[leakage\.duplicate-within-split\] train images\/copy\.png id 300/,
    );
    const lenient = new MemoryHost(inputs(warned), { workspace: warned.root });
    expect((await runStep(validateDataStep, lenient)).ok).toBe(true);
    expect(lenient.outputs).toMatchObject({ passed: 'true', errors: '0', warnings: '1' });
  });

  it('a run without any split is a usage error', async () => {
    const host = new MemoryHost({ format: 'coco' }, { workspace: temp.make() });
    const outcome = await runStep(validateDataStep, host);
    expect(outcome).toMatchObject({ ok: false, usage: true });
    expect(host.failure).toContain('No split given: set at least one of train, val or test to a COCO annotation JSON file.');
  });
});
