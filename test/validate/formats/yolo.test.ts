import * as fs from 'node:fs';
import * as path from 'node:path';
import { validateDataset } from '../../../shared/validate/validate';
import type { ValidateOptions } from '../../../shared/validate/validate';
import { baseOptions, firstExample, found, H, pngImage, TempDirs, W, write } from '../fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

const YAML = 'path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n';

/** Ultralytics layout: images/{train,val}, labels/{train,val}, one cat and one dog per image. */
function yoloDataset(plant: (root: string) => void = () => undefined): string {
  const root = temp.make();
  write(path.join(root, 'data.yaml'), YAML);
  let seed = 1;
  for (const [split, n] of [
    ['train', 4],
    ['val', 2],
  ] as const) {
    for (let i = 0; i < n; i++) {
      write(path.join(root, 'images', split, `${split}${i}.png`), pngImage(W, H, { seed: seed++ }));
      write(path.join(root, 'labels', split, `${split}${i}.txt`), '0 0.25 0.30 0.20 0.20\n1 0.70 0.60 0.30 0.30\n');
    }
  }
  plant(root);
  return root;
}

async function validateYolo(root: string, over: Partial<ValidateOptions> = {}) {
  const { report } = await validateDataset(baseOptions(root, { format: 'yolo', dataYaml: path.join(root, 'data.yaml'), ...over }));
  return report;
}

const label = (root: string, split: string, name: string, text: string) => write(path.join(root, 'labels', split, name), text);

describe('YOLO', () => {
  it('a clean dataset passes with zero findings; splits and names come from data.yaml', async () => {
    const report = await validateYolo(yoloDataset());
    expect(found(report)).toEqual({});
    expect(report.classes).toEqual(['cat', 'dog']);
    expect(report.splits.train).toMatchObject({ images: 4, annotations: 8, classCounts: { cat: 4, dog: 4 } });
    expect(report.splits.val).toMatchObject({ images: 2, annotations: 4 });
    // 6 images, 6 label files, data.yaml
    expect(report.fingerprint.files).toBe(13);
  });

  it('structure.parse-error in data.yaml with line and column (classes given as input)', async () => {
    const root = yoloDataset((r) => write(path.join(r, 'data.yaml'), 'path: .\nnames: [cat, dog\ntrain: images/train\n'));
    const report = await validateYolo(root, {
      classes: ['cat', 'dog'],
      splits: { train: path.join(root, 'images/train'), val: path.join(root, 'images/val') },
    });
    expect(found(report)).toEqual({ 'structure.parse-error': 1 });
    expect(firstExample(report, 'structure.parse-error')).toMatchObject({ file: 'data.yaml', line: 3, column: 1 });
  });

  it('a broken data.yaml without a classes input stops the step with a clear error', async () => {
    const root = yoloDataset((r) => write(path.join(r, 'data.yaml'), 'names: [cat, dog\n'));
    await expect(validateYolo(root)).rejects.toThrow('data.yaml could not be read, so the YOLO class names are unknown.');
  });

  it('structure.schema: nc disagrees with names, at its line', async () => {
    const root = yoloDataset((r) => write(path.join(r, 'data.yaml'), YAML + 'nc: 3\n'));
    const report = await validateYolo(root);
    expect(found(report)).toEqual({ 'structure.schema': 1 });
    expect(firstExample(report, 'structure.schema')).toMatchObject({ file: 'data.yaml', line: 7, column: 5, field: 'nc', value: 3 });
  });

  it('structure.schema: a label line that is not a label', async () => {
    const root = yoloDataset((r) => label(r, 'train', 'train2.txt', '0 0.25 0.30 0.20 0.20\ndog 0.7 0.6 0.3 0.3\n'));
    const report = await validateYolo(root);
    expect(found(report)).toEqual({ 'structure.schema': 1 });
    expect(firstExample(report, 'structure.schema')).toMatchObject({
      split: 'train',
      file: 'labels/train/train2.txt',
      line: 2,
      value: 'dog 0.7 0.6 0.3 0.3',
    });
  });

  it.each([
    ['yolo.unknown-class', '5 0.70 0.60 0.30 0.30', 'class'],
    ['geometry.yolo-out-of-range', '1 0.70 1.20 0.30 0.30', 'coordinates'],
    ['geometry.box-outside', '1 0.90 0.60 0.40 0.30', 'coordinates'],
    ['geometry.box-degenerate', '1 0.70 0.60 0 0.30', 'width/height'],
    ['geometry.non-finite', '1 0.70 nan 0.30 0.30', 'coordinates'],
    ['geometry.polygon-too-few-points', '1 0.70 0.60', 'coordinates'],
    ['geometry.box-tiny', '1 0.70 0.60 0.01 0.30', 'width/height'],
  ])('%s', async (id, line, field) => {
    const root = yoloDataset((r) => label(r, 'val', 'val1.txt', `0 0.25 0.30 0.20 0.20\n${line}\n`));
    const report = await validateYolo(root);
    // The unknown class drops dog from val: nothing else may change, so val keeps a dog in val0.
    expect(found(report)).toEqual({ [id]: 1 });
    expect(firstExample(report, id)).toMatchObject({
      split: 'val',
      file: 'labels/val/val1.txt',
      line: 2,
      field,
      value: id === 'yolo.unknown-class' ? 5 : line,
    });
  });

  it('geometry.box-tiny measures in pixels from the image header', async () => {
    const root = yoloDataset((r) => label(r, 'val', 'val1.txt', '0 0.25 0.30 0.20 0.20\n1 0.70 0.60 0.01 0.30\n'));
    const report = await validateYolo(root, { minBoxSize: 0.5 });
    expect(found(report)).toEqual({});
    const strict = await validateYolo(root, { minBoxSize: 1 });
    expect(firstExample(strict, 'geometry.box-tiny').message).toBe('box is 0.64×14.4 px, below min-box-size 1');
  });

  it('yolo.orphan-label: a label file without an image', async () => {
    const root = yoloDataset((r) => label(r, 'train', 'ghost.txt', '0 0.5 0.5 0.2 0.2\n'));
    const report = await validateYolo(root);
    expect(found(report)).toEqual({ 'yolo.orphan-label': 1 });
    expect(firstExample(report, 'yolo.orphan-label')).toMatchObject({ split: 'train', file: 'labels/train/ghost.txt' });
  });

  it('image.missing: an image listed in a split .txt that is not there', async () => {
    const root = yoloDataset((r) => {
      write(path.join(r, 'val.txt'), './images/val/val0.png\n./images/val/val1.png\n./images/val/gone.png\n');
      write(path.join(r, 'data.yaml'), YAML.replace('val: images/val', 'val: val.txt'));
    });
    const report = await validateYolo(root);
    expect(found(report)).toEqual({ 'image.missing': 1 });
    expect(firstExample(report, 'image.missing')).toMatchObject({
      split: 'val',
      file: 'val.txt',
      id: 'line 3',
      field: 'path',
      value: 'images/val/gone.png',
    });
  });

  it('an image without a label file is a background image (counted, not an error)', async () => {
    const root = yoloDataset((r) => fs.rmSync(path.join(r, 'labels/train/train3.txt')));
    const report = await validateYolo(root);
    expect(found(report)).toEqual({});
    expect(report.splits.train).toMatchObject({ images: 4, unlabeledImages: 1, annotations: 6 });
  });
});
