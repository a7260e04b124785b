import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import * as UTIF from 'utif2';
import type { CheckResult, Example } from '../../shared/validate/checks';
import type { ValidationReport } from '../../shared/validate/report';
import type { ValidateOptions } from '../../shared/validate/validate';
import { validateDataset } from '../../shared/validate/validate';

/** Temporary folders for one test file, removed in afterAll. */
export class TempDirs {
  private readonly dirs: string[] = [];
  make(prefix = 'mlship-validate-'): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }
  cleanup(): void {
    for (const d of this.dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

export interface PixelOptions {
  /** Makes the bytes unique per image without changing its statistics noticeably. */
  seed: number;
  /** Mean grey level (0–255). */
  base?: number;
  /** Checkerboard amplitude: sets the contrast. */
  amplitude?: number;
}

/** RGBA pixels: a 4-px checkerboard around `base`, with the seed written into two pixels. */
export function pixels(width: number, height: number, o: PixelOptions): Buffer {
  const base = o.base ?? 120;
  const amp = o.amplitude ?? 40;
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = base + ((((x >> 2) + (y >> 2)) & 1) === 1 ? amp : -amp);
      const i = (y * width + x) * 4;
      data[i] = data[i + 1] = data[i + 2] = v;
      data[i + 3] = 255;
    }
  }
  data[0] = o.seed & 255;
  data[4] = (o.seed >> 8) & 255;
  return data;
}

/** A PNG: RGBA (6), RGB (2) or grey (0), 8- or 16-bit. */
export function pngImage(width: number, height: number, o: PixelOptions & { colorType?: 0 | 2 | 6; bitDepth?: 8 | 16 }): Buffer {
  const rgba = pixels(width, height, o);
  const colorType = o.colorType ?? 6;
  const png = new PNG({ width, height });
  if (o.bitDepth === 16) {
    const wide = new Uint16Array(width * height * 4);
    for (let i = 0; i < wide.length; i++) wide[i] = rgba[i] * 257;
    png.data = Buffer.from(wide.buffer);
  } else png.data = rgba;
  return PNG.sync.write(png, { colorType, inputColorType: 6, bitDepth: o.bitDepth ?? 8, inputHasAlpha: true });
}

/** A label mask: grey PNG whose value at each pixel comes from `label(x, y)`. */
export function maskPng(width: number, height: number, label: (x: number, y: number) => number, bitDepth: 8 | 16 = 8): Buffer {
  const png = new PNG({ width, height });
  if (bitDepth === 16) {
    const wide = new Uint16Array(width * height * 4);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) wide.fill(label(x, y), (y * width + x) * 4, (y * width + x) * 4 + 3);
    for (let p = 0; p < width * height; p++) wide[p * 4 + 3] = 65535;
    png.data = Buffer.from(wide.buffer);
  } else {
    const data = Buffer.alloc(width * height * 4, 255);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill(label(x, y), (y * width + x) * 4, (y * width + x) * 4 + 3);
    png.data = data;
  }
  return PNG.sync.write(png, { colorType: 0, inputColorType: 6, bitDepth, inputHasAlpha: true });
}

/** An uncompressed 8-bit RGBA TIFF (utif2). */
export function tiffImage(width: number, height: number, o: PixelOptions): Buffer {
  return Buffer.from(UTIF.encodeImage(new Uint8Array(pixels(width, height, o)), width, height));
}

export function write(file: string, data: string | Buffer): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  return file;
}

export const W = 64;
export const H = 48;

interface CocoImage {
  id: number | string;
  file_name: string;
  width: number;
  height: number;
}
interface CocoAnnotation {
  id: number | string;
  image_id: number | string;
  category_id: number | string;
  bbox?: unknown;
  segmentation?: unknown;
  area?: number;
  iscrowd?: number;
}
export interface CocoDoc {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: { id: number | string; name: string }[];
}

export interface CocoSet {
  root: string;
  imagesRoot: string;
  train: string;
  val: string;
  docs: { train: CocoDoc; val: CocoDoc };
  /** Writes an image file under imagesRoot. */
  image(name: string, data: Buffer): void;
}

/**
 * Clean COCO set: categories cat (1) and dog (2); train has 4 images, val 2, every image one cat box and one
 * dog box, all unique 64×48 RGBA PNGs. `plant` edits the documents (and writes files) before they are saved;
 * `look` changes the size, brightness or contrast of every image (for drift).
 */
export function cocoDataset(
  root: string,
  plant: (set: CocoSet) => void = () => undefined,
  look: { width?: number; height?: number; base?: number; amplitude?: number } = {},
): CocoSet {
  const width = look.width ?? W;
  const height = look.height ?? H;
  const imagesRoot = path.join(root, 'images');
  const categories = [
    { id: 1, name: 'cat' },
    { id: 2, name: 'dog' },
  ];
  let seed = 1;
  let annId = 1;
  const doc = (prefix: string, n: number, firstId: number): CocoDoc => {
    const d: CocoDoc = { images: [], annotations: [], categories: categories.map((c) => ({ ...c })) };
    for (let i = 0; i < n; i++) {
      const id = firstId + i;
      const file = `${prefix}_${i}.png`;
      write(path.join(imagesRoot, file), pngImage(width, height, { seed: seed++, base: look.base, amplitude: look.amplitude }));
      d.images.push({ id, file_name: file, width, height });
      d.annotations.push({
        id: annId++,
        image_id: id,
        category_id: 1,
        bbox: [2, 3, 20, 15],
        area: 300,
        iscrowd: 0,
        segmentation: [[2, 3, 22, 3, 22, 18, 2, 18]],
      });
      d.annotations.push({ id: annId++, image_id: id, category_id: 2, bbox: [30, 20, 25, 20], area: 500, iscrowd: 0 });
    }
    return d;
  };
  const set: CocoSet = {
    root,
    imagesRoot,
    train: path.join(root, 'annotations', 'train.json'),
    val: path.join(root, 'annotations', 'val.json'),
    docs: { train: doc('train', 4, 1), val: doc('val', 2, 101) },
    image: (name, data) => write(path.join(imagesRoot, name), data),
  };
  plant(set);
  write(set.train, JSON.stringify(set.docs.train, null, 1));
  write(set.val, JSON.stringify(set.docs.val, null, 1));
  return set;
}

export function baseOptions(workspace: string, over: Partial<ValidateOptions> = {}): ValidateOptions {
  return {
    format: 'coco',
    splits: {},
    classes: [],
    minBoxSize: 1,
    maxImbalance: 100,
    maxUnlabeledShare: 0.5,
    maxEmptyMaskShare: 0.5,
    crossSplitSeverity: 'error',
    drift: { maxPsi: 0.2, chiSquareAlpha: 0.001 },
    sampleSize: 50,
    fullDecode: false,
    threads: 2,
    failOn: 'error',
    workspace,
    ...over,
  };
}

export async function validateCoco(set: CocoSet, over: Partial<ValidateOptions> = {}): Promise<ValidationReport> {
  const { report } = await validateDataset(
    baseOptions(set.root, { format: 'coco', splits: { train: set.train, val: set.val }, imagesRoot: set.imagesRoot, ...over }),
  );
  return report;
}

/** Checks with findings, as { id: count }. */
export function found(report: ValidationReport): Record<string, number> {
  return Object.fromEntries(report.checks.filter((c) => c.count > 0).map((c) => [c.id, c.count]));
}

export function check(report: ValidationReport, id: string): CheckResult {
  const c = report.checks.find((x) => x.id === id);
  if (!c) throw new Error(`check ${id} was not evaluated; evaluated: ${report.checks.map((x) => x.id).join(', ')}`);
  return c;
}

export function firstExample(report: ValidationReport, id: string): Example {
  const e = check(report, id).examples[0];
  if (!e) throw new Error(`check ${id} has no example`);
  return e;
}
