import * as fs from 'node:fs';
import { StepError } from '../../core/errors';
import { LazyRle, rleArea, rleFromCounts, rleFromPolygon, rleLength, rleMerge, rleToBboxInto, type Rle } from './rle';
import { parseJsonBounded } from '../../core/json-depth';
import { parseJsonText } from '../../core/json-text';

export type IouType = 'bbox' | 'segm';
/** COCO ids are numbers; string ids are accepted when a whole file uses them consistently. */
export type Id = number | string;

/** Ground truth in columns (one typed array per field), indexed by annotation. */
export interface CocoGroundTruth {
  readonly file: string;
  /** Image ids sorted as pycocotools sorts params.imgIds. */
  readonly imgIds: readonly Id[];
  readonly imgIndex: ReadonlyMap<Id, number>;
  readonly imgHeight: Float64Array;
  readonly imgWidth: Float64Array;
  /** Category ids sorted as params.catIds. */
  readonly catIds: readonly Id[];
  readonly catNames: readonly string[];
  readonly catIndex: ReadonlyMap<Id, number>;
  readonly n: number;
  readonly img: Int32Array;
  readonly cat: Int32Array;
  readonly id: Float64Array;
  readonly area: Float64Array;
  readonly crowd: Uint8Array;
  /** x, y, w, h per annotation (bbox evaluation). */
  readonly box: Float64Array;
  /** Masks (segm evaluation only). */
  readonly rle?: Rle[];
  /** Tight box of each mask (rleToBbox), for the overlap prefilter of mask IoU. */
  readonly maskBox?: Float64Array;
}

/** Detections after pycocotools loadRes: ids 1..N in file order, iscrowd 0, area and bbox filled in. */
export interface CocoDetections {
  readonly file: string;
  readonly n: number;
  readonly img: Int32Array;
  readonly cat: Int32Array;
  readonly score: Float64Array;
  readonly area: Float64Array;
  readonly box: Float64Array;
  readonly rle?: Rle[];
  readonly maskBox?: Float64Array;
  /** 'bbox' when the first result had a bbox (areas are then w*h, also for segm), else 'segm'. */
  readonly branch: 'bbox' | 'segm';
}

/** Reads and parses a JSON file, failing with the file name and the parser's position. */
export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StepError(`${what} file ${file} cannot be read (${code ?? String(error)}).`, {
      hint: 'Check the path; relative paths are resolved against the workspace.',
      file,
    });
  }
  try {
    return parseJsonBounded(text);
  } catch (error) {
    // Only bad files get here: the shared JSON reader (shared/core/json-text.ts) says where the problem is.
    const parsed = parseJsonText(text);
    if (parsed.ok && parsed.nonFinite) {
      throw new StepError(`${what} file ${file} holds NaN or Infinity (${parsed.nonFinite} value(s)), which JSON does not allow.`, {
        hint: "JSON has no NaN or Infinity, which Python's json.dump writes for non-finite floats: drop or fix those values (json.dump(..., allow_nan=False) finds them).",
        file,
      });
    }
    if (!parsed.ok) {
      throw new StepError(`${what} file ${file} is not valid JSON: ${parsed.message} at line ${parsed.line}, column ${parsed.column}.`, {
        hint: 'Write the file with a JSON encoder (Python: json.dump(..., allow_nan=False)) and check it is complete.',
        file,
        line: parsed.line,
        column: parsed.column,
      });
    }
    throw new StepError(`${what} file ${file} is not valid JSON: ${(error as Error).message}.`, {
      hint: 'Write the file with a JSON encoder (Python: json.dump(..., allow_nan=False)) and check it is complete.',
      file,
    });
  }
}

function fail(file: string, message: string, hint: string): never {
  throw new StepError(`${file}: ${message}`, { hint, file });
}

function show(value: unknown): string {
  const s = JSON.stringify(value);
  if (s === undefined) return String(value);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function isId(v: unknown): v is Id {
  return (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string';
}

function sortIds(ids: Id[], file: string, what: string): Id[] {
  const numeric = ids.every((i) => typeof i === 'number');
  if (!numeric && !ids.every((i) => typeof i === 'string')) {
    fail(
      file,
      `${what} ids mix numbers and strings (e.g. ${show(ids.find((i) => typeof i === 'string'))} and ${show(ids.find((i) => typeof i === 'number'))}).`,
      'Use integer ids throughout, as COCO does.',
    );
  }
  return numeric ? (ids as number[]).slice().sort((a, b) => a - b) : (ids as string[]).slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function lookupHint(map: ReadonlyMap<Id, number>, value: unknown): string {
  const other = typeof value === 'number' ? String(value) : typeof value === 'string' && value.trim() !== '' ? Number(value) : undefined;
  if (other !== undefined && map.has(other))
    return ` The ground truth has ${show(other)} (a ${typeof other}): ids are compared by value and type.`;
  return '';
}

/** A finite number, or undefined. */
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * An annotation's or detection's bbox as [x, y, width, height] of finite numbers with no negative size; the hint for
 * a malformed box depends on which file it is in (ground truth is hand-made, detections come from an export).
 */
function checkBox(bb: unknown, where: () => string, file: string, malformedHint: string): number[] {
  if (!Array.isArray(bb) || bb.length !== 4 || !bb.every((v) => num(v) !== undefined))
    fail(file, `${where()} has bbox ${show(bb)}; expected [x, y, width, height] of finite numbers.`, malformedHint);
  if ((bb[2] as number) < 0 || (bb[3] as number) < 0)
    fail(
      file,
      `${where()} has bbox ${show(bb)} with a negative width or height.`,
      'Boxes are [x, y, width, height]; convert [x1, y1, x2, y2] boxes first.',
    );
  return bb as number[];
}

type Segmentation = unknown;

/**
 * annToRLE: polygons are rasterised per part and merged. A first part of 4 numbers or fewer is refused: pycocotools'
 * frPyObjects sends a 4-number first part to frBbox, which raises a TypeError for a list (it wants an ndarray), and
 * anything shorter to "input type is not supported"; faster-coco-eval scores the 4-number case a third way. With
 * no reference to agree with, any number mlship gave would be unverifiable, and the input is ambiguous anyway
 * (a box [x, y, w, h], or a degenerate 2-point polygon). Later parts may be any even length, as frPoly takes them.
 * Uncompressed RLE keeps its own size.
 */
function segmentationToRle(seg: Segmentation, h: number, w: number, where: () => string, file: string): Rle {
  if (Array.isArray(seg)) {
    if (seg.length === 0)
      fail(file, `${where()} has an empty polygon list as segmentation.`, 'Give at least one polygon [x0, y0, x1, y1, ...] or an RLE.');
    if (!(h > 0 && w > 0))
      fail(
        file,
        `${where()} has a polygon segmentation but its image has no height/width.`,
        'Add "height" and "width" to the image entry in the ground truth.',
      );
    const first = seg[0] as unknown;
    if (Array.isArray(first) && first.length <= 4) {
      fail(
        file,
        `${where()} has a first polygon of ${first.length} numbers (${show(first)}); pycocotools refuses it (${first.length === 4 ? 'frPyObjects reads 4 numbers as a box and raises a TypeError' : '"input type is not supported"'}), so there is no reference score for it.`,
        'Give polygons of at least 3 points (6 numbers); give a box as "bbox" (or as the 4-corner polygon [x, y, x, y+h, x+w, y+h, x+w, y]).',
      );
    }
    const parts: Rle[] = [];
    for (let p = 0; p < seg.length; p++) {
      const part = seg[p] as unknown;
      if (!Array.isArray(part) || part.some((v) => num(v) === undefined))
        fail(
          file,
          `${where()} has polygon ${p} = ${show(part)}, which is not a list of finite numbers.`,
          'Polygons are flat lists [x0, y0, x1, y1, ...].',
        );
      if (part.length % 2 !== 0 || part.length < 2)
        fail(
          file,
          `${where()} has polygon ${p} with ${part.length} numbers; a polygon needs x, y pairs.`,
          'Polygons are flat lists [x0, y0, x1, y1, ...] of even length.',
        );
      parts.push(rleFromPolygon(part as number[], h, w));
    }
    return rleMerge(parts);
  }
  if (seg && typeof seg === 'object') {
    const o = seg as { size?: unknown; counts?: unknown };
    const size = o.size;
    if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && (v as number) >= 0)) {
      fail(
        file,
        `${where()} has an RLE segmentation with size ${show(size)}; expected [height, width].`,
        'RLE masks are {"size": [height, width], "counts": ...}.',
      );
    }
    const [rh, rw] = size as [number, number];
    let rle: Rle;
    if (typeof o.counts === 'string') {
      try {
        rle = new LazyRle(rh, rw, o.counts);
      } catch {
        fail(
          file,
          `${where()} has a truncated compressed RLE string.`,
          'Encode masks with pycocotools.mask.encode and keep the whole "counts" string.',
        );
      }
    } else if (Array.isArray(o.counts)) {
      if (!o.counts.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff)) {
        fail(
          file,
          `${where()} has uncompressed RLE counts that are not all non-negative integers.`,
          'Counts are run lengths in column-major order, starting with background.',
        );
      }
      rle = rleFromCounts(o.counts as number[], rh, rw);
    } else {
      fail(
        file,
        `${where()} has an RLE segmentation whose counts is ${show(o.counts)}.`,
        'Counts are a compressed string or a list of run lengths.',
      );
    }
    if (rleLength(rle) !== rh * rw) {
      fail(
        file,
        `${where()} has RLE runs covering ${rleLength(rle)} pixels but its size ${rh}x${rw} has ${rh * rw}.`,
        'The mask is corrupt or was encoded for another image size.',
      );
    }
    if (h > 0 && w > 0 && (rh !== h || rw !== w)) {
      fail(
        file,
        `${where()} has a mask of size ${rh}x${rw} (height x width) but its image is ${h}x${w}.`,
        'Encode masks at the resolution of the ground-truth image.',
      );
    }
    return rle;
  }
  return fail(
    file,
    `${where()} has segmentation ${show(seg)}, which is neither polygons nor RLE.`,
    'Use polygons [[x0, y0, ...]] or {"size": [h, w], "counts": ...}.',
  );
}

function asRecordArray(value: unknown, file: string, what: string, key: string): Record<string, unknown>[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(file, `"${key}" is ${show(value)}, not a list.`, `A COCO ${what} file has a list under "${key}".`);
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (!v || typeof v !== 'object' || Array.isArray(v))
      fail(file, `${key}[${i}] is ${show(v)}, not an object.`, `Each entry of "${key}" is a JSON object.`);
  }
  return value as Record<string, unknown>[];
}

export function loadGroundTruth(json: unknown, file: string, iouType: IouType): CocoGroundTruth {
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    fail(
      file,
      'is not a COCO ground-truth object (expected {"images": [...], "annotations": [...], "categories": [...]}).',
      'Pass the instances JSON as ground truth and the results list as predictions.',
    );
  }
  const data = json as Record<string, unknown>;
  const images = asRecordArray(data.images, file, 'ground-truth', 'images');
  const anns = asRecordArray(data.annotations, file, 'ground-truth', 'annotations');
  const cats = asRecordArray(data.categories, file, 'ground-truth', 'categories');

  const rawImg = new Map<Id, Record<string, unknown>>();
  for (let i = 0; i < images.length; i++) {
    const id = images[i].id;
    if (!isId(id)) fail(file, `images[${i}] has id ${show(id)}; image ids are numbers.`, 'Give every image an integer "id".');
    if (rawImg.has(id)) fail(file, `images[${i}] repeats image id ${show(id)}.`, 'Image ids must be unique.');
    rawImg.set(id, images[i]);
  }
  const imgIds = sortIds([...rawImg.keys()], file, 'image');
  const imgIndex = new Map<Id, number>();
  const imgHeight = new Float64Array(imgIds.length);
  const imgWidth = new Float64Array(imgIds.length);
  imgIds.forEach((id, i) => {
    imgIndex.set(id, i);
    const im = rawImg.get(id)!;
    imgHeight[i] = num(im.height) ?? 0;
    imgWidth[i] = num(im.width) ?? 0;
  });

  const catName = new Map<Id, string>();
  for (let i = 0; i < cats.length; i++) {
    const id = cats[i].id;
    if (!isId(id)) fail(file, `categories[${i}] has id ${show(id)}.`, 'Give every category an integer "id".');
    if (catName.has(id)) fail(file, `categories[${i}] repeats category id ${show(id)}.`, 'Category ids must be unique.');
    catName.set(id, typeof cats[i].name === 'string' ? (cats[i].name as string) : String(id));
  }
  const catIds = sortIds([...catName.keys()], file, 'category');
  const catIndex = new Map<Id, number>(catIds.map((id, k) => [id, k]));
  const catNames = catIds.map((id) => catName.get(id)!);

  const n = anns.length;
  const img = new Int32Array(n);
  const cat = new Int32Array(n);
  const id = new Float64Array(n);
  const area = new Float64Array(n);
  const crowd = new Uint8Array(n);
  const box = new Float64Array(n * 4);
  const rle: Rle[] | undefined = iouType === 'segm' ? new Array<Rle>(n) : undefined;
  const seenIds = new Set<number>();
  for (let i = 0; i < n; i++) {
    const a = anns[i];
    const where = () => `annotations[${i}] (id ${show(a.id)}, image_id ${show(a.image_id)})`;
    const aid = num(a.id);
    if (aid === undefined)
      fail(
        file,
        `annotations[${i}] has id ${show(a.id)}; annotation ids are numbers.`,
        'Give every annotation a unique integer "id" (pycocotools indexes annotations by it).',
      );
    if (seenIds.has(aid))
      fail(
        file,
        `${where()} repeats annotation id ${aid}.`,
        'Annotation ids must be unique: pycocotools keeps only the last annotation of a repeated id.',
      );
    seenIds.add(aid);
    const ii = imgIndex.get(a.image_id as Id);
    if (ii === undefined)
      fail(
        file,
        `${where()} refers to image_id ${show(a.image_id)}, which is not in "images".${lookupHint(imgIndex, a.image_id)}`,
        'Every annotation must belong to a listed image.',
      );
    const k = catIndex.get(a.category_id as Id);
    if (k === undefined)
      fail(
        file,
        `${where()} has category_id ${show(a.category_id)}, which is not in "categories".${lookupHint(catIndex, a.category_id)}`,
        'Declare every category under "categories".',
      );
    const ar = num(a.area);
    if (ar === undefined)
      fail(
        file,
        `${where()} has area ${show(a.area)}; pycocotools needs a numeric "area" to place objects in small/medium/large.`,
        'Set "area" to the mask area (or box area for box-only data).',
      );
    img[i] = ii;
    cat[i] = k;
    id[i] = aid;
    area[i] = ar;
    // pycocotools ignores a ground truth exactly when iscrowd is truthy; a missing iscrowd counts as 0 here.
    crowd[i] = a.iscrowd ? 1 : 0;
    if (iouType === 'bbox') {
      box.set(checkBox(a.bbox, where, file, 'Ground-truth boxes are [x, y, width, height] in pixels.'), i * 4);
    } else {
      if (a.segmentation === undefined)
        fail(
          file,
          `${where()} has no segmentation, which segm evaluation needs.`,
          'Add polygons or RLE masks, or evaluate with iou-type bbox.',
        );
      rle![i] = segmentationToRle(a.segmentation, imgHeight[ii], imgWidth[ii], where, file);
    }
  }
  return {
    file,
    imgIds,
    imgIndex,
    imgHeight,
    imgWidth,
    catIds,
    catNames,
    catIndex,
    n,
    img,
    cat,
    id,
    area,
    crowd,
    box,
    rle,
    maskBox: rle && maskBoxes(rle),
  };
}

function maskBoxes(rle: Rle[]): Float64Array {
  const out = new Float64Array(rle.length * 4);
  for (let j = 0; j < rle.length; j++) rleToBboxInto(rle[j], out, j * 4);
  return out;
}

/** The results list: a plain list, or a COCO-style object whose "annotations" are the results. */
function resultsList(json: unknown, file: string): { list: Record<string, unknown>[]; key: string } {
  if (Array.isArray(json)) return { list: asRecordArray(json, file, 'results', ''), key: '' };
  if (json && typeof json === 'object' && Array.isArray((json as Record<string, unknown>).annotations)) {
    return { list: asRecordArray((json as Record<string, unknown>).annotations, file, 'results', 'annotations'), key: 'annotations' };
  }
  return fail(
    file,
    'is not a list of detections (expected [{"image_id", "category_id", "bbox" or "segmentation", "score"}, ...]).',
    'Pass the detector results list as predictions and the instances JSON as ground truth.',
  );
}

/** A results object that lists its images must list exactly the ground truth's: else it is another test set. */
function checkListedImages(json: unknown, file: string, gt: CocoGroundTruth): void {
  if (Array.isArray(json) || !json || typeof json !== 'object') return;
  const images = (json as Record<string, unknown>).images;
  if (!Array.isArray(images)) return;
  const listed = new Set<unknown>(images.map((im) => (im && typeof im === 'object' ? (im as Record<string, unknown>).id : undefined)));
  for (const id of gt.imgIds) {
    if (!listed.has(id))
      fail(
        file,
        `lists ${listed.size} images but not ground-truth image ${show(id)}: the predictions were made on a different test set than ${gt.file}.`,
        'Run both models on the same test set as the ground truth.',
      );
  }
  for (let i = 0; i < images.length; i++) {
    const id = (images[i] as Record<string, unknown> | null)?.id;
    if (!gt.imgIndex.has(id as Id))
      fail(
        file,
        `images[${i}] has id ${show(id)}, which is not in the ground truth ${gt.file}: the predictions were made on a different test set.`,
        'Run both models on the same test set as the ground truth.',
      );
  }
}

/**
 * Applies COCO.loadRes to a results list, with the validation pycocotools lacks: every image and category must
 * exist in the ground truth, every score lie in [0, 1], every box be finite with a non-negative size.
 */
export function loadDetections(json: unknown, file: string, gt: CocoGroundTruth, iouType: IouType): CocoDetections {
  const { list, key } = resultsList(json, file);
  checkListedImages(json, file, gt);
  const n = list.length;
  if (n === 0)
    fail(
      file,
      'has no detections (an empty results list).',
      'Run the model on the test set and write every detection; an empty file usually means the export failed.',
    );
  const first = list[0];
  const branch: 'bbox' | 'segm' = 'bbox' in first && !(Array.isArray(first.bbox) && first.bbox.length === 0) ? 'bbox' : 'segm';
  if (branch === 'segm' && !('segmentation' in first))
    fail(file, `${key}[0] has neither "bbox" nor "segmentation".`, 'Each detection needs a bbox [x, y, w, h] or a segmentation mask.');
  const img = new Int32Array(n);
  const cat = new Int32Array(n);
  const score = new Float64Array(n);
  const area = new Float64Array(n);
  const box = new Float64Array(n * 4);
  const rle: Rle[] | undefined = iouType === 'segm' ? new Array<Rle>(n) : undefined;
  const maskBox = rle ? new Float64Array(n * 4) : undefined;
  for (let i = 0; i < n; i++) {
    const d = list[i];
    const where = () => `${key}[${i}] (image_id ${show(d.image_id)}, category_id ${show(d.category_id)})`;
    const ii = gt.imgIndex.get(d.image_id as Id);
    if (ii === undefined)
      fail(
        file,
        `${where()} refers to image_id ${show(d.image_id)}, which is not in the ground truth ${gt.file}.${lookupHint(gt.imgIndex, d.image_id)}`,
        'Predictions must be made on the ground-truth test set (pycocotools stops with "Results do not correspond to current coco set").',
      );
    const k = gt.catIndex.get(d.category_id as Id);
    if (k === undefined)
      fail(
        file,
        `${where()} has category_id ${show(d.category_id)}, which is not a category of ${gt.file}.${lookupHint(gt.catIndex, d.category_id)}`,
        `Map the model's class indices to the ground-truth category ids (${gt.catIds.slice(0, 8).join(', ')}${gt.catIds.length > 8 ? ', ...' : ''}).`,
      );
    const s = d.score;
    if (typeof s !== 'number' || !Number.isFinite(s) || s < 0 || s > 1) {
      fail(
        file,
        `${where()} has score ${s === undefined ? 'missing' : show(s)}; scores must be numbers in [0, 1].`,
        'Write the detection confidence (after sigmoid/softmax) as "score".',
      );
    }
    img[i] = ii;
    cat[i] = k;
    score[i] = s;
    const h = gt.imgHeight[ii];
    const w = gt.imgWidth[ii];
    const bb = d.bbox;
    const hasBox = bb !== undefined;
    if (hasBox) {
      box.set(
        checkBox(bb, where, file, 'Boxes are [x, y, width, height] in pixels; NaN or infinite values usually come from a failed export.'),
        i * 4,
      );
    }
    if (branch === 'bbox') {
      if (!hasBox)
        fail(
          file,
          `${where()} has no bbox, but the first detection has one (pycocotools reads every result like the first).`,
          'Give every detection a bbox, or none of them.',
        );
      area[i] = (bb as number[])[2] * (bb as number[])[3];
      if (rle) {
        if (d.segmentation === undefined) {
          const x1 = box[i * 4],
            y1 = box[i * 4 + 1],
            x2 = x1 + box[i * 4 + 2],
            y2 = y1 + box[i * 4 + 3];
          if (!(h > 0 && w > 0))
            fail(
              file,
              `${where()} has no segmentation and its image has no height/width to draw the box in.`,
              'Add "height" and "width" to the ground-truth images.',
            );
          rle[i] = rleFromPolygon([x1, y1, x1, y2, x2, y2, x2, y1], h, w);
        } else {
          rle[i] = segmentationToRle(d.segmentation, h, w, where, file);
        }
        rleToBboxInto(rle[i], maskBox!, i * 4);
      }
    } else {
      if (d.segmentation === undefined)
        fail(
          file,
          `${where()} has no segmentation, but the first detection has one (pycocotools reads every result like the first).`,
          'Give every detection a segmentation mask.',
        );
      const mask = segmentationToRle(d.segmentation, h, w, where, file);
      area[i] = rleArea(mask);
      if (maskBox) {
        rle![i] = mask;
        rleToBboxInto(mask, maskBox, i * 4);
        if (!hasBox) box.set(maskBox.subarray(i * 4, i * 4 + 4), i * 4);
      } else if (!hasBox) rleToBboxInto(mask, box, i * 4);
    }
  }
  return { file, n, img, cat, score, area, box, rle, maskBox, branch };
}
