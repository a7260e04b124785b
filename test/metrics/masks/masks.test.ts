import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { StepError } from '../../../shared/core/errors';
import {
  countLabels,
  decodeLabelImage,
  diceScore,
  evaluateMaskFolders,
  evaluateMaskPairs,
  iouScore,
  reduceScores,
  type EmptyRule,
  type Reduction,
} from '../../../shared/metrics';
import { SHARED_FIXTURES } from '../../support/paths';

const FIXTURES = SHARED_FIXTURES;

interface MonaiCase {
  name: string;
  metric: 'dice' | 'iou';
  y_pred: number[][][][];
  y: number[][][][];
  expected: unknown;
  include_background: boolean;
  reduction: Reduction;
  ignore_empty?: boolean;
  expected_is_nan_mask?: boolean;
}

/** Per (image, channel) scores of MONAI's one-hot [B, C, H, W] tensors, each channel counted as a binary mask. */
function monaiScores(c: MonaiCase): number[][] {
  const rule: EmptyRule = c.ignore_empty === false ? 'one' : 'skip-empty-truth';
  return c.y_pred.map((pred, b) =>
    pred
      .map((channel, ch) => {
        const p = Uint8Array.from(channel.flat());
        const t = Uint8Array.from(c.y[b][ch].flat());
        const counts = countLabels(t, p, true);
        const f = c.metric === 'dice' ? diceScore : iouScore;
        return f(counts.intersection[1], counts.predicted[1], counts.truth[1], rule);
      })
      .slice(c.include_background ? 0 : 1),
  );
}

describe("MONAI's Dice and IoU test cases (shared/fixtures/coco-real/monai_dice_cases.json)", () => {
  const cases = (JSON.parse(fs.readFileSync(path.join(FIXTURES, 'coco-real/monai_dice_cases.json'), 'utf8')) as { cases: MonaiCase[] })
    .cases;
  it('has 22 cases', () => expect(cases).toHaveLength(22));
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const scores = monaiScores(c);
    if (c.expected_is_nan_mask) {
      expect(scores.map((r) => r.map(Number.isNaN))).toEqual(c.expected);
      return;
    }
    const got = reduceScores(scores, c.reduction);
    const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
    const want = flat(c.expected);
    const have = flat(got);
    expect(have).toHaveLength(want.length);
    have.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-4));
  });
});

describe('empty-mask rule', () => {
  it.each([
    ['skip', NaN, 0],
    ['one', 1, 0],
    ['zero', 0, 0],
    ['skip-empty-truth', NaN, NaN],
  ] as const)('%s: both empty -> %s, predicted but absent -> %s', (rule, bothEmpty, falsePositive) => {
    expect(diceScore(0, 0, 0, rule)).toBe(bothEmpty);
    expect(diceScore(0, 5, 0, rule)).toBe(falsePositive);
    expect(iouScore(0, 0, 0, rule)).toBe(bothEmpty);
    // with ground truth present every rule scores normally: 2*3/(4+5), 3/(4+5-3)
    expect(diceScore(3, 4, 5, rule)).toBe(6 / 9);
    expect(iouScore(3, 4, 5, rule)).toBe(0.5);
  });
});

describe('label counting', () => {
  it('matches a naive count on 8-bit, 16-bit and binary masks of odd length', () => {
    let seed = 7;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const n = 10007;
    // runs of equal labels, like real masks, plus noise
    const truth = new Uint8Array(n);
    const pred = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      truth[i] = Math.floor(i / 500) % 4;
      pred[i] = rand() < 0.1 ? Math.floor(rand() * 5) : truth[i];
    }
    const naive = (t: ArrayLike<number>, p: ArrayLike<number>, size: number) => {
      const inter = new Array(size).fill(0),
        pr = new Array(size).fill(0),
        tr = new Array(size).fill(0);
      for (let i = 0; i < t.length; i++) {
        pr[p[i]]++;
        tr[t[i]]++;
        if (p[i] === t[i]) inter[p[i]]++;
      }
      return { inter, pr, tr };
    };
    const want = naive(truth, pred, 5);
    const c8 = countLabels(truth, pred);
    expect(Array.from(c8.intersection.subarray(0, 5))).toEqual(want.inter);
    expect(Array.from(c8.predicted.subarray(0, 5))).toEqual(want.pr);
    expect(Array.from(c8.truth.subarray(0, 5))).toEqual(want.tr);
    const c16 = countLabels(
      Uint16Array.from(truth, (v) => v * 1000),
      Uint16Array.from(pred, (v) => v * 1000),
    );
    expect(c16.size).toBe(4001);
    expect(c16.intersection[3000]).toBe(want.inter[3]);
    const bin = countLabels(truth, pred, true);
    const fgT = truth.reduce((s, v) => s + (v ? 1 : 0), 0);
    expect(bin.truth[1]).toBe(fgT);
    expect(bin.intersection[1]).toBe(Array.from(truth).filter((v, i) => v && pred[i]).length);
  });

  it('treats any non-zero value as foreground in binary mode', () => {
    const c = countLabels(Uint8Array.of(255, 255, 0, 0, 7, 9, 9, 9, 0), Uint8Array.of(1, 0, 1, 0, 7, 9, 9, 9, 3), true);
    expect([c.intersection[1], c.predicted[1], c.truth[1], c.truth[0]]).toEqual([5, 7, 6, 3]);
  });

  it('refuses labels above 4095', () => {
    expect(() => countLabels(Uint16Array.of(0, 5000), Uint16Array.of(0, 1))).toThrow('label 5000 is too large');
  });
});

describe('Dice / IoU averages', () => {
  const img = (w: number, rows: number[][]) => ({ width: w, height: rows.length, data: Uint8Array.from(rows.flat()) });
  it('computes per class, per image, macro, micro and MONAI-mean by hand', () => {
    // image a: class 1 truth 2 px, predicted 2 px, overlap 1 -> dice 0.5; class 2 absent in both (skipped)
    // image b: class 1 truth 1 px, predicted 1 px, overlap 1 -> dice 1; class 2 truth 2, predicted 1, overlap 1 -> 2/3
    const r = evaluateMaskPairs([
      {
        name: 'a',
        truth: img(2, [
          [1, 1],
          [0, 0],
        ]),
        prediction: img(2, [
          [0, 1],
          [1, 0],
        ]),
      },
      {
        name: 'b',
        truth: img(2, [
          [1, 2],
          [2, 0],
        ]),
        prediction: img(2, [
          [1, 2],
          [0, 0],
        ]),
      },
    ]);
    expect(r.classes).toEqual([1, 2]);
    expect(r.perClass.map((c) => [c.label, c.dice, c.images])).toEqual([
      [1, 0.75, 2],
      [2, 2 / 3, 1],
    ]);
    expect(r.dice).toBeCloseTo((0.75 + 2 / 3) / 2, 15);
    // micro class 1: 2*(1+1)/(3+3) = 2/3; pooled over classes: 2*3/(4+5)
    expect(r.perClass[0].microDice).toBeCloseTo(2 / 3, 15);
    expect(r.microDice).toBeCloseTo(6 / 9, 15);
    expect(r.perImage.map((p) => p.dice)).toEqual([0.5, (1 + 2 / 3) / 2]);
    expect(r.meanDice).toBeCloseTo((0.5 + (1 + 2 / 3) / 2) / 2, 15);
    // with 'one', the empty class 2 of image a counts 1
    const one = evaluateMaskPairs(
      [
        {
          name: 'a',
          truth: img(2, [
            [1, 1],
            [0, 0],
          ]),
          prediction: img(2, [
            [0, 1],
            [1, 0],
          ]),
        },
      ],
      { classes: [1, 2], emptyRule: 'one' },
    );
    expect(one.perClass.map((c) => c.dice)).toEqual([0.5, 1]);
  });

  it('rejects a prediction whose size differs from the ground truth', () => {
    expect(() => evaluateMaskPairs([{ name: 'a', truth: img(2, [[1, 1]]), prediction: img(1, [[1], [1]]) }])).toThrow(
      'Mask a: prediction is 1x2 but the ground truth is 2x1.',
    );
  });
});

/** A minimal little-endian, uncompressed, single-strip greyscale TIFF. */
function tiff(width: number, height: number, bits: 8 | 16, values: number[]): Buffer {
  const bytes = (width * height * bits) / 8;
  const tags: [number, number, number, number][] = [
    [256, 3, 1, width],
    [257, 3, 1, height],
    [258, 3, 1, bits],
    [259, 3, 1, 1],
    [262, 3, 1, 1],
    [273, 4, 1, 8],
    [277, 3, 1, 1],
    [278, 3, 1, height],
    [279, 4, 1, bytes],
  ];
  const ifd = 8 + bytes;
  const buf = Buffer.alloc(ifd + 2 + tags.length * 12 + 4);
  buf.write('II', 0, 'ascii');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(ifd, 4);
  values.forEach((v, i) => (bits === 8 ? buf.writeUInt8(v, 8 + i) : buf.writeUInt16LE(v, 8 + i * 2)));
  buf.writeUInt16LE(tags.length, ifd);
  tags.forEach(([tag, type, count, value], i) => {
    const o = ifd + 2 + i * 12;
    buf.writeUInt16LE(tag, o);
    buf.writeUInt16LE(type, o + 2);
    buf.writeUInt32LE(count, o + 4);
    if (type === 3) buf.writeUInt16LE(value, o + 8);
    else buf.writeUInt32LE(value, o + 8);
  });
  return buf;
}

function png(width: number, height: number, values: number[], bitDepth: 8 | 16): Buffer {
  const data = bitDepth === 16 ? Buffer.alloc(width * height * 2) : Buffer.from(values);
  // pngjs takes 16-bit input in platform (little-endian) order and writes it big-endian, as PNG stores it
  if (bitDepth === 16) values.forEach((v, i) => data.writeUInt16LE(v, i * 2));
  return PNG.sync.write({ width, height, data } as unknown as PNG, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth });
}

/** A PNG from its header, extra chunks and raw (filter byte + pixels) scanlines. */
function handPng(ihdr: Buffer, extra: [string, Buffer][], scanlines: Buffer): Buffer {
  const crc = (b: Buffer) => {
    let c = ~0;
    for (const byte of b) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return ~c >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    ...extra.map(([t, d]) => chunk(t, d)),
    chunk('IDAT', zlib.deflateSync(scanlines)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('reading label images', () => {
  it('reads 8- and 16-bit greyscale PNG values as labels', () => {
    expect(Array.from(decodeLabelImage(png(3, 1, [0, 7, 255], 8), 'a.png').data)).toEqual([0, 7, 255]);
    const p16 = decodeLabelImage(png(2, 2, [0, 300, 65535, 1], 16), 'a.png');
    expect(p16.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(p16.data)).toEqual([0, 300, 65535, 1]);
  });

  it('reads palette PNG indices, not colours', () => {
    // 2x1 palette image: indices 2, 1 into a 3-colour palette
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(2, 0);
    ihdr.writeUInt32BE(1, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 3; // palette
    const file = handPng(ihdr, [['PLTE', Buffer.from([0, 0, 0, 255, 0, 0, 0, 255, 0])]], Buffer.from([0, 2, 1]));
    expect(Array.from(decodeLabelImage(file, 'p.png').data)).toEqual([2, 1]);
  });

  it('reads palette indices whatever the palette holds: repeated colours, transparency, 4-bit packing', () => {
    // 3x1, 8-bit: indices 0, 1, 2 into a palette whose entries are all the same colour, with a tRNS chunk
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(3, 0);
    ihdr.writeUInt32BE(1, 4);
    ihdr[8] = 8;
    ihdr[9] = 3;
    const same = Buffer.from([9, 9, 9, 9, 9, 9, 9, 9, 9]);
    expect(
      Array.from(
        decodeLabelImage(
          handPng(
            ihdr,
            [
              ['PLTE', same],
              ['tRNS', Buffer.from([0, 128, 255])],
            ],
            Buffer.from([0, 0, 1, 2]),
          ),
          'same.png',
        ).data,
      ),
    ).toEqual([0, 1, 2]);
    // 4x1, 4-bit: indices 5, 0, 15, 3 packed two per byte, into a 16-entry all-black palette
    const ihdr4 = Buffer.from(ihdr);
    ihdr4.writeUInt32BE(4, 0);
    ihdr4[8] = 4;
    expect(
      Array.from(decodeLabelImage(handPng(ihdr4, [['PLTE', Buffer.alloc(48)]], Buffer.from([0, 0x50, 0xf3])), 'four.png').data),
    ).toEqual([5, 0, 15, 3]);
  });

  it('keeps the label of a grey tRNS (transparent) value', () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(3, 0);
    ihdr.writeUInt32BE(1, 4);
    ihdr[8] = 8;
    ihdr[9] = 0; // greyscale
    const file = handPng(ihdr, [['tRNS', Buffer.from([0, 5])]], Buffer.from([0, 0, 5, 7]));
    expect(Array.from(decodeLabelImage(file, 't.png').data)).toEqual([0, 5, 7]);
  });

  it('reads 8- and 16-bit TIFF', () => {
    expect(Array.from(decodeLabelImage(tiff(2, 2, 8, [0, 1, 2, 3]), 'a.tif').data)).toEqual([0, 1, 2, 3]);
    const t16 = decodeLabelImage(tiff(3, 1, 16, [1, 513, 4000]), 'a.tiff');
    expect(Array.from(t16.data)).toEqual([1, 513, 4000]);
    expect([t16.width, t16.height]).toEqual([3, 1]);
  });

  it('rejects colour PNGs and other extensions', () => {
    const rgb = PNG.sync.write({ width: 1, height: 1, data: Buffer.from([10, 20, 30, 255]) } as unknown as PNG);
    expect(() => decodeLabelImage(rgb, 'c.png')).toThrow('Mask c.png is an RGB PNG with colour at pixel (0, 0)');
    expect(() => decodeLabelImage(Buffer.alloc(4), 'c.jpg')).toThrow('has extension ".jpg"');
  });
});

describe('mask folders', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-masks-'));
    for (const d of ['gt', 'pred']) fs.mkdirSync(path.join(dir, d));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const put = (rel: string, buf: Buffer) => fs.writeFileSync(path.join(dir, rel), buf);

  it('pairs masks by name across PNG and TIFF and scores them', async () => {
    put('gt/a.png', png(2, 2, [1, 1, 0, 0], 8));
    put('pred/a.tif', tiff(2, 2, 8, [1, 0, 0, 0]));
    put('gt/b.png', png(2, 2, [0, 0, 0, 2], 8));
    put('pred/b.png', png(2, 2, [0, 0, 0, 2], 8));
    const r = await evaluateMaskFolders({ groundTruth: path.join(dir, 'gt'), predictions: path.join(dir, 'pred') });
    expect(r.images).toEqual(['a', 'b']);
    expect(r.perClass.map((c) => [c.label, c.dice])).toEqual([
      [1, 2 / 3],
      [2, 1],
    ]);
  });

  it('names the ground truth without a prediction, the prediction without ground truth, and a size mismatch', async () => {
    put('gt/a.png', png(2, 2, [1, 1, 0, 0], 8));
    put('gt/b.png', png(2, 2, [1, 1, 0, 0], 8));
    put('pred/a.png', png(2, 2, [1, 1, 0, 0], 8));
    const gt = path.join(dir, 'gt');
    const pred = path.join(dir, 'pred');
    await expect(evaluateMaskFolders({ groundTruth: gt, predictions: pred })).rejects.toThrow(
      `Predictions folder ${pred} has no mask for ground truth ${path.join(gt, 'b.png')} ("b").`,
    );
    put('pred/b.png', png(1, 2, [1, 1], 8));
    await expect(evaluateMaskFolders({ groundTruth: gt, predictions: pred })).rejects.toThrow(
      `Mask ${path.join(pred, 'b.png')} is 1x2 but its ground truth ${path.join(gt, 'b.png')} is 2x2.`,
    );
    put('pred/b.png', png(2, 2, [1, 1, 0, 0], 8));
    put('pred/c.png', png(2, 2, [1, 1, 0, 0], 8));
    const err = await evaluateMaskFolders({ groundTruth: gt, predictions: pred }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).message).toBe(`Prediction ${path.join(pred, 'c.png')} ("c") has no ground truth in ${gt}.`);
  });
});
