import { elementCount, type PlainTensor, valueAt } from './tensors';

/**
 * Agreement between a reference output (PyTorch, or the FP32 model) and ONNX Runtime's, by numpy.allclose's rule:
 * |actual - expected| <= atol + rtol * |expected|, NaN equal to NaN, infinities equal when their signs are.
 */
export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface OutputParity {
  output: string;
  ok: boolean;
  elements: number;
  mismatches: number;
  maxAbs: number;
  /** Largest |actual - expected| / |expected| over elements with |expected| > atol (smaller ones make any ratio). */
  maxRel: number;
  /** The element furthest outside the tolerance, by flat index and as a multi-index. */
  worst?: { index: number[]; expected: number; actual: number };
  /** Set when the shapes differ; nothing else is compared then. */
  shape?: { expected: number[]; actual: number[] };
  /**
   * Set when the values mismatch but the rows (slices along the first axis) agree once both sides are sorted: the
   * same rows in another order, as when detections with equal scores leave a sort in different orders.
   */
  reordered?: true;
}

export interface CompareOptions {
  /** Also ask, on a mismatch, whether the rows are the same in another order (sets OutputParity.reordered). */
  rowOrder?: boolean;
}

export function compareTensors(
  output: string,
  expected: PlainTensor,
  actual: PlainTensor,
  tol: Tolerance,
  options: CompareOptions = {},
): OutputParity {
  if (expected.dims.length !== actual.dims.length || expected.dims.some((d, i) => d !== actual.dims[i])) {
    return {
      output,
      ok: false,
      elements: elementCount(expected.dims),
      mismatches: elementCount(expected.dims),
      maxAbs: Infinity,
      maxRel: Infinity,
      shape: { expected: expected.dims, actual: actual.dims },
    };
  }
  const n = elementCount(expected.dims);
  let maxAbs = 0;
  let maxRel = 0;
  let mismatches = 0;
  let worstExcess = -Infinity;
  let worst = -1;
  for (let i = 0; i < n; i++) {
    const e = valueAt(expected, i);
    const diff = difference(e, valueAt(actual, i));
    const allowed = allowedDifference(e, tol);
    if (diff > maxAbs) maxAbs = diff;
    if (Math.abs(e) > tol.atol && Number.isFinite(diff)) {
      const rel = diff / Math.abs(e);
      if (rel > maxRel) maxRel = rel;
    }
    if (diff > allowed) {
      mismatches++;
      if (diff - allowed > worstExcess) {
        worstExcess = diff - allowed;
        worst = i;
      }
    }
  }
  const result: OutputParity = { output, ok: mismatches === 0, elements: n, mismatches, maxAbs, maxRel };
  if (worst >= 0)
    result.worst = { index: unravel(worst, expected.dims), expected: valueAt(expected, worst), actual: valueAt(actual, worst) };
  if (mismatches > 0 && options.rowOrder && sameRowsInAnotherOrder(expected, actual, tol)) result.reordered = true;
  return result;
}

/** |actual - expected|, with NaN equal to NaN and infinities equal when their signs are (else Infinity). */
function difference(e: number, a: number): number {
  if (Number.isNaN(e) || Number.isNaN(a)) return Number.isNaN(e) && Number.isNaN(a) ? 0 : Infinity;
  if (!Number.isFinite(e) || !Number.isFinite(a)) return e === a ? 0 : Infinity;
  return Math.abs(a - e);
}

function allowedDifference(e: number, tol: Tolerance): number {
  return tol.atol + tol.rtol * (Number.isFinite(e) ? Math.abs(e) : 0);
}

/**
 * The row-order check reads every element O(log rows) times; detection outputs ([N, 4], [N]) are small, so a cap
 * keeps a failing comparison of large masks from paying seconds for a question that does not apply to them.
 */
const ROW_ORDER_MAX_ELEMENTS = 1 << 20;

/** A total order on values for sorting rows: numbers ascending, NaN last. */
function compareValues(x: number, y: number): number {
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : 1) : -1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Whether the rows along the first axis agree within `tol` after sorting each side's rows lexicographically.
 * Rows are sorted by exact value, so noise in a nearly tied first column can hide a reordering (the check then
 * says nothing, and the failure stands as a plain mismatch).
 */
function sameRowsInAnotherOrder(expected: PlainTensor, actual: PlainTensor, tol: Tolerance): boolean {
  const rows = expected.dims[0] ?? 0;
  const n = elementCount(expected.dims);
  if (rows < 2 || n > ROW_ORDER_MAX_ELEMENTS) return false; // a scalar has no rows (dims[0] undefined)
  const width = n / rows;
  const sorted = (t: PlainTensor) =>
    Array.from({ length: rows }, (_, i) => i).sort((a, b) => {
      for (let k = 0; k < width; k++) {
        const c = compareValues(valueAt(t, a * width + k), valueAt(t, b * width + k));
        if (c !== 0) return c;
      }
      return 0;
    });
  const e = sorted(expected);
  const a = sorted(actual);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < width; k++) {
      const x = valueAt(expected, e[r] * width + k);
      if (difference(x, valueAt(actual, a[r] * width + k)) > allowedDifference(x, tol)) return false;
    }
  }
  return true;
}

export function unravel(flat: number, dims: readonly number[]): number[] {
  const index = new Array<number>(dims.length);
  let rest = flat;
  for (let d = dims.length - 1; d >= 0; d--) {
    index[d] = rest % dims[d];
    rest = Math.floor(rest / dims[d]);
  }
  return index;
}

/** Worst figures per output over several cases. */
export function summarizeParity(
  cases: readonly { outputs: readonly OutputParity[] }[],
): Record<string, { maxAbs: number; maxRel: number; mismatches: number; ok: boolean }> {
  const out: Record<string, { maxAbs: number; maxRel: number; mismatches: number; ok: boolean }> = {};
  for (const c of cases) {
    for (const o of c.outputs) {
      const s = (out[o.output] ??= { maxAbs: 0, maxRel: 0, mismatches: 0, ok: true });
      s.maxAbs = Math.max(s.maxAbs, o.maxAbs);
      s.maxRel = Math.max(s.maxRel, o.maxRel);
      s.mismatches += o.mismatches;
      s.ok &&= o.ok;
    }
  }
  return out;
}

export function formatError(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  return x.toExponential(2);
}
