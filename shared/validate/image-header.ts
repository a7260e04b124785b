import * as fs from 'node:fs';

/**
 * Image header readers: size, bit depth and channels from the first bytes of a file, plus the cheap
 * truncation evidence each format offers. Decoding whole images to learn their size would cost 100× more
 * than the hashing the same pass already does.
 */
export type ImageFormat = 'png' | 'jpeg' | 'tiff' | 'bmp' | 'webp';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** Bits per sample (per channel). */
  bitDepth: number;
  /** Samples per pixel; palette images count as 1. */
  channels: number;
  /** Set when the file is shorter than its own structure says, with the evidence. */
  truncated?: string;
}

/** Random access to a file whose first bytes are already in memory. */
export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes at `offset`; fewer at the end of the file. */
  read(offset: number, length: number): Buffer;
}

/** unsupported: not an image format we read; corrupt: structure broken; truncated: the file ends too early. */
export type HeaderProblem = 'unsupported' | 'corrupt' | 'truncated';

export class HeaderError extends Error {
  constructor(
    readonly problem: HeaderProblem,
    message: string,
  ) {
    super(message);
  }
}

/** PNG chunk walk done while hashing (see probe-worker): complete = IEND inside the file. */
export type PngChunkStatus = 'complete' | 'truncated' | 'corrupt';

export interface HeaderHints {
  /** Last bytes of the file. */
  tail: Buffer;
  png?: PngChunkStatus;
}

const OTHER_FORMATS: [string, (b: Buffer) => boolean][] = [
  ['GIF', (b) => b.toString('latin1', 0, 4) === 'GIF8'],
  ['HEIC/AVIF', (b) => b.toString('latin1', 4, 8) === 'ftyp'],
  ['JPEG 2000', (b) => b.readUInt32BE(0) === 0x0000000c && b.toString('latin1', 4, 8) === 'jP  '],
  [
    'BigTIFF',
    (b) =>
      (b.toString('latin1', 0, 2) === 'II' && b.readUInt16LE(2) === 43) ||
      (b.toString('latin1', 0, 2) === 'MM' && b.readUInt16BE(2) === 43),
  ],
  ['PDF', (b) => b.toString('latin1', 0, 4) === '%PDF'],
];

export function sniffFormat(head: Buffer): ImageFormat | undefined {
  if (head.length >= 8 && head.readUInt32BE(0) === 0x89504e47 && head.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (
    head.length >= 4 &&
    ((head[0] === 0x49 && head[1] === 0x49 && head.readUInt16LE(2) === 42) ||
      (head[0] === 0x4d && head[1] === 0x4d && head.readUInt16BE(2) === 42))
  )
    return 'tiff';
  if (head.length >= 2 && head[0] === 0x42 && head[1] === 0x4d) return 'bmp';
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return undefined;
}

export function readImageHeader(src: ByteSource, hints: HeaderHints): ImageHeader {
  const head = src.read(0, 64);
  const format = sniffFormat(head);
  if (!format) {
    const other = head.length >= 12 ? OTHER_FORMATS.find(([, test]) => test(head))?.[0] : undefined;
    throw new HeaderError(
      'unsupported',
      other ? `${other} is not supported (use PNG, JPEG, TIFF, BMP or WebP)` : 'not a PNG, JPEG, TIFF, BMP or WebP file',
    );
  }
  switch (format) {
    case 'png':
      return readPng(src, hints);
    case 'jpeg':
      return readJpeg(src, hints);
    case 'tiff':
      return readTiff(src);
    case 'bmp':
      return readBmp(src);
    case 'webp':
      return readWebp(src);
  }
}

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function readPng(src: ByteSource, hints: HeaderHints): ImageHeader {
  const b = src.read(0, 33);
  if (b.length < 33) throw new HeaderError('truncated', 'the PNG ends inside its IHDR chunk');
  if (b.toString('latin1', 12, 16) !== 'IHDR') throw new HeaderError('corrupt', 'PNG without an IHDR chunk');
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const bitDepth = b[24];
  const channels = PNG_CHANNELS[b[25]];
  if (!width || !height || channels === undefined || ![1, 2, 4, 8, 16].includes(bitDepth)) {
    throw new HeaderError('corrupt', `PNG IHDR is invalid (${width}×${height}, bit depth ${bitDepth}, color type ${b[25]})`);
  }
  const header: ImageHeader = { format: 'png', width, height, bitDepth, channels };
  if (hints.png === 'truncated') header.truncated = 'the PNG ends before its IEND chunk';
  if (hints.png === 'corrupt') throw new HeaderError('corrupt', 'PNG chunk structure is broken (invalid chunk length or type)');
  return header;
}

function readJpeg(src: ByteSource, hints: HeaderHints): ImageHeader {
  let offset = 2;
  for (;;) {
    const marker = src.read(offset, 4);
    if (marker.length < 4) throw new HeaderError('truncated', 'the JPEG ends before its frame header (SOF)');
    if (marker[0] !== 0xff) throw new HeaderError('corrupt', `JPEG segment marker expected at byte ${offset}`);
    const code = marker[1];
    if (code === 0xff) {
      offset++;
      continue;
    }
    if (code === 0xd8 || code === 0x01 || (code >= 0xd0 && code <= 0xd7)) {
      offset += 2;
      continue;
    }
    if (code === 0xda || code === 0xd9) throw new HeaderError('corrupt', 'JPEG has no frame header (SOF) before its scan');
    const length = marker.readUInt16BE(2);
    // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc) {
      const sof = src.read(offset + 4, 6);
      if (sof.length < 6) throw new HeaderError('truncated', 'the JPEG ends inside its frame header');
      const header: ImageHeader = {
        format: 'jpeg',
        bitDepth: sof[0],
        height: sof.readUInt16BE(1),
        width: sof.readUInt16BE(3),
        channels: sof[5],
      };
      if (!header.width || !header.height) throw new HeaderError('corrupt', `JPEG frame header has size ${header.width}×${header.height}`);
      if (!hasEoi(hints.tail)) header.truncated = 'the JPEG does not end with an EOI marker (FFD9)';
      return header;
    }
    offset += 2 + length;
  }
}

/** EOI may be followed by a little padding; FFD9 cannot occur inside entropy-coded data (FF is stuffed). */
function hasEoi(tail: Buffer): boolean {
  for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return true;
  return false;
}

const TIFF_TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8 };

/**
 * Bounds of the TIFF structure walk. Decoders (utif2, libtiff) follow every IFD pointer they find; a chain that
 * points back at itself, or a count of 4 billion values, makes them loop or allocate until the heap is gone.
 * Real microscopy stacks have a few thousand pages at most; no tag we or the decoders read needs more values.
 */
export const TIFF_LIMITS = { maxIfds: 4096, maxEntriesPerIfd: 1024, maxSubIfdDepth: 4, maxValuesPerTag: 1 << 20 } as const;
/** Tags whose values are offsets of further IFDs (SubIFDs, Exif, GPS, DNG private, Fuji), as utif2 follows them. */
const TIFF_IFD_POINTER_TAGS = new Set([330, 34665, 34853, 61440]);
const TIFF_HEADER_TAGS = new Set([256, 257, 258, 262, 273, 277, 279, 324, 325]);

/**
 * Walks every IFD a decoder would visit (the main chain and the sub-IFDs it points to) with a visited set and
 * the bounds above, and returns the tags of the first IFD. Every entry's values must lie inside the file.
 * Throws a HeaderError on a loop, an offset outside the file or a count over the limits: the caller reports
 * the image as unreadable instead of handing it to a decoder.
 */
function walkTiff(src: ByteSource): Map<number, number[]> {
  const le = src.read(0, 2).toString('latin1') === 'II';
  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const first = u32(src.read(4, 4), 0);
  if (first + 2 > src.size) return truncatedTiff(`its first IFD offset ${first} is past the end of the file`);
  const visited = new Set<number>();
  let firstTags: Map<number, number[]> | undefined;
  // Explicit stack of [offset, depth, follow the next-IFD pointer]: no recursion, however the file is built.
  const pending: [number, number, boolean][] = [[first, 0, true]];
  while (pending.length > 0) {
    const [ifd, depth, chain] = pending.pop()!;
    if (visited.has(ifd)) throw new HeaderError('corrupt', `TIFF IFD chain loops: the IFD at byte ${ifd} is reached twice`);
    visited.add(ifd);
    if (visited.size > TIFF_LIMITS.maxIfds) throw new HeaderError('corrupt', `TIFF has more than ${TIFF_LIMITS.maxIfds} IFDs`);
    if (ifd + 2 > src.size) throw new HeaderError('corrupt', `TIFF IFD offset ${ifd} is past the end of the file (${src.size} bytes)`);
    const count = u16(src.read(ifd, 2), 0);
    if (count > TIFF_LIMITS.maxEntriesPerIfd)
      throw new HeaderError(
        'corrupt',
        `TIFF IFD at byte ${ifd} claims ${count} entries (at most ${TIFF_LIMITS.maxEntriesPerIfd} are read)`,
      );
    const entries = src.read(ifd + 2, count * 12 + 4);
    if (entries.length < count * 12) {
      if (firstTags === undefined) return truncatedTiff('its IFD is cut off');
      throw new HeaderError('corrupt', `TIFF IFD at byte ${ifd} is cut off`);
    }
    const tags = new Map<number, number[]>();
    for (let e = 0; e < count; e++) {
      const o = e * 12;
      const tag = u16(entries, o);
      const type = u16(entries, o + 2);
      const n = u32(entries, o + 4);
      const size = TIFF_TYPE_SIZE[type];
      if (!size) continue;
      if (n > TIFF_LIMITS.maxValuesPerTag)
        throw new HeaderError(
          'corrupt',
          `TIFF tag ${tag} at byte ${ifd + 2 + o} claims ${n} values (at most ${TIFF_LIMITS.maxValuesPerTag})`,
        );
      const bytes = size * n;
      const at = bytes <= 4 ? -1 : u32(entries, o + 8);
      if (at >= 0 && at + bytes > src.size) {
        if (firstTags === undefined && TIFF_HEADER_TAGS.has(tag)) return truncatedTiff(`tag ${tag} points past the end of the file`);
        throw new HeaderError(
          'corrupt',
          `TIFF tag ${tag} points to bytes ${at}–${at + bytes}, past the end of the file (${src.size} bytes)`,
        );
      }
      const wanted = (firstTags === undefined && TIFF_HEADER_TAGS.has(tag)) || TIFF_IFD_POINTER_TAGS.has(tag);
      if (!wanted || (size !== 1 && size !== 2 && size !== 4)) continue;
      const data = at < 0 ? entries.subarray(o + 8, o + 12) : src.read(at, bytes);
      const values: number[] = [];
      for (let k = 0; k < n; k++) values.push(size === 1 ? data[k] : size === 2 ? u16(data, k * 2) : u32(data, k * size));
      if (TIFF_IFD_POINTER_TAGS.has(tag)) {
        if (depth + 1 > TIFF_LIMITS.maxSubIfdDepth)
          throw new HeaderError('corrupt', `TIFF sub-IFDs are nested more than ${TIFF_LIMITS.maxSubIfdDepth} deep`);
        for (const offset of values) pending.push([offset, depth + 1, false]);
      }
      tags.set(tag, values);
    }
    if (firstTags === undefined) firstTags = tags;
    if (chain && entries.length >= count * 12 + 4) {
      const next = u32(entries, count * 12);
      if (next !== 0) pending.push([next, depth, true]);
    }
  }
  return firstTags!;
}

function readTiff(src: ByteSource): ImageHeader {
  const tags = walkTiff(src);
  const width = tags.get(256)?.[0];
  const height = tags.get(257)?.[0];
  if (!width || !height) throw new HeaderError('corrupt', 'TIFF without ImageWidth/ImageLength');
  const photometric = tags.get(262)?.[0];
  const samples = tags.get(277)?.[0] ?? 1;
  const header: ImageHeader = {
    format: 'tiff',
    width,
    height,
    bitDepth: tags.get(258)?.[0] ?? 1,
    channels: photometric === 3 ? 1 : samples,
  };
  const offsets = tags.get(273) ?? tags.get(324) ?? [];
  const counts = tags.get(279) ?? tags.get(325) ?? [];
  let end = 0;
  for (let k = 0; k < Math.min(offsets.length, counts.length); k++) end = Math.max(end, offsets[k] + counts[k]);
  if (end > src.size) header.truncated = `its image data ends at byte ${end} but the file has ${src.size} bytes`;
  return header;
}

function truncatedTiff(why: string): never {
  throw new HeaderError('truncated', `the TIFF is cut off: ${why}`);
}

function readBmp(src: ByteSource): ImageHeader {
  const b = src.read(0, 54);
  if (b.length < 30) throw new HeaderError('corrupt', 'BMP header is cut off');
  const declaredSize = b.readUInt32LE(2);
  const dataOffset = b.readUInt32LE(10);
  const dib = b.readUInt32LE(14);
  let width: number;
  let height: number;
  let bits: number;
  if (dib === 12) {
    width = b.readUInt16LE(18);
    height = b.readUInt16LE(20);
    bits = b.readUInt16LE(24);
  } else {
    if (b.length < 34) throw new HeaderError('corrupt', 'BMP header is cut off');
    width = b.readInt32LE(18);
    height = Math.abs(b.readInt32LE(22));
    bits = b.readUInt16LE(28);
  }
  if (width <= 0 || !height || !bits) throw new HeaderError('corrupt', `BMP header is invalid (${width}×${height}, ${bits} bits)`);
  const channels = bits === 32 ? 4 : bits >= 16 ? 3 : 1;
  const header: ImageHeader = { format: 'bmp', width, height, bitDepth: bits >= 16 ? (bits === 16 ? 5 : 8) : bits, channels };
  const compression = dib >= 40 ? b.readUInt32LE(30) : 0;
  const pixelEnd = compression === 0 ? dataOffset + Math.ceil((width * bits) / 32) * 4 * height : declaredSize;
  if (pixelEnd > src.size || declaredSize > src.size)
    header.truncated = `its header says ${Math.max(pixelEnd, declaredSize)} bytes but the file has ${src.size}`;
  return header;
}

function readWebp(src: ByteSource): ImageHeader {
  const b = src.read(0, 30);
  if (b.length < 30) throw new HeaderError('corrupt', 'WebP header is cut off');
  const chunk = b.toString('latin1', 12, 16);
  let header: ImageHeader;
  if (chunk === 'VP8X') {
    header = {
      format: 'webp',
      width: 1 + b.readUIntLE(24, 3),
      height: 1 + b.readUIntLE(27, 3),
      bitDepth: 8,
      channels: b[20] & 0x10 ? 4 : 3,
    };
  } else if (chunk === 'VP8L') {
    const bits = b.readUInt32LE(21);
    header = {
      format: 'webp',
      width: 1 + (bits & 0x3fff),
      height: 1 + ((bits >> 14) & 0x3fff),
      bitDepth: 8,
      channels: (bits >> 28) & 1 ? 4 : 3,
    };
  } else if (chunk === 'VP8 ') {
    header = { format: 'webp', width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff, bitDepth: 8, channels: 3 };
  } else throw new HeaderError('corrupt', `WebP with unknown first chunk "${chunk}"`);
  const riffEnd = 8 + b.readUInt32LE(4);
  if (riffEnd > src.size) header.truncated = `its RIFF header says ${riffEnd} bytes but the file has ${src.size}`;
  return header;
}

/** A ByteSource over the head bytes the probe already read, falling back to positional reads of the file. */
export function headSource(file: string, head: Buffer, size: number): ByteSource {
  return {
    size,
    read(offset, length) {
      if (offset + length <= head.length) return head.subarray(offset, offset + length);
      if (offset >= size) return Buffer.alloc(0);
      const fd = fs.openSync(file, 'r');
      try {
        const out = Buffer.alloc(Math.min(length, size - offset));
        const n = fs.readSync(fd, out, 0, out.length, offset);
        return out.subarray(0, n);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

/** A file in memory as the header walk reads it: the bytes, and the tail and PNG walk hints from the same buffer. */
function inMemory(buffer: Buffer): [ByteSource, HeaderHints] {
  const source: ByteSource = { size: buffer.length, read: (o, l) => buffer.subarray(o, Math.min(buffer.length, o + l)) };
  return [
    source,
    { tail: buffer.subarray(Math.max(0, buffer.length - 64)), png: sniffFormat(buffer) === 'png' ? walkPngChunks(buffer) : undefined },
  ];
}

/** Header of a file read directly (masks, tests). */
export function readImageHeaderFromBuffer(buffer: Buffer): ImageHeader {
  return readImageHeader(...inMemory(buffer));
}

/** Same rule as the probe worker's streaming walk, over a buffer in memory. */
export function walkPngChunks(buffer: Buffer): PngChunkStatus {
  let offset = 8;
  while (offset + 8 <= buffer.length) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString('latin1', offset + 4, offset + 8);
    if (length > 0x7fffffff || !/^[A-Za-z]{4}$/.test(type)) return 'corrupt';
    offset += 12 + length;
    if (type === 'IEND') return offset <= buffer.length ? 'complete' : 'truncated';
  }
  return 'truncated';
}

/** The most pixels a decoder is handed: sharp's own default limitInputPixels (0x3FFF × 0x3FFF). */
export const MAX_DECODE_PIXELS = 0x3fff * 0x3fff;

/**
 * The gate in front of every decoder (pngjs, utif2, sharp): the bounded header and IFD walk above, and a pixel
 * count a decoder can allocate. Throws a HeaderError saying what is wrong; the caller names the file.
 */
export function checkBeforeDecode(src: ByteSource, hints: HeaderHints): ImageHeader {
  let header: ImageHeader;
  try {
    header = readImageHeader(src, hints);
  } catch (error) {
    // A header so short that a field read runs off the buffer.
    // By name: Buffer's reads throw the RangeError of Node's own realm, which a sandbox (jest's vm) does not share.
    if ((error as Error | undefined)?.name === 'RangeError')
      throw new HeaderError('corrupt', `the header is cut off or corrupt (${(error as Error).message})`);
    throw error;
  }
  if (header.width * header.height > MAX_DECODE_PIXELS) {
    throw new HeaderError(
      'corrupt',
      `the image says it is ${header.width}×${header.height} pixels, more than the ${MAX_DECODE_PIXELS} a decoder is given`,
    );
  }
  return header;
}

/** checkBeforeDecode over a file in memory. */
export function checkBufferBeforeDecode(buffer: Buffer): ImageHeader {
  return checkBeforeDecode(...inMemory(buffer));
}

/** checkBeforeDecode over a file on disk, reading only the bytes the walk needs. */
export function checkFileBeforeDecode(file: string): ImageHeader {
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, 'r');
  let head: Buffer;
  let tail: Buffer;
  try {
    head = Buffer.alloc(Math.min(size, 64 * 1024));
    fs.readSync(fd, head, 0, head.length, 0);
    tail = Buffer.alloc(Math.min(size, 64));
    fs.readSync(fd, tail, 0, tail.length, Math.max(0, size - tail.length));
  } finally {
    fs.closeSync(fd);
  }
  // A PNG's chunk walk needs the whole file; masks and model inputs are small enough to read for it.
  const png = sniffFormat(head) === 'png' ? walkPngChunks(fs.readFileSync(file)) : undefined;
  return checkBeforeDecode(headSource(file, head, size), { tail, png });
}
