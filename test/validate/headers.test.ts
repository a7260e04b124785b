import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import * as UTIF from 'utif2';
import { decodeRleString } from '../../shared/validate/geometry';
import { HeaderError, readImageHeaderFromBuffer, walkPngChunks } from '../../shared/validate/image-header';
import { readMaskValues } from '../../shared/validate/masks';
import { maskPng, pixels, pngImage, tiffImage } from './fixtures';
import { SHARED_FIXTURES } from '../support/paths';

const FIXTURES = SHARED_FIXTURES;

/** A 24-bit BMP, rows padded to 4 bytes, bottom-up. */
function bmp(width: number, height: number): Buffer {
  const row = Math.ceil((width * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + row * height);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  return buf;
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(zlib.crc32(body), 8 + data.length);
  return out;
}

/** An 8-bit palette PNG (colour type 3), which pngjs can read but not write. */
function palettePng(width: number, height: number, palette: [number, number, number][], index: (x: number, y: number) => number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 3;
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = index(x, y);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('PLTE', Buffer.from(palette.flat())),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('image headers', () => {
  it('PNG: size, bit depth and channels for each colour type', () => {
    expect(readImageHeaderFromBuffer(pngImage(64, 48, { seed: 1 }))).toEqual({
      format: 'png',
      width: 64,
      height: 48,
      bitDepth: 8,
      channels: 4,
    });
    expect(readImageHeaderFromBuffer(pngImage(20, 10, { seed: 1, colorType: 2 }))).toEqual({
      format: 'png',
      width: 20,
      height: 10,
      bitDepth: 8,
      channels: 3,
    });
    expect(readImageHeaderFromBuffer(maskPng(20, 10, () => 3, 16))).toEqual({
      format: 'png',
      width: 20,
      height: 10,
      bitDepth: 16,
      channels: 1,
    });
    expect(readImageHeaderFromBuffer(palettePng(5, 4, [[0, 0, 0]], () => 0))).toEqual({
      format: 'png',
      width: 5,
      height: 4,
      bitDepth: 8,
      channels: 1,
    });
  });

  it('PNG truncation: IEND must be inside the file', () => {
    const png = pngImage(64, 48, { seed: 1 });
    expect(walkPngChunks(png)).toBe('complete');
    expect(walkPngChunks(png.subarray(0, png.length - 1))).toBe('truncated');
    expect(walkPngChunks(png.subarray(0, 40))).toBe('truncated');
    expect(readImageHeaderFromBuffer(png.subarray(0, png.length - 20)).truncated).toBe('the PNG ends before its IEND chunk');
    const broken = Buffer.from(png);
    broken.write('12ab', 37, 'latin1');
    expect(walkPngChunks(broken)).toBe('corrupt');
  });

  it('JPEG: frame size, precision and components; truncation by the EOI marker', async () => {
    const rgb = await sharp(pixels(33, 17, { seed: 1 }), { raw: { width: 33, height: 17, channels: 4 } })
      .removeAlpha()
      .jpeg()
      .toBuffer();
    const grey = await sharp(pixels(8, 9, { seed: 1 }), { raw: { width: 8, height: 9, channels: 4 } })
      .removeAlpha()
      .toColourspace('b-w')
      .jpeg()
      .toBuffer();
    expect(readImageHeaderFromBuffer(rgb)).toEqual({ format: 'jpeg', width: 33, height: 17, bitDepth: 8, channels: 3 });
    expect(readImageHeaderFromBuffer(grey)).toMatchObject({ width: 8, height: 9, channels: 1 });
    expect(readImageHeaderFromBuffer(rgb.subarray(0, rgb.length - 10)).truncated).toBe('the JPEG does not end with an EOI marker (FFD9)');
    expect(() => readImageHeaderFromBuffer(rgb.subarray(0, 30))).toThrow('the JPEG ends before its frame header (SOF)');
  });

  it('TIFF: tags from the first IFD; strip data past the end is truncation', () => {
    const tif = tiffImage(40, 30, { seed: 1 });
    expect(readImageHeaderFromBuffer(tif)).toEqual({ format: 'tiff', width: 40, height: 30, bitDepth: 8, channels: 4 });
    const cut = readImageHeaderFromBuffer(tif.subarray(0, tif.length - 100));
    expect(cut.truncated).toMatch(/^its image data ends at byte \d+ but the file has \d+ bytes$/);
  });

  it('BMP and WebP', async () => {
    expect(readImageHeaderFromBuffer(bmp(5, 3))).toEqual({ format: 'bmp', width: 5, height: 3, bitDepth: 8, channels: 3 });
    expect(readImageHeaderFromBuffer(bmp(5, 3).subarray(0, 70)).truncated).toBe('its header says 102 bytes but the file has 70');
    const raw = { raw: { width: 30, height: 20, channels: 4 as const } };
    expect(
      readImageHeaderFromBuffer(
        await sharp(pixels(30, 20, { seed: 1 }), raw)
          .webp({ lossless: true })
          .toBuffer(),
      ),
    ).toMatchObject({ format: 'webp', width: 30, height: 20 });
    expect(
      readImageHeaderFromBuffer(
        await sharp(pixels(30, 20, { seed: 1 }), raw)
          .removeAlpha()
          .webp()
          .toBuffer(),
      ),
    ).toMatchObject({ format: 'webp', width: 30, height: 20, channels: 3 });
  });

  it('other formats are reported as unsupported, by name when known', () => {
    const gif = Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(30)]);
    expect(() => readImageHeaderFromBuffer(gif)).toThrow(
      new HeaderError('unsupported', 'GIF is not supported (use PNG, JPEG, TIFF, BMP or WebP)'),
    );
    expect(() => readImageHeaderFromBuffer(Buffer.from('this is a text file, not an image'))).toThrow(
      'not a PNG, JPEG, TIFF, BMP or WebP file',
    );
  });
});

describe('mask label values', () => {
  it('8- and 16-bit grey PNG values, counted per pixel', () => {
    expect(
      readMaskValues(
        maskPng(4, 2, (x) => (x < 1 ? 0 : 7)),
        'png',
      ),
    ).toEqual({
      width: 4,
      height: 2,
      histogram: new Map([
        [0, 2],
        [7, 6],
      ]),
    });
    expect(
      readMaskValues(
        maskPng(4, 2, (x, y) => (y === 0 ? 1000 : 65535), 16),
        'png',
      ).histogram,
    ).toEqual(
      new Map([
        [1000, 4],
        [65535, 4],
      ]),
    );
  });

  it('palette PNGs give palette indices, not colours', () => {
    const png = palettePng(
      6,
      2,
      [
        [0, 0, 0],
        [255, 0, 0],
        [0, 255, 0],
      ],
      (x) => (x < 2 ? 0 : x < 5 ? 2 : 1),
    );
    expect(readMaskValues(png, 'png').histogram).toEqual(
      new Map([
        [0, 4],
        [1, 2],
        [2, 6],
      ]),
    );
  });

  it('TIFF masks read the first sample of each pixel', () => {
    const rgba = new Uint8Array(3 * 2 * 4);
    for (let p = 0; p < 6; p++) rgba.set([p < 3 ? 1 : 4, 200, 200, 255], p * 4);
    const tif = Buffer.from(UTIF.encodeImage(rgba, 3, 2));
    expect(readMaskValues(tif, 'tiff').histogram).toEqual(
      new Map([
        [1, 3],
        [4, 3],
      ]),
    );
  });
});

describe('COCO compressed RLE', () => {
  it('every compressed RLE pycocotools wrote into the fixtures decodes to height × width pixels', () => {
    const files = ['coco/segm-mixed/gt.json', 'coco-real/cocoapi_val2014_100/instances_val2014_fakesegm100_results.json'];
    let checked = 0;
    for (const file of files) {
      const json = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8'));
      const anns: { segmentation?: { size: [number, number]; counts: string | number[] } }[] = Array.isArray(json)
        ? json
        : json.annotations;
      for (const a of anns) {
        const seg = a.segmentation;
        if (!seg || Array.isArray(seg) || typeof seg.counts !== 'string') continue;
        const counts = decodeRleString(seg.counts) as number[];
        expect(counts.reduce((s, c) => s + c, 0)).toBe(seg.size[0] * seg.size[1]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(700);
    expect(decodeRleString('a~')).toBeUndefined();
  });
});
