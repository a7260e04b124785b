/**
 * Non-default COCOeval parameters against PyPI's pycocotools, run on the spot from the pinned Python test
 * environment: maxDets [1, 10, 300] on crowded images (up to ~350 detections each, so the 300 cut matters), custom
 * IoU thresholds (a list and the start:stop:step form), custom area ranges and labels, and useCats=0, for bbox and
 * segm on generated sets. The 12 stats must agree within 1e-9 and the printed summarize() lines character for
 * character (the -1 of AP without a maxDets of 100 included). The default-parameter cross-check is elsewhere.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluateCocoFiles, parseCocoParams } from '../../shared/metrics';
import { rleFromPolygon, rleToString } from '../../shared/metrics/coco/rle';
import { Xoshiro128 } from '../../shared/core/random';
import { requirePython } from '../support/python-env';

interface ParamCase {
  readonly name: string;
  readonly maxDets?: string;
  readonly iouThrs?: string;
  readonly areaRng?: string;
  readonly useCats?: boolean;
}

const CASES: ParamCase[] = [
  { name: 'maxDets 1,10,300', maxDets: '1,10,300' },
  { name: 'maxDets 300,1,10 (unsorted) and useCats=0', maxDets: '300,1,10', useCats: false },
  { name: 'maxDets 1,10,100,300 (100 for AP, 300 as the cut)', maxDets: '1,10,100,300' },
  { name: 'iouThrs list 0.3,0.5,0.75,0.9', iouThrs: '0.3,0.5,0.75,0.9' },
  { name: 'iouThrs 0.1:0.9:0.1 (linspace), no .75 threshold', iouThrs: '0.1:0.9:0.1' },
  { name: 'area ranges for cells', areaRng: 'all=0:1e10,small=0:150,medium=150:600,large=600:1e10' },
  { name: 'area ranges without small, with an extra label', areaRng: 'all=0:1e10,medium=0:400,large=400:1e10,huge=2000:1e10' },
  {
    name: 'everything at once, useCats=0',
    maxDets: '1,10,300',
    iouThrs: '0.25:0.85:0.05',
    areaRng: 'all=0:1e10,small=0:200,medium=200:800,large=800:1e10',
    useCats: false,
  },
];

let r = new Xoshiro128(2026);
const u = () => r.nextUint32() / 4294967296;
const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

function ellipse(cx: number, cy: number, rx: number, ry: number): number[] {
  const pts: number[] = [];
  for (let j = 0; j < 12; j++)
    pts.push(round(cx + rx * Math.cos((2 * Math.PI * j) / 12), 2), round(cy + ry * Math.sin((2 * Math.PI * j) / 12), 2));
  return pts;
}

/** Crowded microscopy-like images: many small cells of 3 classes, 1-2 noisy detections per cell plus clutter. */
function makeSet(segm: boolean) {
  r = new Xoshiro128(segm ? 2027 : 2026);
  const images: object[] = [];
  const anns: object[] = [];
  const dets: object[] = [];
  for (let i = 0; i < 14; i++) {
    const width = 160 + Math.floor(u() * 60);
    const height = 120 + Math.floor(u() * 60);
    const id = 10 + i * 7;
    images.push({ id, width, height, file_name: `${id}.png` });
    const cells = 40 + Math.floor(u() * 110);
    for (let c = 0; c < cells; c++) {
      const w = 4 + u() * 34;
      const h = 4 + u() * 34;
      const x = u() * (width - w);
      const y = u() * (height - h);
      const cat = 1 + Math.floor(u() * u() * 3);
      const crowd = u() < 0.02 ? 1 : 0;
      const gt: Record<string, unknown> = {
        id: anns.length + 1,
        image_id: id,
        category_id: cat,
        bbox: [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
        area: round(w * h * 0.785, 2),
        iscrowd: crowd,
      };
      if (segm) gt.segmentation = [ellipse(x + w / 2, y + h / 2, w / 2, h / 2)];
      anns.push(gt);
      for (let k = 0; k < (u() < 0.3 ? 2 : 1) && u() < 0.9; k++) {
        const j = 0.25;
        const dw = Math.max(2, w * (1 + (u() - 0.5) * j)),
          dh = Math.max(2, h * (1 + (u() - 0.5) * j));
        const dx = Math.max(0, x + w * (u() - 0.5) * j),
          dy = Math.max(0, y + h * (u() - 0.5) * j);
        dets.push(det(id, u() < 0.9 ? cat : 1 + Math.floor(u() * 3), [dx, dy, dw, dh], round(0.2 + 0.8 * u(), 3), width, height, segm));
      }
    }
    // clutter, mostly class 1, so that some (image, class) pairs hold more than 300 detections
    const clutter = 120 + Math.floor(u() * 260);
    for (let c = 0; c < clutter; c++) {
      const w = 3 + u() * 20,
        h = 3 + u() * 20;
      dets.push(
        det(
          id,
          u() < 0.85 ? 1 : 1 + Math.floor(u() * 3),
          [u() * (width - w), u() * (height - h), w, h],
          round(0.3 * u(), 2),
          width,
          height,
          segm,
        ),
      );
    }
  }
  return { gt: { images, annotations: anns, categories: [1, 2, 3].map((id) => ({ id, name: `cell${id}` })) }, dets };
}

function det(image_id: number, category_id: number, bb: number[], score: number, width: number, height: number, segm: boolean): object {
  const [x, y, w, h] = bb;
  if (!segm) return { image_id, category_id, bbox: bb.map((v) => round(v, 2)), score };
  const rle = rleFromPolygon(ellipse(x + w / 2, y + h / 2, w / 2, h / 2), height, width);
  return { image_id, category_id, segmentation: { size: [height, width], counts: rleToString(rle) }, score };
}

const PYCOCO = `
import contextlib, io, json, sys
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt_file, dt_file, iou_type, cases = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_file)
    dt = gt.loadRes(dt_file)
out = []
for c in cases:
    E = COCOeval(gt, dt, iou_type)
    if "maxDets" in c: E.params.maxDets = c["maxDets"]
    if "iouThrs" in c: E.params.iouThrs = np.array(c["iouThrs"], dtype=np.float64)
    if "linspace" in c:
        a, b, s = c["linspace"]
        E.params.iouThrs = np.linspace(a, b, int(np.round((b - a) / s)) + 1, endpoint=True)
    if "areaRng" in c:
        E.params.areaRng = c["areaRng"]
        E.params.areaRngLbl = c["areaRngLbl"]
    if "useCats" in c: E.params.useCats = c["useCats"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        E.evaluate(); E.accumulate()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        E.summarize()
    out.append({"stats": [float(s) for s in E.stats], "lines": buf.getvalue().splitlines()})
print(json.dumps(out))
`;

/** The same case as pycocotools is told it: values as Python sets them, the linspace form passed as such. */
function pythonCase(c: ParamCase): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.maxDets) out.maxDets = c.maxDets.split(',').map(Number);
  if (c.iouThrs?.includes(':')) out.linspace = c.iouThrs.split(':').map(Number);
  else if (c.iouThrs) out.iouThrs = c.iouThrs.split(',').map(Number);
  if (c.areaRng) {
    const items = c.areaRng.split(',').map((s) => /^(.+)=(.+):(.+)$/.exec(s)!);
    out.areaRng = items.map((m) => [Number(m[2]), Number(m[3])]);
    out.areaRngLbl = items.map((m) => m[1]);
  }
  if (c.useCats === false) out.useCats = 0;
  return out;
}

describe.each(['bbox', 'segm'] as const)('non-default COCOeval parameters against pycocotools (%s)', (iouType) => {
  let dir: string;
  let reference: { stats: number[]; lines: string[] }[];
  beforeAll(() => {
    const python = requirePython(['pycocotools', 'numpy']);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-coco-params-'));
    const set = makeSet(iouType === 'segm');
    fs.writeFileSync(path.join(dir, 'gt.json'), JSON.stringify(set.gt));
    fs.writeFileSync(path.join(dir, 'dt.json'), JSON.stringify(set.dets));
    fs.writeFileSync(path.join(dir, 'pycoco_params.py'), PYCOCO);
    const run = spawnSync(
      python,
      [
        path.join(dir, 'pycoco_params.py'),
        path.join(dir, 'gt.json'),
        path.join(dir, 'dt.json'),
        iouType,
        JSON.stringify(CASES.map(pythonCase)),
      ],
      { encoding: 'utf8', timeout: 240_000 },
    );
    if (run.status !== 0) throw new Error(`pycocotools failed: ${run.stderr}`);
    reference = JSON.parse(run.stdout);
  }, 300_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('generates crowded images where the 300 cut matters', () => {
    const dets = JSON.parse(fs.readFileSync(path.join(dir, 'dt.json'), 'utf8')) as { image_id: number; category_id: number }[];
    const perImageCat = new Map<string, number>();
    for (const d of dets) perImageCat.set(`${d.image_id}/${d.category_id}`, (perImageCat.get(`${d.image_id}/${d.category_id}`) ?? 0) + 1);
    expect(Math.max(...perImageCat.values())).toBeGreaterThan(300);
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, i) => {
    const params = parseCocoParams({ maxDets: c.maxDets, iouThrs: c.iouThrs, areaRng: c.areaRng, useCats: c.useCats });
    const result = evaluateCocoFiles({ groundTruth: path.join(dir, 'gt.json'), predictions: path.join(dir, 'dt.json'), iouType, params });
    const want = reference[i];
    result.stats.forEach((s, k) => expect(Math.abs(s - want.stats[k])).toBeLessThanOrEqual(1e-9));
    expect(result.summary).toEqual(want.lines);
    // the numbers are not all -1: each case measures something
    expect(result.stats.filter((s) => s > 0).length).toBeGreaterThan(3);
  });
});
