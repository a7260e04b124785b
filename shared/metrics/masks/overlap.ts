/**
 * Per-label pixel counts of one (ground truth, prediction) pair in a single pass: a joint histogram of
 * (predicted label, true label), from which intersection and both areas of every label follow.
 */
export interface LabelCounts {
  /** Labels are 0 .. size-1. */
  readonly size: number;
  /** Pixels where both say label c. */
  readonly intersection: Float64Array;
  readonly predicted: Float64Array;
  readonly truth: Float64Array;
}

type Labels = Uint8Array | Uint16Array | Uint32Array;

/** The largest joint histogram allowed: 4096 labels (64 MiB of counters). */
const MAX_JOINT = 4096 * 4096;

function maxLabel(a: Labels): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

/**
 * Counts labels of `truth` and `pred` (same length). With `binary`, any non-zero value is foreground (label 1).
 * Four interleaved histograms keep long runs of one label from serialising on a single counter.
 */
export function countLabels(truth: Labels, pred: Labels, binary = false): LabelCounts {
  const n = truth.length;
  if (binary) {
    const h = new Float64Array(4);
    let c0 = 0,
      c1 = 0,
      c2 = 0,
      c3 = 0;
    // Four pixels per word: background in both (most of an image) or foreground in both with equal values
    // (object interiors) are counted without looking at single pixels.
    const words = wordViews(truth, pred);
    let i = 0;
    if (words) {
      const [t32, p32] = words;
      const nw = t32.length;
      for (let w = 0; w < nw; w++) {
        const a = t32[w];
        const b = p32[w];
        if ((a | b) === 0) {
          c0 += 4;
          continue;
        }
        if (a === b && ((a - 0x01010101) & ~a & 0x80808080) === 0) {
          // no zero byte: all four pixels foreground in both
          c3 += 4;
          continue;
        }
        const base = w * 4;
        for (let j = base; j < base + 4; j++) {
          const k = (pred[j] ? 2 : 0) | (truth[j] ? 1 : 0);
          if (k === 0) c0++;
          else if (k === 1) c1++;
          else if (k === 2) c2++;
          else c3++;
        }
      }
      i = nw * 4;
    }
    for (; i < n; i++) {
      const k = (pred[i] ? 2 : 0) | (truth[i] ? 1 : 0);
      if (k === 0) c0++;
      else if (k === 1) c1++;
      else if (k === 2) c2++;
      else c3++;
    }
    h[0] = c0;
    h[1] = c1;
    h[2] = c2;
    h[3] = c3;
    return fromJoint(h, 2);
  }
  let size: number;
  if (truth instanceof Uint8Array && pred instanceof Uint8Array) size = 256;
  else size = Math.max(maxLabel(truth), maxLabel(pred)) + 1;
  if (size * size > MAX_JOINT) {
    throw new RangeError(`label ${size - 1} is too large: semantic masks support labels 0..4095`);
  }
  const shift = size === 256 ? 8 : 0;
  const joint = new Float64Array(size * size);
  if (shift) {
    // 8-bit fast path: index = pred << 8 | truth. Where four pixels agree in both masks (most of an image:
    // background, object interiors) one word compare replaces four counter updates.
    const h0 = new Uint32Array(65536),
      h1 = new Uint32Array(65536);
    const words = wordViews(truth, pred);
    let zeros = 0;
    let i = 0;
    if (words) {
      const [t32, p32] = words;
      const nw = t32.length;
      for (let w = 0; w < nw; w++) {
        const a = t32[w];
        if (a === p32[w]) {
          if (a === 0) zeros += 4;
          else {
            h0[(a & 0xff) * 257]++;
            h1[((a >>> 8) & 0xff) * 257]++;
            h0[((a >>> 16) & 0xff) * 257]++;
            h1[(a >>> 24) * 257]++;
          }
          continue;
        }
        const j = w * 4;
        h0[(pred[j] << 8) | truth[j]]++;
        h1[(pred[j + 1] << 8) | truth[j + 1]]++;
        h0[(pred[j + 2] << 8) | truth[j + 2]]++;
        h1[(pred[j + 3] << 8) | truth[j + 3]]++;
      }
      i = nw * 4;
    }
    for (; i < n; i++) h0[(pred[i] << 8) | truth[i]]++;
    h0[0] += zeros;
    for (let j = 0; j < 65536; j++) joint[j] = h0[j] + h1[j];
  } else {
    const h0 = new Uint32Array(size * size),
      h1 = new Uint32Array(size * size);
    const end = n - (n % 2);
    let i = 0;
    for (; i < end; i += 2) {
      h0[pred[i] * size + truth[i]]++;
      h1[pred[i + 1] * size + truth[i + 1]]++;
    }
    for (; i < n; i++) h0[pred[i] * size + truth[i]]++;
    for (let j = 0; j < joint.length; j++) joint[j] = h0[j] + h1[j];
  }
  return fromJoint(joint, size);
}

/** Uint32 views of two byte arrays when both are 4-byte aligned (they are when freshly allocated). */
function wordViews(a: Labels, b: Labels): [Uint32Array, Uint32Array] | null {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.byteOffset % 4 !== 0 || b.byteOffset % 4 !== 0) return null;
  const nw = a.length >>> 2;
  return [new Uint32Array(a.buffer, a.byteOffset, nw), new Uint32Array(b.buffer, b.byteOffset, nw)];
}

function fromJoint(joint: Float64Array, size: number): LabelCounts {
  const intersection = new Float64Array(size);
  const predicted = new Float64Array(size);
  const truth = new Float64Array(size);
  for (let p = 0; p < size; p++) {
    for (let g = 0; g < size; g++) {
      const c = joint[p * size + g];
      if (c === 0) continue;
      predicted[p] += c;
      truth[g] += c;
      if (p === g) intersection[p] += c;
    }
  }
  return { size, intersection, predicted, truth };
}
