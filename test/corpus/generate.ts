import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { seededRandom } from '../../shared/core/random';
import { gzipTar, tarBytes } from '../package/helpers';
import { KEYS, makePackage } from '../ota/support/packages';
import { loopingTiff, pngFile, pngWithSize, tiffFile } from './images';

/**
 * The bad-input corpus: a seeded generator of malformed inputs for every step and command, each with what a
 * user must see. Every case is something a user can cause (a file cut short, a hostile archive, a wrong flag),
 * so each must end in a clear error: exit 2 for bad usage (a malformed input value), 1 for a failure of the
 * step (the file the input names is bad), a message naming the file or input, no stack trace, and none of the
 * step's outputs under its final name.
 */
export interface BadCase {
  id: string;
  step: string;
  /** The input kind the case attacks, for the summary (json, xml, yaml, image, tar, path, enum, …). */
  kind: string;
  argv: string[];
  /** Extra environment for the run (CI variables). */
  env?: Record<string, string | undefined>;
  /** 2: bad usage; 1: the step failed. */
  exit: 1 | 2;
  /** Text the error output must contain: the file, input or value at fault. */
  names: string;
  /** Paths that must not exist afterwards: the step's outputs under their final names. */
  absent?: string[];
}

export interface Corpus {
  root: string;
  cases: BadCase[];
}

const COCO = {
  images: [
    { id: 1, file_name: 'a.png', width: 4, height: 4 },
    { id: 2, file_name: 'b.png', width: 4, height: 4 },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 2, 2], area: 4, iscrowd: 0 },
    { id: 2, image_id: 2, category_id: 1, bbox: [1, 1, 2, 2], area: 4, iscrowd: 0 },
  ],
  categories: [{ id: 1, name: 'cell' }],
};

type Json = Record<string, unknown>;
const clone = (): Json => JSON.parse(JSON.stringify(COCO)) as Json;

/** JSON text of `leaf` inside `depth` arrays, built as text: JSON.stringify itself recurses and would overflow. */
function nested(depth: number, leaf: unknown): string {
  return '['.repeat(depth) + JSON.stringify(leaf) + ']'.repeat(depth);
}

/** `value` as JSON with the placeholder string DEEP replaced by `deep` (raw JSON text). */
function withDeep(value: unknown, deep: string): string {
  return JSON.stringify(value).replace('"DEEP"', () => deep);
}

/** Writes the corpus under `root` (which must be empty) and returns its cases. */
export async function generateCorpus(root: string, seed = 17): Promise<Corpus> {
  const random = seededRandom(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const cases: BadCase[] = [];
  const file = (rel: string, data: string | Buffer): string => {
    const full = path.join(root, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, data);
    return full;
  };
  const add = (c: BadCase) => {
    if (cases.some((x) => x.id === c.id)) throw new Error(`duplicate corpus id ${c.id}`);
    cases.push(c);
  };

  // Images the COCO files refer to.
  const images = path.join(root, 'images');
  file('images/a.png', pngFile());
  file('images/b.png', pngFile());
  const cocoText = JSON.stringify(COCO, null, 1);
  const coco = (id: string, kind: string, text: string, names = `${id}.json`) => {
    const f = file(`coco/${id}.json`, text);
    add({
      id: `validate-data/${id}`,
      step: 'validate-data',
      kind,
      argv: ['validate-data', '--format', 'coco', '--train', f, '--images-root', images],
      exit: 1,
      names,
    });
  };

  // Truncated at seeded offsets, and with one structural character deleted (always invalid JSON).
  for (let i = 0; i < 14; i++) {
    const at = 1 + pick(cocoText.length - 2);
    coco(`truncated-${i}-at-${at}`, 'json', cocoText.slice(0, at));
  }
  const structural = [...cocoText].flatMap((c, i) => ('{[":'.includes(c) ? [i] : []));
  for (let i = 0; i < 14; i++) {
    const at = structural[pick(structural.length)];
    coco(`malformed-${i}-at-${at}`, 'json', cocoText.slice(0, at) + cocoText.slice(at + 1));
  }
  for (const bytes of [
    Buffer.alloc(0),
    Buffer.from([0xef, 0xbb]),
    Buffer.from('\u0000\u0001garbage'),
    Buffer.from([0xff, 0xfe, 0x7b, 0x00]),
  ]) {
    coco(`binary-${bytes.length}-${bytes[0] ?? 'empty'}`, 'json', bytes.toString('latin1'));
  }
  // Nesting deep enough to overflow a recursive walk (5,000 is the fault-injection case) in each section.
  for (const section of ['images', 'annotations', 'categories']) {
    for (const depth of [65, 300, 5000, 20000]) {
      const doc = clone();
      (doc[section] as unknown[]).push('DEEP');
      coco(`deep-${section}-${depth}`, 'json-deep', withDeep(doc, nested(depth, 1)));
    }
  }
  const deepRoot = clone();
  deepRoot.info = 'DEEP';
  coco('deep-info-6000', 'json-deep', withDeep(deepRoot, nested(6000, {})));

  // Wrong types, missing fields, NaN/Infinity, huge numbers, geometry out of range.
  const mutations: [string, string, (d: Json) => unknown][] = [
    ['images-string', 'type', (d) => (d.images = 'images.json')],
    ['images-object', 'type', (d) => (d.images = { id: 1 })],
    ['annotations-number', 'type', (d) => (d.annotations = 5)],
    ['categories-null', 'type', (d) => (d.categories = null)],
    ['no-images', 'type', (d) => delete d.images],
    ['image-id-string', 'type', (d) => ((d.images as Json[])[0].id = 'one')],
    ['image-width-negative', 'range', (d) => ((d.images as Json[])[0].width = -4)],
    ['image-width-string', 'type', (d) => ((d.images as Json[])[0].width = '4')],
    ['image-file-name-number', 'type', (d) => ((d.images as Json[])[0].file_name = 5)],
    ['image-file-missing', 'path', (d) => ((d.images as Json[])[0].file_name = 'missing.png')],
    ['image-file-traversal', 'path', (d) => ((d.images as Json[])[0].file_name = '../../../../etc/hostname.png')],
    ['image-duplicate-id', 'type', (d) => ((d.images as Json[])[1].id = 1)],
    ['bbox-string', 'type', (d) => ((d.annotations as Json[])[0].bbox = '0,0,2,2')],
    ['bbox-short', 'type', (d) => ((d.annotations as Json[])[0].bbox = [0, 0, 2])],
    ['bbox-string-element', 'type', (d) => ((d.annotations as Json[])[0].bbox = [0, 0, 2, '2'])],
    ['bbox-negative-size', 'range', (d) => ((d.annotations as Json[])[0].bbox = [1, 1, -2, 2])],
    ['bbox-zero', 'range', (d) => ((d.annotations as Json[])[0].bbox = [1, 1, 0, 0])],
    ['bbox-outside', 'range', (d) => ((d.annotations as Json[])[0].bbox = [10, 10, 2, 2])],
    ['bbox-huge', 'huge', (d) => ((d.annotations as Json[])[0].bbox = [0, 0, 1e308, 1e308])],
    ['image-huge-width', 'huge', (d) => ((d.images as Json[])[0].width = 1e12)],
    ['annotation-unknown-image', 'type', (d) => ((d.annotations as Json[])[0].image_id = 99)],
    ['annotation-unknown-category', 'type', (d) => ((d.annotations as Json[])[0].category_id = 7)],
    ['polygon-odd', 'range', (d) => ((d.annotations as Json[])[0].segmentation = [[0, 0, 2, 0, 2]])],
    ['polygon-outside', 'range', (d) => ((d.annotations as Json[])[0].segmentation = [[0, 0, 40, 0, 40, 40]])],
    ['root-array', 'type', () => [COCO]],
    ['root-string', 'type', () => 'coco'],
  ];
  for (const [id, kind, mutate] of mutations) {
    const doc = clone();
    const replaced = mutate(doc);
    coco(id, kind, JSON.stringify(id.startsWith('root-') ? replaced : doc));
  }
  for (const token of ['NaN', 'Infinity', '-Infinity']) {
    coco(`bbox-${token}`, 'nan', cocoText.replace('"bbox": [\n    0,', `"bbox": [\n    ${token},`));
    coco(`area-${token}`, 'nan', cocoText.replace('"area": 4', `"area": ${token}`));
  }
  coco('id-overflow', 'huge', cocoText.replace('"id": 1,\n   "file_name"', '"id": 1e400,\n   "file_name"'));

  // Paths of the wrong kind, unicode and spaced names.
  const spaced = file('coco/with space/ünïcødé 標本.json', cocoText.slice(0, 40));
  add({
    id: 'validate-data/unicode-spaced-path',
    step: 'validate-data',
    kind: 'path',
    argv: ['validate-data', '--format', 'coco', '--train', spaced, '--images-root', images],
    exit: 1,
    names: 'ünïcødé 標本.json',
  });
  add({
    id: 'validate-data/train-missing',
    step: 'validate-data',
    kind: 'path',
    argv: ['validate-data', '--format', 'coco', '--train', path.join(root, 'coco/nope.json')],
    exit: 1,
    names: 'nope.json',
  });
  add({
    id: 'validate-data/train-is-dir',
    step: 'validate-data',
    kind: 'path',
    argv: ['validate-data', '--format', 'coco', '--train', path.join(root, 'coco')],
    exit: 1,
    names: 'coco',
  });
  const goodCoco = file('coco-good/train.json', cocoText);
  add({
    id: 'validate-data/images-root-is-file',
    step: 'validate-data',
    kind: 'path',
    argv: ['validate-data', '--format', 'coco', '--train', goodCoco, '--images-root', goodCoco],
    exit: 1,
    names: 'train.json',
  });

  // Bad flags: enums, numbers, ranges.
  const usage: [string, string[], string][] = [
    ['format-bogus', ['--format', 'cocoa', '--train', goodCoco], 'format'],
    ['fail-on-bogus', ['--format', 'coco', '--train', goodCoco, '--fail-on', 'sometimes'], 'fail-on'],
    ['max-imbalance-negative', ['--format', 'coco', '--train', goodCoco, '--max-imbalance', '-1'], 'max-imbalance'],
    ['sample-size-word', ['--format', 'coco', '--train', goodCoco, '--sample-size', 'many'], 'sample-size'],
    ['threads-negative', ['--format', 'coco', '--train', goodCoco, '--threads', '-1'], 'threads'],
    ['unknown-flag', ['--format', 'coco', '--train', goodCoco, '--trian', goodCoco], 'trian'],
    ['min-box-size-nan', ['--format', 'coco', '--train', goodCoco, '--min-box-size', 'NaN'], 'min-box-size'],
  ];
  for (const [id, args, names] of usage)
    add({ id: `validate-data/${id}`, step: 'validate-data', kind: 'enum', argv: ['validate-data', ...args], exit: 2, names });

  // YOLO: data.yaml alias bombs and syntax errors, bad label lines.
  const yolo = path.join(root, 'yolo');
  file('yolo/images/train/a.png', pngFile());
  file('yolo/labels/train/a.txt', '0 0.5 0.5 0.2 0.2\n');
  const bomb = [
    'a: &a [x, x, x, x, x, x, x, x, x]',
    ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`),
  ].join('\n');
  const yamls: [string, string][] = [
    ['alias-bomb', `path: .\ntrain: images/train\nnames: [cell]\n${bomb}\n`],
    [
      'alias-bomb-names',
      `path: .\ntrain: images/train\nx: &x [c, c, c, c, c, c, c, c]\ny: &y [*x, *x, *x, *x, *x, *x, *x, *x]\nz: &z [*y, *y, *y, *y, *y, *y, *y, *y]\nw: &w [*z, *z, *z, *z, *z, *z, *z, *z]\nnames: [*w, *w, *w, *w, *w, *w, *w, *w]\n`,
    ],
    ['syntax-tab', 'path: .\ntrain: images/train\nnames:\n\t- cell\n'],
    ['syntax-unclosed', 'path: .\ntrain: [images/train\nnames: [cell]\n'],
    ['syntax-duplicate-key', 'path: .\ntrain: images/train\ntrain: images/val\nnames: [cell]\n'],
    ['names-number', 'path: .\ntrain: images/train\nnames: 3\n'],
    ['root-list', '- train\n- names\n'],
    ['train-number', 'path: .\ntrain: 5\nnames: [cell]\n'],
  ];
  for (const [id, text] of yamls) {
    const f = file(`yolo/${id}.yaml`, text);
    add({
      id: `validate-data/yolo-${id}`,
      step: 'validate-data',
      kind: 'yaml',
      argv: ['validate-data', '--format', 'yolo', '--data-yaml', f],
      exit: 1,
      names: `${id}.yaml`,
    });
  }
  const labels: [string, string][] = [
    ['class-out-of-range', '5 0.5 0.5 0.2 0.2\n'],
    ['coords-over-one', '0 1.5 0.5 0.2 0.2\n'],
    ['nan-token', '0 nan 0.5 0.2 0.2\n'],
    ['four-columns', '0 0.5 0.5 0.2\n'],
    ['words', 'cell here\n'],
    ['negative-size', '0 0.5 0.5 -0.2 0.2\n'],
  ];
  for (const [id, text] of labels) {
    const dir = `yolo-${id}`;
    file(`${dir}/images/train/a.png`, pngFile());
    file(`${dir}/labels/train/a.txt`, text);
    const f = file(`${dir}/data.yaml`, 'path: .\ntrain: images/train\nnames: [cell]\n');
    add({
      id: `validate-data/yolo-label-${id}`,
      step: 'validate-data',
      kind: 'text',
      argv: ['validate-data', '--format', 'yolo', '--data-yaml', f],
      exit: 1,
      names: 'a.txt',
    });
  }
  add({
    id: 'validate-data/yolo-data-yaml-is-dir',
    step: 'validate-data',
    kind: 'path',
    argv: ['validate-data', '--format', 'yolo', '--data-yaml', yolo],
    exit: 1,
    names: 'yolo',
  });

  // VOC: XXE, entity expansion, broken XML.
  const vocBase = (inner: string, doctype = '') =>
    `<?xml version="1.0"?>${doctype}<annotation><filename>a.png</filename><size><width>4</width><height>4</height><depth>1</depth></size>${inner}</annotation>`;
  const obj = '<object><name>cell</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>';
  const vocs: [string, string][] = [
    [
      'external-entity',
      vocBase('<object><name>&xxe;</name></object>', '<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
    ],
    ['large-entity', vocBase('<object><name>&big;</name></object>', `<!DOCTYPE annotation [<!ENTITY big "${'x'.repeat(200_000)}">]>`)],
    [
      'laughs',
      vocBase(
        '<object><name>&l4;</name></object>',
        `<!DOCTYPE annotation [<!ENTITY l0 "lol">${[1, 2, 3, 4].map((i) => `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`).join('')}]>`,
      ),
    ],
    ['unclosed', vocBase(obj).replace('</annotation>', '')],
    ['no-size', vocBase(obj).replace(/<size>.*<\/size>/, '')],
    ['bndbox-nan', vocBase(obj.replace('<xmin>0</xmin>', '<xmin>NaN</xmin>'))],
    ['bndbox-outside', vocBase(obj.replace('<xmax>2</xmax>', '<xmax>40</xmax>'))],
    ['not-xml', '{"annotation": {}}'],
  ];
  for (const [id, text] of vocs) {
    const dir = `voc-${id}`;
    file(`${dir}/JPEGImages/a.png`, pngFile());
    file(`${dir}/Annotations/${id}.xml`, text);
    add({
      id: `validate-data/voc-${id}`,
      step: 'validate-data',
      kind: 'xml',
      argv: ['validate-data', '--format', 'voc', '--train', path.join(root, dir, 'Annotations'), '--classes', 'cell'],
      exit: 1,
      names: `${id}.xml`,
    });
  }

  // Segmentation masks and images: looping, huge, truncated, corrupt.
  const badImages: [string, string, Buffer][] = [
    ['mask-looping-tiff', 'mask.tif', loopingTiff()],
    ['mask-subifd-loop', 'mask.tif', tiffFile({ extra: [{ tag: 330, type: 4, count: 1, value: 8 }] })],
    ['mask-tiff-billion-values', 'mask.tif', tiffFile({ extra: [{ tag: 320, type: 3, count: 4_000_000_000, value: 200 }] })],
    ['mask-tiff-next-past-end', 'mask.tif', tiffFile({ next: 1 << 30 })],
    ['mask-tiff-entry-count-huge', 'mask.tif', tiffFile({ entryCount: 60000 })],
    ['mask-tiff-huge-dimensions', 'mask.tif', tiffFile({ width: 200_000, height: 200_000 })],
    ['mask-png-huge-dimensions', 'mask.png', pngWithSize(100_000, 100_000)],
    ['mask-png-truncated', 'mask.png', pngFile(16, 16).subarray(0, 40)],
    ['mask-png-bad-ihdr', 'mask.png', pngWithSize(0, 4)],
    ['image-looping-tiff', 'image.tif', loopingTiff()],
    ['image-png-huge-dimensions', 'image.png', pngWithSize(100_000, 100_000)],
    ['image-jpeg-corrupt', 'image.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0xff, 0xd9])],
    ['image-gif', 'image.png', Buffer.from('GIF89a\u0004\u0000\u0004\u0000\u0000\u0000\u0000;', 'latin1')],
  ];
  for (const [id, name, bytes] of badImages) {
    const dir = path.join(root, `seg-${id}`);
    const isMask = id.startsWith('mask');
    const imageName = isMask ? 'a.png' : `a${path.extname(name)}`;
    const maskName = isMask ? `a${path.extname(name)}` : 'a.png';
    file(`seg-${id}/train/images/${imageName}`, isMask ? pngFile() : bytes);
    file(`seg-${id}/train/masks/${maskName}`, isMask ? bytes : pngFile());
    add({
      id: `validate-data/seg-${id}`,
      step: 'validate-data',
      kind: 'image',
      argv: [
        'validate-data',
        '--format',
        'segmentation',
        '--train',
        path.join(dir, 'train'),
        '--classes',
        '0: background',
        '--classes',
        '1: cell',
      ],
      exit: 1,
      names: isMask ? maskName : imageName,
    });
  }

  // gate-metrics: detection ground truth and predictions.
  const gtGood = file('gate/gt.json', cocoText);
  const predictions = JSON.stringify([{ image_id: 1, category_id: 1, bbox: [0, 0, 2, 2], score: 0.9 }]);
  const predGood = file('gate/pred.json', predictions);
  const gate = (
    id: string,
    kind: string,
    over: { gt?: string; cand?: string; prod?: string; extra?: string[] },
    exit: 1 | 2,
    names: string,
  ) =>
    add({
      id: `gate-metrics/${id}`,
      step: 'gate-metrics',
      kind,
      argv: [
        'gate-metrics',
        '--task',
        'detection',
        '--ground-truth',
        over.gt ?? gtGood,
        '--candidate-predictions',
        over.cand ?? predGood,
        '--production-predictions',
        over.prod ?? predGood,
        '--report-file',
        path.join(root, `gate-out/${id}.json`),
        ...(over.extra ?? []),
      ],
      exit,
      names,
      absent: [path.join(root, `gate-out/${id}.json`)],
    });
  for (let i = 0; i < 5; i++) {
    const at = 1 + pick(predictions.length - 2);
    gate(
      `pred-truncated-${i}`,
      'json',
      { cand: file(`gate/pred-truncated-${i}.json`, predictions.slice(0, at)) },
      1,
      `pred-truncated-${i}.json`,
    );
  }
  for (let i = 0; i < 4; i++) {
    const at = 1 + pick(cocoText.length - 2);
    gate(`gt-truncated-${i}`, 'json', { gt: file(`gate/gt-truncated-${i}.json`, cocoText.slice(0, at)) }, 1, `gt-truncated-${i}.json`);
  }
  const predBad: [string, string][] = [
    ['pred-object', '{"image_id": 1}'],
    ['pred-score-nan', '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": NaN}]'],
    ['pred-score-string', '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": "high"}]'],
    ['pred-bbox-string', '[{"image_id": 1, "category_id": 1, "bbox": "0 0 2 2", "score": 0.5}]'],
    ['pred-deep', nested(5000, 1)],
    ['pred-unknown-image', '[{"image_id": 42, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.5}]'],
  ];
  for (const [id, text] of predBad) gate(id, 'json', { cand: file(`gate/${id}.json`, text) }, 1, `${id}.json`);
  gate(
    'gt-deep',
    'json-deep',
    { gt: file('gate/gt-deep.json', withDeep({ ...COCO, images: ['DEEP'] }, nested(5000, 1))) },
    1,
    'gt-deep.json',
  );
  gate('gt-missing', 'path', { gt: path.join(root, 'gate/none.json') }, 1, 'none.json');
  gate('gt-is-dir', 'path', { gt: path.join(root, 'gate') }, 1, 'gate');
  gate('iou-type-bogus', 'enum', { extra: ['--iou-type', 'boxes'] }, 2, 'iou-type');
  gate('confidence-over-one', 'range', { extra: ['--confidence', '2'] }, 2, 'confidence');
  gate('bootstrap-negative', 'range', { extra: ['--bootstrap-resamples', '-5'] }, 2, 'bootstrap-resamples');
  gate('task-bogus', 'enum', { extra: ['--task', 'classification'] }, 2, 'task');
  // Segmentation gate: a looping TIFF among the masks.
  for (const [id, bytes] of [
    ['mask-looping-tiff', loopingTiff()],
    ['mask-png-huge', pngWithSize(100_000, 100_000)],
  ] as const) {
    const ext = id.includes('tiff') ? '.tif' : '.png';
    file(`gate-seg-${id}/gt/a${ext}`, bytes);
    file(`gate-seg-${id}/cand/a.png`, pngFile());
    file(`gate-seg-${id}/prod/a.png`, pngFile());
    const dir = path.join(root, `gate-seg-${id}`);
    add({
      id: `gate-metrics/seg-${id}`,
      step: 'gate-metrics',
      kind: 'image',
      argv: [
        'gate-metrics',
        '--task',
        'segmentation',
        '--ground-truth',
        path.join(dir, 'gt'),
        '--candidate-predictions',
        path.join(dir, 'cand'),
        '--production-predictions',
        path.join(dir, 'prod'),
      ],
      exit: 1,
      names: `a${ext}`,
    });
  }

  // eval commands.
  add({
    id: 'eval/coco-gt-truncated',
    step: 'eval',
    kind: 'json',
    argv: ['eval', 'coco', '--ground-truth', file('eval/gt.json', cocoText.slice(0, 100)), '--predictions', predGood, '--iou-type', 'bbox'],
    exit: 1,
    names: 'gt.json',
  });
  add({
    id: 'eval/coco-pred-deep',
    step: 'eval',
    kind: 'json-deep',
    argv: ['eval', 'coco', '--ground-truth', gtGood, '--predictions', file('eval/pred-deep.json', nested(5000, 1)), '--iou-type', 'bbox'],
    exit: 1,
    names: 'pred-deep.json',
  });
  file('eval-masks/gt/a.tif', loopingTiff());
  file('eval-masks/pred/a.png', pngFile());
  add({
    id: 'eval/masks-looping-tiff',
    step: 'eval',
    kind: 'image',
    argv: ['eval', 'masks', '--ground-truth', path.join(root, 'eval-masks/gt'), '--predictions', path.join(root, 'eval-masks/pred')],
    exit: 1,
    names: 'a.tif',
  });

  // submit-training: job specs (YAML) and flags; every case fails before anything is submitted.
  const specs: [string, string][] = [
    ['alias-bomb', `backend: local\nname: x\ncommand: [echo]\n${bomb}\n`],
    ['syntax', 'backend: local\ncommand: [echo\n'],
    ['root-list', '- backend\n- local\n'],
    ['wrong-type', 'backend: local\ncommand: 5\n'],
    ['unknown-backend', 'backend: kubernetes\ncommand: [echo]\n'],
    ['deep-json', withDeep({ backend: 'local', command: ['echo'], hyperparameters: { a: 'DEEP' } }, nested(3000, 1))],
  ];
  for (const [id, text] of specs) {
    const f = file(`training/${id}.yaml`, text);
    add({
      id: `submit-training/spec-${id}`,
      step: 'submit-training',
      kind: 'yaml',
      argv: ['submit-training', '--backend', 'local', '--job-spec', f, '--wait', 'false'],
      exit: 1,
      names: `${id}.yaml`,
    });
  }
  add({
    id: 'submit-training/spec-missing',
    step: 'submit-training',
    kind: 'path',
    argv: ['submit-training', '--backend', 'local', '--job-spec', path.join(root, 'training/none.yaml')],
    exit: 1,
    names: 'none.yaml',
  });
  add({
    id: 'submit-training/spec-is-dir',
    step: 'submit-training',
    kind: 'path',
    argv: ['submit-training', '--backend', 'local', '--job-spec', path.join(root, 'training')],
    exit: 1,
    names: 'training',
  });
  for (const [id, args, names] of [
    ['backend-bogus', ['--backend', 'kubernetes'], 'backend'],
    ['instance-count-negative', ['--backend', 'local', '--command', 'echo', '--instance-count', '-1'], 'instance-count'],
    ['timeout-word', ['--backend', 'local', '--command', 'echo', '--timeout-minutes', 'soon'], 'timeout-minutes'],
    ['hyperparameters-bad', ['--backend', 'local', '--command', 'echo', '--hyperparameters', '{"lr": '], 'hyperparameters'],
  ] as const) {
    add({ id: `submit-training/${id}`, step: 'submit-training', kind: 'enum', argv: ['submit-training', ...args], exit: 2, names });
  }

  // Keys and a real signed package for the package and OTA steps.
  const keys = path.join(root, 'keys');
  const privateKey = file('keys/release.pem', KEYS.privateKeyPem);
  const publicKey = file('keys/release.pub.pem', KEYS.publicKeyPem);
  const other = generateKeyPairSync('ed25519');
  const otherPublic = file('keys/other.pub.pem', other.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const otherPrivate = file('keys/other.pem', other.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const garbageKey = file('keys/garbage.pem', '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
  const good = await makePackage(path.join(root, 'pkg-src'), '1.0.0');
  const otherSigned = await makePackage(path.join(root, 'pkg-other'), '1.0.1', {
    privateKeyPem: other.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  });
  const goodBytes = fs.readFileSync(good);

  // build-device-package.
  const model = path.join(root, 'pkg-src', 'src-cellseg-1.0.0', 'model.onnx');
  const out = (id: string) => path.join(root, `build-out-${id}`);
  const build = (id: string, kind: string, args: string[], exit: 1 | 2, names: string) =>
    add({
      id: `build-device-package/${id}`,
      step: 'build-device-package',
      kind,
      argv: [
        'build-device-package',
        '--name',
        'cellseg',
        '--version',
        '2.0.0',
        '--signing-key',
        privateKey,
        '--output-dir',
        out(id),
        ...args,
      ],
      exit,
      names,
      absent: [path.join(out(id), 'cellseg-2.0.0.tar.gz')],
    });
  for (let i = 0; i < 4; i++) {
    const bytes = fs.readFileSync(model);
    const at = 1 + pick(bytes.length - 2);
    build(`model-truncated-${i}`, 'onnx', ['--models', file(`build/truncated-${i}.onnx`, bytes.subarray(0, at))], 1, `truncated-${i}.onnx`);
  }
  build('model-garbage', 'onnx', ['--models', file('build/garbage.onnx', 'not a model at all')], 1, 'garbage.onnx');
  build('model-is-dir', 'path', ['--models', path.join(root, 'build')], 1, 'build');
  build('model-missing', 'path', ['--models', path.join(root, 'build/none.onnx')], 1, 'none.onnx');
  build(
    'preprocessing-deep',
    'json-deep',
    ['--models', model, '--preprocessing', file('build/pre-deep.json', withDeep({ layout: 'DEEP' }, nested(4000, 'NCHW')))],
    1,
    'pre-deep.json',
  );
  build(
    'preprocessing-not-object',
    'json',
    ['--models', model, '--preprocessing', file('build/pre-type.json', '["NCHW"]')],
    1,
    'pre-type.json',
  );
  build(
    'preprocessing-truncated',
    'json',
    ['--models', model, '--preprocessing', file('build/pre-trunc.json', '{"layout": "NC')],
    1,
    'pre-trunc.json',
  );
  build('labels-missing', 'path', ['--models', model, '--labels', path.join(root, 'build/labels.txt')], 1, 'labels.txt');
  build('signing-key-garbage', 'key', ['--models', model, '--signing-key', garbageKey], 1, 'signing-key');
  const blocker = file('build/blocker-file', 'x');
  add({
    id: 'build-device-package/output-dir-is-file',
    step: 'build-device-package',
    kind: 'path',
    argv: [
      'build-device-package',
      '--name',
      'cellseg',
      '--version',
      '2.0.0',
      '--signing-key',
      privateKey,
      '--models',
      model,
      '--output-dir',
      blocker,
    ],
    exit: 1,
    names: 'blocker-file',
  });
  build('version-bad', 'enum', ['--models', model, '--version', '1.0'], 1, '1.0');
  build('name-traversal', 'enum', ['--models', model, '--name', '../evil'], 1, '../evil');

  // verify-package: hostile tar and gzip.
  const verify = (
    id: string,
    kind: string,
    bytes: Buffer | undefined,
    extra: string[] = [],
    exit: 1 | 2 = 1,
    names = `${id}.tar.gz`,
    archive?: string,
  ) => {
    const f = archive ?? file(`verify/${id}.tar.gz`, bytes!);
    const dest = path.join(root, `verify-out/${id}`);
    add({
      id: `verify-package/${id}`,
      step: 'verify-package',
      kind,
      argv: ['verify-package', f, '--public-key', publicKey, '--extract-to', dest, ...extra],
      exit,
      names,
      absent: [dest],
    });
  };
  const data = Buffer.from('payload');
  verify('traversal', 'tar', gzipTar([{ path: '../evil.txt', data }]));
  verify('absolute', 'tar', gzipTar([{ path: '/etc/evil.txt', data }]));
  verify('symlink', 'tar', gzipTar([{ path: 'link', type: '2', linkpath: '/etc/passwd' }]));
  verify('hardlink', 'tar', gzipTar([{ path: 'hard', type: '1', linkpath: 'manifest.json' }]));
  verify('device', 'tar', gzipTar([{ path: 'dev', type: '3' }]));
  verify('fifo', 'tar', gzipTar([{ path: 'pipe', type: '6' }]));
  verify(
    'duplicate',
    'tar',
    gzipTar([
      { path: 'a.txt', data },
      { path: 'a.txt', data },
    ]),
  );
  verify(
    'case-collision',
    'tar',
    gzipTar([
      { path: 'A.txt', data },
      { path: 'a.txt', data },
    ]),
  );
  verify(
    'file-then-dir',
    'tar',
    gzipTar([
      { path: 'a', data },
      { path: 'a/b', data },
    ]),
  );
  verify('unsigned', 'tar', gzipTar([{ path: 'models/model.onnx', data }]));
  verify('no-end-marker', 'tar', gzipTar([{ path: 'a.txt', data }], { end: false }));
  verify('trailing-data', 'tar', gzipTar([{ path: 'a.txt', data }], { trailing: Buffer.from('MORE') }));
  verify('not-gzip', 'gzip', tarBytes([{ path: 'a.txt', data }]));
  verify('empty-file', 'gzip', Buffer.alloc(0));
  verify('gzip-truncated', 'gzip', goodBytes.subarray(0, Math.floor(goodBytes.length / 2)));
  verify('gzip-garbage-member', 'gzip', Buffer.concat([goodBytes, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3])]));
  for (let i = 0; i < 4; i++) {
    const tampered = Buffer.from(goodBytes);
    const at = 20 + pick(tampered.length - 40);
    tampered[at] ^= 0x40;
    verify(`bit-flip-${i}`, 'gzip', tampered);
  }
  // Bombs, kept small on disk: a header that declares 20 GiB, 1 GiB of zeros in one entry, 10,001 empty entries.
  const bombHeader = tarBytes([{ path: 'zeros.bin', data: Buffer.alloc(0) }], { end: false });
  bombHeader.write('00000000000', 124, 'latin1');
  bombHeader.write(`${(20 * 1024 ** 3).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : bombHeader[i];
  bombHeader.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  verify('declared-20-gib', 'bomb', zlib.gzipSync(Buffer.concat([bombHeader, Buffer.alloc(1 << 16)])));
  // Verified without extraction here (the walk refuses at entry 10,001 before writing anything): extracting it
  // creates the 10,000 files the cap allows, which test/package/caps-and-sweeps.test.ts checks with a smaller cap.
  const many = file('verify/many-entries.tar.gz', zlib.gzipSync(tarBytes(Array.from({ length: 10_001 }, (_, i) => ({ path: `f/${i}` })))));
  add({
    id: 'verify-package/many-entries',
    step: 'verify-package',
    kind: 'bomb',
    argv: ['verify-package', many, '--public-key', publicKey],
    exit: 1,
    names: 'many-entries.tar.gz',
  });
  verify('bad-public-key', 'key', undefined, ['--public-key', 'not-a-key'], 1, 'public-key', good);
  verify('wrong-public-key', 'key', undefined, ['--public-key', otherPublic], 1, 'key', good);
  const notEmpty = path.join(root, 'verify-out/not-empty');
  file('verify-out/not-empty/keep.txt', 'x');
  add({
    id: 'verify-package/extract-to-not-empty',
    step: 'verify-package',
    kind: 'path',
    argv: ['verify-package', good, '--public-key', publicKey, '--extract-to', notEmpty],
    exit: 1,
    names: 'not-empty',
  });
  const extractFile = file('verify-out/a-file', 'x');
  add({
    id: 'verify-package/extract-to-is-file',
    step: 'verify-package',
    kind: 'path',
    argv: ['verify-package', good, '--public-key', publicKey, '--extract-to', extractFile],
    exit: 1,
    names: 'a-file',
  });
  add({
    id: 'verify-package/extract-to-under-file',
    step: 'verify-package',
    kind: 'path',
    argv: ['verify-package', good, '--public-key', publicKey, '--extract-to', path.join(extractFile, 'sub')],
    exit: 1,
    names: 'a-file',
  });
  add({
    id: 'verify-package/archive-missing',
    step: 'verify-package',
    kind: 'path',
    argv: ['verify-package', path.join(root, 'verify/none.tar.gz'), '--public-key', publicKey],
    exit: 1,
    names: 'none.tar.gz',
  });
  add({
    id: 'verify-package/archive-is-dir',
    step: 'verify-package',
    kind: 'path',
    argv: ['verify-package', path.join(root, 'verify'), '--public-key', publicKey],
    exit: 1,
    names: 'verify',
  });

  // stage-ota.
  const stage = (id: string, kind: string, args: string[], exit: 1 | 2, names: string, pkg = good) => {
    const store = path.join(root, `stores/stage-${id}`);
    add({
      id: `stage-ota/${id}`,
      step: 'stage-ota',
      kind,
      argv: [
        'stage-ota',
        '--package',
        pkg,
        '--store',
        'local',
        '--store-uri',
        store,
        '--channel',
        'staging',
        '--signing-key',
        privateKey,
        '--package-public-key',
        publicKey,
        ...args,
      ],
      exit,
      names,
      absent: [path.join(store, 'channels/staging.json')],
    });
  };
  for (let i = 0; i < 3; i++) {
    const tampered = Buffer.from(goodBytes);
    tampered[40 + pick(tampered.length - 80)] ^= 0x01;
    stage(`package-tampered-${i}`, 'gzip', [], 1, `tampered-${i}.tar.gz`, file(`stage/tampered-${i}.tar.gz`, tampered));
  }
  stage('package-truncated', 'gzip', [], 1, 'truncated.tar.gz', file('stage/truncated.tar.gz', goodBytes.subarray(0, 100)));
  stage('package-other-key', 'key', [], 1, path.basename(otherSigned), otherSigned);
  stage('channel-bad-name', 'enum', ['--channel', 'Prod Channel'], 1, 'Prod Channel');
  stage('rollout-over-100', 'range', ['--rollout-percent', '150'], 2, 'rollout-percent');
  stage('expires-negative', 'range', ['--expires-in-hours', '-1'], 2, 'expires-in-hours');
  stage('store-bogus', 'enum', ['--store', 'ftp'], 2, 'store');
  stage('signing-key-garbage', 'key', ['--signing-key', garbageKey], 1, 'signing-key');
  stage('package-missing', 'path', [], 1, 'none.tar.gz', path.join(root, 'stage/none.tar.gz'));
  const storeFile = file('stores/a-file', 'x');
  add({
    id: 'stage-ota/store-uri-is-file',
    step: 'stage-ota',
    kind: 'path',
    argv: [
      'stage-ota',
      '--package',
      good,
      '--store',
      'local',
      '--store-uri',
      storeFile,
      '--channel',
      'staging',
      '--signing-key',
      privateKey,
      '--package-public-key',
      publicKey,
    ],
    exit: 1,
    names: 'a-file',
  });
  const damagedStage = path.join(root, 'stores/stage-damaged');
  file('stores/stage-damaged/channels/staging.json', '{"schema": "mlship.channel/v1", "sequence": ');
  add({
    id: 'stage-ota/channel-damaged',
    step: 'stage-ota',
    kind: 'json',
    argv: [
      'stage-ota',
      '--package',
      good,
      '--store',
      'local',
      '--store-uri',
      damagedStage,
      '--channel',
      'staging',
      '--signing-key',
      privateKey,
      '--package-public-key',
      publicKey,
    ],
    exit: 1,
    names: 'staging.json',
  });

  // promote-release.
  const promoteStore = path.join(root, 'stores/promote');
  file('stores/promote/channels/staging.json', nested(5000, 1));
  file('stores/promote/channels/canary.json', '{"schema": "mlship.channel/v1"}');
  const promote = (id: string, kind: string, args: string[], exit: 1 | 2, names: string, env?: Record<string, string | undefined>) =>
    add({
      id: `promote-release/${id}`,
      step: 'promote-release',
      kind,
      argv: ['promote-release', '--store', 'local', '--store-uri', promoteStore, '--signing-key', privateKey, ...args],
      exit,
      names,
      env,
      absent: [path.join(promoteStore, 'channels/production.json')],
    });
  promote('same-channel', 'enum', ['--from', 'staging', '--to', 'staging'], 1, 'staging');
  promote('from-missing', 'path', ['--from', 'nightly', '--to', 'production'], 1, 'nightly');
  promote('from-deep-json', 'json-deep', ['--from', 'staging', '--to', 'production'], 1, 'staging.json');
  promote('from-wrong-schema', 'json', ['--from', 'canary', '--to', 'production'], 1, 'canary.json');
  promote('phases-decreasing', 'range', ['--from', 'canary', '--to', 'production', '--phases', '50,10'], 2, 'phases');
  promote('mode-bogus', 'enum', ['--mode', 'sideways', '--from', 'canary', '--to', 'production'], 2, 'mode');
  promote('min-approvals-zero', 'range', ['--from', 'canary', '--to', 'production', '--min-approvals', '0'], 2, 'min-approvals');
  promote(
    'approved-by-in-github-actions',
    'ci',
    ['--from', 'canary', '--to', 'production', '--approval-source', 'cli', '--approved-by', 'alice'],
    2,
    'approved-by',
    { GITHUB_ACTIONS: 'true' },
  );
  promote(
    'approved-by-in-azure-pipelines',
    'ci',
    ['--from', 'canary', '--to', 'production', '--approval-source', 'cli', '--approved-by', 'alice'],
    2,
    'approved-by',
    { TF_BUILD: 'True' },
  );
  promote(
    'no-self-approval-unknown-actor',
    'ci',
    ['--from', 'canary', '--to', 'production', '--require-approval', '--no-self-approval', '--approved-by', 'alice'],
    1,
    'no-self-approval',
    { USER: undefined },
  );
  promote('signing-key-garbage', 'key', ['--from', 'canary', '--to', 'production', '--signing-key', garbageKey], 1, 'signing-key');
  promote('signing-key-other', 'key', ['--from', 'canary', '--to', 'production', '--signing-key', otherPrivate], 1, 'canary.json');

  // fleet-status: the channel it reads and the files it writes.
  const fleet = (id: string, kind: string, args: string[], exit: 1 | 2, names: string) => {
    const json = path.join(root, `fleet-out/${id}.json`);
    add({
      id: `fleet-status/${id}`,
      step: 'fleet-status',
      kind,
      argv: [
        'fleet-status',
        '--store',
        'local',
        '--store-uri',
        promoteStore,
        '--json-file',
        json,
        '--html-file',
        path.join(root, `fleet-out/${id}.html`),
        ...args,
      ],
      exit,
      names,
      absent: [json],
    });
  };
  fleet('channel-deep-json', 'json-deep', ['--channel', 'staging', '--public-key', publicKey], 1, 'staging.json');
  fleet('channel-wrong-schema', 'json', ['--channel', 'canary', '--public-key', publicKey], 1, 'canary.json');
  fleet('public-key-garbage', 'key', ['--channel', 'canary', '--public-key', 'not-a-key'], 1, 'public-key');
  fleet('store-bogus', 'enum', ['--store', 'ftp'], 2, 'store');

  // benchmark-model and export-onnx: model files and shapes.
  for (const [id, args, exit, names] of [
    ['model-garbage', ['--model', file('bench/garbage.onnx', 'not a model')], 1, 'garbage.onnx'],
    ['model-truncated', ['--model', file('bench/truncated.onnx', fs.readFileSync(model).subarray(0, 30))], 1, 'truncated.onnx'],
    ['model-is-dir', ['--model', path.join(root, 'bench')], 1, 'bench'],
    ['model-missing', ['--model', path.join(root, 'bench/none.onnx')], 1, 'none.onnx'],
    ['provider-bogus', ['--model', model, '--provider', 'tpu'], 2, 'provider'],
    ['iterations-negative', ['--model', model, '--iterations', '-1'], 2, 'iterations'],
    ['input-shape-words', ['--model', model, '--input-shape', '1,a,b'], 2, 'input-shape'],
  ] as const) {
    add({
      id: `benchmark-model/${id}`,
      step: 'benchmark-model',
      kind: id.startsWith('model') ? 'onnx' : 'enum',
      argv: ['benchmark-model', ...args, '--report', path.join(root, `bench-out/${id}.json`)],
      exit,
      names,
      absent: [path.join(root, `bench-out/${id}.json`)],
    });
  }
  for (const [id, args, exit, names] of [
    ['input-shape-huge', ['--input-shape', '1,1,100000,100000'], 2, 'input-shape'],
    ['input-shape-zero', ['--input-shape', '1,0,8,8'], 2, 'input-shape'],
    ['opset-too-old', ['--opset', '3'], 2, 'opset'],
    ['input-dtype-bogus', ['--input-dtype', 'complex128'], 2, 'input-dtype'],
  ] as const) {
    const output = path.join(root, `export-out/${id}.onnx`);
    const checkpoint = file('export/model.pt', 'not read: the inputs are refused first');
    add({
      id: `export-onnx/${id}`,
      step: 'export-onnx',
      kind: 'enum',
      argv: [
        'export-onnx',
        '--model-factory',
        'models:build',
        '--checkpoint',
        checkpoint,
        '--input-shape',
        '1,3,8,8',
        ...args,
        '--output',
        output,
      ],
      exit,
      names,
      absent: [output],
    });
  }
  // optimize-model: inputs refused before any model is read or Python started.
  const optimizeSpec = file(
    'optimize/spec.json',
    JSON.stringify({ version: 1, color: 'gray', resize: { width: 8, height: 8 }, mean: [0], std: [1], layout: 'NCHW', dtype: 'float32' }),
  );
  for (const [id, args, exit, names] of [
    ['model-missing', ['--model', path.join(root, 'optimize/none.onnx'), '--variants', 'fp16'], 1, 'none.onnx'],
    ['model-garbage', ['--model', file('optimize/garbage.onnx', 'not a model'), '--variants', 'fp16'], 1, 'garbage.onnx'],
    ['variant-bogus', ['--model', model, '--variants', 'int4'], 2, 'variants'],
    ['int8-drop-range', ['--model', model, '--int8-max-drop', '2'], 2, 'int8-max-drop'],
    ['calibration-method-bogus', ['--model', model, '--calibration-method', 'guess'], 2, 'calibration-method'],
  ] as const) {
    const report = path.join(root, `optimize-out/${id}.json`);
    add({
      id: `optimize-model/${id}`,
      step: 'optimize-model',
      kind: id.startsWith('model') ? 'onnx' : 'enum',
      argv: [
        'optimize-model',
        '--task',
        'segmentation',
        '--preprocessing',
        optimizeSpec,
        ...args,
        '--test-images',
        path.join(root, 'bench'),
        '--test-masks',
        path.join(root, 'bench'),
        '--report-file',
        report,
      ],
      exit,
      names,
      absent: [report],
    });
  }
  void keys;
  return { root, cases };
}
