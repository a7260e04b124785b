import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluateCocoFiles } from '../../../shared/metrics';
import type { IouType } from '../../../shared/metrics/coco/load';
import { SHARED_FIXTURES } from '../../support/paths';

const FIXTURES = SHARED_FIXTURES;

interface SyntheticCase {
  name: string;
  folder: string;
  iouType: IouType;
  useCats: number;
  stats: number[];
  per_category_AP?: { category_id: number; AP: number; AP50: number; 'AR@maxDets[-1]': number }[];
}

describe('pycocotools fixtures (shared/fixtures/coco): all 12 stats within 1e-9', () => {
  const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'coco/expected.json'), 'utf8')) as { cases: SyntheticCase[] };
  it('lists the documented cases', () => {
    expect(expected.cases.map((c) => c.name)).toEqual([
      'bbox-basic_bbox',
      'bbox-basic_bbox_usecats0',
      'bbox-gaps-maxdets_bbox',
      'segm-mixed_bbox',
      'segm-mixed_segm',
      'segm-polygon_bbox',
      'segm-polygon_segm',
    ]);
  });
  it.each(expected.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = evaluateCocoFiles({
      groundTruth: path.join(FIXTURES, 'coco', c.folder, 'gt.json'),
      predictions: path.join(FIXTURES, 'coco', c.folder, 'dt.json'),
      iouType: c.iouType,
      useCats: c.useCats === 1,
    });
    expect(r.stats).toHaveLength(12);
    r.stats.forEach((s, i) => expect(Math.abs(s - c.stats[i])).toBeLessThanOrEqual(1e-9));
    for (const pc of c.per_category_AP ?? []) {
      const mine = r.perCategory.find((x) => x.id === pc.category_id);
      expect(mine).toBeDefined();
      expect(Math.abs(mine!.AP - pc.AP)).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(mine!.AP50 - pc.AP50)).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(mine!.AR100 - pc['AR@maxDets[-1]'])).toBeLessThanOrEqual(1e-9);
    }
  });
});

describe('published COCO results (shared/fixtures/coco-real)', () => {
  const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'coco-real/expected.json'), 'utf8')) as {
    cases: { name: string; gt: string; dt: string; iouType: IouType; expected: number[]; tol: number }[];
  };
  it.each(expected.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = evaluateCocoFiles({
      groundTruth: path.join(FIXTURES, 'coco-real', c.gt),
      predictions: path.join(FIXTURES, 'coco-real', c.dt),
      iouType: c.iouType,
    });
    // full-precision values carry tolerances of 1e-10..1e-12; published 3- and 6-digit ones are rounded (5e-4, 1e-6)
    r.stats.forEach((s, i) => expect(Math.abs(s - c.expected[i])).toBeLessThanOrEqual(c.tol));
  });

  it('reproduces the loadRes area pitfall: detections with a bbox take their area from it (APm 0.792 vs 0.737)', () => {
    const gt = path.join(FIXTURES, 'coco-real/fce_small/gt_dataset.json');
    const withBox = evaluateCocoFiles({
      groundTruth: gt,
      predictions: path.join(FIXTURES, 'coco-real/fce_small/dt_dataset.json'),
      iouType: 'segm',
    });
    const rleOnly = evaluateCocoFiles({
      groundTruth: gt,
      predictions: path.join(FIXTURES, 'coco-real/fce_small/dt_dataset_rle_nobbox.json'),
      iouType: 'segm',
    });
    expect(withBox.stats[4]).toBe(0.7920792079207921);
    expect(rleOnly.stats[4]).toBe(0.7367986798679867);
  });
});
