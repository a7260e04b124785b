import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import * as UTIF from 'utif2';
import { StepError } from '../../core/errors';

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
  if (ext === '.png') return decodePng(buf, file);
  if (ext === '.tif' || ext === '.tiff') return decodeTiff(buf, file);
  throw new StepError(`Mask ${file} has extension "${ext}"; label masks are read from ${MASK_EXTENSIONS.join(', ')}.`, { file, hint: 'Save label masks as PNG or TIFF with one integer class per pixel.' });
}

function decodePng(buf: Buffer, file: string): LabelImage {
  // pngjs returns its parse metadata too; at run time `palette` holds the RGBA entries.
  let png: { width: number; height: number; data: unknown; colorType?: number; depth?: number; palette?: number[][]; transColor?: number[] };
  try {
    png = PNG.sync.read(buf, { skipRescale: true }) as unknown as typeof png;
  } catch (error) {
    throw new StepError(`Mask ${file} is not a readable PNG: ${(error as Error).message}.`, { file });
  }
  const { width, height } = png;
  const n = width * height;
  const rgba = png.data as unknown as Uint8Array | Uint16Array;
  const colorType = png.colorType ?? 0;
  if (colorType === 3) {
    // pngjs expands palette images to RGBA; map each colour back to its palette index.
    const palette = png.palette ?? [];
    const index = new Map<number, number>();
    palette.forEach((c, i) => {
      const key = ((c[0] << 24) | (c[1] << 16) | (c[2] << 8) | c[3]) >>> 0;
      if (!index.has(key)) index.set(key, i);
    });
    if (index.size !== palette.length) {
      throw new StepError(`Mask ${file} is a palette PNG with repeated colours, so its class indices cannot be recovered.`, { file, hint: 'Save the mask as 8-bit greyscale with the class index as the grey value.' });
    }
    const out = new Uint8Array(n);
    for (let i = 0, p = 0; i < n; i++, p += 4) out[i] = index.get(((rgba[p] << 24) | (rgba[p + 1] << 16) | (rgba[p + 2] << 8) | rgba[p + 3]) >>> 0)!;
    return { width, height, data: out };
  }
  if (colorType === 2 || colorType === 6) {
    for (let i = 0, p = 0; i < n; i++, p += 4) {
      if (rgba[p] !== rgba[p + 1] || rgba[p] !== rgba[p + 2]) {
        throw new StepError(`Mask ${file} is an RGB PNG with colour at pixel (${i % width}, ${Math.floor(i / width)}); label masks hold one class index per pixel.`, {
          file,
          hint: 'Save masks as 8/16-bit greyscale (or palette) PNG whose value is the class index.',
        });
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

function decodeTiff(buf: Buffer, file: string): LabelImage {
  let ifd: UTIF.IFD;
  try {
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    const ifds = UTIF.decode(ab);
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
    throw new StepError(`Mask ${file} is a TIFF with ${spp} sample(s) of ${bps}-bit ${format === 3 ? 'float' : 'integer'} per pixel; label masks need one 8, 16 or 32-bit integer sample.`, {
      file,
      hint: 'Save the mask as a single-channel integer TIFF (e.g. tifffile.imwrite(path, labels.astype(np.uint16))).',
    });
  }
  const n = width * height;
  const raw = ifd.data;
  if (raw.length < (n * bps) / 8) throw new StepError(`Mask ${file} holds ${raw.length} bytes of pixels, fewer than ${width}x${height} at ${bps} bits.`, { file });
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
