import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { runStep } from '../../../shared/core/runtime';
import { MemoryHost } from '../../../shared/hosts/memory-host';
import { evaluateCocoFiles, parseCocoParams } from '../../../shared/metrics';
import { gateMetricsStep } from '../../../shared/steps/gate-metrics';
import { SHARED_FIXTURES } from '../../support/paths';

const COCO = path.join(SHARED_FIXTURES, 'coco/bbox-basic');
const GT = path.join(COCO, 'gt.json');
const DT = path.join(COCO, 'dt.json');

let ws: string;
beforeEach(() => {
  ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-gate-'));
});
afterEach(() => fs.rmSync(ws, { recursive: true, force: true }));

/** The fixture's detections with every third one removed: a clearly weaker model. */
function weaker(): string {
  const dets = JSON.parse(fs.readFileSync(DT, 'utf8')) as object[];
  const file = path.join(ws, 'weaker.json');
  fs.writeFileSync(file, JSON.stringify(dets.filter((_, i) => i % 3 !== 0)));
  return file;
}

async function run(inputs: Record<string, string | number | boolean>) {
  const host = new MemoryHost(inputs, { workspace: ws });
  const outcome = await runStep(gateMetricsStep, host, new AbortController().signal);
  return { host, outcome };
}

const baseline = evaluateCocoFiles({ groundTruth: GT, predictions: DT, iouType: 'bbox' });

describe('gate-metrics step definition', () => {
  it('keeps its Azure identity and input names', () => {
    expect(gateMetricsStep.name).toBe('gate-metrics');
    expect(gateMetricsStep.azure).toEqual({ id: '987f5977-8b13-470d-a5a4-8e467f237ead', major: 1, minor: 0, patch: 0, category: 'Test' });
    expect(Object.keys(gateMetricsStep.inputs)).toEqual(
      expect.arrayContaining([
        'task',
        'groundTruth',
        'candidatePredictions',
        'productionPredictions',
        'productionMetrics',
        'iouType',
        'metric',
        'minMetric',
        'maxDrop',
        'maxClassDrop',
        'margin',
        'bootstrapResamples',
        'confidence',
        'seed',
        'reportFile',
      ]),
    );
    expect(Object.keys(gateMetricsStep.outputs)).toEqual([
      'passed',
      'candidateMetric',
      'productionMetric',
      'difference',
      'ciLower',
      'ciUpper',
      'report',
      'gallery',
    ]);
  });
});

describe('gate-metrics, detection', () => {
  it('passes a better candidate and reports both models, the interval, a table and a PR chart', async () => {
    const { host, outcome } = await run({
      groundTruth: GT,
      candidatePredictions: DT,
      productionPredictions: weaker(),
      minMetric: 0.3,
      maxDrop: 0.01,
      maxClassDrop: 0.05,
      margin: 0.02,
      bootstrapResamples: 300,
      seed: 5,
    });
    expect(host.failure).toBeUndefined();
    expect(outcome.ok).toBe(true);
    expect(host.outputs.passed).toBe('true');
    expect(Number(host.outputs.candidateMetric)).toBe(baseline.stats[0]);
    const prod = Number(host.outputs.productionMetric);
    expect(prod).toBeLessThan(baseline.stats[0]);
    expect(Number(host.outputs.difference)).toBeCloseTo(baseline.stats[0] - prod, 15);
    expect(Number(host.outputs.ciLower)).toBeLessThan(Number(host.outputs.difference));
    expect(Number(host.outputs.ciUpper)).toBeGreaterThan(Number(host.outputs.difference));
    const report = JSON.parse(fs.readFileSync(host.outputs.report, 'utf8'));
    expect(host.outputs.report).toBe(path.join(ws, 'gate-metrics-report.json'));
    expect(report.passed).toBe(true);
    expect(report.candidate.details.AP).toBe(baseline.stats[0]);
    expect(report.rules.map((r: { rule: string; passed: boolean }) => [r.rule, r.passed])).toEqual([
      ['floor', true],
      ['max-drop', true],
      ['class-drop', true],
      ['non-inferiority', true],
    ]);
    expect(report.bootstrap).toMatchObject({ resamples: 300, seed: 5, confidence: 0.95, generator: 'xoshiro128**/splitmix32' });
    expect(report.classes).toHaveLength(6);
    expect(host.summary).toContain('## Metrics gate: passed ✅');
    expect(host.summary).toContain('| rule | limit | observed | verdict |');
    expect(host.summary).toContain(`| **overall** | ${baseline.stats[0].toFixed(4)} |`);
    expect(host.summary).toContain('  x-axis "recall" 0 --> 1\n  y-axis "precision" 0 --> 1\n');
    expect(host.summary).not.toContain('data:');
    expect(fs.readdirSync(ws).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('records the task and the sha256 of the model it gated, so a device package can bind the report to its model', async () => {
    const model = path.join(ws, 'detector.onnx');
    fs.writeFileSync(model, Buffer.from('stand-in bytes: gate-metrics hashes the file, it does not load it'));
    const { host } = await run({ groundTruth: GT, candidatePredictions: DT, minMetric: 0.1, model, dataFingerprint: 'sha256:coco-basic' });
    expect(host.failure).toBeUndefined();
    const report = JSON.parse(fs.readFileSync(host.outputs.report, 'utf8'));
    expect(report).toMatchObject({
      task: 'detection',
      model: { path: model, sha256: createHash('sha256').update(fs.readFileSync(model)).digest('hex') },
      dataFingerprint: 'sha256:coco-basic',
    });
    const without = await run({ groundTruth: GT, candidatePredictions: DT, minMetric: 0.1, reportFile: 'anon.json' });
    expect(JSON.parse(fs.readFileSync(without.host.outputs.report, 'utf8')).model).toBeNull();
    expect(without.host.text).toContain('"model" is not given: the report does not name the model it gated');
    const missing = await run({ groundTruth: GT, candidatePredictions: DT, model: path.join(ws, 'absent.onnx') });
    expect(missing.host.failure).toContain(`Cannot read the model ${path.join(ws, 'absent.onnx')} given in "model": ENOENT.`);
  });

  it('fails a weaker candidate naming the rule, the numbers and the margin', async () => {
    const { host, outcome } = await run({
      groundTruth: GT,
      candidatePredictions: weaker(),
      productionPredictions: DT,
      maxDrop: 0.01,
      margin: 0.02,
      bootstrapResamples: 300,
    });
    expect(outcome.ok).toBe(false);
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'gate-metrics-report.json'), 'utf8'));
    const cand = report.candidate.value as number;
    expect(host.failure).toContain(
      `Metrics gate failed: max-drop: AP fell by ${(baseline.stats[0] - cand).toFixed(4)} (production ${baseline.stats[0].toFixed(4)} → candidate ${cand.toFixed(4)}), more than the allowed 0.0100 (max-drop).`,
    );
    expect(host.failure).toContain(
      `non-inferiority: the 95% bootstrap interval of AP (candidate − production) is [${report.bootstrap.lower.toFixed(4)}, ${report.bootstrap.upper.toFixed(4)}] (300 resamples, seed 1); its lower bound ${report.bootstrap.lower.toFixed(4)} is below −0.0200, the allowed margin (margin).`,
    );
    expect(report.passed).toBe(false);
    expect(host.summary).toContain('## Metrics gate: failed ❌');
    expect(host.summary).toContain('| max-drop | drop ≤ 0.0100 |');
  });

  it('fails on the floor and on a class drop', async () => {
    const floor = await run({ groundTruth: GT, candidatePredictions: DT, minMetric: 0.9, bootstrapResamples: 0 });
    expect(floor.host.failure).toContain(
      `Metrics gate failed: floor: candidate AP ${baseline.stats[0].toFixed(4)} is below the minimum 0.9000 (min-metric).`,
    );
    // production: the fixture; candidate: the fixture without any category-2 detection
    const dets = (JSON.parse(fs.readFileSync(DT, 'utf8')) as { category_id: number }[]).filter((d) => d.category_id !== 2);
    const cand = path.join(ws, 'no-cat2.json');
    fs.writeFileSync(cand, JSON.stringify(dets));
    const cls = await run({
      groundTruth: GT,
      candidatePredictions: cand,
      productionPredictions: DT,
      maxClassDrop: 0.05,
      bootstrapResamples: 0,
    });
    const ap2 = baseline.perCategory.find((c) => c.id === 2)!.AP;
    expect(cls.host.failure).toContain(
      `class-drop: class "${baseline.perCategory.find((c) => c.id === 2)!.name}" (id 2) AP fell by ${ap2.toFixed(4)} (production ${ap2.toFixed(4)} → candidate 0.0000), more than the allowed 0.0500 (max-class-drop).`,
    );
  });

  it('reports without failing when failOnGate is false', async () => {
    const { host, outcome } = await run({ groundTruth: GT, candidatePredictions: DT, minMetric: 0.9, failOnGate: false });
    expect(outcome.ok).toBe(true);
    expect(host.outputs.passed).toBe('false');
    expect(host.outputs.productionMetric).toBeUndefined();
  });

  it('compares with stored production metrics, and refuses metrics of another test set', async () => {
    const first = await run({ groundTruth: GT, candidatePredictions: DT, reportFile: 'prod-report.json' });
    expect(first.outcome.ok).toBe(true);
    const stored = path.join(ws, 'prod-report.json');
    const { host } = await run({
      groundTruth: GT,
      candidatePredictions: weaker(),
      productionMetrics: stored,
      maxDrop: 0.5,
      maxClassDrop: 0.5,
    });
    expect(host.failure).toBeUndefined();
    expect(Number(host.outputs.productionMetric)).toBe(baseline.stats[0]);
    expect(host.outputs.ciLower).toBeUndefined();
    const other = JSON.parse(fs.readFileSync(stored, 'utf8'));
    other.candidate.testSet = { images: 59, fingerprint: '0123456789abcdef' };
    fs.writeFileSync(stored, JSON.stringify(other));
    const mismatch = await run({ groundTruth: GT, candidatePredictions: DT, productionMetrics: stored, maxDrop: 0.1 });
    expect(mismatch.host.failure).toContain(
      `Production metrics ${stored} were computed on a different test set (59 images, fingerprint 0123456789abcdef) than ${GT} (60 images`,
    );
    // `mlship eval coco --json` output is accepted too
    const evalJson = path.join(ws, 'eval.json');
    fs.writeFileSync(evalJson, JSON.stringify({ stats: baseline.stats, perCategory: baseline.perCategory }));
    const fromEval = await run({ groundTruth: GT, candidatePredictions: DT, productionMetrics: evalJson, metric: 'AP50', maxDrop: 0 });
    expect(fromEval.host.outputs.productionMetric).toBe(String(baseline.stats[1]));
    expect(fromEval.host.outputs.difference).toBe('0');
  });

  it('rejects inconsistent inputs before reading any file', async () => {
    const margin = await run({ groundTruth: GT, candidatePredictions: DT, margin: 0.01 });
    expect(margin.outcome).toMatchObject({ ok: false, usage: true });
    expect(margin.host.failure).toContain('Input "margin" needs "production-predictions"');
    const drop = await run({ groundTruth: GT, candidatePredictions: DT, maxDrop: 0.01 });
    expect(drop.host.failure).toContain(
      'Input "max-drop" compares with production, but none of "production-predictions", "production-metrics" or "production-model" is given.',
    );
    const metric = await run({ groundTruth: GT, candidatePredictions: DT, metric: 'dice' });
    expect(metric.host.failure).toContain('Input "metric" is "dice", which is not a detection metric.');
  });

  it('writes a gallery of boxes with labels and scores, worst F1 regression first', async () => {
    const gt = JSON.parse(fs.readFileSync(GT, 'utf8')) as {
      images: { id: number; width: number; height: number; file_name: string }[];
      annotations: { image_id: number; bbox: number[]; iscrowd?: number }[];
    };
    const images = path.join(ws, 'images');
    fs.mkdirSync(images);
    for (const im of gt.images)
      await sharp({ create: { width: im.width, height: im.height, channels: 3, background: '#303030' } })
        .jpeg()
        .toFile(path.join(images, im.file_name));
    const { host } = await run({
      groundTruth: GT,
      candidatePredictions: weaker(),
      productionPredictions: DT,
      testImages: images,
      galleryMax: 3,
      bootstrapResamples: 0,
      reportFile: 'gate.json',
    });
    expect(host.failure).toBeUndefined();
    const dir = path.join(ws, 'gate-gallery');
    const gallery = JSON.parse(fs.readFileSync(path.join(dir, 'gallery.json'), 'utf8'));
    expect(gallery).toMatchObject({
      metric: 'F1@.5',
      total: 60,
      panels: [{ name: 'ground truth' }, { name: 'candidate' }, { name: 'production' }],
    });
    expect(gallery.items).toHaveLength(3);
    const deltas = gallery.items.map((i: { delta: number }) => i.delta);
    expect(deltas).toEqual([...deltas].sort((a, b) => a - b));
    expect(deltas[0]).toBeLessThan(0);
    // 501×396 images shown 320 wide: three panels with 8 px gaps; the first ground-truth box's left edge is green.
    const first = gt.images.find((im) => im.file_name === gallery.items[0].name)!;
    const png = await sharp(path.join(dir, gallery.items[0].file)).raw().toBuffer({ resolveWithObject: true });
    const scale = 320 / Math.max(first.width, first.height);
    expect([png.info.width, png.info.height]).toEqual([3 * 320 + 2 * 8, Math.round(first.height * scale)]);
    const box = gt.annotations.find((a) => a.image_id === first.id && !a.iscrowd)!.bbox;
    const at = (x: number, y: number) => [
      ...png.data.subarray((y * png.info.width + x) * png.info.channels, (y * png.info.width + x) * png.info.channels + 3),
    ];
    const [r, g, b] = at(Math.round(box[0] * scale), Math.round((box[1] + box[3] / 2) * scale));
    expect(g).toBeGreaterThan(r + 60);
    expect(g).toBeGreaterThan(b + 60);
    expect(host.summary).toContain('### Prediction gallery: 3 of 60 test images, worst regressions first');
    expect(host.summary).toContain('| image | candidate F1@.5 | production F1@.5 | Δ | file |');
  });

  it('names the file and entry of bad predictions', async () => {
    const bad = path.join(ws, 'bad.json');
    fs.writeFileSync(
      bad,
      JSON.stringify([
        { image_id: 1, category_id: 1, bbox: [1, 1, 5, 5], score: 0.4 },
        { image_id: 1, category_id: 1, bbox: [1, 1, 5, 5], score: 1.2 },
      ]),
    );
    const { host } = await run({ groundTruth: GT, candidatePredictions: bad });
    expect(host.failure).toContain(`${bad}: [1] (image_id 1, category_id 1) has score 1.2; scores must be numbers in [0, 1].`);
    const empty = path.join(ws, 'empty.json');
    fs.writeFileSync(empty, '[]');
    expect((await run({ groundTruth: GT, candidatePredictions: DT, productionPredictions: empty })).host.failure).toContain(
      `${empty}: has no detections (an empty results list).`,
    );
  });
});

describe('gate-metrics, COCOeval parameters', () => {
  it('gates on AR at maxDets 300 with custom thresholds and areas, and records the parameters', async () => {
    const params = { maxDets: '1,10,300', iouThrs: '0.5,0.75', areaRng: 'all=0:1e10,small=0:2000,medium=2000:8000,large=8000:1e10' };
    const { host } = await run({ groundTruth: GT, candidatePredictions: DT, metric: 'AR100', minMetric: 0.1, ...params });
    expect(host.failure).toBeUndefined();
    const expected = evaluateCocoFiles({ groundTruth: GT, predictions: DT, iouType: 'bbox', params: parseCocoParams(params) });
    expect(Number(host.outputs.candidateMetric)).toBe(expected.stats[8]);
    expect(expected.stats[8]).not.toBe(baseline.stats[8]);
    const report = JSON.parse(fs.readFileSync(host.outputs.report, 'utf8'));
    expect(report.params).toEqual({
      maxDets: [1, 10, 300],
      iouThrs: [0.5, 0.75],
      areaRng: { all: [0, 1e10], small: [0, 2000], medium: [2000, 8000], large: [8000, 1e10] },
      useCats: true,
    });
  });

  it('refuses AP without a maxDets of 100 (pycocotools reads AP there) and names a bad parameter input', async () => {
    expect((await run({ groundTruth: GT, candidatePredictions: DT, maxDets: '1,10,300' })).host.failure).toContain(
      'Input "metric" is AP, which pycocotools\' summarize() reads at maxDets=100, but "max-dets" is 1,10,300: it would be -1.',
    );
    expect((await run({ groundTruth: GT, candidatePredictions: DT, metric: 'AP', maxDets: '1,10,300' })).host.failure).toContain(
      "pycocotools' summarize() reads at maxDets=100",
    );
    expect((await run({ groundTruth: GT, candidatePredictions: DT, iouThrs: '0.5:0.4:0.05' })).host.failure).toContain(
      'Input "iou-thrs" has value "0.5:0.4:0.05": iouThrs "0.5:0.4:0.05" is not start:stop:step',
    );
  });

  it('pools categories with use-cats false (no per-class values)', async () => {
    const { host } = await run({ groundTruth: GT, candidatePredictions: DT, useCats: false });
    expect(host.failure).toBeUndefined();
    expect(Number(host.outputs.candidateMetric)).toBe(
      evaluateCocoFiles({ groundTruth: GT, predictions: DT, iouType: 'bbox', useCats: false }).stats[0],
    );
    expect(JSON.parse(fs.readFileSync(host.outputs.report, 'utf8')).candidate.perClass).toEqual([]);
  });
});

describe('gate-metrics, semantic segmentation', () => {
  const W = 8;
  const write = (dir: string, name: string, fill: (x: number, y: number) => number) => {
    fs.mkdirSync(path.join(ws, dir), { recursive: true });
    const data = Buffer.alloc(W * W);
    for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) data[y * W + x] = fill(x, y);
    fs.writeFileSync(
      path.join(ws, dir, name),
      PNG.sync.write({ width: W, height: W, data } as unknown as PNG, {
        colorType: 0,
        inputColorType: 0,
        inputHasAlpha: false,
        bitDepth: 8,
      }),
    );
  };
  // ground truth: class 1 left half, class 2 bottom-right quarter
  const truth = (x: number, y: number) => (x < 4 ? 1 : y >= 4 ? 2 : 0);

  beforeEach(() => {
    for (const n of ['a.png', 'b.png', 'c.png']) {
      write('gt', n, truth);
      write('good', n, truth);
      // loses class 2 entirely, keeps class 1
      write('bad', n, (x) => (x < 4 ? 1 : 0));
    }
  });

  it('passes identical masks with Dice 1 and a per-class bar chart', async () => {
    const { host } = await run({
      task: 'segmentation',
      groundTruth: 'gt',
      candidatePredictions: 'good',
      productionPredictions: 'good',
      minMetric: 0.8,
      maxClassDrop: 0.01,
      margin: 0.01,
      bootstrapResamples: 100,
    });
    expect(host.failure).toBeUndefined();
    expect(host.outputs).toMatchObject({
      passed: 'true',
      candidateMetric: '1',
      productionMetric: '1',
      difference: '0',
      ciLower: '0',
      ciUpper: '0',
    });
    expect(host.summary).toContain('| class 2 (2) | 1.0000 | 1.0000 | +0.0000 | pass |');
    expect(host.summary).toContain('  x-axis "class" ["class 1", "class 2"]\n  y-axis "dice" 0 --> 1\n  bar [1, 1]\n  line [1, 1]');
  });

  it('writes a gallery of overlays, worst regression first, capped, and lists it in the summary', async () => {
    // Production perfect everywhere; the candidate loses class 2 in b only, and all of class 1 in c: c is worst.
    write('cand', 'a.png', truth);
    write('cand', 'b.png', (x) => (x < 4 ? 1 : 0));
    write('cand', 'c.png', (x, y) => (x >= 4 && y >= 4 ? 2 : 0));
    for (const n of ['a', 'b', 'c']) write('images', `${n}.png`, (x, y) => (x * 16 + y * 8) % 256);
    const { host } = await run({
      task: 'segmentation',
      groundTruth: 'gt',
      candidatePredictions: 'cand',
      productionPredictions: 'good',
      testImages: 'images',
      galleryMax: 2,
      bootstrapResamples: 0,
      reportFile: 'out/gate.json',
    });
    expect(host.failure).toBeUndefined();
    const dir = path.join(ws, 'out', 'gate-gallery');
    expect(host.outputs.gallery).toBe(dir);
    const gallery = JSON.parse(fs.readFileSync(path.join(dir, 'gallery.json'), 'utf8'));
    expect(gallery).toMatchObject({
      format: 'mlship-gallery/1',
      metric: 'dice',
      total: 3,
      panels: [{ name: 'ground truth' }, { name: 'candidate' }, { name: 'production' }],
    });
    // Foreground Dice of c: 16 of 48 truth pixels predicted, none wrong → 2·16/(16+48) = 0.5; b: 2·32/(32+48) = 0.8.
    expect(
      gallery.items.map((i: { name: string; file: string; candidate: number; delta: number }) => [i.name, i.file, i.candidate, i.delta]),
    ).toEqual([
      ['c', '01-c.png', 0.5, -0.5],
      ['b', '02-b.png', 0.8, expect.closeTo(-0.2, 9)],
    ]);
    // Three 8-pixel panels with 4-pixel gaps, enlarged to 192-pixel panels (×24).
    const png = PNG.sync.read(fs.readFileSync(path.join(dir, '01-c.png')));
    expect([png.width, png.height]).toEqual([(3 * 8 + 2 * 4) * 24, 8 * 24]);
    // Top-left pixel of the ground-truth panel is class 1's contour: solid ground-truth green.
    expect([...png.data.subarray(0, 3)]).toEqual([0x2c, 0xa0, 0x2c]);
    expect(host.summary).toContain('### Prediction gallery: 2 of 3 test images, worst regressions first');
    expect(host.summary).toContain('| c | 0.5000 | 1.0000 | −0.5000 | `01-c.png` |');
    expect(host.summary).not.toContain('data:');
  });

  it('names the missing test image of the gallery', async () => {
    fs.mkdirSync(path.join(ws, 'images'));
    const { host } = await run({
      task: 'segmentation',
      groundTruth: 'gt',
      candidatePredictions: 'good',
      testImages: 'images',
      bootstrapResamples: 0,
    });
    expect(host.failure).toContain(
      `The gallery needs the test image of "a", but ${path.join(ws, 'images')} has no a with any of .png, .jpg`,
    );
    expect(host.failure).toContain('Point the test-images input at the folder of the images the masks were made from');
  });

  it('fails the class that was lost', async () => {
    const { host } = await run({
      task: 'segmentation',
      groundTruth: 'gt',
      candidatePredictions: 'bad',
      productionPredictions: 'good',
      maxClassDrop: 0.1,
      bootstrapResamples: 0,
    });
    expect(host.failure).toContain(
      'Metrics gate failed: class-drop: class "class 2" (id 2) dice fell by 1.0000 (production 1.0000 → candidate 0.0000), more than the allowed 0.1000 (max-class-drop).',
    );
  });

  it('refuses production masks for other images', async () => {
    write('other', 'a.png', truth);
    write('other', 'b.png', truth);
    write('other', 'z.png', truth);
    const { host } = await run({ task: 'segmentation', groundTruth: 'gt', candidatePredictions: 'good', productionPredictions: 'other' });
    expect(host.failure).toContain(
      `Predictions folder ${path.join(ws, 'other')} has no mask for ground truth ${path.join(ws, 'gt', 'c.png')} ("c").`,
    );
  });

  it('scores declared classes, also one absent from every image, from the input list or a labels file', async () => {
    const list = await run({
      task: 'segmentation',
      groundTruth: 'gt',
      candidatePredictions: 'good',
      classes: '1: cell\n2: nucleus\n3: mitosis',
      emptyRule: 'one',
      bootstrapResamples: 0,
    });
    expect(list.host.failure).toBeUndefined();
    const report = JSON.parse(fs.readFileSync(list.host.outputs.report, 'utf8'));
    expect(report.candidate.perClass.map((c: { id: number; name: string; value: number }) => [c.id, c.name, c.value])).toEqual([
      [1, 'cell', 1],
      [2, 'nucleus', 1],
      [3, 'mitosis', 1],
    ]);
    fs.writeFileSync(path.join(ws, 'labels.txt'), 'background\ncell\nnucleus\nmitosis\n');
    const file = await run({
      task: 'segmentation',
      groundTruth: 'gt',
      candidatePredictions: 'bad',
      classesFile: 'labels.txt',
      emptyRule: 'skip-empty-truth',
      bootstrapResamples: 0,
    });
    const fromFile = JSON.parse(fs.readFileSync(file.host.outputs.report, 'utf8'));
    // background (line 0) is dropped without include-background; mitosis has no ground truth anywhere: left out
    expect(fromFile.candidate.perClass.map((c: { id: number; value: number | null }) => [c.id, c.value])).toEqual([
      [1, 1],
      [2, 0],
      [3, null],
    ]);
    const missing = await run({ task: 'segmentation', groundTruth: 'gt', candidatePredictions: 'good', classes: '1: cell' });
    expect(missing.host.failure).toContain('holds label 2, which the classes to score (1) do not list.');
  });
});
