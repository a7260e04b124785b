import { StepError } from '../core/errors';
import { checkFileBeforeDecode, HeaderError } from '../validate/image-header';
import { allocate, type PlainTensor, toFloat16Bits } from '../onnx/tensors';
import { loadSharp, type Sharp } from './sharp-loader';
import { channelsOf, type PreprocessSpec } from './spec';

/**
 * Image file → model input tensor, by a PreprocessSpec: decode (PNG, JPEG, 8/16-bit TIFF through sharp/libvips),
 * convert colour, resize, normalize, lay out. Geometry (letterbox padding, crop) is done here rather than by
 * sharp, so the mapping from tensor pixels back to image pixels is exact and known (see `Geometry`).
 */

/** Tensor pixel (x, y) = image pixel (x, y) * scale + offset, per axis. */
export interface Geometry {
  sourceWidth: number;
  sourceHeight: number;
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
}

export interface PreparedImage {
  tensor: PlainTensor;
  geometry: Geometry;
  sourceDepth: 8 | 16;
  /** Milliseconds spent decoding + resizing (sharp) and normalizing (here). */
  decodeMs: number;
  normalizeMs: number;
}

const KERNELS = { nearest: 'nearest', linear: 'linear', cubic: 'cubic', lanczos3: 'lanczos3' } as const;

export async function preprocessImage(file: string, spec: PreprocessSpec, sharp: Sharp = loadSharp()): Promise<PreparedImage> {
  const t0 = process.hrtime.bigint();
  let meta;
  try {
    // The bounded header/IFD walk before libvips sees the file.
    checkFileBeforeDecode(file);
    meta = await sharp(file).metadata();
  } catch (error) {
    if (!(error instanceof HeaderError) && (error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new StepError(`Image ${file} does not exist.`, { hint: 'Check the images input.', file });
    throw new StepError(`Cannot decode image ${file}: ${(error as Error).message}.`, {
      hint: 'Images must be PNG, JPEG or TIFF (8 or 16 bits per sample).',
      file,
    });
  }
  const depth = meta.depth === 'ushort' ? 16 : meta.depth === 'uchar' ? 8 : undefined;
  if (!depth)
    throw new StepError(`Image ${file} has ${meta.depth} samples; only 8- and 16-bit unsigned images are supported.`, {
      hint: 'Convert it to 8- or 16-bit unsigned integers.',
      file,
    });
  const expected = spec.bitDepth ?? 'auto';
  if (expected !== 'auto' && expected !== depth) {
    throw new StepError(`Image ${file} has ${depth}-bit samples, but the preprocessing spec says bitDepth ${expected}.`, {
      hint: `Use ${expected}-bit images, or set bitDepth to "auto" if both are valid input.`,
      file,
    });
  }
  if (spec.dtype === 'uint8' && depth === 16)
    throw new StepError(`Image ${file} is 16-bit, but the preprocessing spec feeds raw uint8 pixels.`, {
      hint: 'Use dtype float32 with maxValue for 16-bit images.',
      file,
    });
  const sw = meta.width ?? 0;
  const sh = meta.height ?? 0;
  const geometry = planGeometry(sw, sh, spec);
  const rw = Math.round(sw * geometry.scaleX);
  const rh = Math.round(sh * geometry.scaleY);
  const channels = channelsOf(spec);
  const space = channels === 1 ? (depth === 16 ? 'grey16' : 'b-w') : depth === 16 ? 'rgb16' : 'srgb';

  let pipeline = sharp(file);
  if (rw !== sw || rh !== sh) pipeline = pipeline.resize(rw, rh, { fit: 'fill', kernel: KERNELS[spec.resize?.interpolation ?? 'linear'] });
  const { data, info } = await pipeline
    .removeAlpha()
    .toColourspace(space)
    .raw({ depth: depth === 16 ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== channels || info.width !== rw || info.height !== rh) {
    throw new StepError(`Decoding ${file} gave ${info.width}x${info.height}x${info.channels}, expected ${rw}x${rh}x${channels}.`, {
      hint: 'The image may have an unusual colour space (CMYK, palette with alpha); convert it to RGB or grayscale.',
      file,
    });
  }
  const pixels =
    depth === 16
      ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2)
      : new Uint8Array(data.buffer, data.byteOffset, data.length);
  const t1 = process.hrtime.bigint();
  const tensor = normalize(pixels, rw, rh, geometry, spec, depth);
  const t2 = process.hrtime.bigint();
  return { tensor, geometry, sourceDepth: depth, decodeMs: Number(t1 - t0) / 1e6, normalizeMs: Number(t2 - t1) / 1e6 };
}

/** Where the resized image sits in the tensor. */
export function planGeometry(sw: number, sh: number, spec: Pick<PreprocessSpec, 'resize'>): Geometry {
  const r = spec.resize;
  if (!r) return { sourceWidth: sw, sourceHeight: sh, width: sw, height: sh, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 };
  const fit = r.fit ?? 'stretch';
  if (fit === 'stretch')
    return {
      sourceWidth: sw,
      sourceHeight: sh,
      width: r.width,
      height: r.height,
      scaleX: r.width / sw,
      scaleY: r.height / sh,
      offsetX: 0,
      offsetY: 0,
    };
  const s = fit === 'letterbox' ? Math.min(r.width / sw, r.height / sh) : Math.max(r.width / sw, r.height / sh);
  const rw = Math.max(1, Math.round(sw * s));
  const rh = Math.max(1, Math.round(sh * s));
  // Centred; a positive offset is letterbox padding, a negative one the cropped overflow.
  return {
    sourceWidth: sw,
    sourceHeight: sh,
    width: r.width,
    height: r.height,
    scaleX: rw / sw,
    scaleY: rh / sh,
    offsetX: Math.floor((r.width - rw) / 2),
    offsetY: Math.floor((r.height - rh) / 2),
  };
}

function normalize(
  pixels: Uint8Array | Uint16Array,
  rw: number,
  rh: number,
  g: Geometry,
  spec: PreprocessSpec,
  depth: 8 | 16,
): PlainTensor {
  const C = channelsOf(spec);
  const W = g.width;
  const H = g.height;
  const nchw = spec.layout === 'NCHW';
  const dims = nchw ? [1, C, H, W] : [1, H, W, C];
  const out = allocate(spec.dtype, C * H * W);
  const maxValue = spec.maxValue ?? (depth === 16 ? 65535 : 255);
  const mean = spec.mean ?? [0];
  const std = spec.std ?? [1];
  // Per channel: value * a + b == (value / maxValue - mean) / std.
  const a = new Float64Array(C);
  const b = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const m = mean.length === 1 ? mean[0] : mean[c];
    const s = std.length === 1 ? std[0] : std[c];
    a[c] = 1 / (maxValue * s);
    b[c] = -m / s;
  }
  const pad = spec.resize?.padValue ?? 0;
  const swap = spec.color === 'bgr';
  const raw = spec.dtype === 'uint8';
  const half = spec.dtype === 'float16';
  for (let y = 0; y < H; y++) {
    const sy = y - g.offsetY;
    const rowInside = sy >= 0 && sy < rh;
    for (let x = 0; x < W; x++) {
      const sx = x - g.offsetX;
      const inside = rowInside && sx >= 0 && sx < rw;
      const base = (sy * rw + sx) * C;
      for (let c = 0; c < C; c++) {
        const sourceChannel = swap ? C - 1 - c : c;
        const v = inside ? pixels[base + sourceChannel] : pad;
        const value = raw ? v : v * a[c] + b[c];
        const index = nchw ? (c * H + y) * W + x : (y * W + x) * C + c;
        out[index] = half ? toFloat16Bits(value) : value;
      }
    }
  }
  return { type: spec.dtype, dims, data: out };
}

/**
 * Image pixel → tensor pixel, nearest, for mapping a per-pixel prediction back onto a ground-truth mask of the
 * source image's size. Returns -1 where the pixel was cropped away.
 */
export function tensorPixel(g: Geometry, x: number, y: number, outWidth: number, outHeight: number): number {
  const tx = Math.floor(((x + 0.5) * g.scaleX + g.offsetX) * (outWidth / g.width));
  const ty = Math.floor(((y + 0.5) * g.scaleY + g.offsetY) * (outHeight / g.height));
  if (tx < 0 || ty < 0 || tx >= outWidth || ty >= outHeight) return -1;
  return ty * outWidth + tx;
}
