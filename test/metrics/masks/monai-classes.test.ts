/**
 * Explicit classes against MONAI 1.6.1 itself (from the pinned Python test environment), not against copied
 * numbers: a label declared but absent from every image must score as MONAI scores an all-zero one-hot channel,
 * under both ignore_empty settings. Predictions are written as palette PNGs whose palette repeats colours, so the
 * read-by-index path is exercised on the way.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { evaluateMaskFolders, type EmptyRule } from '../../../shared/metrics';
import { Xoshiro128 } from '../../../shared/core/random';
import { requirePython } from '../../support/python-env';

const W = 24;
const H = 16;
const B = 8;
const NUM_CLASSES = 6; // labels 0..5; label 3 appears nowhere, label 5 only in some predictions

function masks(): { gt: number[][]; pred: number[][] } {
  const r = new Xoshiro128(20);
  const gt: number[][] = [];
  const pred: number[][] = [];
  for (let b = 0; b < B; b++) {
    const g = new Array<number>(W * H).fill(0);
    const p = new Array<number>(W * H).fill(0);
    // a few rectangles per image; labels 1, 2, 4 in the truth (label 2 missing from some images)
    for (const label of [1, 2, 4]) {
      if (label === 2 && b % 3 === 0) continue;
      const x0 = r.nextBelow(W - 6),
        y0 = r.nextBelow(H - 5),
        w = 3 + r.nextBelow(5),
        h = 2 + r.nextBelow(4);
      for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) g[y * W + x] = label;
      // the prediction: the same box shifted, sometimes missed, sometimes labelled 5
      if (r.nextBelow(5) === 0) continue;
      const dx = r.nextBelow(3) - 1,
        dy = r.nextBelow(3) - 1,
        out = b % 4 === 1 && label === 4 ? 5 : label;
      for (let y = Math.max(0, y0 + dy); y < Math.min(H, y0 + h + dy); y++)
        for (let x = Math.max(0, x0 + dx); x < Math.min(W, x0 + w + dx); x++) p[y * W + x] = out;
    }
    // label 2 predicted where the truth has none
    if (b % 3 === 0) for (let x = 0; x < 3; x++) p[x] = 2;
    gt.push(g);
    pred.push(p);
  }
  return { gt, pred };
}

function crcChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const c = Buffer.alloc(4);
  c.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, c]);
}

/** An 8-bit palette PNG whose 16 entries are all black except entry 0: the colours say nothing about the labels. */
function palettePng(values: number[]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr[8] = 8;
  ihdr[9] = 3;
  const plte = Buffer.alloc(16 * 3);
  plte[0] = plte[1] = plte[2] = 255;
  const rows: Buffer[] = [];
  for (let y = 0; y < H; y++) rows.push(Buffer.from([0, ...values.slice(y * W, (y + 1) * W)]));
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    crcChunk('IHDR', ihdr),
    crcChunk('PLTE', plte),
    crcChunk('tRNS', Buffer.alloc(16, 255)),
    crcChunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    crcChunk('IEND', Buffer.alloc(0)),
  ]);
}

const MONAI = `
import json, sys, torch
from monai.metrics import DiceMetric, MeanIoU, compute_dice, compute_iou
d = json.load(open(sys.argv[1]))
def onehot(a):
    t = torch.tensor(a).reshape(len(a), ${H}, ${W})
    return torch.nn.functional.one_hot(t, ${NUM_CLASSES}).permute(0, 3, 1, 2).float()
y, p = onehot(d["gt"]), onehot(d["pred"])
out = {}
for ignore in (False, True):
    res = {}
    for name, raw, cls in (("dice", compute_dice, DiceMetric), ("iou", compute_iou, MeanIoU)):
        m = raw(p, y, include_background=False, ignore_empty=ignore)
        res[name + "_matrix"] = [[None if v != v else v for v in row] for row in m.tolist()]
        for red in ("mean", "mean_batch"):
            metric = cls(include_background=False, reduction=red, get_not_nans=True, ignore_empty=ignore)
            metric(y_pred=p, y=y)
            value, not_nans = metric.aggregate()
            res[name + "_" + red] = value.tolist()
            res[name + "_" + red + "_not_nans"] = not_nans.tolist()
    out[str(ignore)] = res
print(json.dumps(out))
`;

describe('explicit classes against MONAI (both ignore_empty settings)', () => {
  let dir: string;
  let monai: Record<string, Record<string, unknown>>;
  beforeAll(() => {
    const python = requirePython(['torch', 'monai']);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-monai-'));
    const { gt, pred } = masks();
    fs.mkdirSync(path.join(dir, 'gt'));
    fs.mkdirSync(path.join(dir, 'pred'));
    gt.forEach((g, b) => {
      fs.writeFileSync(
        path.join(dir, 'gt', `m${b}.png`),
        PNG.sync.write({ width: W, height: H, data: Buffer.from(g) } as unknown as PNG, {
          colorType: 0,
          inputColorType: 0,
          inputHasAlpha: false,
          bitDepth: 8,
        }),
      );
      fs.writeFileSync(path.join(dir, 'pred', `m${b}.png`), palettePng(pred[b]));
    });
    fs.writeFileSync(path.join(dir, 'masks.json'), JSON.stringify({ gt, pred }));
    fs.writeFileSync(path.join(dir, 'score_with_monai.py'), MONAI);
    const r = spawnSync(python, [path.join(dir, 'score_with_monai.py'), path.join(dir, 'masks.json')], {
      encoding: 'utf8',
      timeout: 240_000,
    });
    if (r.status !== 0) throw new Error(`MONAI script failed: ${r.stderr}`);
    monai = JSON.parse(r.stdout);
  }, 300_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const classes = [1, 2, 3, 4, 5];
  it.each([
    ['one', 'False'],
    ['skip-empty-truth', 'True'],
  ] as [EmptyRule, string][])('empty rule %s = ignore_empty=%s', async (rule, ignore) => {
    const ev = await evaluateMaskFolders({
      groundTruth: path.join(dir, 'gt'),
      predictions: path.join(dir, 'pred'),
      classes,
      emptyRule: rule,
    });
    expect(ev.classes).toEqual(classes);
    const m = monai[ignore];
    for (const metric of ['dice', 'iou'] as const) {
      const ours = metric === 'dice' ? ev.diceMatrix : ev.iouMatrix;
      const theirs = m[`${metric}_matrix`] as (number | null)[][];
      // every (image, class), NaN (left out) exactly where MONAI has NaN
      theirs.forEach((row, b) =>
        row.forEach((v, c) =>
          v === null
            ? expect(ours[b * classes.length + c]).toBeNaN()
            : expect(Math.abs(ours[b * classes.length + c] - v)).toBeLessThanOrEqual(1e-6),
        ),
      );
      // reduction "mean": per image over its scored classes, then over images
      expect(Math.abs((metric === 'dice' ? ev.meanDice! : ev.meanIou!) - (m[`${metric}_mean`] as number[])[0])).toBeLessThanOrEqual(1e-6);
      // reduction "mean_batch": per class over images; MONAI writes 0 where nothing is left (not_nans 0), mlship null
      const perClass = m[`${metric}_mean_batch`] as number[];
      const notNans = m[`${metric}_mean_batch_not_nans`] as number[];
      ev.perClass.forEach((c, k) => {
        const v = metric === 'dice' ? c.dice : c.iou;
        if (notNans[k] === 0) {
          expect(v).toBeNull();
          expect(perClass[k]).toBe(0);
        } else expect(Math.abs(v! - perClass[k])).toBeLessThanOrEqual(1e-6);
        expect(c.images).toBe(notNans[k]);
      });
    }
    // label 3 is absent from every image: 1 in each under ignore_empty=False, left out under True
    const absent = ev.perClass.find((c) => c.label === 3)!;
    expect(absent.dice).toBe(ignore === 'False' ? 1 : null);
  });

  it('the headline macro Dice with explicit classes is the mean of MONAI mean_batch under ignore_empty=False', async () => {
    const ev = await evaluateMaskFolders({
      groundTruth: path.join(dir, 'gt'),
      predictions: path.join(dir, 'pred'),
      classes,
      emptyRule: 'one',
    });
    const batch = monai.False.dice_mean_batch as number[];
    expect(Math.abs(ev.dice! - batch.reduce((s, v) => s + v, 0) / batch.length)).toBeLessThanOrEqual(1e-6);
    // without the declaration label 3 is not scored and the mean differs, which is why classes can be given
    const present = await evaluateMaskFolders({ groundTruth: path.join(dir, 'gt'), predictions: path.join(dir, 'pred'), emptyRule: 'one' });
    expect(present.classes).toEqual([1, 2, 4, 5]);
    expect(Math.abs(present.dice! - ev.dice!)).toBeGreaterThan(0.01);
  });

  it('refuses a label present in the masks but missing from the classes', async () => {
    await expect(
      evaluateMaskFolders({ groundTruth: path.join(dir, 'gt'), predictions: path.join(dir, 'pred'), classes: [1, 2, 3, 4] }),
    ).rejects.toThrow(/holds label 5, which the classes to score \(1, 2, 3, 4\) do not list/);
  });
});
