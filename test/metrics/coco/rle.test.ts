import { linspace, meanOfValid, pairwiseSum } from '../../../shared/metrics/coco/numeric';
import { defaultParams } from '../../../shared/metrics/coco/params';
import {
  bboxIou,
  rleArea,
  rleDecode,
  rleEncode,
  rleFromBbox,
  rleFromCounts,
  rleFromString,
  rleIou,
  rleMerge,
  rleToBbox,
  rleToString,
} from '../../../shared/metrics/coco/rle';

/** Column-major mask from rows of '0'/'1' strings (as drawn, row by row). */
function mask(rows: string[]): { h: number; w: number; data: number[] } {
  const h = rows.length;
  const w = rows[0].length;
  const data: number[] = [];
  for (let x = 0; x < w; x++) for (let y = 0; y < h; y++) data.push(rows[y][x] === '1' ? 1 : 0);
  return { h, w, data };
}

function rleOf(rows: string[]) {
  const m = mask(rows);
  return rleEncode(m.data, m.h, m.w);
}

describe('numpy reproductions', () => {
  it('builds iouThrs and recThrs with np.linspace float values', () => {
    const p = defaultParams();
    // values printed by numpy 2.4: np.linspace(.5, 0.95, 10)
    expect(Array.from(p.iouThrs)).toEqual([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95]);
    expect(p.recThrs.length).toBe(101);
    expect(p.recThrs[57]).toBe(0.5700000000000001);
    expect(p.recThrs[99]).toBe(0.99);
    expect(p.recThrs[100]).toBe(1);
    expect(linspace(0, 1, 3)).toEqual(Float64Array.from([0, 0.5, 1]));
  });

  it('sums pairwise like numpy and averages values above -1', () => {
    const v = Array.from({ length: 300 }, (_, i) => 0.1 * ((i % 7) + 1));
    // pairwise differs from a running sum in the last bits; both are close to the exact sum
    expect(pairwiseSum(v)).toBeCloseTo(
      v.reduce((a, b) => a + b, 0),
      10,
    );
    expect(pairwiseSum([1, 2, 3])).toBe(6);
    expect(meanOfValid([-1, 0.5, -1, 1])).toBe(0.75);
    expect(meanOfValid([-1, -1])).toBe(-1);
  });
});

describe('RLE string codec (rleToString / rleFrString)', () => {
  it('encodes hand-computed counts', () => {
    // 3, 2, 4 as themselves; the 4th count is stored as 1 - 2 = -1 -> 0x1f -> 'O'
    expect(rleToString(rleFromCounts([3, 2, 4, 1], 2, 5))).toBe('324O');
    expect(rleToString(rleFromCounts([0, 5], 1, 5))).toBe('05');
    // 100 needs two chars: 100 = 0b11_00100 -> low 5 bits 4 with continuation (4|0x20)+48 = 'T', then 3 -> '3'
    expect(rleToString(rleFromCounts([100], 10, 10))).toBe('T3');
  });

  it('decodes what it encodes, including large and decreasing runs', () => {
    const counts = [0, 1, 70000, 3, 5, 123456, 2, 1, 0xfffffff0 - 70000 - 123456 - 12];
    const s = rleToString(
      rleFromCounts(
        counts,
        1,
        counts.reduce((a, b) => a + b, 0),
      ),
    );
    expect(Array.from(rleFromString(s, 1, 1).counts)).toEqual(counts);
  });

  it('round-trips random counts of every size class (1 to 7 chars per value)', () => {
    let seed = 3;
    const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    for (let t = 0; t < 500; t++) {
      const counts = Array.from({ length: 1 + Math.floor(rand() * 30) }, () =>
        Math.floor(rand() * [40, 2000, 2 ** 20, 2 ** 32][Math.floor(rand() * 4)]),
      );
      const s = rleToString(rleFromCounts(counts, 1, 1));
      expect(Array.from(rleFromString(s, 1, 1).counts)).toEqual(counts);
    }
  });

  it('rejects a truncated string', () => {
    expect(() => rleFromString('T', 1, 100)).toThrow(RangeError);
  });
});

describe('run-length operations (maskApi.c)', () => {
  const a = ['0110', '0110', '0000'];
  const b = ['0011', '0011', '0011'];

  it('encodes column-major, starting with background', () => {
    // columns: 000 | 110 | 110 | 000 -> runs 3 bg, 2 fg, 1 bg, 2 fg, 4 bg
    expect(Array.from(rleOf(a).counts)).toEqual([3, 2, 1, 2, 4]);
    expect(Array.from(rleOf(['1', '1']).counts)).toEqual([0, 2]);
    expect(Array.from(rleDecode(rleOf(a)))).toEqual(mask(a).data);
  });

  it('computes area and tight boxes', () => {
    expect(rleArea(rleOf(a))).toBe(4);
    expect(rleToBbox(rleOf(a))).toEqual([1, 0, 2, 2]);
    expect(rleToBbox(rleOf(b))).toEqual([2, 0, 2, 3]);
    expect(rleToBbox(rleOf(['000', '000']))).toEqual([0, 0, 0, 0]);
    expect(rleToBbox(rleOf(['001', '100']))).toEqual([0, 0, 3, 2]);
    // one run from the bottom of column 0 into the top of column 1 spans the full height
    expect(Array.from(rleOf(['0100', '0000', '0000', '1000']).counts)).toEqual([3, 2, 11]);
    expect(rleToBbox(rleOf(['0100', '0000', '0000', '1000']))).toEqual([0, 0, 2, 4]);
  });

  it('computes IoU on runs: |A∩B| / |A∪B|, and |A∩B| / |A| against a crowd region', () => {
    // a ∩ b = 2 pixels (column 2, rows 0-1); a ∪ b = 4 + 6 - 2 = 8
    expect(rleIou(rleOf(a), rleOf(b), false)).toBe(2 / 8);
    expect(rleIou(rleOf(a), rleOf(b), true)).toBe(2 / 4);
    expect(rleIou(rleOf(a), rleOf(['0000', '0000', '1111']), false)).toBe(0);
    expect(rleIou(rleOf(a), rleOf(a), false)).toBe(1);
  });

  it('merges masks by union and intersection', () => {
    const u = rleMerge([rleOf(a), rleOf(b)]);
    expect(Array.from(rleDecode(u))).toEqual(mask(['0111', '0111', '0011']).data);
    const i = rleMerge([rleOf(a), rleOf(b)], true);
    expect(Array.from(rleDecode(i))).toEqual(mask(['0010', '0010', '0000']).data);
    expect(rleMerge([rleOf(a), rleOf(['1'])]).h).toBe(0); // sizes differ: empty result, as in C
  });

  it('rasterises an integer box to exactly its pixels (rleFrBbox)', () => {
    const r = rleFromBbox([1, 2, 3, 4], 10, 10);
    expect(rleArea(r)).toBe(12);
    expect(rleToBbox(r)).toEqual([1, 2, 3, 4]);
    expect(Array.from(r.counts)).toEqual([12, 4, 6, 4, 6, 4, 64]);
  });

  it('computes box IoU as bbIou, with the crowd rule', () => {
    // [0,0,10,10] vs [5,0,10,10]: intersection 50, union 150; crowd divides by the detection area 100
    expect(bboxIou(5, 0, 10, 10, 0, 0, 10, 10, false)).toBe(50 / 150);
    expect(bboxIou(5, 0, 10, 10, 0, 0, 10, 10, true)).toBe(0.5);
    expect(bboxIou(10, 0, 5, 5, 0, 0, 10, 10, false)).toBe(0); // touching edges do not overlap
  });
});
