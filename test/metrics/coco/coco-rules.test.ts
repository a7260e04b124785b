import {
  evaluateCoco,
  loadDetections,
  loadGroundTruth,
  precisionRecallCurve,
  rleFromCounts,
  rleToString,
  type IouType,
} from '../../../shared/metrics/coco';
import { StepError } from '../../../shared/core/errors';
import { stableOrderByScore } from '../../../shared/metrics/coco/match';

type Box = [number, number, number, number];
interface G {
  id: number;
  image_id: number | string;
  category_id: number;
  bbox: Box;
  area?: number;
  iscrowd?: number;
  segmentation?: unknown;
}

function dataset(anns: G[], options: { images?: (number | string)[]; categories?: number[] } = {}) {
  const images = options.images ?? [1, 2, 3];
  return {
    images: images.map((id) => ({ id, width: 100, height: 100 })),
    categories: (options.categories ?? [1, 2]).map((id) => ({ id, name: `c${id}` })),
    annotations: anns.map((a) => ({ area: a.bbox[2] * a.bbox[3], iscrowd: 0, ...a })),
  };
}

function evaluate(gtJson: object, dets: object[], options: { iouType?: IouType; useCats?: boolean } = {}) {
  const iouType = options.iouType ?? 'bbox';
  const gt = loadGroundTruth(gtJson, 'gt.json', iouType);
  const dt = loadDetections(dets, 'dt.json', gt, iouType);
  return evaluateCoco(gt, dt, { iouType, useCats: options.useCats });
}

const det = (image_id: number | string, category_id: number, bbox: Box, score: number) => ({ image_id, category_id, bbox, score });
const byName = (ev: ReturnType<typeof evaluate>) => Object.fromEntries(ev.statNames.map((n, i) => [n, ev.stats[i]]));

describe('COCOeval rules, hand-checked', () => {
  it('scores a perfect detector 1 and reports -1 for area ranges without ground truth', () => {
    // one medium object (40x40 = 1600 px)
    const s = byName(
      evaluate(dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 40, 40] }]), [det(1, 1, [10, 10, 40, 40], 0.9)]),
    );
    // precision is tp / (tp + fp + eps), so a perfect AP is 1 - 2e-16 in pycocotools too
    const want = { AP: 1, AP50: 1, AP75: 1, APs: -1, APm: 1, APl: -1, AR1: 1, AR10: 1, AR100: 1, ARs: -1, ARm: 1, ARl: -1 };
    for (const [k, v] of Object.entries(want)) expect(s[k]).toBeCloseTo(v, 12);
    expect(s.AP).toBe(1 / (1 + 2.220446049250313e-16));
    expect(s.AR100).toBe(1);
  });

  it('matches at thresholds up to the IoU: IoU 0.72 passes .50-.70, fails .75-.95 -> AP 0.5', () => {
    // intersection 72, union 100
    const s = byName(evaluate(dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] }]), [det(1, 1, [0, 0, 10, 7.2], 0.9)]));
    expect(s.AP).toBeCloseTo(0.5, 12);
    expect(s.AP50).toBeCloseTo(1, 12);
    expect(s.AP75).toBe(0);
    expect(s.AR100).toBe(0.5);
  });

  it('interpolates precision at 101 recall points: TP, FP, TP -> (51 + 50*2/3) / 101', () => {
    const gt = dataset([
      { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] },
      { id: 2, image_id: 1, category_id: 1, bbox: [50, 50, 20, 20] },
    ]);
    const ev = evaluate(gt, [det(1, 1, [0, 0, 20, 20], 0.9), det(1, 1, [30, 0, 10, 10], 0.8), det(1, 1, [50, 50, 20, 20], 0.7)]);
    // recall 0.5 at precision 1, recall 1 at precision 2/3: thresholds 0..0.5 (51) get 1, 0.51..1 (50) get 2/3
    expect(ev.stats[1]).toBeCloseTo((51 + (50 * 2) / 3) / 101, 15);
    expect(ev.stats[6]).toBeCloseTo(0.5, 12); // AR1: only the top detection of the image counts
    expect(ev.stats[7]).toBeCloseTo(1, 12);
  });

  it('breaks score ties by image order across images (stable mergesort on the concatenation)', () => {
    const gt = (images: number[]) => dataset([{ id: 1, image_id: 2, category_id: 1, bbox: [0, 0, 20, 20] }], { images });
    // FP in image 1 and TP in image 2 share score 0.5: image 1 sorts first, so precision at recall 1 is 1/2
    const fpFirst = evaluate(gt([1, 2]), [det(2, 1, [0, 0, 20, 20], 0.5), det(1, 1, [0, 0, 20, 20], 0.5)]);
    expect(fpFirst.stats[0]).toBeCloseTo(0.5, 12);
    // with the FP in image 3 (after image 2), the TP comes first: AP 1
    const tpFirst = evaluate(gt([2, 3]), [det(3, 1, [0, 0, 20, 20], 0.5), det(2, 1, [0, 0, 20, 20], 0.5)]);
    expect(tpFirst.stats[0]).toBeCloseTo(1, 12);
  });

  it('breaks score ties inside an image by file order', () => {
    const gt = dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }]);
    const fp = det(1, 1, [60, 60, 20, 20], 0.5);
    const tp = det(1, 1, [0, 0, 20, 20], 0.5);
    expect(evaluate(gt, [fp, tp]).stats[0]).toBeCloseTo(0.5, 12);
    expect(evaluate(gt, [tp, fp]).stats[0]).toBeCloseTo(1, 12);
  });

  it('counts a second detection of an already matched object as a false positive', () => {
    const gt = dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }]);
    // duplicate of the same object: the second is a false positive
    const ev = evaluate(gt, [det(1, 1, [0, 0, 20, 20], 0.9), det(1, 1, [0, 0, 20, 20], 0.8)]);
    expect(ev.stats[0]).toBeCloseTo(1, 12); // the FP comes after full recall, so the envelope keeps precision 1
    // codes[(entry*A + area)*T + t]: entry 0 is TP (1), entry 1 FP (0) at every threshold, area 'all'
    expect(ev.table.codes[0]).toBe(1);
    expect(Array.from(ev.table.codes.subarray(40, 50))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(ev.stats[8]).toBe(1);
  });

  it('ignores detections matched to crowd regions, using intersection over detection area', () => {
    const anns: G[] = [
      { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] },
      { id: 2, image_id: 1, category_id: 1, bbox: [40, 40, 60, 60], iscrowd: 1 },
    ];
    // the crowd box covers 3600 px; a 10x10 detection inside it has crowd IoU 100/100 = 1 (regular IoU 0.028)
    const dets = [det(1, 1, [50, 50, 10, 10], 0.95), det(1, 1, [0, 0, 20, 20], 0.9)];
    expect(evaluate(dataset(anns), dets).stats[0]).toBeCloseTo(1, 12);
    const notCrowd = anns.map((a) => ({ ...a, iscrowd: 0 }));
    // as a normal object the crowd box is a second gt nobody matches, and the top detection is an FP
    const s = evaluate(dataset(notCrowd), dets).stats;
    expect(s[8]).toBe(0.5);
    expect(s[0]).toBeCloseTo((51 * 0.5) / 101, 12); // precision 1/2 up to recall 0.5 (51 thresholds), 0 after
  });

  it('places objects in area ranges by the gt "area" field and ignores unmatched detections outside the range', () => {
    // gt area field says small (900) though the box is 40x40
    const gt = dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 40, 40], area: 900 }]);
    const s = byName(evaluate(gt, [det(1, 1, [0, 0, 40, 40], 0.9), det(1, 1, [60, 60, 5, 5], 0.95)]));
    expect(s.APs).toBeCloseTo(0.5, 12); // the 25 px FP is small, so it counts in "small": precision 1/2 at recall 1
    expect(s.APm).toBe(-1);
    // a large FP is outside "small", unmatched, so ignored there
    const s2 = byName(evaluate(gt, [det(1, 1, [0, 0, 40, 40], 0.9), det(1, 1, [50, 50, 40, 40], 0.95)]));
    expect(s2.APs).toBeCloseTo(1, 12);
    expect(s2.AP).toBeCloseTo(0.5, 12);
  });

  it('counts detections on images without ground truth as false positives', () => {
    const gt = dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }]);
    const ev = evaluate(gt, [det(1, 1, [0, 0, 20, 20], 0.5), det(3, 1, [0, 0, 20, 20], 0.9)]);
    expect(ev.stats[0]).toBeCloseTo(0.5, 12);
  });

  it('caps detections per image at maxDets by score', () => {
    const anns: G[] = [0, 1, 2].map((i) => ({ id: i + 1, image_id: 1, category_id: 1, bbox: [i * 30, 0, 20, 20] as Box }));
    const dets = anns.map((a, i) => det(1, 1, a.bbox, 0.9 - i * 0.1));
    const s = byName(evaluate(dataset(anns), dets));
    expect(s.AR1).toBeCloseTo(1 / 3, 15);
    expect(s.AR10).toBe(1);
  });

  it('reports -1 for categories without ground truth and leaves them out of the mean', () => {
    const gt = dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }], { categories: [1, 2, 7] });
    const ev = evaluate(gt, [det(1, 1, [0, 0, 20, 20], 0.9), det(1, 2, [50, 50, 20, 20], 0.9)]);
    expect(ev.perCategory.map((c) => [c.id, Number(c.AP.toFixed(12))])).toEqual([
      [1, 1],
      [2, -1],
      [7, -1],
    ]);
    expect(ev.stats[0]).toBeCloseTo(1, 12);
  });

  it('gives the mean precision at each recall threshold for PR plots', () => {
    // TP (0.9), FP (0.8), TP (0.7) on two objects: precision 1 up to recall .5, then 2/3 up to recall 1
    const gt = dataset([
      { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] },
      { id: 2, image_id: 1, category_id: 1, bbox: [50, 50, 20, 20] },
    ]);
    const ev = evaluate(gt, [det(1, 1, [0, 0, 20, 20], 0.9), det(1, 1, [30, 0, 10, 10], 0.8), det(1, 1, [50, 50, 20, 20], 0.7)]);
    const curve = precisionRecallCurve(ev, { iouIndex: 0 });
    expect(curve.recall).toHaveLength(101);
    expect(curve.precision[50]).toBeCloseTo(1, 12);
    expect(curve.precision[51]).toBeCloseTo(2 / 3, 12);
    expect(curve.precision[100]).toBeCloseTo(2 / 3, 12);
  });

  it('with useCats off, matches across categories', () => {
    const gt = dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }]);
    const dets = [det(1, 2, [0, 0, 20, 20], 0.9)];
    expect(evaluate(gt, dets).stats[0]).toBe(0);
    const ev = evaluate(gt, dets, { useCats: false });
    expect(ev.stats[0]).toBeCloseTo(1, 12);
    expect(ev.perCategory).toEqual([]);
  });

  it('reads a gt with id 0 as unmatched, as pycocotools does (dtMatches stores the gt id)', () => {
    const gt = dataset([{ id: 0, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }]);
    expect(evaluate(gt, [det(1, 1, [0, 0, 20, 20], 0.9)]).stats[0]).toBe(0);
  });

  it('applies loadRes: bbox results get area w*h and ids 1..N; segm results get mask area and toBbox', () => {
    const gt = loadGroundTruth(dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 4, 4] }]), 'gt.json', 'bbox');
    const boxes = loadDetections([det(1, 1, [1, 1, 3, 5], 0.5)], 'dt.json', gt, 'bbox');
    expect(boxes.branch).toBe('bbox');
    expect(Array.from(boxes.area)).toEqual([15]);
    // a 100x100 mask with the 2x3 block at x 1..2, y 4..6: runs 104 bg, 3 fg, 97 bg, 3 fg, rest bg
    const seg = { size: [100, 100], counts: [104, 3, 97, 3, 10000 - 207] };
    const masks = loadDetections([{ image_id: 1, category_id: 1, segmentation: seg, score: 0.5 }], 'dt.json', gt, 'bbox');
    expect(masks.branch).toBe('segm');
    expect(Array.from(masks.area)).toEqual([6]);
    expect(Array.from(masks.box)).toEqual([1, 4, 2, 3]);
  });

  it('evaluates segm with polygons, uncompressed and compressed RLE', () => {
    const square = [10, 10, 10, 30, 30, 30, 30, 10]; // rasterises to x 10..29, y 10..29 (400 px)
    const gt = {
      images: [{ id: 1, width: 100, height: 100 }],
      categories: [{ id: 1, name: 'cell' }],
      annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20], area: 400, iscrowd: 0, segmentation: [square] }],
    };
    const cols = (x0: number, x1: number, y0: number, y1: number) => {
      const counts: number[] = [];
      let pos = 0;
      for (let x = x0; x < x1; x++) {
        counts.push(x * 100 + y0 - pos, y1 - y0);
        pos = x * 100 + y1;
      }
      counts.push(10000 - pos);
      return counts;
    };
    // prediction covering x 10..29, y 10..24: IoU 300/400 = 0.75
    const counts = cols(10, 30, 10, 25);
    const uncompressed = evaluate(gt, [{ image_id: 1, category_id: 1, segmentation: { size: [100, 100], counts }, score: 0.9 }], {
      iouType: 'segm',
    });
    expect(uncompressed.stats[1]).toBeCloseTo(1, 12);
    expect(uncompressed.stats[2]).toBeCloseTo(1, 12); // 0.75 >= .75
    expect(uncompressed.stats[0]).toBeCloseTo(0.6, 12); // thresholds .50-.75 of 10
    const compressed = evaluate(
      gt,
      [
        {
          image_id: 1,
          category_id: 1,
          segmentation: { size: [100, 100], counts: rleToString(rleFromCounts(counts, 100, 100)) },
          score: 0.9,
        },
      ],
      { iouType: 'segm' },
    );
    expect(compressed.stats).toEqual(uncompressed.stats);
    const polygon = evaluate(gt, [{ image_id: 1, category_id: 1, segmentation: [square], bbox: [10, 10, 20, 20], score: 0.9 }], {
      iouType: 'segm',
    });
    expect(polygon.stats[0]).toBeCloseTo(1, 12);
  });
});

describe('bad input: a StepError naming the file and the first offending entry', () => {
  const gtJson = dataset([{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 20, 20] }]);
  const gt = loadGroundTruth(gtJson, 'gt.json', 'bbox');
  const load = (dets: unknown) => () => loadDetections(dets, 'dt.json', gt, 'bbox');

  it.each([
    [
      'an unknown image id',
      [det(1, 1, [0, 0, 1, 1], 0.5), det(9, 1, [0, 0, 1, 1], 0.5)],
      'dt.json: [1] (image_id 9, category_id 1) refers to image_id 9, which is not in the ground truth gt.json.',
    ],
    [
      'an unknown category',
      [det(1, 5, [0, 0, 1, 1], 0.5)],
      'dt.json: [0] (image_id 1, category_id 5) has category_id 5, which is not a category of gt.json.',
    ],
    [
      'a NaN box',
      [{ image_id: 1, category_id: 1, bbox: [0, NaN, 1, 1], score: 0.5 }],
      'has bbox [0,null,1,1]; expected [x, y, width, height] of finite numbers.',
    ],
    [
      'a negative box',
      [det(1, 1, [0, 0, -3, 1], 0.5)],
      'dt.json: [0] (image_id 1, category_id 1) has bbox [0,0,-3,1] with a negative width or height.',
    ],
    [
      'a score above 1',
      [det(1, 1, [0, 0, 1, 1], 1.5)],
      'dt.json: [0] (image_id 1, category_id 1) has score 1.5; scores must be numbers in [0, 1].',
    ],
    ['a missing score', [{ image_id: 1, category_id: 1, bbox: [0, 0, 1, 1] }], 'has score missing; scores must be numbers in [0, 1].'],
    ['an empty file', [], 'dt.json: has no detections (an empty results list).'],
    [
      'a string image id against numeric ids',
      [det('1', 1, [0, 0, 1, 1], 0.5)],
      'The ground truth has 1 (a number): ids are compared by value and type.',
    ],
    [
      'a box missing where the first had one',
      [det(1, 1, [0, 0, 1, 1], 0.5), { image_id: 1, category_id: 1, score: 0.5 }],
      'dt.json: [1] (image_id 1, category_id 1) has no bbox, but the first detection has one',
    ],
    [
      'a results object for other images',
      { images: [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }], annotations: [det(1, 1, [0, 0, 1, 1], 0.5)] },
      'images[3] has id 4, which is not in the ground truth gt.json: the predictions were made on a different test set.',
    ],
  ])('%s', (_what, dets, message) => {
    let error: unknown;
    try {
      load(dets)();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StepError);
    expect((error as StepError).message).toContain(message);
    expect((error as StepError).file).toBe('dt.json');
  });

  it('rejects a mask whose size differs from its image', () => {
    const sgt = loadGroundTruth({ ...gtJson, annotations: [] }, 'gt.json', 'segm');
    const bad = [{ image_id: 2, category_id: 1, score: 0.5, segmentation: { size: [50, 100], counts: [5000] } }];
    expect(() => loadDetections(bad, 'dt.json', sgt, 'segm')).toThrow(
      'dt.json: [0] (image_id 2, category_id 1) has a mask of size 50x100 (height x width) but its image is 100x100.',
    );
    const short = [{ image_id: 2, category_id: 1, score: 0.5, segmentation: { size: [100, 100], counts: [10, 5] } }];
    expect(() => loadDetections(short, 'dt.json', sgt, 'segm')).toThrow('has RLE runs covering 15 pixels but its size 100x100 has 10000.');
  });

  it('names ground-truth problems too', () => {
    expect(() =>
      loadGroundTruth(
        { ...gtJson, annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 1, 1], iscrowd: 0 }] },
        'gt.json',
        'bbox',
      ),
    ).toThrow('gt.json: annotations[0] (id 1, image_id 1) has area undefined; pycocotools needs a numeric "area"');
    expect(() =>
      loadGroundTruth({ ...gtJson, annotations: [...gtJson.annotations, { ...gtJson.annotations[0] }] }, 'gt.json', 'bbox'),
    ).toThrow('repeats annotation id 1');
    expect(() => loadGroundTruth([], 'gt.json', 'bbox')).toThrow('gt.json: is not a COCO ground-truth object');
  });
});

describe('score order', () => {
  it('orders like np.argsort(-scores, kind="mergesort"): descending, ties by position', () => {
    expect(Array.from(stableOrderByScore(Float64Array.of(9, 0.5, 0.9, 0.5, 0.9, 0.1), 1, 5))).toEqual([1, 3, 0, 2, 4]);
    let seed = 1;
    const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    for (let t = 0; t < 300; t++) {
      const n = Math.floor(rand() * 80);
      const s = Float64Array.from({ length: n }, () => Math.round(rand() * 8) / 8);
      const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => s[b] - s[a] || a - b);
      expect(Array.from(stableOrderByScore(s, 0, n))).toEqual(want);
    }
  });
});

describe('polygons pycocotools refuses', () => {
  it('refuses a first polygon of 4 numbers or fewer, naming the annotation; later short parts are read as frPoly reads them', () => {
    const seg = (s: unknown) => dataset([{ id: 7, image_id: 1, category_id: 1, bbox: [1, 2, 10, 20], segmentation: s }]);
    expect(() => loadGroundTruth(seg([[1, 2, 10, 20]]), 'gt.json', 'segm')).toThrow(
      'gt.json: annotations[0] (id 7, image_id 1) has a first polygon of 4 numbers ([1,2,10,20]); pycocotools refuses it (frPyObjects reads 4 numbers as a box and raises a TypeError)',
    );
    expect(() => loadGroundTruth(seg([[1, 2]]), 'gt.json', 'segm')).toThrow('pycocotools refuses it ("input type is not supported")');
    // pycocotools: merge(frPyObjects([[1,2,10,20,5,30],[1,2,3,4]], 100, 100)) has area 88
    const gt = loadGroundTruth(
      seg([
        [1, 2, 10, 20, 5, 30],
        [1, 2, 3, 4],
      ]),
      'gt.json',
      'segm',
    );
    expect(gt.rle![0].counts.filter((_, j) => j % 2 === 1).reduce((a, b) => a + b, 0)).toBe(88);
  });
});
