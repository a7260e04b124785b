import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { PNG } from 'pngjs';
import * as UTIF from 'utif2';
import { decodeTiffDirectories } from '../../validate/tiff-decode';
import { StepError } from '../../core/errors';
import { checkBufferBeforeDecode, HeaderError } from '../../validate/image-header';

/** A label image: one integer class per pixel, row-major. */
export interface LabelImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint16Array | Uint32Array;
}

export const MASK_EXTENSIONS = ['.png', '.tif', '.tiff'];

/** Reads a PNG (8/16-bit grey or palette: the palette index is the label) or a single-channel TIFF. */
export async function readLabelImage(file: string): Promise<LabelImage> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (error) {
    throw new StepError(`Mask ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}).`, { file });
  }
  return decodeLabelImage(buf, file);
}

export function decodeLabelImage(buf: Buffer, file: string): LabelImage {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.png' || ext === '.tif' || ext === '.tiff') {
    // The bounded structure walk before any decoder: utif2 follows IFD loops forever, pngjs allocates what IHDR says.
    try {
      checkBufferBeforeDecode(buf);
    } catch (error) {
      if (!(error instanceof HeaderError)) throw error;
      throw new StepError(`Mask ${file} cannot be read: ${error.message}.`, {
        file,
        hint: 'Re-save the mask as a single-page PNG or TIFF with one integer class per pixel.',
      });
    }
  }
  if (ext === '.png') return decodePng(buf, file);
  if (ext === '.tif' || ext === '.tiff') return decodeTiff(buf, file);
  throw new StepError(`Mask ${file} has extension "${ext}"; label masks are read from ${MASK_EXTENSIONS.join(', ')}.`, {
    file,
    hint: 'Save label masks as PNG or TIFF with one integer class per pixel.',
  });
}

function decodePng(buf: Buffer, file: string): LabelImage {
  // pngjs returns its parse metadata too; at run time `palette` holds the RGBA entries.
  let png: {
    width: number;
    height: number;
    data: unknown;
    colorType?: number;
    depth?: number;
    palette?: number[][];
    transColor?: number[];
  };
  try {
    png = PNG.sync.read(isPalettePng(buf) ? indexPalette(buf) : buf, { skipRescale: true }) as unknown as typeof png;
  } catch (error) {
    throw new StepError(`Mask ${file} is not a readable PNG: ${(error as Error).message}.`, { file });
  }
  const { width, height } = png;
  const n = width * height;
  const rgba = png.data as unknown as Uint8Array | Uint16Array;
  const colorType = png.colorType ?? 0;
  if (colorType === 3) {
    // decoded through indexPalette(): red holds the palette index
    const out = new Uint8Array(n);
    for (let i = 0, p = 0; i < n; i++, p += 4) out[i] = rgba[p];
    return { width, height, data: out };
  }
  if (colorType === 2 || colorType === 6) {
    for (let i = 0, p = 0; i < n; i++, p += 4) {
      if (rgba[p] !== rgba[p + 1] || rgba[p] !== rgba[p + 2]) {
        throw new StepError(
          `Mask ${file} is an RGB PNG with colour at pixel (${i % width}, ${Math.floor(i / width)}); label masks hold one class index per pixel.`,
          {
            file,
            hint: 'Save masks as 8/16-bit greyscale (or palette) PNG whose value is the class index.',
          },
        );
      }
    }
  }
  const out = (png.depth ?? 8) === 16 ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 4) out[i] = rgba[p];
  // pngjs blanks pixels of a grey tRNS colour (value and alpha 0); real label pixels keep full alpha
  const trans = colorType === 0 ? png.transColor?.[0] : undefined;
  if (trans !== undefined) for (let i = 0, p = 3; i < n; i++, p += 4) if (rgba[p] === 0) out[i] = trans;
  return { width, height, data: out };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Colour type 3 in the IHDR chunk, which the PNG format requires to come first. */
function isPalettePng(buf: Buffer): boolean {
  return buf.length > 25 && buf.subarray(0, 8).equals(PNG_SIGNATURE) && buf.toString('latin1', 12, 16) === 'IHDR' && buf[25] === 3;
}

/**
 * A copy of a palette PNG whose palette is replaced by entry i = (i, 0, 0) and whose tRNS chunk is dropped, so
 * that the decoder's RGBA output carries each pixel's palette index in red. The label is the index, whatever
 * colours the palette holds (repeated colours, unused entries, transparency).
 */
function indexPalette(buf: Buffer): Buffer {
  const parts: Buffer[] = [buf.subarray(0, 8)];
  let at = 8;
  while (at + 12 <= buf.length) {
    const len = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    const end = at + 12 + len;
    if (end > buf.length) break; // truncated: let the decoder report it
    if (type === 'PLTE') {
      const entries = Math.floor(len / 3);
      const data = Buffer.alloc(entries * 3);
      for (let i = 0; i < entries; i++) data[i * 3] = i;
      const head = Buffer.alloc(8);
      head.writeUInt32BE(data.length, 0);
      head.write('PLTE', 4, 'latin1');
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
      parts.push(head, data, crc);
    } else if (type !== 'tRNS') parts.push(buf.subarray(at, end));
    at = end;
  }
  if (at < buf.length) parts.push(buf.subarray(at));
  return Buffer.concat(parts);
}

function decodeTiff(buf: Buffer, file: string): LabelImage {
  let ifd: UTIF.IFD;
  try {
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    const ifds = decodeTiffDirectories(ab);
    if (ifds.length === 0) throw new Error('no image directory');
    ifd = ifds[0];
    UTIF.decodeImage(ab, ifd);
  } catch (error) {
    throw new StepError(`Mask ${file} is not a readable TIFF: ${(error as Error).message}.`, { file });
  }
  const width = ifd.width;
  const height = ifd.height;
  const bps = (ifd.t258 as number[] | undefined)?.[0] ?? 1;
  const spp = (ifd.t277 as number[] | undefined)?.[0] ?? 1;
  const format = (ifd.t339 as number[] | undefined)?.[0] ?? 1;
  if (spp !== 1 || format === 3 || ![8, 16, 32].includes(bps)) {
    throw new StepError(
      `Mask ${file} is a TIFF with ${spp} sample(s) of ${bps}-bit ${format === 3 ? 'float' : 'integer'} per pixel; label masks need one 8, 16 or 32-bit integer sample.`,
      {
        file,
        hint: 'Save the mask as a single-channel integer TIFF (e.g. tifffile.imwrite(path, labels.astype(np.uint16))).',
      },
    );
  }
  const n = width * height;
  const raw = ifd.data;
  if (raw.length < (n * bps) / 8)
    throw new StepError(`Mask ${file} holds ${raw.length} bytes of pixels, fewer than ${width}x${height} at ${bps} bits.`, { file });
  if (bps === 8) return { width, height, data: raw.slice(0, n) };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (bps === 16) {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getUint16(i * 2, true); // UTIF turns 16-bit data little-endian
    return { width, height, data: out };
  }
  const le = (ifd as unknown as { isLE: boolean }).isLE;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getUint32(i * 4, le);
  return { width, height, data: out };
}
