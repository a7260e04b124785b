import * as path from 'node:path';
import {
  cocoStatMetric,
  drawWeights,
  maskMetric,
  pairedBootstrap,
  pairedBootstrapParallel,
  quantileSorted,
} from '../../shared/metrics/bootstrap';
import { evaluateCoco, loadDetections, loadGroundTruth, readJsonFile, STAT_NAMES } from '../../shared/metrics/coco';
import { countLabels, evaluateCounts, evaluateMaskPairs } from '../../shared/metrics';
import { Xoshiro128 } from '../../shared/core/random';
import { SHARED_FIXTURES } from '../support/paths';

const FIXTURES = SHARED_FIXTURES;

describe('xoshiro128**', () => {
  it('matches the reference implementation from state (1, 2, 3, 4)', () => {
    const g = Xoshiro128.fromState(1, 2, 3, 4);
    expect([0, 1, 2, 3, 4, 5].map(() => g.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('is reproducible from a seed (SplitMix32 state fill) and draws unbiased indices in range', () => {
    const a = new Xoshiro128(1);
    expect([0, 1, 2].map(() => a.nextUint32())).toEqual([2442144158, 3238099751, 3819917871]);
    const g = new Xoshiro128(42);
    const hist = new Array(3).fill(0);
    for (let i = 0; i < 30000; i++) hist[g.nextBelow(3)]++;
    hist.forEach((h) => expect(Math.abs(h - 10000)).toBeLessThan(400));
    const w = drawWeights(new Xoshiro128(3), 10, new Float64Array(10));
    expect(w.reduce((s, v) => s + v, 0)).toBe(10);
  });
});

describe('percentile interval', () => {
  it('interpolates linearly like numpy.quantile', () => {
    expect(quantileSorted([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantileSorted([1, 2, 3, 4], 0.975)).toBeCloseTo(3.925, 15);
    expect(quantileSorted([5], 0.5)).toBe(5);
  });
});

function fixture(folder: string) {
  const gtFile = path.join(FIXTURES, 'coco', folder, 'gt.json');
  const dtFile = path.join(FIXTURES, 'coco', folder, 'dt.json');
  const gt = loadGroundTruth(readJsonFile(gtFile, 'gt'), gtFile, 'bbox');
  return { gt, ev: evaluateCoco(gt, loadDetections(readJsonFile(dtFile, 'dt'), dtFile, gt, 'bbox'), { iouType: 'bbox' }) };
}

describe('detection metric re-accumulated from one matching', () => {
  it('gives exactly summarize() for unit weights, for all 12 numbers', () => {
    const { ev } = fixture('bbox-basic');
    STAT_NAMES.forEach((name, i) => expect(cocoStatMetric(ev.table, name)(null)).toBe(ev.stats[i]));
  });

  it('counts an image drawn twice like the same image listed twice', () => {
    const img = (id: number) => ({ id, width: 100, height: 100 });
    const base = [
      { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20], area: 400, iscrowd: 0 },
      { id: 2, image_id: 2, category_id: 1, bbox: [0, 0, 20, 20], area: 400, iscrowd: 0 },
      { id: 3, image_id: 2, category_id: 1, bbox: [50, 50, 20, 20], area: 400, iscrowd: 0 },
      { id: 4, image_id: 3, category_id: 1, bbox: [10, 10, 30, 30], area: 900, iscrowd: 0 },
    ];
    const dets = [
      { image_id: 1, category_id: 1, bbox: [0, 0, 20, 18], score: 0.91 },
      { image_id: 2, category_id: 1, bbox: [0, 0, 20, 20], score: 0.62 },
      { image_id: 2, category_id: 1, bbox: [60, 40, 20, 20], score: 0.83 },
      { image_id: 3, category_id: 1, bbox: [12, 10, 30, 30], score: 0.47 },
      { image_id: 3, category_id: 1, bbox: [70, 70, 10, 10], score: 0.75 },
    ];
    const cats = [{ id: 1, name: 'cell' }];
    const gt = loadGroundTruth({ images: [img(1), img(2), img(3)], categories: cats, annotations: base }, 'gt.json', 'bbox');
    const table = evaluateCoco(gt, loadDetections(dets, 'dt.json', gt, 'bbox'), { iouType: 'bbox' }).table;
    // image 2 copied as image 4 (after 3 in id order; its detections tie only with their originals)
    const copyGt = [...base, ...base.filter((a) => a.image_id === 2).map((a, i) => ({ ...a, id: 10 + i, image_id: 4 }))];
    const copyDets = [...dets, ...dets.filter((d) => d.image_id === 2).map((d) => ({ ...d, image_id: 4 }))];
    const gt2 = loadGroundTruth({ images: [img(1), img(2), img(3), img(4)], categories: cats, annotations: copyGt }, 'gt.json', 'bbox');
    const doubled = evaluateCoco(gt2, loadDetections(copyDets, 'dt.json', gt2, 'bbox'), { iouType: 'bbox' });
    for (const name of ['AP', 'AP50', 'AR100'] as const) {
      expect(cocoStatMetric(table, name)(Float64Array.of(1, 2, 1))).toBeCloseTo(doubled.stats[STAT_NAMES.indexOf(name)], 12);
    }
    // weight 0 drops an image: only image 1 left -> AP50 1
    expect(cocoStatMetric(table, 'AP50')(Float64Array.of(1, 0, 0))).toBeCloseTo(1, 12);
  });
});

describe('paired bootstrap', () => {
  const { ev } = fixture('bbox-basic');
  const I = ev.table.I;

  it('gives a zero-width interval at 0 for identical models', () => {
    const m = cocoStatMetric(ev.table, 'AP');
    const r = pairedBootstrap(I, m, m, { resamples: 200, confidence: 0.95, seed: 7 });
    expect([r.difference, r.lower, r.upper, r.resamples, r.dropped]).toEqual([0, 0, 0, 200, 0]);
  });

  it('is reproducible with a seed, and the interval brackets the difference', () => {
    const cand = cocoStatMetric(ev.table, 'AP');
    const prod = cocoStatMetric(ev.table, 'AP50');
    const a = pairedBootstrap(I, cand, prod, { resamples: 300, confidence: 0.9, seed: 11 });
    const b = pairedBootstrap(I, cand, prod, { resamples: 300, confidence: 0.9, seed: 11 });
    const c = pairedBootstrap(I, cand, prod, { resamples: 300, confidence: 0.9, seed: 12 });
    expect(b).toEqual(a);
    expect(c.lower).not.toBe(a.lower);
    expect(a.difference).toBeCloseTo(ev.stats[0] - ev.stats[1], 15);
    expect(a.lower).toBeLessThan(a.difference);
    expect(a.upper).toBeGreaterThan(a.difference);
    expect(a.upper).toBeLessThan(0);
  });

  it('resamples semantic-mask scores per image', () => {
    const img = (v: number[]) => ({ width: 2, height: 1, data: Uint8Array.from(v) });
    const r = evaluateMaskPairs([
      { name: 'a', truth: img([1, 1]), prediction: img([1, 1]) },
      { name: 'b', truth: img([1, 1]), prediction: img([1, 0]) },
    ]);
    const m = maskMetric(r.table, 'dice', 'skip');
    expect(m(null)).toBeCloseTo((1 + 2 / 3) / 2, 15);
    expect(m(Float64Array.of(2, 0))).toBe(1);
    expect(m(Float64Array.of(1, 3))).toBeCloseTo((1 + 3 * (2 / 3)) / 4, 15);
  });
});

describe('bootstrap on worker threads', () => {
  it('gives bit-identical intervals on 1, 2 and 3 threads for COCO and mask metrics', async () => {
    const gtFile = path.join(FIXTURES, 'coco/bbox-basic/gt.json');
    const dtFile = path.join(FIXTURES, 'coco/bbox-basic/dt.json');
    const gt = loadGroundTruth(readJsonFile(gtFile, 'gt'), gtFile, 'bbox');
    const dt = loadDetections(readJsonFile(dtFile, 'dt'), dtFile, gt, 'bbox');
    const ev = evaluateCoco(gt, dt, { iouType: 'bbox' });
    const weaker = evaluateCoco(gt, { ...dt, score: dt.score.map((s, i) => (i % 3 === 0 ? s / 4 : s)) }, { iouType: 'bbox' });
    const I = gt.imgIds.length;
    for (const name of ['AP', 'AR10', 'APs'] as const) {
      const cand = cocoStatMetric(ev.table, name);
      const prod = cocoStatMetric(weaker.table, name);
      const options = { resamples: 101, confidence: 0.9, seed: 3 };
      const one = pairedBootstrap(I, cand, prod, options);
      expect(one.threads).toBe(1);
      for (const threads of [2, 3]) {
        const many = await pairedBootstrapParallel(I, cand, prod, { ...options, threads });
        expect(many.threads).toBe(threads);
        expect({ ...many, threads: 1 }).toEqual(one);
      }
    }
    const counts = [0, 1, 2, 3, 4, 5].map((i) =>
      countLabels(Uint8Array.from([0, 1, 1, 2, i % 3, 2]), Uint8Array.from([0, 1, i % 2, 2, 2, i % 4])),
    );
    const table = evaluateCounts(['a', 'b', 'c', 'd', 'e', 'f'], counts).table;
    const m = maskMetric(table, 'dice', 'one');
    const m2 = maskMetric(table, 'iou', 'one', 1);
    const seq = pairedBootstrap(6, m, m2, { resamples: 64, confidence: 0.95, seed: 9 });
    expect({ ...(await pairedBootstrapParallel(6, m, m2, { resamples: 64, confidence: 0.95, seed: 9, threads: 2 })), threads: 1 }).toEqual(
      seq,
    );
  });
});
