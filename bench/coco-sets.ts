/**
 * Seeded COCO-like detection sets for the metrics benchmark: skewed classes, COCO's small/medium/large mix, 1%
 * crowd, noisy detections with 3-decimal scores; boxes, or polygon ground truth with compressed-RLE detections.
 */
import { rleFromPolygon, rleToString } from '../shared/metrics/coco/rle';
import { Xoshiro128 } from '../shared/core/random';

export class Rand {
  private r: Xoshiro128;
  constructor(seed: number) {
    this.r = new Xoshiro128(seed);
  }
  u(): number {
    return this.r.nextUint32() / 4294967296;
  }
  range(a: number, b: number): number {
    return a + (b - a) * this.u();
  }
  int(n: number): number {
    return this.r.nextBelow(n);
  }
}

const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

interface Gt {
  id: number;
  image_id: number;
  category_id: number;
  bbox: number[];
  area: number;
  iscrowd: number;
  segmentation?: number[][];
}

/** A COCO-like set: skewed classes, COCO's small/medium/large mix, 1% crowd, noisy detections, 3-decimal scores. */
export function makeDetectionSet(
  seed: number,
  images: number,
  classes: number,
  gtPerImage: number,
  detsPerImage: number,
  segm: boolean,
  detSeed = seed + 1,
) {
  const r = new Rand(seed);
  const imgs: { id: number; width: number; height: number; file_name: string }[] = [];
  const anns: Gt[] = [];
  const classWeights = Array.from({ length: classes }, (_, k) => 1 / (k + 1) ** 0.8);
  const totalW = classWeights.reduce((a, b) => a + b, 0);
  const pickClass = (rr: Rand) => {
    let x = rr.u() * totalW;
    for (let k = 0; k < classes; k++) if ((x -= classWeights[k]) <= 0) return k + 1;
    return classes;
  };
  const ellipse = (cx: number, cy: number, rx: number, ry: number, n: number) => {
    const pts: number[] = [];
    for (let j = 0; j < n; j++)
      pts.push(round(cx + rx * Math.cos((2 * Math.PI * j) / n), 2), round(cy + ry * Math.sin((2 * Math.PI * j) / n), 2));
    return pts;
  };
  for (let i = 0; i < images; i++) {
    const width = Math.round(r.range(480, 640));
    const height = Math.round(r.range(360, 640));
    const id = 1 + i * 3;
    imgs.push({ id, width, height, file_name: `${id}.jpg` });
    const n = Math.max(0, Math.round(r.range(0, 2 * gtPerImage)));
    for (let j = 0; j < n; j++) {
      const u = r.u();
      const area = u < 0.41 ? r.range(16, 1024) : u < 0.75 ? r.range(1024, 9216) : r.range(9216, 0.5 * width * height);
      const aspect = r.range(0.5, 2);
      const w = Math.min(width - 2, Math.sqrt(area * aspect));
      const h = Math.min(height - 2, area / w);
      const x = r.range(0, width - w);
      const y = r.range(0, height - h);
      const g: Gt = {
        id: anns.length + 1,
        image_id: id,
        category_id: pickClass(r),
        bbox: [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
        area: round(w * h * (segm ? Math.PI / 4 : 0.85), 2),
        iscrowd: r.u() < 0.01 ? 1 : 0,
      };
      if (segm) g.segmentation = [ellipse(x + w / 2, y + h / 2, w / 2, h / 2, 24)];
      anns.push(g);
    }
  }
  const gt = {
    images: imgs,
    annotations: anns,
    categories: Array.from({ length: classes }, (_, k) => ({ id: k + 1, name: `class${k + 1}` })),
  };

  const d = new Rand(detSeed);
  const dets: object[] = [];
  const byImage = new Map<number, Gt[]>();
  for (const a of anns) byImage.set(a.image_id, [...(byImage.get(a.image_id) ?? []), a]);
  for (const im of imgs) {
    const mine: object[] = [];
    const push = (bb: number[], cat: number, score: number) => {
      const [x, y, w, h] = bb;
      const det: Record<string, unknown> = { image_id: im.id, category_id: cat, score: round(score, 3) };
      if (segm) {
        const rle = rleFromPolygon(ellipse(x + w / 2, y + h / 2, w / 2, h / 2, 24), im.height, im.width);
        det.segmentation = { size: [im.height, im.width], counts: rleToString(rle) };
      } else det.bbox = bb.map((v) => round(v, 2));
      mine.push(det);
    };
    for (const g of byImage.get(im.id) ?? []) {
      if (d.u() > 0.85) continue;
      const copies = d.u() < 0.15 ? 2 : 1;
      for (let c = 0; c < copies && mine.length < detsPerImage; c++) {
        const [x, y, w, h] = g.bbox;
        const j = 0.12;
        const nw = Math.max(1, w * (1 + d.range(-j, j)));
        const nh = Math.max(1, h * (1 + d.range(-j, j)));
        const cat = d.u() < 0.9 ? g.category_id : 1 + d.int(classes);
        push([Math.max(0, x + w * d.range(-j, j)), Math.max(0, y + h * d.range(-j, j)), nw, nh], cat, d.range(0.25, 1));
      }
    }
    while (mine.length < detsPerImage) {
      const w = d.range(4, im.width / 3);
      const h = d.range(4, im.height / 3);
      push([d.range(0, im.width - w), d.range(0, im.height - h), w, h], 1 + d.int(classes), d.range(0, 0.5));
    }
    dets.push(...mine);
  }
  return { gt, dets };
}
