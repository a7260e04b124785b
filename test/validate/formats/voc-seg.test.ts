import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { validateDataset } from '../../../shared/validate/validate';
import type { ValidateOptions } from '../../../shared/validate/validate';
import { baseOptions, firstExample, found, H, maskPng, pixels, pngImage, TempDirs, W, write } from '../fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

function vocXml(file: string, objects: string[], size = `<width>${W}</width><height>${H}</height>`): string {
  return `<annotation>\n  <folder>VOC</folder>\n  <filename>${file}</filename>\n  <size>${size}<depth>3</depth></size>\n${objects.join('\n')}\n</annotation>\n`;
}
const obj = (name: string, [xmin, ymin, xmax, ymax]: number[]) =>
  `  <object>\n    <name>${name}</name>\n    <difficult>0</difficult>\n    <bndbox><xmin>${xmin}</xmin><ymin>${ymin}</ymin><xmax>${xmax}</xmax><ymax>${ymax}</ymax></bndbox>\n  </object>`;
const CLEAN_OBJECTS = [obj('cat', [2, 3, 22, 18]), obj('dog', [30, 20, 55, 40])];

/** VOC2012 layout: Annotations/, JPEGImages/ (real JPEGs), ImageSets/Main/{train,val}.txt. */
async function vocDataset(plant: (root: string) => Promise<void> | void = () => undefined): Promise<string> {
  const root = temp.make();
  let seed = 1;
  for (const [split, n] of [
    ['train', 4],
    ['val', 2],
  ] as const) {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = `${split}_${i}`;
      ids.push(id);
      const jpeg = await sharp(pixels(W, H, { seed: seed++ * 37 }), { raw: { width: W, height: H, channels: 4 } })
        .removeAlpha()
        .jpeg({ quality: 95 })
        .toBuffer();
      write(path.join(root, 'JPEGImages', `${id}.jpg`), jpeg);
      write(path.join(root, 'Annotations', `${id}.xml`), vocXml(`${id}.jpg`, CLEAN_OBJECTS));
    }
    write(path.join(root, 'ImageSets', 'Main', `${split}.txt`), ids.join('\n') + '\n');
  }
  await plant(root);
  return root;
}

async function validateVoc(root: string, over: Partial<ValidateOptions> = {}) {
  const splits = { train: path.join(root, 'ImageSets/Main/train.txt'), val: path.join(root, 'ImageSets/Main/val.txt') };
  const { report } = await validateDataset(baseOptions(root, { format: 'voc', splits, ...over }));
  return report;
}

describe('Pascal VOC', () => {
  it('a clean dataset (ImageSets lists, JPEG images) passes with zero findings', async () => {
    const report = await validateVoc(await vocDataset());
    expect(found(report)).toEqual({});
    expect(report.classes).toEqual(['cat', 'dog']);
    expect(report.splits.train).toMatchObject({ images: 4, annotations: 8, classCounts: { cat: 4, dog: 4 } });
    expect(report.splits.train.properties).toMatchObject({ sample: 4, width: { mean: 64 } });
  });

  it('a folder of XML files works as a split too', async () => {
    const root = await vocDataset();
    const report = await validateVoc(root, { splits: { train: path.join(root, 'Annotations') } });
    expect(found(report)).toEqual({});
    expect(report.splits.train.images).toBe(6);
  });

  it('structure.parse-error with line and column from the XML validator', async () => {
    const root = await vocDataset((r) => {
      write(
        path.join(r, 'Annotations/val_1.xml'),
        '<annotation>\n  <filename>val_1.jpg</filename>\n  <size><width>64</width></height>\n</annotation>\n',
      );
    });
    const report = await validateVoc(root);
    expect(found(report)).toEqual({ 'structure.parse-error': 1 });
    expect(firstExample(report, 'structure.parse-error')).toMatchObject({
      split: 'val',
      file: 'Annotations/val_1.xml',
      line: 3,
      column: 26,
    });
  });

  it('voc.unknown-class when a class list is given', async () => {
    const root = await vocDataset((r) => {
      write(path.join(r, 'Annotations/train_2.xml'), vocXml('train_2.jpg', [...CLEAN_OBJECTS, obj('kat', [5, 5, 15, 15])]));
    });
    const report = await validateVoc(root, { classes: ['cat', 'dog'] });
    expect(found(report)).toEqual({ 'voc.unknown-class': 1 });
    expect(firstExample(report, 'voc.unknown-class')).toMatchObject({
      split: 'train',
      file: 'Annotations/train_2.xml',
      id: 'train_2.jpg',
      field: 'object[2].name',
      value: 'kat',
    });
  });

  it('structure.schema: a bndbox without ymax', async () => {
    const root = await vocDataset((r) => {
      const xml = vocXml('train_0.jpg', CLEAN_OBJECTS).replace('<ymax>40</ymax>', '');
      write(path.join(r, 'Annotations/train_0.xml'), xml);
    });
    const report = await validateVoc(root);
    expect(found(report)).toEqual({ 'structure.schema': 1 });
    expect(firstExample(report, 'structure.schema')).toMatchObject({
      field: 'object[1].bndbox',
      value: { xmin: '30', ymin: '20', xmax: '55' },
    });
  });

  it('geometry.box-outside and image.size-mismatch read the XML <size>', async () => {
    const root = await vocDataset((r) => {
      write(path.join(r, 'Annotations/val_0.xml'), vocXml('val_0.jpg', [obj('cat', [2, 3, 22, 18]), obj('dog', [30, 20, 70, 40])]));
      write(path.join(r, 'Annotations/train_3.xml'), vocXml('train_3.jpg', CLEAN_OBJECTS, '<width>100</width><height>100</height>'));
    });
    const report = await validateVoc(root);
    expect(found(report)).toEqual({ 'geometry.box-outside': 1, 'image.size-mismatch': 1 });
    expect(firstExample(report, 'geometry.box-outside')).toMatchObject({
      split: 'val',
      field: 'object[1].bndbox',
      value: [30, 20, 40, 20],
    });
    expect(firstExample(report, 'image.size-mismatch')).toMatchObject({
      split: 'train',
      file: 'Annotations/train_3.xml',
      value: { annotation: [100, 100], image: [64, 48] },
    });
  });

  it('image.truncated: a JPEG without its EOI marker', async () => {
    const root = await vocDataset((r) => {
      const file = path.join(r, 'JPEGImages/train_1.jpg');
      const jpeg = fs.readFileSync(file);
      fs.writeFileSync(file, jpeg.subarray(0, jpeg.length - 30));
    });
    const report = await validateVoc(root);
    expect(found(report)).toEqual({ 'image.truncated': 1 });
    expect(firstExample(report, 'image.truncated')).toMatchObject({
      split: 'train',
      file: 'JPEGImages/train_1.jpg',
      id: 'train_1.jpg',
      message: 'the JPEG does not end with an EOI marker (FFD9)',
    });
  });
});

const CLASSES = ['0: background', '1: cell', '2: nucleus'];
const label = (x: number) => (x < 20 ? 1 : x >= 40 ? 2 : 0);

/** <split>/images/*.png and <split>/masks/*.png, masks with values 0, 1, 2. */
function segDataset(plant: (root: string) => void = () => undefined, bitDepth: 8 | 16 = 8): string {
  const root = temp.make();
  let seed = 1;
  for (const [split, n] of [
    ['train', 4],
    ['val', 2],
  ] as const) {
    for (let i = 0; i < n; i++) {
      write(path.join(root, split, 'images', `cell_${i}.png`), pngImage(W, H, { seed: seed++, colorType: 2 }));
      write(path.join(root, split, 'masks', `cell_${i}.png`), maskPng(W, H, label, bitDepth));
    }
  }
  plant(root);
  return root;
}

async function validateSeg(root: string, over: Partial<ValidateOptions> = {}) {
  const { report } = await validateDataset(
    baseOptions(root, {
      format: 'segmentation',
      splits: { train: path.join(root, 'train'), val: path.join(root, 'val') },
      classes: CLASSES,
      ...over,
    }),
  );
  return report;
}

describe('semantic segmentation folders', () => {
  it('a clean dataset passes with zero findings; class counts are images per class', async () => {
    const report = await validateSeg(segDataset());
    expect(found(report)).toEqual({});
    expect(report).toMatchObject({ classes: ['cell', 'nucleus'], classCountUnit: 'images' });
    expect(report.splits.train).toMatchObject({ images: 4, classCounts: { cell: 4, nucleus: 4 }, unlabeledImages: 0 });
    // 6 images + 6 masks
    expect(report.fingerprint.files).toBe(12);
  });

  it('mask.undeclared-label: a 16-bit mask holding a value outside the class list', async () => {
    const root = segDataset(
      (r) =>
        write(
          path.join(r, 'val/masks/cell_1.png'),
          maskPng(W, H, (x, y) => (x === 30 && y < 5 ? 1000 : label(x)), 16),
        ),
      16,
    );
    const report = await validateSeg(root);
    expect(found(report)).toEqual({ 'mask.undeclared-label': 1 });
    expect(firstExample(report, 'mask.undeclared-label')).toEqual({
      split: 'val',
      file: 'val/masks/cell_1.png',
      field: 'value',
      value: [1000],
      message: 'label value(s) 1000 (5 px) are not in the declared classes',
    });
  });

  it('mask.size-mismatch', async () => {
    const root = segDataset((r) => write(path.join(r, 'train/masks/cell_2.png'), maskPng(32, 32, label)));
    const report = await validateSeg(root);
    expect(found(report)).toEqual({ 'mask.size-mismatch': 1 });
    expect(firstExample(report, 'mask.size-mismatch')).toMatchObject({
      split: 'train',
      file: 'train/masks/cell_2.png',
      value: { mask: [32, 32], image: [64, 48] },
    });
  });

  it('mask.missing and mask.orphan pair by file stem', async () => {
    const root = segDataset((r) => fs.renameSync(path.join(r, 'train/masks/cell_3.png'), path.join(r, 'train/masks/cell_9.png')));
    const report = await validateSeg(root);
    expect(found(report)).toEqual({ 'mask.missing': 1, 'mask.orphan': 1 });
    expect(firstExample(report, 'mask.missing')).toMatchObject({ split: 'train', file: 'train/images/cell_3.png' });
    expect(firstExample(report, 'mask.orphan')).toMatchObject({ split: 'train', file: 'train/masks/cell_9.png' });
  });

  it('mask.empty-ratio over max-empty-mask-share', async () => {
    const root = segDataset((r) =>
      write(
        path.join(r, 'train/masks/cell_0.png'),
        maskPng(W, H, () => 0),
      ),
    );
    const report = await validateSeg(root, { maxEmptyMaskShare: 0.2 });
    expect(found(report)).toEqual({ 'mask.empty-ratio': 1 });
    expect(firstExample(report, 'mask.empty-ratio')).toMatchObject({
      split: 'train',
      value: 0.25,
      message: '1 of 4 masks (25.0%) hold only background, over max-empty-mask-share 0.2',
    });
    expect(report.splits.train).toMatchObject({ unlabeledImages: 1, classCounts: { cell: 3, nucleus: 3 } });
  });

  it('segmentation needs the class list', async () => {
    await expect(validateSeg(segDataset(), { classes: [] })).rejects.toThrow('Segmentation masks need the class list');
  });
});
