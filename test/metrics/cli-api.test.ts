import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { cocoResultJson, evaluateCocoFiles, evaluateMaskFolders, maskResultJson, testSetId } from '../../shared/metrics';

const COCO = path.resolve(__dirname, '../../../shared/fixtures/coco/bbox-gaps-maxdets');

describe('functions behind `mlship eval`', () => {
  it('coco: the 12 stats under "stats" in pycocotools order, named metrics, per category and the test set', () => {
    const r = evaluateCocoFiles({ groundTruth: path.join(COCO, 'gt.json'), predictions: path.join(COCO, 'dt.json'), iouType: 'bbox' });
    const json = JSON.parse(JSON.stringify(cocoResultJson(r)));
    expect(Object.keys(json)).toEqual(['iouType', 'useCats', 'stats', 'metrics', 'perCategory', 'counts', 'testSet']);
    expect(json.stats).toHaveLength(12);
    expect(json.stats[0]).toBe(json.metrics.AP);
    expect(json.stats[11]).toBe(json.metrics.ARl);
    expect(json.perCategory.map((c: { id: number }) => c.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]);
    expect(json.perCategory[12].AP).toBe(-1);
    const gt = JSON.parse(fs.readFileSync(path.join(COCO, 'gt.json'), 'utf8'));
    const ids = (gt.images as { id: number }[]).map((i) => i.id).sort((a, b) => a - b);
    expect(json.testSet).toEqual(testSetId(ids));
    expect(json.counts).toEqual({ images: ids.length, categories: 14, groundTruth: gt.annotations.length, detections: JSON.parse(fs.readFileSync(path.join(COCO, 'dt.json'), 'utf8')).length });
  });

  it('masks: Dice/IoU summary with per-class and per-image values', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-eval-'));
    try {
      for (const [sub, values] of [
        ['gt', [0, 1, 1, 0]],
        ['pred', [0, 1, 0, 0]],
      ] as const) {
        fs.mkdirSync(path.join(dir, sub));
        fs.writeFileSync(path.join(dir, sub, 'x.png'), PNG.sync.write({ width: 2, height: 2, data: Buffer.from(values) } as unknown as PNG, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 }));
      }
      const json = maskResultJson(await evaluateMaskFolders({ groundTruth: path.join(dir, 'gt'), predictions: path.join(dir, 'pred') })) as Record<string, unknown>;
      expect(json).toMatchObject({ dice: 2 / 3, iou: 0.5, microDice: 2 / 3, classes: [1], emptyRule: 'skip', perImage: [{ name: 'x', dice: 2 / 3, iou: 0.5 }], testSet: testSetId(['x']) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
