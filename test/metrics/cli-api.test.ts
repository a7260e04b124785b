import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { evalCommand } from '../../shared/cli/eval-command';
import { cocoResultJson, evaluateCocoFiles, evaluateMaskFolders, maskResultJson, testSetId } from '../../shared/metrics';
import { SHARED_FIXTURES } from '../support/paths';

const COCO = path.join(SHARED_FIXTURES, 'coco/bbox-gaps-maxdets');

describe('functions behind `mlship eval`', () => {
  it('coco: the 12 stats under "stats" in pycocotools order, named metrics, per category and the test set', () => {
    const r = evaluateCocoFiles({ groundTruth: path.join(COCO, 'gt.json'), predictions: path.join(COCO, 'dt.json'), iouType: 'bbox' });
    const json = JSON.parse(JSON.stringify(cocoResultJson(r)));
    expect(Object.keys(json)).toEqual(['iouType', 'useCats', 'stats', 'metrics', 'perCategory', 'counts', 'testSet', 'params']);
    expect(json.params).toEqual({
      maxDets: [1, 10, 100],
      iouThrs: [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95] /* np.linspace(.5, .95, 10).tolist() */,
      areaRng: { all: [0, 1e10], small: [0, 1024], medium: [1024, 9216], large: [9216, 1e10] },
      useCats: true,
    });
    expect(json.stats).toHaveLength(12);
    expect(json.stats[0]).toBe(json.metrics.AP);
    expect(json.stats[11]).toBe(json.metrics.ARl);
    expect(json.perCategory.map((c: { id: number }) => c.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]);
    expect(json.perCategory[12].AP).toBe(-1);
    const gt = JSON.parse(fs.readFileSync(path.join(COCO, 'gt.json'), 'utf8'));
    const ids = (gt.images as { id: number }[]).map((i) => i.id).sort((a, b) => a - b);
    expect(json.testSet).toEqual(testSetId(ids));
    expect(json.counts).toEqual({
      images: ids.length,
      categories: 14,
      groundTruth: gt.annotations.length,
      detections: JSON.parse(fs.readFileSync(path.join(COCO, 'dt.json'), 'utf8')).length,
    });
  });

  it('masks: Dice/IoU summary with per-class and per-image values', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-eval-'));
    try {
      for (const [sub, values] of [
        ['gt', [0, 1, 1, 0]],
        ['pred', [0, 1, 0, 0]],
      ] as const) {
        fs.mkdirSync(path.join(dir, sub));
        fs.writeFileSync(
          path.join(dir, sub, 'x.png'),
          PNG.sync.write({ width: 2, height: 2, data: Buffer.from(values) } as unknown as PNG, {
            colorType: 0,
            inputColorType: 0,
            inputHasAlpha: false,
            bitDepth: 8,
          }),
        );
      }
      const json = maskResultJson(
        await evaluateMaskFolders({ groundTruth: path.join(dir, 'gt'), predictions: path.join(dir, 'pred') }),
      ) as Record<string, unknown>;
      expect(json).toMatchObject({
        dice: 2 / 3,
        iou: 0.5,
        microDice: 2 / 3,
        classes: [1],
        emptyRule: 'skip',
        perImage: [{ name: 'x', dice: 2 / 3, iou: 0.5 }],
        testSet: testSetId(['x']),
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('eval coco: the COCOeval options, summarize() lines without --json, and usage errors naming the option', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => err.push(s) };
    const files = ['--ground-truth', path.join(COCO, 'gt.json'), '--predictions', path.join(COCO, 'dt.json')];
    expect(
      await evalCommand.run(
        [
          'coco',
          ...files,
          '--max-dets',
          '1,10,300',
          '--iou-thrs=0.5:0.95:0.05',
          '--area-rng',
          'all=0:1e10,small=0:1024,medium=1024:9216,large=9216:1e10',
          '--use-cats',
          'false',
        ],
        io,
      ),
    ).toBe(0);
    const lines = out.join('').trimEnd().split('\n');
    expect(lines).toHaveLength(12);
    expect(lines[0]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = -1.000');
    expect(lines[8]).toMatch(/^ Average Recall {5}\(AR\) @\[ IoU=0\.50:0\.95 \| area= {3}all \| maxDets=300 \] = 0\.\d{3}$/);
    out.length = 0;
    expect(await evalCommand.run(['coco', ...files, '--max-dets', '1,10', '--json'], io)).toBe(2);
    expect(err.join('')).toContain(
      'Option "--max-dets" has value "1,10": maxDets has 2 value(s); COCOeval.summarize() reads the first three',
    );
    err.length = 0;
    expect(await evalCommand.run(['coco', ...files, '--area-rng', 'all=0:1e10,small=0'], io)).toBe(2);
    expect(err.join('')).toContain('Option "--area-rng" has value "all=0:1e10,small=0": area range "small=0" is not label=low:high.');
    err.length = 0;
    expect(await evalCommand.run(['coco', ...files, '--iou-thrs', '0.5,x'], io)).toBe(2);
    expect(err.join('')).toContain('Option "--iou-thrs" has value "0.5,x": iouThrs "0.5,x" has "x", which is not a number.');
    expect(out).toEqual([]);
  });
});
