/**
 * Prediction galleries: test images with ground truth, candidate and production masks overlaid (translucent fill
 * and a solid contour, in the chart palette), worst regressions first, capped in count and pixel size. Written as
 * PNG files and a gallery.json next to the step's report; the HTML report embeds them, job summaries link to them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write';
import { StepError } from '../core/errors';
import { escapeHtml } from '../core/html';
import type { LabelCounts } from '../metrics/masks/overlap';
import { type LabelImage, readLabelImage } from '../metrics/masks/read';
import { loadSharp } from '../preprocess/sharp-loader';
import { PALETTE } from './charts';

export interface GalleryItem {
  name: string;
  /** PNG file, relative to the gallery folder. */
  file: string;
  candidate: number;
  production: number | null;
  /** candidate − production (null without production). */
  delta: number | null;
}

export interface Gallery {
  format: 'mlship-gallery/1';
  metric: string;
  /** What the panels of each image show, left to right. */
  panels: { name: string; color: string }[];
  /** Images in the test set; `items` holds the `shown` worst of them. */
  total: number;
  items: GalleryItem[];
}

export const GALLERY_IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.webp'];
/** The longest side of one panel, in pixels: small tiles are enlarged to it, large images shrunk. */
const PANEL_SIDE = 192;
const GAP = 4;

/** Per-image Dice (or IoU) of the foreground: all non-background labels pooled; 1 when both are empty. */
export function imageScore(c: LabelCounts, metric: 'dice' | 'iou', includeBackground: boolean): number {
  let inter = 0;
  let pred = 0;
  let truth = 0;
  for (let l = includeBackground ? 0 : 1; l < c.size; l++) {
    inter += c.intersection[l];
    pred += c.predicted[l];
    truth += c.truth[l];
  }
  if (pred + truth === 0) return 1;
  return metric === 'dice' ? (2 * inter) / (pred + truth) : inter / (pred + truth - inter);
}

/** Order of the gallery: the largest drop from production first; without production, the lowest scores first. */
export function worstFirst<T extends { name: string; candidate: number; production: number | null }>(items: readonly T[]): T[] {
  const key = (i: T) => (i.production === null ? i.candidate : i.candidate - i.production);
  return [...items].sort((a, b) => key(a) - key(b) || a.candidate - b.candidate || (a.name < b.name ? -1 : 1));
}

function findImage(dir: string, stem: string): string | undefined {
  for (const ext of GALLERY_IMAGE_EXTENSIONS)
    for (const e of [ext, ext.toUpperCase()]) if (fs.existsSync(path.join(dir, stem + e))) return path.join(dir, stem + e);
  return undefined;
}

const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

/** Paints `mask`'s foreground on `rgb` (w×h×3): 30% fill, solid 1-pixel contour where the label changes. */
function overlay(rgb: Uint8Array, mask: LabelImage, color: string): void {
  const [r, g, b] = hex(color);
  const { width: w, height: h, data } = mask;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = data[i];
      if (v === 0) continue;
      const edge =
        x === 0 ||
        y === 0 ||
        x === w - 1 ||
        y === h - 1 ||
        data[i - 1] !== v ||
        data[i + 1] !== v ||
        data[i - w] !== v ||
        data[i + w] !== v;
      const a = edge ? 1 : 0.3;
      rgb[i * 3] = Math.round(rgb[i * 3] * (1 - a) + r * a);
      rgb[i * 3 + 1] = Math.round(rgb[i * 3 + 1] * (1 - a) + g * a);
      rgb[i * 3 + 2] = Math.round(rgb[i * 3 + 2] * (1 - a) + b * a);
    }
  }
}

/**
 * Writes `<dir>/gallery.json` and one PNG per shown image (ground truth | candidate | production side by side).
 * `scores` come from the gate's own pixel counts, so the order matches the metric it reports.
 */
export async function writeSegmentationGallery(options: {
  dir: string;
  imagesDir: string;
  groundTruth: ReadonlyMap<string, string>;
  candidate: ReadonlyMap<string, string>;
  production?: ReadonlyMap<string, string>;
  /** What the candidate's panel is called (benchmark-model: the device's predictions). */
  candidateName?: string;
  scores: readonly { name: string; candidate: number; production: number | null }[];
  metric: string;
  max: number;
}): Promise<Gallery> {
  const sharp = loadSharp();
  const chosen = worstFirst(options.scores).slice(0, options.max);
  const panels = [
    { name: 'ground truth', color: PALETTE.groundTruth },
    { name: options.candidateName ?? 'candidate', color: PALETTE.candidate },
    ...(options.production ? [{ name: 'production', color: PALETTE.production }] : []),
  ];
  fs.mkdirSync(options.dir, { recursive: true });
  const items: GalleryItem[] = [];
  for (const [k, s] of chosen.entries()) {
    const stem = s.name; // mask names are paired without their extension
    const imageFile = findImage(options.imagesDir, stem);
    if (!imageFile) {
      throw new StepError(
        `The gallery needs the test image of "${s.name}", but ${options.imagesDir} has no ${stem} with any of ${GALLERY_IMAGE_EXTENSIONS.join(', ')}.`,
        {
          file: options.imagesDir,
          hint: 'Point the test-images input at the folder of the images the masks were made from (same file names).',
        },
      );
    }
    const masks = await Promise.all(
      [options.groundTruth, options.candidate, options.production]
        .filter((m): m is ReadonlyMap<string, string> => !!m)
        .map((m) => readLabelImage(m.get(s.name)!)),
    );
    const { width: w, height: h } = masks[0];
    const { data, info } = await sharp(imageFile).resize(w, h, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const panelW = w * panels.length + GAP * (panels.length - 1);
    const canvas = new Uint8Array(panelW * h * 3).fill(255);
    masks.forEach((mask, p) => {
      const rgb = new Uint8Array(w * h * 3);
      for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = data[i * info.channels + (info.channels >= 3 ? c : 0)];
      if (mask.width === w && mask.height === h) overlay(rgb, mask, panels[p].color);
      for (let y = 0; y < h; y++) canvas.set(rgb.subarray(y * w * 3, (y + 1) * w * 3), (y * panelW + p * (w + GAP)) * 3);
    });
    const factor = PANEL_SIDE / Math.max(w, h);
    const png = await sharp(Buffer.from(canvas), { raw: { width: panelW, height: h, channels: 3 } })
      .resize(Math.max(1, Math.round(panelW * factor)), Math.max(1, Math.round(h * factor)), {
        kernel: factor >= 1 ? 'nearest' : 'lanczos3',
      })
      .png({ compressionLevel: 9 })
      .toBuffer();
    items.push(await saveItem(options.dir, k, stem, png, s));
  }
  return saveGallery(options.dir, { format: 'mlship-gallery/1', metric: options.metric, panels, total: options.scores.length, items });
}

/**
 * Writes the image of the k-th worst case, named by rank and image so that a folder listing is worst first, and
 * the entry gallery.json keeps for it.
 */
async function saveItem(
  dir: string,
  k: number,
  stem: string,
  png: Buffer,
  s: { name: string; candidate: number; production: number | null },
): Promise<GalleryItem> {
  const file = `${String(k + 1).padStart(2, '0')}-${stem.replace(/[^A-Za-z0-9._-]/g, '_')}.png`;
  await writeFileAtomic(path.join(dir, file), png);
  return {
    name: s.name,
    file,
    candidate: s.candidate,
    production: s.production,
    delta: s.production === null ? null : s.candidate - s.production,
  };
}

async function saveGallery(dir: string, gallery: Gallery): Promise<Gallery> {
  await writeFileAtomic(path.join(dir, 'gallery.json'), JSON.stringify(gallery, null, 2) + '\n');
  return gallery;
}

const f4 = (v: number | null) => (v === null ? '—' : v.toFixed(4));
const signed = (v: number | null) => (v === null ? '—' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(4)}`);

/**
 * The gallery for a summary: in the HTML report, the images embedded (the report is one self-contained file); in
 * job summaries, where `data:` images are stripped, a table of the worst cases and where the PNGs are.
 */
export function galleryParts(gallery: Gallery, dir: string, shownDir: string): { html: string; markdown: string } {
  const title = `Prediction gallery: ${gallery.items.length} of ${gallery.total} test images, worst ${gallery.items.some((i) => i.production !== null) ? 'regressions' : 'scores'} first`;
  const candidate = gallery.panels[1]?.name ?? 'candidate';
  const legend = gallery.panels
    .map((p) => `<span class="legend-swatch" style="background:${p.color}"></span>${escapeHtml(p.name)}`)
    .join('');
  const figures = gallery.items
    .map((i) => {
      const uri = `data:image/png;base64,${fs.readFileSync(path.join(dir, i.file)).toString('base64')}`;
      const caption = `${escapeHtml(i.name)} · ${gallery.metric} ${f4(i.candidate)}${i.production !== null ? ` vs ${f4(i.production)} (Δ ${signed(i.delta)})` : ''}`;
      return `<figure><img class="gallery-image" alt="${escapeHtml(`${i.name}: ${gallery.panels.map((p) => p.name).join(', ')}`)}" src="${uri}"><figcaption>${caption}</figcaption></figure>`;
    })
    .join('');
  const html = `<h3>${escapeHtml(title)}</h3><p class="meta">Panels left to right:${legend}</p><div class="gallery">${figures}</div>`;
  const rows = gallery.items.map(
    (i) => `| ${i.name.replace(/\|/g, '\\|')} | ${f4(i.candidate)} | ${f4(i.production)} | ${signed(i.delta)} | \`${i.file}\` |`,
  );
  const markdown = [
    `### ${title}`,
    '',
    `Overlays (${gallery.panels.map((p) => p.name).join(' | ')}) are PNG files in \`${shownDir}\`; upload that folder as an artifact to look at them.`,
    '',
    ...(gallery.panels.length > 2
      ? [`| image | ${candidate} ${gallery.metric} | production ${gallery.metric} | Δ | file |`, '| --- | --- | --- | --- | --- |', ...rows]
      : [
          `| image | ${candidate} ${gallery.metric} | file |`,
          '| --- | --- | --- |',
          ...gallery.items.map((i) => `| ${i.name.replace(/\|/g, '\\|')} | ${f4(i.candidate)} | \`${i.file}\` |`),
        ]),
    '',
  ].join('\n');
  return { html, markdown };
}

/** A box in image pixels, COCO layout [x, y, width, height]. */
export interface GalleryBox {
  bbox: readonly [number, number, number, number] | readonly number[];
  category: number | string;
  score?: number;
}

/** Detections below this score are neither drawn nor counted in the per-image score. */
export const GALLERY_SCORE_THRESHOLD = 0.5;
const MAX_BOXES = 100;
const DETECTION_PANEL_SIDE = 320;

function iou(a: readonly number[], b: readonly number[]): number {
  const x0 = Math.max(a[0], b[0]);
  const y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]);
  const y1 = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Per-image F1 at IoU ≥ 0.5 of the detections scoring at least 0.5, matched greedily by score within a category
 * (what a person checks by eye); 1 when the image has neither ground truth nor such detections.
 */
export function detectionImageScore(truth: readonly GalleryBox[], detections: readonly GalleryBox[]): number {
  const dets = detections.filter((d) => (d.score ?? 1) >= GALLERY_SCORE_THRESHOLD).sort((a, b) => (b.score ?? 1) - (a.score ?? 1));
  const used = new Set<number>();
  let tp = 0;
  for (const d of dets) {
    let best = -1;
    let bestIou = 0.5;
    truth.forEach((t, i) => {
      if (used.has(i) || t.category !== d.category) return;
      const v = iou(t.bbox, d.bbox);
      if (v >= bestIou) [best, bestIou] = [i, v];
    });
    if (best >= 0) {
      used.add(best);
      tp++;
    }
  }
  const denominator = dets.length + truth.length;
  return denominator === 0 ? 1 : (2 * tp) / denominator;
}

function boxesSvg(
  width: number,
  height: number,
  scale: number,
  boxes: readonly GalleryBox[],
  color: string,
  names: ReadonlyMap<number | string, string>,
): string {
  const parts = boxes.slice(0, MAX_BOXES).map((b) => {
    const [x, y, w, h] = b.bbox.map((v) => v * scale);
    const label = `${names.get(b.category) ?? String(b.category)}${b.score !== undefined ? ` ${b.score.toFixed(2)}` : ''}`;
    const ty = y > 14 ? y - 3 : y + 12;
    // Labels stay inside the panel: a box at the right edge gets its label moved left.
    const lw = label.length * 6.2 + 4;
    const lx = Math.max(0, Math.min(x, width - lw));
    return `<rect x="${r2(x)}" y="${r2(y)}" width="${r2(w)}" height="${r2(h)}" fill="none" stroke="${color}" stroke-width="2"/><rect x="${r2(lx)}" y="${r2(ty - 11)}" width="${r2(lw)}" height="13" fill="#000000" fill-opacity="0.55"/><text x="${r2(lx + 2)}" y="${r2(ty)}" font-family="sans-serif" font-size="11" fill="${color}">${escapeHtml(label)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

const r2 = (v: number) => (Math.round(v * 10) / 10).toString();

/**
 * The detection gallery: each image with ground-truth boxes, candidate boxes and production boxes (score ≥ 0.5,
 * labelled with class and score) in three panels, worst per-image F1 regression first.
 */
export async function writeDetectionGallery(options: {
  dir: string;
  imagesDir: string;
  images: readonly { id: number | string; file: string }[];
  categories: ReadonlyMap<number | string, string>;
  groundTruth: ReadonlyMap<number | string, GalleryBox[]>;
  candidate: ReadonlyMap<number | string, GalleryBox[]>;
  production?: ReadonlyMap<number | string, GalleryBox[]>;
  max: number;
}): Promise<Gallery> {
  const sharp = loadSharp();
  const none: GalleryBox[] = [];
  const scored = options.images.map((im) => ({
    name: im.file,
    id: im.id,
    candidate: detectionImageScore(options.groundTruth.get(im.id) ?? none, options.candidate.get(im.id) ?? none),
    production: options.production
      ? detectionImageScore(options.groundTruth.get(im.id) ?? none, options.production.get(im.id) ?? none)
      : null,
  }));
  const panels = [
    { name: 'ground truth', color: PALETTE.groundTruth, boxes: options.groundTruth },
    { name: 'candidate', color: PALETTE.candidate, boxes: options.candidate },
    ...(options.production ? [{ name: 'production', color: PALETTE.production, boxes: options.production }] : []),
  ];
  fs.mkdirSync(options.dir, { recursive: true });
  const items: GalleryItem[] = [];
  for (const [k, s] of worstFirst(scored).slice(0, options.max).entries()) {
    const imageFile = path.join(options.imagesDir, s.name);
    if (!fs.existsSync(imageFile)) {
      throw new StepError(`The gallery needs image ${s.name} (id ${s.id}) of the ground truth, but it is not in ${options.imagesDir}.`, {
        file: options.imagesDir,
        hint: 'Point the test-images input at the folder that holds the images[].file_name of the ground truth.',
      });
    }
    const meta = await sharp(imageFile).metadata();
    const scale = DETECTION_PANEL_SIDE / Math.max(meta.width ?? 1, meta.height ?? 1);
    const pw = Math.max(1, Math.round((meta.width ?? 1) * scale));
    const ph = Math.max(1, Math.round((meta.height ?? 1) * scale));
    const tiles = await Promise.all(
      panels.map((p) => {
        const boxes = (p.boxes.get(s.id) ?? none)
          .filter((b) => (b.score ?? 1) >= GALLERY_SCORE_THRESHOLD)
          .sort((a, b) => (b.score ?? 1) - (a.score ?? 1));
        return sharp(imageFile)
          .resize(pw, ph, { fit: 'fill' })
          .removeAlpha()
          .composite([{ input: Buffer.from(boxesSvg(pw, ph, scale, boxes, p.color, options.categories)) }])
          .png()
          .toBuffer();
      }),
    );
    const gap = GAP * 2;
    const png = await sharp({
      create: { width: pw * panels.length + gap * (panels.length - 1), height: ph, channels: 3, background: '#ffffff' },
    })
      .composite(tiles.map((input, i) => ({ input, left: i * (pw + gap), top: 0 })))
      .png({ compressionLevel: 9 })
      .toBuffer();
    items.push(await saveItem(options.dir, k, s.name.replace(/\.[^.]+$/, ''), png, s));
  }
  return saveGallery(options.dir, {
    format: 'mlship-gallery/1',
    metric: 'F1@.5',
    panels: panels.map(({ name, color }) => ({ name, color })),
    total: scored.length,
    items,
  });
}
