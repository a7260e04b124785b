import { compareTensors, formatError, summarizeParity, unravel } from '../../shared/onnx/parity';
import type { PlainTensor } from '../../shared/onnx/tensors';

const f32 = (dims: number[], values: number[]): PlainTensor => ({ type: 'float32', dims, data: Float32Array.from(values) });
const tol = { atol: 1e-4, rtol: 1e-3 };
const rowOrder = { rowOrder: true };

describe('compareTensors', () => {
  it("applies numpy.allclose's rule: |actual - expected| <= atol + rtol * |expected|", () => {
    // 100 ± 0.1001 is just outside 1e-4 + 1e-3 * 100; 100.1 is inside.
    const r = compareTensors('y', f32([3], [100, 1, 0]), f32([3], [100.1, 1.00005, 0.0002]), tol);
    expect(r).toMatchObject({ ok: false, elements: 3, mismatches: 1 });
    expect(r.worst).toEqual({ index: [2], expected: 0, actual: expect.closeTo(0.0002, 7) });
    expect(r.maxAbs).toBeCloseTo(0.1, 4);
    expect(compareTensors('y', f32([2], [100, 1]), f32([2], [100.1, 1.00005]), tol).ok).toBe(true);
  });

  it('treats NaN as equal to NaN and infinities as equal when their signs are', () => {
    expect(compareTensors('y', f32([3], [NaN, Infinity, -Infinity]), f32([3], [NaN, Infinity, -Infinity]), tol).ok).toBe(true);
    const r = compareTensors('y', f32([2], [NaN, Infinity]), f32([2], [1, -Infinity]), tol);
    expect(r).toMatchObject({ ok: false, mismatches: 2, maxAbs: Infinity });
  });

  it('reports a shape mismatch without comparing values', () => {
    const r = compareTensors('boxes', f32([2, 4], new Array(8).fill(0)), f32([3, 4], new Array(12).fill(0)), tol);
    expect(r).toMatchObject({ ok: false, mismatches: 8, shape: { expected: [2, 4], actual: [3, 4] } });
  });

  it('names the worst element by its multi-index', () => {
    const expected = f32([2, 3], [0, 0, 0, 0, 0, 0]);
    const r = compareTensors('y', expected, f32([2, 3], [0, 0.01, 0, 0, 0, 0.5]), tol);
    expect(r.worst).toEqual({ index: [1, 2], expected: 0, actual: 0.5 });
    expect(unravel(5, [2, 3])).toEqual([1, 2]);
  });

  it('says when the rows are the same in another order (detections with tied scores sorted differently)', () => {
    const expected = f32([3, 4], [10, 10, 20, 20, 0, 0.175, 14.7, 15.9, 0, 0.118, 24.6, 10.8]);
    const swapped = f32([3, 4], [10, 10, 20, 20, 0, 0.118, 24.6, 10.8, 0, 0.175, 14.7, 15.9]);
    const r = compareTensors('boxes', expected, swapped, tol, rowOrder);
    // Only asked for: the metrics' own comparisons do not pay for the question.
    expect(compareTensors('boxes', expected, swapped, tol).reordered).toBeUndefined();
    expect(r).toMatchObject({ ok: false, reordered: true });
    // Within the tolerance after sorting counts as the same rows too.
    const noisy = f32([3, 4], [10, 10, 20, 20.00001, 0, 0.118, 24.6, 10.8, 0, 0.175, 14.7, 15.9]);
    expect(compareTensors('boxes', expected, noisy, tol, rowOrder).reordered).toBe(true);
  });

  it('sorts NaN last, so rows holding NaN still match in another order', () => {
    const expected = f32([2, 2], [NaN, 1, 0, 2]);
    expect(compareTensors('y', expected, f32([2, 2], [0, 2, NaN, 1]), tol, rowOrder).reordered).toBe(true);
    expect(compareTensors('y', expected, f32([2, 2], [0, 2, NaN, 9]), tol, rowOrder).reordered).toBeUndefined();
  });

  it('does not call different rows a reordering', () => {
    const expected = f32([2, 2], [1, 2, 3, 4]);
    expect(compareTensors('y', expected, f32([2, 2], [3, 4, 1, 2.5]), tol, rowOrder).reordered).toBeUndefined();
    // One row (a batch of one image) has no other order.
    expect(compareTensors('y', f32([1, 2], [1, 2]), f32([1, 2], [2, 1]), tol, rowOrder).reordered).toBeUndefined();
    // Matching tensors are not flagged either.
    expect(compareTensors('y', expected, expected, tol, rowOrder).reordered).toBeUndefined();
    // An expected -Infinity matches only -Infinity, in the row check as in the comparison itself.
    const masked = f32([2, 3], [1, -Infinity, 2, 3, -Infinity, 4]);
    expect(compareTensors('y', masked, f32([2, 3], [1, -1e4, 2, 3, 5, 4]), tol, rowOrder).reordered).toBeUndefined();
    // Large outputs (masks) are not sorted for the question.
    const big = f32([2, 1 << 20], new Array(2 << 20).fill(0));
    const bigSwapped = f32(
      [2, 1 << 20],
      new Array(2 << 20).fill(0).map((_, i) => (i < 1 << 20 ? 1 : 0)),
    );
    expect(compareTensors('mask', big, bigSwapped, tol, rowOrder).reordered).toBeUndefined();
  });
});

describe('summarizeParity', () => {
  it('keeps the worst figures per output over the cases', () => {
    const a = compareTensors('y', f32([2], [1, 2]), f32([2], [1, 2.01]), tol);
    const b = compareTensors('y', f32([2], [1, 2]), f32([2], [1.00001, 2]), tol);
    const summary = summarizeParity([{ outputs: [a] }, { outputs: [b] }]);
    expect(summary.y).toMatchObject({ ok: false, mismatches: 1 });
    expect(summary.y.maxAbs).toBeCloseTo(0.01, 5);
  });
});

describe('formatError', () => {
  it('writes exponents with three significant digits, 0 and infinities plainly', () => {
    expect(formatError(0.000091552734375)).toBe('9.16e-5');
    expect(formatError(0)).toBe('0');
    expect(formatError(Infinity)).toBe('Infinity');
  });
});
