import * as fs from 'node:fs';
import * as path from 'node:path';
import { check, cocoDataset, firstExample, found, H, pngImage, TempDirs, tiffImage, validateCoco, W } from '../fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

describe('COCO: a clean dataset', () => {
  it('passes with zero findings and lists every evaluated check', async () => {
    const set = cocoDataset(temp.make());
    const report = await validateCoco(set);
    expect(found(report)).toEqual({});
    expect(report).toMatchObject({
      passed: true,
      errors: 0,
      warnings: 0,
      format: 'coco',
      classes: ['cat', 'dog'],
      classCountUnit: 'instances',
    });
    expect(report.checks.map((c) => c.id)).toEqual(
      expect.arrayContaining([
        'structure.parse-error',
        'coco.duplicate-image-id',
        'image.truncated',
        'geometry.box-outside',
        'geometry.box-tiny',
        'leakage.cross-split',
        'distribution.imbalance',
      ]),
    );
    expect(report.splits.train).toMatchObject({
      images: 4,
      annotations: 8,
      unlabeledImages: 0,
      classCounts: { cat: 4, dog: 4 },
      imagesPerClass: { cat: 4, dog: 4 },
    });
    expect(report.splits.val).toMatchObject({ images: 2, annotations: 4, classCounts: { cat: 2, dog: 2 } });
    expect(report.splits.train.properties).toMatchObject({
      images: 4,
      sample: 4,
      width: { mean: 64, std: 0 },
      height: { mean: 48, std: 0 },
      sizeBins: { '11.5': 4 },
    });
    // 4-px checkerboard of 80 and 160 on every channel: mean 120/255, std 40/255 (two seed pixels aside).
    expect(report.splits.train.properties?.brightness.mean).toBeCloseTo(120 / 255, 2);
    expect(report.splits.train.properties?.contrast.mean).toBeCloseTo(40 / 255, 2);
    // 6 images + 2 annotation files
    expect(report.fingerprint.files).toBe(8);
  });
});

describe('COCO: large files are streamed', () => {
  /** The train file in the member order pycocotools writes (categories last), with `extra` annotations on its images. */
  function writeLarge(
    set: ReturnType<typeof cocoDataset>,
    extra: number,
    edit: (annotations: Record<string, unknown>[]) => void = () => undefined,
    tail = '',
  ): string {
    const doc = set.docs.train;
    const annotations: Record<string, unknown>[] = doc.annotations.map((a) => ({ ...a }));
    for (let i = 0; i < extra; i++)
      annotations.push({
        id: 1000 + i,
        image_id: 1 + (i % 4),
        category_id: 1 + (i % 2),
        bbox: [1 + (i % 7), 2, 10, 8],
        area: 80,
        iscrowd: 0,
      });
    edit(annotations);
    const text = `{"info": {"description": "large"}, "licenses": [], "images": ${JSON.stringify(doc.images, null, 1)},\n "annotations": [\n${annotations.map((a) => JSON.stringify(a)).join(',\n')}\n],\n "categories": ${JSON.stringify(doc.categories)}${tail}}`;
    fs.writeFileSync(set.train, text);
    expect(text.length).toBeGreaterThan(4 * 65536);
    return text;
  }

  it('finds defects anywhere in a file of many slices, with categories after the annotations', async () => {
    const set = cocoDataset(temp.make());
    writeLarge(set, 5000, (annotations) => {
      annotations[4000].bbox = [50, 40, 30, 30];
      annotations[4500].category_id = 9;
      annotations[annotations.length - 1].id = 1000;
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'geometry.box-outside': 1, 'coco.unknown-category': 1, 'coco.duplicate-annotation-id': 1 });
    expect(firstExample(report, 'geometry.box-outside')).toMatchObject({
      split: 'train',
      file: 'annotations/train.json',
      id: 4992,
      field: 'bbox',
      value: [50, 40, 30, 30],
    });
    expect(firstExample(report, 'coco.unknown-category')).toMatchObject({ id: 5492, field: 'category_id', value: 9 });
    expect(firstExample(report, 'coco.duplicate-annotation-id')).toMatchObject({ id: 1000, field: 'id', value: 1000 });
    // 8 clean annotations + 5000 added, less the cat box whose category became unknown.
    expect(report.splits.train).toMatchObject({
      images: 4,
      annotations: 5007,
      unlabeledImages: 0,
      classCounts: { cat: 2503, dog: 2504 },
      imagesPerClass: { cat: 4, dog: 4 },
    });
  });

  it('a syntax error at the end of a large file is the only finding for it, at its line and column', async () => {
    const set = cocoDataset(temp.make());
    const text = writeLarge(set, 5000, (annotations) => (annotations[10].bbox = [50, 40, 30, 30]), ',\n "licenses": [1, 2,]');
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'structure.parse-error': 1 });
    const at = text.lastIndexOf(']');
    const position = { line: text.slice(0, at).split('\n').length, column: at - text.lastIndexOf('\n', at) };
    expect(position.line).toBeGreaterThan(5000);
    expect(firstExample(report, 'structure.parse-error')).toMatchObject({
      split: 'train',
      file: 'annotations/train.json',
      ...position,
      message: expect.stringContaining('"]" where a value was expected'),
    });
    // Nothing of the unreadable file is used: its images are not hashed into the fingerprint.
    expect(report.fingerprint.files).toBe(2 + 2);
  });

  it('of several syntax errors, the first in the file is reported, whatever order the members are read in', async () => {
    const set = cocoDataset(temp.make());
    fs.writeFileSync(set.val, '{"info": {"v": 01}, "images": [], "annotations": [01], "categories": [01]}');
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'structure.parse-error': 1 });
    expect(firstExample(report, 'structure.parse-error')).toMatchObject({ split: 'val', line: 1, column: 17 });
  });

  it('structure.schema when a member is not an array, naming what it is', async () => {
    const set = cocoDataset(temp.make());
    fs.writeFileSync(set.val, JSON.stringify({ images: { id: 1 }, annotations: [], categories: [] }));
    const report = await validateCoco(set);
    expect(check(report, 'structure.schema').examples).toEqual([
      expect.objectContaining({ split: 'val', field: 'images', value: 'object', message: '"images" must be an array' }),
    ]);
  });
});

describe('COCO: structure', () => {
  it('structure.parse-error gives the line and column of the syntax error', async () => {
    const set = cocoDataset(temp.make());
    fs.writeFileSync(set.val, '{\n  "images": [],\n  "annotations": [],,\n  "categories": []\n}');
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'structure.parse-error': 1 });
    expect(firstExample(report, 'structure.parse-error')).toMatchObject({
      split: 'val',
      file: 'annotations/val.json',
      line: 3,
      column: 21,
    });
    expect(firstExample(report, 'structure.parse-error').message).toContain('expected a double-quoted property name');
  });

  it('an unreadable train file is one finding, not also a distribution warning for every val class', async () => {
    const set = cocoDataset(temp.make());
    fs.writeFileSync(set.train, '[1, 2');
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'structure.parse-error': 1 });
    expect(firstExample(report, 'structure.parse-error')).toMatchObject({
      split: 'train',
      line: 1,
      column: 6,
      message: 'invalid JSON at line 1, column 6: unexpected end of file',
    });
  });

  it('structure.schema names the field and value', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.train.annotations[2].bbox = [1, 2, 3];
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'structure.schema': 1 });
    expect(firstExample(report, 'structure.schema')).toMatchObject({
      split: 'train',
      file: 'annotations/train.json',
      id: 3,
      field: 'bbox',
      value: [1, 2, 3],
    });
  });

  it('coco.duplicate-image-id', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.image('extra.png', pngImage(W, H, { seed: 900 }));
      s.docs.train.images.push({ id: 2, file_name: 'extra.png', width: W, height: H });
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'coco.duplicate-image-id': 1 });
    expect(firstExample(report, 'coco.duplicate-image-id')).toMatchObject({ split: 'train', id: 2, field: 'id', value: 2 });
  });

  it('coco.duplicate-annotation-id', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.train.annotations[5].id = 1;
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'coco.duplicate-annotation-id': 1 });
    expect(firstExample(report, 'coco.duplicate-annotation-id')).toMatchObject({
      file: 'annotations/train.json',
      id: 1,
      field: 'id',
      value: 1,
    });
  });

  it('coco.duplicate-category-id', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.val.categories.push({ id: 2, name: 'wolf' });
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'coco.duplicate-category-id': 1 });
    expect(firstExample(report, 'coco.duplicate-category-id')).toMatchObject({ split: 'val', id: 2, value: 2 });
  });

  it('coco.unknown-image and coco.unknown-category', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.train.annotations.push({ id: 500, image_id: 77, category_id: 1, bbox: [1, 1, 5, 5] });
      s.docs.val.annotations.push({ id: 501, image_id: 101, category_id: 9, bbox: [1, 1, 5, 5] });
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'coco.unknown-image': 1, 'coco.unknown-category': 1 });
    expect(firstExample(report, 'coco.unknown-image')).toMatchObject({ split: 'train', id: 500, field: 'image_id', value: 77 });
    expect(firstExample(report, 'coco.unknown-category')).toMatchObject({ split: 'val', id: 501, field: 'category_id', value: 9 });
  });

  it('structure.category-unused: a declared category nobody uses', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.train.categories.push({ id: 3, name: 'bird' });
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'structure.category-unused': 1 });
    expect(firstExample(report, 'structure.category-unused')).toMatchObject({ field: 'class', value: 'bird' });
    expect(report.classes).toEqual(['cat', 'dog', 'bird']);
  });
});

describe('COCO: images', () => {
  it('image.missing names the annotation file, image id and the missing path', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.val.images.push({ id: 150, file_name: 'nowhere.png', width: W, height: H });
      s.docs.val.annotations.push(
        { id: 600, image_id: 150, category_id: 1, bbox: [1, 1, 5, 5] },
        { id: 601, image_id: 150, category_id: 2, bbox: [1, 1, 5, 5] },
      );
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'image.missing': 1 });
    expect(firstExample(report, 'image.missing')).toMatchObject({
      split: 'val',
      file: 'annotations/val.json',
      id: 150,
      field: 'file_name',
      value: 'images/nowhere.png',
    });
    expect(report.passed).toBe(false);
  });

  it('image.truncated: a PNG cut before its IEND chunk', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      const full = pngImage(W, H, { seed: 5000 });
      s.image('train_1.png', full.subarray(0, full.length - 40));
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'image.truncated': 1 });
    expect(firstExample(report, 'image.truncated')).toMatchObject({
      split: 'train',
      file: 'images/train_1.png',
      id: 2,
      message: 'the PNG ends before its IEND chunk',
    });
  });

  it('image.size-mismatch: a TIFF whose header size disagrees with the annotation', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.image('scan.tif', tiffImage(40, 30, { seed: 4242 }));
      s.docs.train.images[3].file_name = 'scan.tif';
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'image.size-mismatch': 1 });
    expect(firstExample(report, 'image.size-mismatch')).toMatchObject({
      split: 'train',
      file: 'annotations/train.json',
      id: 4,
      field: 'width/height',
      value: { annotation: [64, 48], image: [40, 30] },
      message: 'annotation says 64×48 but images/scan.tif is 40×30',
    });
  });

  it('image.unsupported-format: a GIF', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.image('anim.gif', Buffer.concat([Buffer.from('GIF89a'), Buffer.from([64, 0, 48, 0]), Buffer.alloc(40)]));
      s.docs.val.images[0].file_name = 'anim.gif';
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'image.unsupported-format': 1 });
    expect(firstExample(report, 'image.unsupported-format')).toMatchObject({
      split: 'val',
      file: 'images/anim.gif',
      id: 101,
      message: 'GIF is not supported (use PNG, JPEG, TIFF, BMP or WebP)',
    });
  });

  it('image.unreadable: a PNG whose IHDR is damaged', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      const png = Buffer.from(pngImage(W, H, { seed: 7000 }));
      png.write('XXXX', 12, 'latin1');
      s.image('train_0.png', png);
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'image.unreadable': 1 });
    expect(firstExample(report, 'image.unreadable')).toMatchObject({ file: 'images/train_0.png', id: 1 });
  });

  it('image.unusual-bit-depth: one 16-bit PNG among 8-bit ones', async () => {
    const set = cocoDataset(temp.make(), (s) => s.image('train_2.png', pngImage(W, H, { seed: 8000, bitDepth: 16 })));
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'image.unusual-bit-depth': 1 });
    expect(firstExample(report, 'image.unusual-bit-depth')).toMatchObject({
      file: 'images/train_2.png',
      field: 'bitDepth',
      value: 16,
      message: 'image has 16 bit while 5 of 6 images have 8',
    });
  });

  it('image.unusual-channels: one grey PNG among RGBA ones', async () => {
    const set = cocoDataset(temp.make(), (s) => s.image('val_1.png', pngImage(W, H, { seed: 8001, colorType: 0 })));
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'image.unusual-channels': 1 });
    expect(firstExample(report, 'image.unusual-channels')).toMatchObject({
      split: 'val',
      file: 'images/val_1.png',
      field: 'channels',
      value: 1,
    });
  });

  it('fullDecode finds damaged pixel data that the header check passes', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      const png = Buffer.from(pngImage(W, H, { seed: 9000 }));
      const idat = png.indexOf('IDAT');
      for (let i = idat + 8; i < idat + 60; i++) png[i] ^= 0x5a;
      s.image('train_3.png', png);
    });
    expect(found(await validateCoco(set))).toEqual({});
    const report = await validateCoco(set, { fullDecode: true });
    expect(found(report)).toEqual({ 'image.unreadable': 1 });
    expect(firstExample(report, 'image.unreadable')).toMatchObject({ file: 'images/train_3.png', id: 4 });
    expect(firstExample(report, 'image.unreadable').message).toMatch(/^decode failed: /);
  });
});

describe('COCO: geometry', () => {
  it('geometry.non-finite: Python NaN in a bbox', async () => {
    const set = cocoDataset(temp.make());
    fs.writeFileSync(set.train, fs.readFileSync(set.train, 'utf8').replace('"bbox": [\n    30,', '"bbox": [\n    NaN,'));
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'geometry.non-finite': 1 });
    expect(firstExample(report, 'geometry.non-finite')).toMatchObject({ split: 'train', id: 2, field: 'bbox', value: ['NaN', 20, 25, 20] });
  });

  it.each([
    ['geometry.box-degenerate', [5, 5, 0, 10], 'box has width 0 and height 10'],
    ['geometry.box-outside', [50, 40, 20, 5], 'box spans x 50..70, y 40..45, outside the 64×48 image'],
    ['geometry.box-tiny', [5, 5, 0.5, 10], 'box is 0.5×10 px, below min-box-size 1'],
  ])('%s', async (id, bbox, message) => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.val.annotations[1].bbox = bbox;
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ [id]: 1 });
    expect(firstExample(report, id)).toEqual({ split: 'val', file: 'annotations/val.json', id: 10, field: 'bbox', value: bbox, message });
  });

  it('geometry.polygon-too-few-points and geometry.polygon-outside', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.train.annotations[0].segmentation = [[1, 1, 10, 10]];
      s.docs.train.annotations[2].segmentation = [[1, 1, 10, 1, 10, 60]];
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'geometry.polygon-too-few-points': 1, 'geometry.polygon-outside': 1 });
    expect(firstExample(report, 'geometry.polygon-too-few-points')).toMatchObject({
      id: 1,
      field: 'segmentation[0]',
      value: [1, 1, 10, 10],
    });
    expect(firstExample(report, 'geometry.polygon-outside')).toMatchObject({
      id: 3,
      field: 'segmentation[0]',
      message: 'polygon point 2 (10, 60) is outside the 64×48 image',
    });
  });

  it('geometry.rle-size-mismatch: counts that do not sum to h×w; valid RLE (list and compressed) passes', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.train.annotations[0].segmentation = { size: [H, W], counts: [100, 50, W * H - 150] };
      s.docs.train.annotations[1].segmentation = { size: [H, W], counts: encodeRle([100, 50, W * H - 150]) };
      s.docs.train.annotations[3].segmentation = { size: [H, W], counts: [100, 50, 10] };
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'geometry.rle-size-mismatch': 1 });
    expect(firstExample(report, 'geometry.rle-size-mismatch')).toMatchObject({
      id: 4,
      field: 'segmentation.counts',
      value: 160,
      message: `RLE counts sum to 160, not height × width = ${W * H}`,
    });
  });
});

describe('COCO: distribution and leakage', () => {
  it('distribution.imbalance over max-imbalance', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      for (let k = 0; k < 3; k++) s.docs.train.annotations.push({ id: 700 + k, image_id: 1, category_id: 1, bbox: [1, 1, 5, 5] });
    });
    const report = await validateCoco(set, { maxImbalance: 1.5 });
    expect(found(report)).toEqual({ 'distribution.imbalance': 1 });
    expect(firstExample(report, 'distribution.imbalance')).toMatchObject({
      split: 'train',
      value: { most: 'cat', mostCount: 7, least: 'dog', leastCount: 4, ratio: 1.75 },
    });
  });

  it('distribution.class-missing-in-split: dog in train, not in val', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.val.annotations = s.docs.val.annotations.filter((a) => a.category_id !== 2);
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'distribution.class-missing-in-split': 1 });
    expect(firstExample(report, 'distribution.class-missing-in-split')).toMatchObject({
      split: 'val',
      value: 'dog',
      message: '"dog" has 4 in train and none in val',
    });
  });

  it('distribution.class-missing-in-train: bird only in val', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.docs.val.categories.push({ id: 3, name: 'bird' });
      s.docs.val.annotations.push({ id: 800, image_id: 101, category_id: 3, bbox: [1, 1, 5, 5] });
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'distribution.class-missing-in-train': 1 });
    expect(firstExample(report, 'distribution.class-missing-in-train')).toMatchObject({ split: 'val', value: 'bird' });
  });

  it('distribution.unlabeled-share counts the unlabelled images', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      for (let k = 0; k < 5; k++) {
        s.image(`bg_${k}.png`, pngImage(W, H, { seed: 3000 + k }));
        s.docs.train.images.push({ id: 200 + k, file_name: `bg_${k}.png`, width: W, height: H });
      }
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'distribution.unlabeled-share': 5 });
    expect(firstExample(report, 'distribution.unlabeled-share')).toMatchObject({ split: 'train', value: 0.5556 });
    expect(report.warnings).toBe(5);
    expect(report.passed).toBe(true);
  });

  it('leakage.duplicate-within-split: the same bytes under two names in train', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.image('copy.png', fs.readFileSync(path.join(s.imagesRoot, 'train_0.png')));
      s.docs.train.images.push({ id: 300, file_name: 'copy.png', width: W, height: H });
      s.docs.train.annotations.push(
        { id: 900, image_id: 300, category_id: 1, bbox: [1, 1, 5, 5] },
        { id: 901, image_id: 300, category_id: 2, bbox: [1, 1, 5, 5] },
      );
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'leakage.duplicate-within-split': 1 });
    expect(firstExample(report, 'leakage.duplicate-within-split')).toMatchObject({
      split: 'train',
      file: 'images/copy.png',
      id: 300,
      field: 'sha256',
      message: 'same bytes as images/train_0.png in train',
    });
  });

  it('leakage.cross-split is an error by default and a warning when asked', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      s.image('val_1.png', fs.readFileSync(path.join(s.imagesRoot, 'train_2.png')));
    });
    const report = await validateCoco(set);
    expect(found(report)).toEqual({ 'leakage.cross-split': 1 });
    expect(check(report, 'leakage.cross-split').severity).toBe('error');
    expect(firstExample(report, 'leakage.cross-split')).toMatchObject({
      split: 'val',
      file: 'images/val_1.png',
      id: 102,
      message: 'same bytes as train image images/train_2.png',
    });
    const relaxed = await validateCoco(set, { crossSplitSeverity: 'warning' });
    expect(check(relaxed, 'leakage.cross-split')).toMatchObject({ severity: 'warning', count: 1 });
    expect(relaxed).toMatchObject({ errors: 0, warnings: 1, passed: true });
  });
});

/** pycocotools' rleToString, for building a compressed RLE fixture. */
function encodeRle(counts: number[]): string {
  let s = '';
  counts.forEach((c, i) => {
    let x = i > 2 ? c - counts[i - 2] : c;
    let more = true;
    while (more) {
      let ch = x & 0x1f;
      x >>= 5;
      more = ch & 0x10 ? x !== -1 : x !== 0;
      if (more) ch |= 0x20;
      s += String.fromCharCode(ch + 48);
    }
  });
  return s;
}
