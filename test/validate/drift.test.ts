import * as fs from 'node:fs';
import * as path from 'node:path';
import { chiSquareHomogeneity, chiSquareSurvival, histogram, meanStd, psi } from '../../shared/validate/statistics';
import { check, cocoDataset, firstExample, found, TempDirs, validateCoco } from './fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

describe('statistics', () => {
  it('psi: Σ (a − e) ln(a / e) over proportions', () => {
    expect(psi([1, 1], [3, 1])).toBeCloseTo(0.25 * Math.log(1.5) + 0.25 * Math.log(2), 12);
    expect(psi([5, 7, 9], [5, 7, 9])).toBe(0);
    // A vanished bin is floored at 1e-4, so the index stays finite.
    expect(psi([1, 1], [1, 0])).toBeCloseTo(0.5 * Math.log(1 / 0.5) + (1e-4 - 0.5) * Math.log(1e-4 / 0.5), 12);
  });

  it('chi-square survival matches the table values', () => {
    expect(chiSquareSurvival(3.841458820694124, 1)).toBeCloseTo(0.05, 10);
    expect(chiSquareSurvival(6.634896601021214, 1)).toBeCloseTo(0.01, 10);
    expect(chiSquareSurvival(9.487729036781154, 4)).toBeCloseTo(0.05, 10);
    expect(chiSquareSurvival(23.209251158954356, 10)).toBeCloseTo(0.01, 10);
    expect(chiSquareSurvival(0.5, 3)).toBeCloseTo(0.918891411654676, 10);
  });

  it('chi-square homogeneity on a 2 × k table; empty bins dropped', () => {
    const chi = chiSquareHomogeneity([4, 4, 0], [34, 4, 0]);
    // Expected counts: 8·38/46, 8·8/46, 38·38/46, 38·8/46
    const e = [(8 * 38) / 46, (8 * 8) / 46, (38 * 38) / 46, (38 * 8) / 46];
    const stat = (4 - e[0]) ** 2 / e[0] + (4 - e[1]) ** 2 / e[1] + (34 - e[2]) ** 2 / e[2] + (4 - e[3]) ** 2 / e[3];
    expect(chi?.df).toBe(1);
    expect(chi?.statistic).toBeCloseTo(stat, 10);
    expect(chi?.pValue).toBeCloseTo(chiSquareSurvival(stat, 1), 14);
    expect(chiSquareHomogeneity([3], [5])).toBeUndefined();
  });

  it('meanStd and histogram', () => {
    expect(meanStd([1, 2, 3, 4])).toEqual({ mean: 2.5, std: Math.sqrt(1.25) });
    expect(histogram([0, 0.49, 0.5, 1, 2, -1], 4, 0, 1)).toEqual([2, 1, 1, 2]);
  });
});

describe('drift versus a baseline report', () => {
  async function baselineFile(): Promise<string> {
    const report = await validateCoco(cocoDataset(temp.make()));
    const file = path.join(temp.make(), 'baseline.json');
    fs.writeFileSync(file, JSON.stringify(report));
    return file;
  }
  let baseline: string;
  beforeAll(async () => {
    baseline = await baselineFile();
  });

  it('the same data shows no drift', async () => {
    const report = await validateCoco(cocoDataset(temp.make()), { baseline });
    expect(found(report)).toEqual({});
    expect(report.drift?.splits.train).toEqual({
      classPsi: 0,
      chiSquare: { statistic: 0, df: 1, pValue: 1 },
      sizePsi: 0,
      brightnessPsi: 0,
      contrastPsi: 0,
    });
    expect(check(report, 'drift.class-psi').count).toBe(0);
  });

  it('drift.class-psi: cats grow from 50% to 89% of train', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      for (let k = 0; k < 30; k++)
        s.docs.train.annotations.push({ id: 1000 + k, image_id: 1 + (k % 4), category_id: 1, bbox: [1, 1, 5, 5] });
    });
    const report = await validateCoco(set, { baseline });
    expect(found(report)).toEqual({ 'drift.class-psi': 1 });
    const expected = psi([4, 4], [34, 4]);
    expect(report.drift?.splits.train.classPsi).toBeCloseTo(expected, 6);
    expect(firstExample(report, 'drift.class-psi')).toMatchObject({
      split: 'train',
      field: 'classCounts',
      value: { psi: +expected.toFixed(6), largestShifts: [{ class: 'cat', baseline: 0.5, current: 0.8947 }, { class: 'dog' }] },
    });
    // p ≈ 0.0074: not below the default alpha of 0.001
    expect(report.drift?.splits.train.chiSquare?.pValue).toBeGreaterThan(0.001);
  });

  it('drift.class-chi-square: the same shift under a looser alpha and a PSI limit it does not reach', async () => {
    const set = cocoDataset(temp.make(), (s) => {
      for (let k = 0; k < 30; k++)
        s.docs.train.annotations.push({ id: 1000 + k, image_id: 1 + (k % 4), category_id: 1, bbox: [1, 1, 5, 5] });
    });
    const report = await validateCoco(set, { baseline, drift: { maxPsi: 10, chiSquareAlpha: 0.01 } });
    expect(found(report)).toEqual({ 'drift.class-chi-square': 1 });
    const p = chiSquareHomogeneity([4, 4], [34, 4])?.pValue as number;
    expect(firstExample(report, 'drift.class-chi-square')).toMatchObject({ split: 'train', value: { df: 1, pValue: p } });
  });

  it.each([
    ['drift.brightness', { base: 200 }, 'brightness'],
    ['drift.contrast', { amplitude: 80 }, 'contrast'],
    ['drift.image-size', { width: 128, height: 96 }, 'sizeBins'],
  ])('%s', async (id, look, field) => {
    const report = await validateCoco(cocoDataset(temp.make(), undefined, look), { baseline });
    // Train and val both shift.
    expect(found(report)).toEqual({ [id]: 2 });
    expect(firstExample(report, id)).toMatchObject({ split: 'train', field });
    expect(check(report, id).examples.map((e) => e.split)).toEqual(['train', 'val']);
  });

  it('a baseline that is not a report is a clear error', async () => {
    const bad = path.join(temp.make(), 'bad.json');
    fs.writeFileSync(bad, '{"splits": {"train": {}}}');
    await expect(validateCoco(cocoDataset(temp.make()), { baseline: bad })).rejects.toThrow('has no splits.train.classCounts');
  });
});
