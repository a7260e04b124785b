import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { seededRandom } from '../../shared/core/random';
import { evaluateCocoFiles } from '../../shared/metrics';
import { rleFromCounts, rleToString } from '../../shared/metrics/coco/rle';
import type { IouType } from '../../shared/metrics/coco/load';
import { requirePython } from '../support/python-env';

/**
 * The COCO engine against the real pycocotools (PyPI, in the pinned Python environment), default parameters,
 * all 12 summarize() numbers within 1e-9: on seeded generated sets that exercise what COCOeval is particular
 * about (crowd regions, area ranges, maxDets, images without ground truth or without detections, score ties,
 * polygon ground truth against RLE detections) and on the stored fixtures. Other parameters: see issue #20.
 */

const python = requirePython(['pycocotools']);
const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-pycocotools-'));
const FIXTURES = path.resolve(__dirname, '../../../shared/fixtures/coco');

interface GenOptions {
  images: number;
  categories: number;
  gtPerImage: [number, number];
  dtPerImage: [number, number];
  crowdShare: number;
  emptyImages: number;
  scoreLevels: number; // 0: continuous scores; n: n distinct values (ties)
  iouType: IouType;
}

/** Column-major run lengths of a binary mask, starting with zeros: COCO's uncompressed RLE. */
function maskRle(mask: Uint8Array, h: number, w: number): { size: [number, number]; counts: string } {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x];
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [h, w], counts: rleToString(rleFromCounts(counts, h, w)) };
}

function generate(seed: number, o: GenOptions): { gt: object; dt: object[] } {
  const r = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const W = 160;
  const H = 120;
  const images = Array.from({ length: o.images }, (_, i) => ({ id: i + 1, width: W, height: H, file_name: `im${i + 1}.png` }));
  const categories = Array.from({ length: o.categories }, (_, i) => ({ id: (i + 1) * 3, name: `c${i + 1}` }));
  const annotations: object[] = [];
  const dt: object[] = [];
  const box = (): [number, number, number, number] => {
    // Sizes across the small (< 32²), medium and large area ranges.
    const w = [int(3, 20), int(25, 60), int(70, 140)][int(0, 2)];
    const h = Math.max(2, Math.round(w * (0.5 + r())));
    const x = int(0, Math.max(0, W - w - 1)) + Math.round(r() * 100) / 100;
    const y = int(0, Math.max(0, H - Math.min(h, H - 2) - 1)) + Math.round(r() * 100) / 100;
    return [x, y, Math.min(w, W - x - 0.5), Math.min(h, H - y - 0.5)];
  };
  const polygon = (b: number[]) => [
    [b[0], b[1], b[0] + b[2], b[1] + b[3] * 0.2, b[0] + b[2] * 0.8, b[1] + b[3], b[0] + b[2] * 0.1, b[1] + b[3] * 0.9],
  ];
  for (const im of images) {
    const gts: { b: number[]; c: number }[] = [];
    if (im.id > o.emptyImages) {
      for (let k = int(...o.gtPerImage); k > 0; k--) {
        const b = box();
        const c = categories[int(0, o.categories - 1)].id;
        const crowd = r() < o.crowdShare ? 1 : 0;
        gts.push({ b, c });
        const ann: Record<string, unknown> = {
          id: annotations.length + 1,
          image_id: im.id,
          category_id: c,
          bbox: b,
          area: b[2] * b[3] * (0.6 + 0.4 * r()),
          iscrowd: crowd,
        };
        if (o.iouType === 'segm') ann.segmentation = polygon(b);
        annotations.push(ann);
      }
    }
    for (let k = int(...o.dtPerImage); k > 0; k--) {
      // Most detections near a ground-truth box (jittered, sometimes the wrong class), the rest anywhere.
      const near = gts.length && r() < 0.75 ? gts[int(0, gts.length - 1)] : undefined;
      const b = near ? near.b.map((v, i) => Math.max(0, v + (i < 2 ? 1 : 0.5) * (r() - 0.5) * near.b[2 + (i % 2)] * 0.4)) : box();
      b[2] = Math.max(1, Math.min(b[2], W - b[0] - 0.5));
      b[3] = Math.max(1, Math.min(b[3], H - b[1] - 0.5));
      const c = near && r() < 0.85 ? near.c : categories[int(0, o.categories - 1)].id;
      const score = o.scoreLevels ? int(1, o.scoreLevels) / o.scoreLevels : Math.round(r() * 1e6) / 1e6;
      if (o.iouType === 'segm') {
        const mask = new Uint8Array(W * H);
        const [x0, y0] = [Math.floor(b[0]), Math.floor(b[1])];
        const [x1, y1] = [Math.min(W, Math.ceil(b[0] + b[2])), Math.min(H, Math.ceil(b[1] + b[3]))];
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (r() < 0.9) mask[y * W + x] = 1;
        dt.push({ image_id: im.id, category_id: c, segmentation: maskRle(mask, H, W), score });
      } else dt.push({ image_id: im.id, category_id: c, bbox: b.map((v) => Math.round(v * 100) / 100), score });
    }
  }
  return { gt: { images, annotations, categories }, dt };
}

const SETS: [string, number, GenOptions][] = [
  [
    'bbox, 3 categories, a few crowd regions',
    1,
    {
      images: 12,
      categories: 3,
      gtPerImage: [1, 6],
      dtPerImage: [0, 10],
      crowdShare: 0.1,
      emptyImages: 0,
      scoreLevels: 0,
      iouType: 'bbox',
    },
  ],
  [
    'bbox, over 100 detections per image (maxDets cut)',
    2,
    {
      images: 4,
      categories: 2,
      gtPerImage: [20, 40],
      dtPerImage: [110, 160],
      crowdShare: 0,
      emptyImages: 0,
      scoreLevels: 0,
      iouType: 'bbox',
    },
  ],
  [
    'bbox, images without ground truth and without detections',
    3,
    {
      images: 15,
      categories: 4,
      gtPerImage: [0, 4],
      dtPerImage: [0, 5],
      crowdShare: 0.05,
      emptyImages: 4,
      scoreLevels: 0,
      iouType: 'bbox',
    },
  ],
  [
    'bbox, tied scores (5 levels)',
    4,
    {
      images: 10,
      categories: 2,
      gtPerImage: [2, 8],
      dtPerImage: [2, 12],
      crowdShare: 0.1,
      emptyImages: 1,
      scoreLevels: 5,
      iouType: 'bbox',
    },
  ],
  [
    'bbox, one category, many small objects',
    5,
    {
      images: 20,
      categories: 1,
      gtPerImage: [5, 15],
      dtPerImage: [5, 20],
      crowdShare: 0.02,
      emptyImages: 0,
      scoreLevels: 0,
      iouType: 'bbox',
    },
  ],
  [
    'segm, polygon ground truth vs RLE detections',
    6,
    { images: 6, categories: 2, gtPerImage: [1, 5], dtPerImage: [1, 8], crowdShare: 0.1, emptyImages: 1, scoreLevels: 0, iouType: 'segm' },
  ],
  [
    'segm, tied scores and crowd regions',
    7,
    { images: 6, categories: 3, gtPerImage: [2, 6], dtPerImage: [2, 8], crowdShare: 0.2, emptyImages: 0, scoreLevels: 4, iouType: 'segm' },
  ],
];

interface Case {
  name: string;
  gt: string;
  dt: string;
  iouType: IouType;
}

function pycocotools(cases: Case[]): number[][] {
  const list = path.join(ws, `cases-${cases.length}-${cases[0].name.length}.json`);
  fs.writeFileSync(list, JSON.stringify(cases.map(({ gt, dt, iouType }) => ({ gt, dt, iouType }))));
  const r = spawnSync(python, [path.join(__dirname, 'pycocotools_eval.py'), list], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`pycocotools failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as number[][];
}

const generated: Case[] = SETS.map(([name, seed, o], i) => {
  const { gt, dt } = generate(seed, o);
  const dir = path.join(ws, `set${i}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'gt.json'), JSON.stringify(gt));
  fs.writeFileSync(path.join(dir, 'dt.json'), JSON.stringify(dt));
  return { name, gt: path.join(dir, 'gt.json'), dt: path.join(dir, 'dt.json'), iouType: o.iouType };
});

const fixtures: Case[] = fs.existsSync(FIXTURES)
  ? fs
      .readdirSync(FIXTURES)
      .filter((d) => fs.existsSync(path.join(FIXTURES, d, 'gt.json')))
      .flatMap((d) =>
        (['bbox', 'segm'] as const)
          .filter((t) => t === 'bbox' || d.startsWith('segm'))
          .map((t) => ({
            name: `fixture ${d} (${t})`,
            gt: path.join(FIXTURES, d, 'gt.json'),
            dt: path.join(FIXTURES, d, 'dt.json'),
            iouType: t,
          })),
      )
  : [];

describe('COCO engine vs PyPI pycocotools (default parameters): all 12 stats within 1e-9', () => {
  const all = [...generated, ...fixtures];
  const expected = pycocotools(all);

  it('covers at least 5 generated sets and the stored fixtures', () => {
    expect(generated.length).toBeGreaterThanOrEqual(5);
    expect(fixtures.length).toBeGreaterThanOrEqual(4);
  });

  it.each(all.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    const c = all[i];
    const mine = evaluateCocoFiles({ groundTruth: c.gt, predictions: c.dt, iouType: c.iouType }).stats;
    const theirs = expected[i];
    expect(theirs).toHaveLength(12);
    // A set whose numbers are all -1 or 0 would prove nothing.
    expect(theirs[0]).toBeGreaterThan(0);
    mine.forEach((s, k) => expect(Math.abs(s - theirs[k])).toBeLessThanOrEqual(1e-9));
  });
});
