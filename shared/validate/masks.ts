import { PNG } from 'pngjs';
import * as UTIF from 'utif2';
import { decodeTiffDirectories } from './tiff-decode';
import { checkBufferBeforeDecode } from './image-header';

export interface MaskValues {
  width: number;
  height: number;
  /** Pixel count per label value. */
  histogram: Map<number, number>;
}

/**
 * Label values of a mask, exactly as stored: 8- or 16-bit grey, or palette indices (how VOC and many
 * annotation tools save class masks). Multi-channel masks are read from their first channel.
 */
export function readMaskValues(buffer: Buffer, format: 'png' | 'tiff'): MaskValues {
  // The bounded structure walk first: utif2 follows IFD loops forever and pngjs allocates whatever IHDR says.
  checkBufferBeforeDecode(buffer);
  return format === 'png' ? readPngMask(buffer) : readTiffMask(buffer);
}

function readPngMask(buffer: Buffer): MaskValues {
  const png = PNG.sync.read(buffer, { skipRescale: true }) as unknown as {
    width: number;
    height: number;
    depth: number;
    colorType: number;
    data: Buffer | Uint16Array;
    palette?: number[][];
  };
  const { width, height, data } = png;
  const pixels = width * height;
  const counts = new Uint32Array(png.depth === 16 ? 65536 : 256);
  if (png.colorType === 3 && png.palette) {
    // pngjs expands palette indices to colours; map each colour back to its first index.
    const indexOf = new Map<number, number>();
    png.palette.forEach((c, i) => {
      const key = ((c[0] << 24) | (c[1] << 16) | (c[2] << 8) | (c[3] ?? 255)) >>> 0;
      if (!indexOf.has(key)) indexOf.set(key, i);
    });
    for (let p = 0; p < pixels; p++) {
      const o = p * 4;
      const key = ((data[o] << 24) | (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3]) >>> 0;
      counts[indexOf.get(key) ?? 0]++;
    }
  } else {
    for (let p = 0; p < pixels; p++) counts[data[p * 4]]++;
  }
  return { width, height, histogram: toMap(counts) };
}

function readTiffMask(buffer: Buffer): MaskValues {
  const ifds = decodeTiffDirectories(buffer);
  if (ifds.length === 0) throw new Error('TIFF has no image');
  const ifd = ifds[0];
  UTIF.decodeImage(buffer, ifd);
  const tag = (t: string) => (ifd[t] as number[] | undefined)?.[0];
  const bits = tag('t258') ?? 1;
  const samples = tag('t277') ?? 1;
  if (bits !== 8 && bits !== 16) throw new Error(`TIFF masks must be 8- or 16-bit, this one is ${bits}-bit`);
  const { width, height, data } = ifd;
  const counts = new Uint32Array(bits === 16 ? 65536 : 256);
  const pixels = width * height;
  // utif2 leaves 16-bit samples little-endian whatever the file's byte order.
  if (bits === 8) for (let p = 0; p < pixels; p++) counts[data[p * samples]]++;
  else for (let p = 0; p < pixels; p++) counts[data[2 * p * samples] | (data[2 * p * samples + 1] << 8)]++;
  return { width, height, histogram: toMap(counts) };
}

function toMap(counts: Uint32Array): Map<number, number> {
  const out = new Map<number, number>();
  for (let v = 0; v < counts.length; v++) if (counts[v] > 0) out.set(v, counts[v]);
  return out;
}
