import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { gaussian, seededRandom } from '../core/random';

export interface CellDatasetOptions {
  /** Images per split. */
  split?: { train: number; val: number; test: number };
  size?: number;
  seed?: number;
}

export interface CellImage {
  width: number;
  height: number;
  /** 8-bit grayscale pixels. */
  pixels: Uint8Array;
  /** 0 = background, 1 = cell. */
  labels: Uint8Array;
}

/**
 * A microscopy-like image: bright, slightly textured elliptical cells on a dim, noisy background with uneven
 * illumination, the look of a fluorescence channel. Labels are the exact cell footprints.
 */
export function drawCellImage(random: () => number, size: number): CellImage {
  const pixels = new Uint8Array(size * size);
  const labels = new Uint8Array(size * size);
  const intensity = new Float32Array(size * size);
  const tilt = 10 * (random() - 0.5);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) intensity[y * size + x] = 50 + tilt * (x / size) + 22 * gaussian(random);
  const cells = 3 + Math.floor(random() * 6);
  for (let c = 0; c < cells; c++) {
    const cx = random() * size;
    const cy = random() * size;
    const rx = size * (0.05 + 0.07 * random());
    const ry = rx * (0.6 + 0.6 * random());
    const angle = random() * Math.PI;
    const brightness = 80 + 60 * random();
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    for (let y = Math.max(0, Math.floor(cy - rx - ry)); y < Math.min(size, Math.ceil(cy + rx + ry)); y++) {
      for (let x = Math.max(0, Math.floor(cx - rx - ry)); x < Math.min(size, Math.ceil(cx + rx + ry)); x++) {
        const dx = (x - cx) * cos + (y - cy) * sin;
        const dy = -(x - cx) * sin + (y - cy) * cos;
        const r = (dx * dx) / (rx * rx) + (dy * dy) / (ry * ry);
        if (r <= 1) {
          const i = y * size + x;
          labels[i] = 1;
          intensity[i] = brightness * (1 - 0.4 * r) + 22 * gaussian(random);
        }
      }
    }
  }
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round(intensity[i])));
  return { width: size, height: size, pixels, labels };
}

export function writeGrayPng(file: string, width: number, height: number, values: Uint8Array): void {
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  png.data = Buffer.from(values);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false }));
}

export function readGrayPng(file: string): { width: number; height: number; values: Uint8Array } {
  const png = PNG.sync.read(fs.readFileSync(file), { skipRescale: true });
  // pngjs expands to RGBA; the first channel is the gray value.
  const values = new Uint8Array(png.width * png.height);
  for (let i = 0; i < values.length; i++) values[i] = png.data[i * 4];
  return { width: png.width, height: png.height, values };
}

/**
 * Writes `<root>/<split>/images/cell_NNN.png` and `<root>/<split>/masks/cell_NNN.png` (label values 0 and 1),
 * the semantic-segmentation folder layout validate-data reads, plus `classes.json`.
 */
export function generateCellDataset(root: string, options: CellDatasetOptions = {}): { root: string; splits: Record<string, number> } {
  const split = options.split ?? { train: 24, val: 8, test: 8 };
  const size = options.size ?? 96;
  const random = seededRandom(options.seed ?? 7);
  let n = 0;
  for (const [name, count] of Object.entries(split)) {
    for (let i = 0; i < count; i++, n++) {
      const image = drawCellImage(random, size);
      const stem = `cell_${String(n).padStart(3, '0')}`;
      writeGrayPng(path.join(root, name, 'images', `${stem}.png`), size, size, image.pixels);
      writeGrayPng(path.join(root, name, 'masks', `${stem}.png`), size, size, image.labels);
    }
  }
  fs.writeFileSync(path.join(root, 'classes.json'), JSON.stringify({ 0: 'background', 1: 'cell' }, null, 2) + '\n');
  return { root, splits: split };
}
