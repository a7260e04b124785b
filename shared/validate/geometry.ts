import type { Findings } from './checks';
import type { Where } from './dataset';
import { rleFromString } from '../metrics/coco/rle';

/** Coordinates this far outside the frame are float noise from converters, not real errors. */
const PIXEL_TOLERANCE = 0.01;

export interface Frame {
  width: number;
  height: number;
}

/**
 * Checks one axis-aligned box given as x, y, width, height in pixels. `frame` is the image size when known.
 * Returns false when the box is unusable (non-finite or degenerate), so callers skip further checks on it.
 */
export function checkBox(
  findings: Findings,
  where: Where,
  field: string,
  box: readonly number[],
  frame: Frame | undefined,
  minBoxSize: number,
): boolean {
  const [x, y, w, h] = box;
  if (!box.every(Number.isFinite)) {
    findings.add('geometry.non-finite', { ...where, field, value: box, message: `box has a NaN or infinite value` });
    return false;
  }
  if (w <= 0 || h <= 0) {
    findings.add('geometry.box-degenerate', { ...where, field, value: box, message: `box has width ${w} and height ${h}` });
    return false;
  }
  if (
    frame &&
    (x < -PIXEL_TOLERANCE || y < -PIXEL_TOLERANCE || x + w > frame.width + PIXEL_TOLERANCE || y + h > frame.height + PIXEL_TOLERANCE)
  ) {
    findings.add('geometry.box-outside', {
      ...where,
      field,
      value: box,
      message: `box spans x ${x}..${x + w}, y ${y}..${y + h}, outside the ${frame.width}×${frame.height} image`,
    });
  }
  if (minBoxSize > 0 && (w < minBoxSize || h < minBoxSize)) {
    findings.add('geometry.box-tiny', { ...where, field, value: box, message: `box is ${w}×${h} px, below min-box-size ${minBoxSize}` });
  }
  return true;
}

/** A polygon as a flat [x0, y0, x1, y1, …] list in pixels. */
export function checkPolygon(findings: Findings, where: Where, field: string, coords: readonly number[], frame: Frame | undefined): void {
  if (!coords.every(Number.isFinite)) {
    findings.add('geometry.non-finite', { ...where, field, value: coords, message: 'polygon has a NaN or infinite coordinate' });
    return;
  }
  if (coords.length < 6) {
    findings.add('geometry.polygon-too-few-points', {
      ...where,
      field,
      value: coords,
      message: `polygon has ${Math.floor(coords.length / 2)} point(s); at least 3 are needed`,
    });
    return;
  }
  if (!frame) return;
  for (let i = 0; i + 1 < coords.length; i += 2) {
    const x = coords[i];
    const y = coords[i + 1];
    if (x < -PIXEL_TOLERANCE || y < -PIXEL_TOLERANCE || x > frame.width + PIXEL_TOLERANCE || y > frame.height + PIXEL_TOLERANCE) {
      findings.add('geometry.polygon-outside', {
        ...where,
        field,
        value: coords,
        message: `polygon point ${i / 2} (${x}, ${y}) is outside the ${frame.width}×${frame.height} image`,
      });
      return;
    }
  }
}

/** COCO run-length encoding: counts as numbers, or the compressed string form pycocotools writes. */
export function checkRle(
  findings: Findings,
  where: Where,
  field: string,
  size: readonly number[],
  counts: readonly number[] | string,
  frame: Frame | undefined,
): void {
  const [h, w] = size;
  if (frame && (h !== frame.height || w !== frame.width)) {
    findings.add('geometry.rle-size-mismatch', {
      ...where,
      field: `${field}.size`,
      value: size,
      message: `RLE size is [${h}, ${w}] but the image is ${frame.height}×${frame.width} (h×w)`,
    });
    return;
  }
  const runs = typeof counts === 'string' ? decodeRleString(counts) : counts;
  if (!runs) {
    findings.add('structure.schema', {
      ...where,
      field: `${field}.counts`,
      value: counts,
      message: 'compressed RLE counts string is malformed',
    });
    return;
  }
  let sum = 0;
  for (const run of runs) sum += run;
  if (sum !== h * w) {
    findings.add('geometry.rle-size-mismatch', {
      ...where,
      field: `${field}.counts`,
      value: sum,
      message: `RLE counts sum to ${sum}, not height × width = ${h * w}`,
    });
  }
}

/**
 * The runs of a compressed RLE string, by the decoder the metrics use (shared/metrics/coco/rle.ts, pycocotools'
 * rleFrString), or undefined when the string is malformed: a character outside '0'..'o' or a truncated value.
 */
export function decodeRleString(s: string): readonly number[] | undefined {
  if (!RLE_CHARS.test(s)) return undefined;
  try {
    return Array.from(rleFromString(s, 0, 0).counts);
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

const RLE_CHARS = /^[0-o]*$/;

const NON_FINITE_TOKEN = /^[+-]?(nan|inf|infinity)$/i;

/** A number from text; Python's nan/inf spellings become NaN/±Infinity so the non-finite check sees them. */
export function parseNumberToken(token: string): number | undefined {
  const t = token.trim();
  if (NON_FINITE_TOKEN.test(t)) return t.toLowerCase().includes('nan') ? NaN : t.startsWith('-') ? -Infinity : Infinity;
  const n = Number(t);
  return t !== '' && !Number.isNaN(n) ? n : undefined;
}
