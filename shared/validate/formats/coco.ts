import * as path from 'node:path';
import type { Frame } from '../geometry';
import { checkBox, checkPolygon, checkRle } from '../geometry';
import type { ImageRef, LoadedSplit, LoaderContext, SplitName, Where } from '../dataset';
import { resolveImagesRoot, StatsBuilder } from '../dataset';
import { numberOf, parseJsonText, readTextFile } from '../json-text';

type Id = string | number;
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is Id => (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v !== '');
const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

export interface CocoSplit {
  loaded: LoadedSplit;
  /** Category names in file order. */
  categories: string[];
}

/**
 * One COCO instances file (detection boxes, polygons, RLE). The parsed document is walked once and dropped;
 * geometry is checked against the size each image entry declares, and the image files themselves are checked
 * against those sizes later from their headers.
 */
export async function loadCoco(split: SplitName, file: string, ctx: LoaderContext): Promise<CocoSplit> {
  const { findings } = ctx;
  const shown = ctx.display(file);
  const stats = new StatsBuilder();
  const loaded: LoadedSplit = { split, images: [], files: [{ path: file, role: 'annotation' }], stats: stats.stats };
  const result: CocoSplit = { loaded, categories: [] };
  findings.ran('structure.parse-error', 'structure.schema', 'coco.duplicate-image-id', 'coco.duplicate-annotation-id', 'coco.duplicate-category-id', 'coco.unknown-image', 'coco.unknown-category');
  findings.ran('geometry.non-finite', 'geometry.box-degenerate', 'geometry.box-outside', 'geometry.polygon-too-few-points', 'geometry.polygon-outside', 'geometry.rle-size-mismatch');
  if (ctx.options.minBoxSize > 0) findings.ran('geometry.box-tiny');

  const text = await readTextFile(file, (done, total) => ctx.progress(`read ${shown}`, done, total, 'bytes'), ctx.signal);
  const parsed = parseJsonText(text);
  if (!parsed.ok) {
    findings.add('structure.parse-error', { split, file: shown, line: parsed.line, column: parsed.column, message: `invalid JSON at line ${parsed.line}, column ${parsed.column}: ${parsed.message}` });
    loaded.unusable = true;
    return result;
  }
  const doc = parsed.value;
  const base: Where = { split, file: shown };
  if (!isObject(doc)) {
    findings.add('structure.schema', { ...base, field: '(root)', value: Array.isArray(doc) ? 'array' : typeof doc, message: 'a COCO file is an object with images, annotations and categories' });
    loaded.unusable = true;
    return result;
  }
  const list = (key: string): unknown[] => {
    if (Array.isArray(doc[key])) return doc[key] as unknown[];
    findings.add('structure.schema', { ...base, field: key, value: doc[key] === undefined ? 'missing' : typeof doc[key], message: `"${key}" must be an array` });
    return [];
  };
  const rawCategories = list('categories');
  const rawImages = list('images');
  const rawAnnotations = list('annotations');

  const categories = new Map<Id, string>();
  rawCategories.forEach((c, i) => {
    if (!isObject(c) || !isId(c.id)) {
      findings.add('structure.schema', { ...base, field: `categories[${i}].id`, value: isObject(c) ? c.id : c, message: 'category needs an id (number or string)' });
      return;
    }
    const where: Where = { ...base, id: c.id };
    if (categories.has(c.id)) {
      findings.add('coco.duplicate-category-id', { ...where, field: 'id', value: c.id, message: `category id ${c.id} is declared more than once` });
      return;
    }
    if (typeof c.name !== 'string' || c.name === '') findings.add('structure.schema', { ...where, field: 'name', value: c.name, message: 'category needs a non-empty name' });
    const name = typeof c.name === 'string' && c.name !== '' ? c.name : `#${c.id}`;
    categories.set(c.id, name);
    result.categories.push(name);
  });

  const root = resolveImagesRoot(ctx.options.imagesRoot, split) ?? path.dirname(file);
  const images = new Map<Id, { frame?: Frame; labels: string[] }>();
  rawImages.forEach((im, i) => {
    if (!isObject(im) || !isId(im.id)) {
      findings.add('structure.schema', { ...base, field: `images[${i}].id`, value: isObject(im) ? im.id : im, message: 'image needs an id (number or string)' });
      return;
    }
    const where: Where = { ...base, id: im.id };
    if (images.has(im.id)) {
      findings.add('coco.duplicate-image-id', { ...where, field: 'id', value: im.id, message: `image id ${im.id} is used by more than one image` });
      return;
    }
    let frame: Frame | undefined;
    if (isPositiveInt(im.width) && isPositiveInt(im.height)) frame = { width: im.width, height: im.height };
    else findings.add('structure.schema', { ...where, field: isPositiveInt(im.width) ? 'height' : 'width', value: isPositiveInt(im.width) ? im.height : im.width, message: 'image width and height must be positive integers' });
    images.set(im.id, { frame, labels: [] });
    if (typeof im.file_name !== 'string' || im.file_name === '') {
      findings.add('structure.schema', { ...where, field: 'file_name', value: im.file_name, message: 'image needs a non-empty file_name' });
      return;
    }
    const ref: ImageRef = { split, path: path.resolve(root, im.file_name), file: shown, id: im.id, field: 'file_name', role: 'image' };
    if (frame) ref.declared = frame;
    loaded.images.push(ref);
  });

  const annotationIds = new Set<Id>();
  const total = rawAnnotations.length;
  const minBox = ctx.options.minBoxSize;
  for (let i = 0; i < total; i++) {
    if (i % 20000 === 0) {
      ctx.signal?.throwIfAborted();
      ctx.progress(`check ${shown} annotations`, i, total, 'items');
    }
    const a = rawAnnotations[i];
    if (!isObject(a)) {
      findings.add('structure.schema', { ...base, field: `annotations[${i}]`, value: a, message: 'annotation must be an object' });
      continue;
    }
    const where: Where = { ...base, id: isId(a.id) ? a.id : `annotations[${i}]` };
    if (!isId(a.id)) findings.add('structure.schema', { ...where, field: 'id', value: a.id, message: 'annotation needs an id (number or string)' });
    else if (annotationIds.has(a.id)) findings.add('coco.duplicate-annotation-id', { ...where, field: 'id', value: a.id, message: `annotation id ${a.id} is used more than once` });
    else annotationIds.add(a.id);

    let image: { frame?: Frame; labels: string[] } | undefined;
    if (!isId(a.image_id)) findings.add('structure.schema', { ...where, field: 'image_id', value: a.image_id, message: 'annotation needs an image_id' });
    else if (!(image = images.get(a.image_id))) findings.add('coco.unknown-image', { ...where, field: 'image_id', value: a.image_id, message: `image_id ${a.image_id} is not in "images"` });
    let category: string | undefined;
    if (!isId(a.category_id)) findings.add('structure.schema', { ...where, field: 'category_id', value: a.category_id, message: 'annotation needs a category_id' });
    else if ((category = categories.get(a.category_id)) === undefined) {
      findings.add('coco.unknown-category', { ...where, field: 'category_id', value: a.category_id, message: `category_id ${a.category_id} is not in "categories"` });
    }
    const frame = image?.frame;

    if (a.bbox !== undefined) {
      const box = Array.isArray(a.bbox) ? a.bbox.map(numberOf) : [];
      if (box.length !== 4 || box.some((v) => v === undefined)) findings.add('structure.schema', { ...where, field: 'bbox', value: a.bbox, message: 'bbox must be [x, y, width, height] numbers' });
      else checkBox(findings, where, 'bbox', box as number[], frame, minBox);
    }
    if (a.segmentation !== undefined) checkSegmentation(ctx, where, a.segmentation, frame);
    if (a.bbox === undefined && a.segmentation === undefined) {
      findings.add('structure.schema', { ...where, field: 'bbox', value: 'missing', message: 'annotation has neither bbox nor segmentation' });
    }
    if (image && category !== undefined) image.labels.push(category);
  }
  ctx.progress(`check ${shown} annotations`, total, total, 'items');
  for (const image of images.values()) stats.image(image.labels);
  return result;
}

function checkSegmentation(ctx: LoaderContext, where: Where, segmentation: unknown, frame: Frame | undefined): void {
  const { findings } = ctx;
  if (Array.isArray(segmentation)) {
    segmentation.forEach((polygon, k) => {
      const field = `segmentation[${k}]`;
      const coords = Array.isArray(polygon) ? polygon.map(numberOf) : undefined;
      if (!coords || coords.some((v) => v === undefined)) {
        findings.add('structure.schema', { ...where, field, value: polygon, message: 'polygon must be a flat list of numbers [x0, y0, x1, y1, …]' });
      } else if (coords.length % 2 === 1) {
        findings.add('structure.schema', { ...where, field, value: polygon, message: `polygon has an odd number of coordinates (${coords.length})` });
      } else checkPolygon(findings, where, field, coords as number[], frame);
    });
    return;
  }
  if (isObject(segmentation)) {
    const { size, counts } = segmentation;
    const sizeOk = Array.isArray(size) && size.length === 2 && size.every((v) => Number.isInteger(v) && v >= 0);
    const countsOk = typeof counts === 'string' || (Array.isArray(counts) && counts.every((v) => Number.isInteger(v) && v >= 0));
    if (!sizeOk || !countsOk) {
      findings.add('structure.schema', { ...where, field: sizeOk ? 'segmentation.counts' : 'segmentation.size', value: sizeOk ? counts : size, message: 'RLE needs size [height, width] and counts (integers or a compressed string)' });
      return;
    }
    checkRle(findings, where, 'segmentation', size as number[], counts as number[] | string, frame);
    return;
  }
  findings.add('structure.schema', { ...where, field: 'segmentation', value: segmentation, message: 'segmentation must be a list of polygons or an RLE object' });
}
