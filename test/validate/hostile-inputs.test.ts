import * as path from 'node:path';
import { StepError } from '../../shared/core/errors';
import { MAX_JSON_DEPTH } from '../../shared/core/json-depth';
import { readJsonFile } from '../../shared/metrics/coco/load';
import { decodeLabelImage } from '../../shared/metrics/masks/read';
import { loadJobSpec } from '../../shared/training/spec';
import { Findings } from '../../shared/validate/checks';
import { checkBufferBeforeDecode, HeaderError } from '../../shared/validate/image-header';
import { validateDataset } from '../../shared/validate/validate';
import { loopingTiff, pngFile, tiffFile } from '../corpus/images';
import { baseOptions, TempDirs, write } from './fixtures';

/**
 * Regression tests for the defects fault injection found in the readers of user files: each hostile input ends
 * in a finding or an error naming the file, never a hang, a stack overflow or a raw library error.
 */
const temp = new TempDirs();
afterAll(() => temp.cleanup());

const billionLaughs = [
  'a: &a [x, x, x, x, x, x, x, x, x]',
  ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`),
].join('\n');

describe('the 262-byte TIFF whose IFD chain points at itself', () => {
  test('is 262 bytes and refused by the header walk, before any decoder', () => {
    const tiff = loopingTiff();
    expect(tiff.length).toBe(262);
    expect(() => checkBufferBeforeDecode(tiff)).toThrow(HeaderError);
    expect(() => checkBufferBeforeDecode(tiff)).toThrow(/IFD chain loops: the IFD at byte 8 is reached twice/);
  });

  test('validate-data reports the mask as image.unreadable (utif2 used to follow the loop until the heap ran out)', async () => {
    const root = temp.make();
    write(path.join(root, 'train/images/a.png'), pngFile());
    write(path.join(root, 'train/masks/a.tif'), loopingTiff());
    const { report } = await validateDataset(
      baseOptions(root, { format: 'segmentation', splits: { train: path.join(root, 'train') }, classes: ['0: background', '1: cell'] }),
    );
    const unreadable = report.checks.find((c) => c.id === 'image.unreadable');
    expect(unreadable?.count).toBe(1);
    expect(unreadable?.examples[0].file).toContain('a.tif');
    expect(unreadable?.examples[0].message).toMatch(/loops/);
  });

  test('gate-metrics and eval masks refuse it with a StepError naming the mask', () => {
    expect(() => decodeLabelImage(loopingTiff(), '/data/gt/a.tif')).toThrow(StepError);
    expect(() => decodeLabelImage(loopingTiff(), '/data/gt/a.tif')).toThrow(/Mask \/data\/gt\/a\.tif cannot be read: .*loops/);
  });

  test('a SubIFD pointing back at its parent is a loop too', () => {
    expect(() => checkBufferBeforeDecode(tiffFile({ extra: [{ tag: 330, type: 4, count: 1, value: 8 }] }))).toThrow(/reached twice/);
  });
});

describe('JSON nested deeper than any annotation needs', () => {
  test('COCO images nested 5,000 deep: a parse-error finding at the bracket, no stack overflow', async () => {
    const root = temp.make();
    const deep = '['.repeat(5000) + '1' + ']'.repeat(5000);
    const file = write(path.join(root, 'train.json'), `{"images": [${deep}], "annotations": [], "categories": []}`);
    const { report } = await validateDataset(baseOptions(root, { format: 'coco', splits: { train: file } }));
    const parse = report.checks.find((c) => c.id === 'structure.parse-error');
    expect(parse?.count).toBe(1);
    expect(parse?.examples[0].message).toContain(`nested more than ${MAX_JSON_DEPTH} levels deep`);
    expect(parse?.examples[0]).toMatchObject({ line: 1 });
  });

  test("a finding's value nested 5,000 deep is cut short in the report instead of overflowing the stack", () => {
    let value: unknown = 1;
    for (let i = 0; i < 5000; i++) value = [value];
    const findings = new Findings();
    findings.add('structure.schema', { file: 'x.json', field: 'images[0]', value, message: 'not an object' });
    expect(JSON.stringify(findings.results())).toContain('items');
  });
});

describe('hostile XML and YAML', () => {
  test.each([
    [
      'an external entity',
      '<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
      '&xxe;',
      /External entities are not supported/,
    ],
    ['a 200 kB internal entity', `<!DOCTYPE annotation [<!ENTITY big "${'x'.repeat(200_000)}">]>`, '&big;', /exceeds maximum allowed size/],
  ])('VOC with %s: a parse-error finding naming the file', async (_what, doctype, use, why) => {
    const root = temp.make();
    write(path.join(root, 'JPEGImages/a.png'), pngFile());
    write(
      path.join(root, 'Annotations/hostile.xml'),
      `<?xml version="1.0"?>${doctype}<annotation><filename>a.png</filename><object><name>${use}</name></object></annotation>`,
    );
    const { report } = await validateDataset(
      baseOptions(root, { format: 'voc', splits: { train: path.join(root, 'Annotations') }, classes: ['cell'] }),
    );
    const parse = report.checks.find((c) => c.id === 'structure.parse-error');
    expect(parse?.examples[0].file).toContain('hostile.xml');
    expect(parse?.examples[0].message).toMatch(why);
  });

  test('a YAML alias bomb in --data-yaml: an error naming the file and the reason', async () => {
    const root = temp.make();
    const file = write(path.join(root, 'data.yaml'), `path: .\ntrain: images\nnames: [cell]\n${billionLaughs}\n`);
    const failure = validateDataset(baseOptions(root, { format: 'yolo', dataYaml: file }));
    await expect(failure).rejects.toThrow(StepError);
    await expect(failure).rejects.toThrow(
      /data\.yaml could not be read, so the YOLO class names are unknown\. invalid YAML: its aliases \(\*name\) expand too often/,
    );
  });

  test('a YAML alias bomb in --job-spec: a StepError naming the file', () => {
    const root = temp.make();
    const file = write(path.join(root, 'job.yaml'), `backend: local\ncommand: [echo]\n${billionLaughs}\n`);
    expect(() => loadJobSpec(file, [])).toThrow(StepError);
    expect(() => loadJobSpec(file, [])).toThrow(/The job spec .*job\.yaml cannot be read: its aliases/);
  });
});

test("predictions with NaN: the hint says JSON has no NaN (which Python's json.dump writes), not to use json.dump", () => {
  const root = temp.make();
  const file = write(path.join(root, 'pred.json'), '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": NaN}]');
  let error: StepError | undefined;
  try {
    readJsonFile(file, 'Predictions');
  } catch (e) {
    error = e as StepError;
  }
  expect(error?.message).toContain('pred.json holds NaN or Infinity (1 value(s)), which JSON does not allow.');
  expect(error?.hint).toContain('JSON has no NaN or Infinity');
  expect(error?.hint).toContain('allow_nan=False');
});
