import { seededRandom } from '../core/random';

/** Plain tensors (typed array + dims) as mlship passes them between npy files, preprocessing and ONNX Runtime. */
export type TensorType = 'float32' | 'float16' | 'float64' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool' | 'uint16' | 'int16';

export type TensorData = Float32Array | Float64Array | Uint8Array | Int8Array | Int32Array | BigInt64Array | Uint16Array | Int16Array;

export interface PlainTensor {
  type: TensorType;
  dims: number[];
  /** float16 values are their IEEE half bits in a Uint16Array; bool is a Uint8Array. */
  data: TensorData;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function allocate(type: TensorType, n: number): TensorData {
  switch (type) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
    case 'uint16':
      return new Uint16Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half bits of a number, rounded to nearest even, as numpy's astype(float16) does. */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  const m = mant >>> 13;
  const rest = mant & 0x1fff;
  let out = sign | (e << 10) | m;
  // Rounding up may carry into the exponent, which is the correct next value (65520 and above become Infinity).
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) out++;
  return out;
}

export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Element i as a JS number, whatever the type (int64 beyond 2^53 loses precision, which comparisons tolerate). */
export function valueAt(t: Pick<PlainTensor, 'type' | 'data'>, i: number): number {
  const v = t.data[i];
  if (typeof v === 'bigint') return Number(v);
  return t.type === 'float16' ? fromFloat16Bits(v) : v;
}

/** A seeded input tensor: floats in [-1, 1), uint8 over 0..255, integers 0..9, bools. */
export function randomTensor(type: TensorType, dims: number[], seed: number): PlainTensor {
  const n = elementCount(dims);
  const data = allocate(type, n);
  const rnd = seededRandom(seed);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    switch (type) {
      case 'float32':
      case 'float64':
        data[i] = r * 2 - 1;
        break;
      case 'float16':
        data[i] = toFloat16Bits(r * 2 - 1);
        break;
      case 'uint8':
        data[i] = Math.floor(r * 256);
        break;
      case 'bool':
        data[i] = r < 0.5 ? 0 : 1;
        break;
      case 'int64':
        (data as BigInt64Array)[i] = BigInt(Math.floor(r * 10));
        break;
      default:
        data[i] = Math.floor(r * 10);
    }
  }
  return { type, dims, data };
}
