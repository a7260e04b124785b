import * as zlib from 'node:zlib';
import { PNG } from 'pngjs';

/**
 * Hand-built image files for the bad-input corpus and the property tests: the malformed structures decoders trip
 * over (IFD loops, counts of billions, IHDR sizes no one can allocate) can only be written byte by byte.
 */

export interface TiffEntry {
  tag: number;
  /** TIFF field type: 3 SHORT, 4 LONG. */
  type: number;
  count: number;
  /** The value (or offset) field as written. */
  value: number;
}

/**
 * A little-endian TIFF with one IFD at byte 8, `pixels` after it, and the IFD's next pointer set to `next`
 * (8 = itself: a loop). Baseline tags describe a width×height 8-bit grey image; `extra` entries are appended.
 */
export function tiffFile(
  options: { width?: number; height?: number; next?: number; extra?: TiffEntry[]; entryCount?: number } = {},
): Buffer {
  const width = options.width ?? 4;
  const height = options.height ?? 4;
  const base: TiffEntry[] = [
    { tag: 256, type: 4, count: 1, value: width },
    { tag: 257, type: 4, count: 1, value: height },
    { tag: 258, type: 3, count: 1, value: 8 },
    { tag: 259, type: 3, count: 1, value: 1 },
    { tag: 262, type: 3, count: 1, value: 1 },
    { tag: 273, type: 4, count: 1, value: 0 },
    { tag: 277, type: 3, count: 1, value: 1 },
    { tag: 278, type: 4, count: 1, value: height },
    { tag: 279, type: 4, count: 1, value: 16 },
  ];
  const entries = [...base, ...(options.extra ?? [])].sort((a, b) => a.tag - b.tag);
  const ifdSize = 2 + entries.length * 12 + 4;
  const dataAt = 8 + ifdSize;
  const pixelBytes = 16;
  const out = Buffer.alloc(dataAt + pixelBytes + 124);
  out.write('II', 0, 'latin1');
  out.writeUInt16LE(42, 2);
  out.writeUInt32LE(8, 4);
  out.writeUInt16LE(options.entryCount ?? entries.length, 8);
  entries.forEach((e, i) => {
    const o = 10 + i * 12;
    out.writeUInt16LE(e.tag, o);
    out.writeUInt16LE(e.type, o + 2);
    out.writeUInt32LE(e.count, o + 4);
    const value = e.tag === 273 ? dataAt : e.value;
    if (e.type === 3 && e.count === 1) out.writeUInt16LE(value, o + 8);
    else out.writeUInt32LE(value >>> 0, o + 8);
  });
  out.writeUInt32LE(options.next ?? 0, 10 + entries.length * 12);
  for (let i = 0; i < pixelBytes; i++) out[dataAt + i] = i % 2;
  return out;
}

/** The 262-byte TIFF of the fault-injection report: a valid 4×4 image whose IFD chain points back at itself. */
export function loopingTiff(): Buffer {
  return tiffFile({ next: 8 });
}

/** A small valid grey PNG (values 0/1), e.g. a mask. */
export function pngFile(width = 4, height = 4, value: (x: number, y: number) => number = (x) => x % 2): Buffer {
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8 } as never);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) png.data[y * width + x] = value(x, y);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8 } as never);
}

/** A PNG whose IHDR says width×height (a pixel count no decoder should allocate), with a tiny IDAT and a valid CRC. */
export function pngWithSize(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
