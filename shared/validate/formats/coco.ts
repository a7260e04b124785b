import * as path from 'node:path';
import { StepError } from '../../core/errors';
import { pathKind } from '../files';
import type { Frame } from '../geometry';
import { checkBox, checkPolygon, checkRle } from '../geometry';
import type { LoadedSplit, LoaderContext, SplitName, Where } from '../dataset';
import { resolveFile, resolveImagesRoot, StatsBuilder } from '../dataset';
import { IdSet, PairSet } from '../id-sets';
import type { JsonFailure, Section } from '../json-sections';
import { firstError, readSlices, scanSections } from '../json-sections';
import { numberOf, parseJsonText, readTextFile } from '../../core/json-text';

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

/** The members the checks read, in the order they must be read: annotations refer to the other two. */
const MEMBERS = ['categories', 'images', 'annotations'] as const;
type Member = (typeof MEMBERS)[number];

/**
 * One COCO instances file (detection boxes, polygons, RLE), streamed: a first pass finds where categories,
 * images and annotations lie, then each is parsed a slice at a time, categories and images first whatever
 * their order in the file. Per annotation only bits are kept (its id, which classes its image has), so memory
 * follows the number of images, not the size of the file. Geometry is checked against the size each image
 * entry declares, and the image files themselves are checked against those sizes later from their headers.
 */
export async function loadCoco(split: SplitName, file: string, ctx: LoaderContext): Promise<CocoSplit> {
  const { findings } = ctx;
  const shown = ctx.display(file);
  const loaded: LoadedSplit = { split, images: [], files: [{ path: file, role: 'annotation' }], stats: new StatsBuilder().stats };
  const result: CocoSplit = { loaded, categories: [] };
  findings.ran(
    'structure.parse-error',
    'structure.schema',
    'coco.duplicate-image-id',
    'coco.duplicate-annotation-id',
    'coco.duplicate-category-id',
    'coco.unknown-image',
    'coco.unknown-category',
  );
  findings.ran(
    'geometry.non-finite',
    'geometry.box-degenerate',
    'geometry.box-outside',
    'geometry.polygon-too-few-points',
    'geometry.polygon-outside',
    'geometry.rle-size-mismatch',
  );
  if (ctx.options.minBoxSize > 0) findings.ran('geometry.box-tiny');
  const base: Where = { split, file: shown };
  const unusable = (failure: JsonFailure): CocoSplit => {
    findings.add('structure.parse-error', {
      ...base,
      line: failure.line,
      column: failure.column,
      message: `invalid JSON at line ${failure.line}, column ${failure.column}: ${failure.message}`,
    });
    loaded.unusable = true;
    return result;
  };

  if ((await pathKind(file)) === 'dir') {
    throw new StepError(`The ${split} split ${shown} is a folder; a COCO split is one annotation JSON file.`, {
      hint: `Give the path of the ${split} annotations file, e.g. annotations/instances_${split}.json.`,
      file: shown,
    });
  }
  const scan = await scanSections(file, {
    onProgress: (done, total) => ctx.progress(`read ${shown}`, done, total, 'bytes'),
    signal: ctx.signal,
  });
  if (scan.kind === 'other') {
    // Not an object, so not COCO; read whole (such files are small) to tell a syntax error from a wrong shape.
    const parsed = parseJsonText(await readTextFile(file, undefined, ctx.signal));
    if (!parsed.ok) return unusable(parsed);
    findings.add('structure.schema', {
      ...base,
      field: '(root)',
      value: Array.isArray(parsed.value) ? 'array' : typeof parsed.value,
      message: 'a COCO file is an object with images, annotations and categories',
    });
    loaded.unusable = true;
    return result;
  }
  if (scan.error) return unusable((await firstError(file, scan.sections, scan.error, ctx.signal)) ?? scan.error);
  // Members are read in the order the checks need; a syntax error is reported as the first in file order.
  const unreadable = async (failure: JsonFailure) => unusable((await firstError(file, scan.sections, undefined, ctx.signal)) ?? failure);

  const local = findings.scope();
  const walk = new CocoWalk(file, { ...ctx, findings: local }, loaded, result.categories);
  const members = new Map(scan.sections.map((s) => [s.key, s]));
  for (const name of MEMBERS) {
    const section = members.get(name);
    let failure: JsonFailure | undefined;
    if (section?.array) failure = await walk.read(name, section);
    else {
      let value: unknown;
      if (section) {
        for await (const slice of readSlices(file, section, ctx.signal)) {
          if (!slice.ok) failure = slice.error;
          else value = slice.values[0];
        }
      }
      if (!failure)
        local.add('structure.schema', {
          ...base,
          field: name,
          value: section ? typeof value : 'missing',
          message: `"${name}" must be an array`,
        });
    }
    if (failure) return unreadable(failure);
    walk.sealed(name);
  }
  // Everything else is parsed too (info, licenses, an earlier copy of a key given twice), so every syntax
  // error in the file is reported.
  for (const section of scan.sections) {
    if (members.get(section.key) === section && (MEMBERS as readonly string[]).includes(section.key)) continue;
    for await (const slice of readSlices(file, section, ctx.signal)) if (!slice.ok) return unreadable(slice.error);
  }
  walk.finish();
  findings.absorb(local);
  return result;
}

/** What one file's walk keeps: a few numbers per image and a few bits per annotation. */
class CocoWalk {
  private readonly base: Where;
  private readonly root: string;
  /** Category id → index of its name in `classes` (two ids may share a name; counts are per name). */
  private readonly categoryIds = new Map<Id, number>();
  private readonly classes: string[] = [];
  private readonly imageIds = new Map<Id, number>();
  private readonly frames: (Frame | undefined)[] = [];
  private labels = new Uint32Array(0);
  private imageClasses = new PairSet(0, 1);
  private instances = new Float64Array(0);
  private imagesWith = new Float64Array(0);
  private readonly annotationIds = new IdSet();

  constructor(
    private readonly file: string,
    private readonly ctx: LoaderContext,
    private readonly loaded: LoadedSplit,
    private readonly categoryNames: string[],
  ) {
    this.base = { split: loaded.split, file: ctx.display(file) };
    this.root = resolveImagesRoot(ctx.options.imagesRoot, loaded.split) ?? path.dirname(file);
  }

  async read(name: Member, section: Section): Promise<JsonFailure | undefined> {
    const label = `check ${this.base.file} annotations`;
    const step = Math.max(1, Math.floor(section.elements / 100));
    let done = 0;
    let reported = 0;
    if (name === 'annotations') this.ctx.progress(label, 0, section.elements, 'items');
    for await (const slice of readSlices(this.file, section, this.ctx.signal)) {
      if (!slice.ok) return slice.error;
      for (let k = 0; k < slice.values.length; k++) {
        if (name === 'categories') this.category(slice.values[k], slice.first + k);
        else if (name === 'images') this.image(slice.values[k], slice.first + k);
        else this.annotation(slice.values[k], slice.first + k);
      }
      done += slice.values.length;
      if (name === 'annotations' && (done - reported >= step || done === section.elements)) {
        reported = done;
        this.ctx.progress(label, done, section.elements, 'items');
      }
    }
    return undefined;
  }

  /** A member is read (or found missing): size the tables the next one fills. */
  sealed(name: Member): void {
    if (name === 'categories') {
      this.instances = new Float64Array(this.classes.length);
      this.imagesWith = new Float64Array(this.classes.length);
    } else if (name === 'images') {
      this.labels = new Uint32Array(this.frames.length);
      this.imageClasses = new PairSet(this.frames.length, Math.max(1, this.classes.length));
    }
  }

  finish(): void {
    const stats = this.loaded.stats;
    stats.images = this.frames.length;
    for (const n of this.labels) {
      stats.annotations += n;
      if (n === 0) stats.unlabeledImages++;
    }
    this.classes.forEach((name, c) => {
      if (this.instances[c] > 0) stats.classCounts[name] = this.instances[c];
      if (this.imagesWith[c] > 0) stats.imagesPerClass[name] = this.imagesWith[c];
    });
  }

  /**
   * Where an item is. A plain literal on purpose: V8 allocated `{ ...base, id }` clones, made for every
   * annotation, straight into the old generation, which tripled the peak memory of a large file.
   */
  private at(id: Id): Where {
    return { split: this.base.split, file: this.base.file, id };
  }

  /**
   * A category's or image's id, when it can be used: present (number or string) and not taken by an earlier
   * entry. Otherwise the finding is added and the entry is skipped, so nothing later refers to a bad id.
   */
  private entryId(
    entry: unknown,
    field: string,
    what: 'category' | 'image',
    seen: ReadonlyMap<Id, number>,
    duplicate: { rule: 'coco.duplicate-category-id' | 'coco.duplicate-image-id'; message: (id: Id) => string },
  ): { entry: Json & { id: Id }; where: Where } | undefined {
    const { findings } = this.ctx;
    if (!isObject(entry) || !isId(entry.id)) {
      findings.add('structure.schema', {
        ...this.base,
        field,
        value: isObject(entry) ? entry.id : entry,
        message: `${what} needs an id (number or string)`,
      });
      return undefined;
    }
    const where = this.at(entry.id);
    if (seen.has(entry.id)) {
      findings.add(duplicate.rule, { ...where, field: 'id', value: entry.id, message: duplicate.message(entry.id) });
      return undefined;
    }
    return { entry: entry as Json & { id: Id }, where };
  }

  private category(item: unknown, i: number): void {
    const { findings } = this.ctx;
    const known = this.entryId(item, `categories[${i}].id`, 'category', this.categoryIds, {
      rule: 'coco.duplicate-category-id',
      message: (id) => `category id ${id} is declared more than once`,
    });
    if (!known) return;
    const { entry: c, where } = known;
    if (typeof c.name !== 'string' || c.name === '')
      findings.add('structure.schema', { ...where, field: 'name', value: c.name, message: 'category needs a non-empty name' });
    const name = typeof c.name === 'string' && c.name !== '' ? c.name : `#${c.id}`;
    let index = this.classes.indexOf(name);
    if (index === -1) index = this.classes.push(name) - 1;
    this.categoryIds.set(c.id, index);
    this.categoryNames.push(name);
  }

  private image(item: unknown, i: number): void {
    const { findings } = this.ctx;
    const known = this.entryId(item, `images[${i}].id`, 'image', this.imageIds, {
      rule: 'coco.duplicate-image-id',
      message: (id) => `image id ${id} is used by more than one image`,
    });
    if (!known) return;
    const { entry: im, where } = known;
    let frame: Frame | undefined;
    if (isPositiveInt(im.width) && isPositiveInt(im.height)) frame = { width: im.width, height: im.height };
    else
      findings.add('structure.schema', {
        ...where,
        field: isPositiveInt(im.width) ? 'height' : 'width',
        value: isPositiveInt(im.width) ? im.height : im.width,
        message: 'image width and height must be positive integers',
      });
    this.imageIds.set(im.id, this.frames.push(frame) - 1);
    if (typeof im.file_name !== 'string' || im.file_name === '') {
      findings.add('structure.schema', { ...where, field: 'file_name', value: im.file_name, message: 'image needs a non-empty file_name' });
      return;
    }
    this.loaded.images.push({
      split: this.loaded.split,
      path: resolveFile(this.root, im.file_name),
      file: this.base.file as string,
      id: im.id,
      field: 'file_name',
      declared: frame,
      role: 'image',
    });
  }

  private annotation(a: unknown, i: number): void {
    const { findings } = this.ctx;
    if (!isObject(a)) {
      findings.add('structure.schema', { ...this.base, field: `annotations[${i}]`, value: a, message: 'annotation must be an object' });
      return;
    }
    const where = this.at(isId(a.id) ? a.id : `annotations[${i}]`);
    if (!isId(a.id))
      findings.add('structure.schema', { ...where, field: 'id', value: a.id, message: 'annotation needs an id (number or string)' });
    else if (!this.annotationIds.add(a.id))
      findings.add('coco.duplicate-annotation-id', {
        ...where,
        field: 'id',
        value: a.id,
        message: `annotation id ${a.id} is used more than once`,
      });

    let image: number | undefined;
    if (!isId(a.image_id))
      findings.add('structure.schema', { ...where, field: 'image_id', value: a.image_id, message: 'annotation needs an image_id' });
    else if ((image = this.imageIds.get(a.image_id)) === undefined)
      findings.add('coco.unknown-image', {
        ...where,
        field: 'image_id',
        value: a.image_id,
        message: `image_id ${a.image_id} is not in "images"`,
      });
    let category: number | undefined;
    if (!isId(a.category_id))
      findings.add('structure.schema', { ...where, field: 'category_id', value: a.category_id, message: 'annotation needs a category_id' });
    else if ((category = this.categoryIds.get(a.category_id)) === undefined) {
      findings.add('coco.unknown-category', {
        ...where,
        field: 'category_id',
        value: a.category_id,
        message: `category_id ${a.category_id} is not in "categories"`,
      });
    }
    const frame = image === undefined ? undefined : this.frames[image];

    if (a.bbox !== undefined) {
      const box = Array.isArray(a.bbox) ? a.bbox.map(numberOf) : [];
      if (box.length !== 4 || box.some((v) => v === undefined))
        findings.add('structure.schema', { ...where, field: 'bbox', value: a.bbox, message: 'bbox must be [x, y, width, height] numbers' });
      else checkBox(findings, where, 'bbox', box as number[], frame, this.ctx.options.minBoxSize);
    }
    if (a.segmentation !== undefined) checkSegmentation(this.ctx, where, a.segmentation, frame);
    // COCO evaluation buckets annotations by area (small/medium/large): NaN or a negative area silently drops one.
    if (a.area !== undefined) {
      const area = numberOf(a.area);
      if (area === undefined)
        findings.add('structure.schema', { ...where, field: 'area', value: a.area, message: 'area must be a number' });
      else if (!Number.isFinite(area))
        findings.add('geometry.non-finite', { ...where, field: 'area', value: a.area, message: 'area is NaN or infinite' });
      else if (area < 0) findings.add('geometry.box-degenerate', { ...where, field: 'area', value: area, message: 'area is negative' });
    }
    if (a.bbox === undefined && a.segmentation === undefined) {
      findings.add('structure.schema', {
        ...where,
        field: 'bbox',
        value: 'missing',
        message: 'annotation has neither bbox nor segmentation',
      });
    }
    if (image !== undefined && category !== undefined) {
      this.labels[image]++;
      this.instances[category]++;
      if (this.imageClasses.add(image, category)) this.imagesWith[category]++;
    }
  }
}

function checkSegmentation(ctx: LoaderContext, where: Where, segmentation: unknown, frame: Frame | undefined): void {
  const { findings } = ctx;
  if (Array.isArray(segmentation)) {
    segmentation.forEach((polygon, k) => {
      const field = `segmentation[${k}]`;
      const coords = Array.isArray(polygon) ? polygon.map(numberOf) : undefined;
      if (!coords || coords.some((v) => v === undefined)) {
        findings.add('structure.schema', {
          ...where,
          field,
          value: polygon,
          message: 'polygon must be a flat list of numbers [x0, y0, x1, y1, …]',
        });
      } else if (coords.length % 2 === 1) {
        findings.add('structure.schema', {
          ...where,
          field,
          value: polygon,
          message: `polygon has an odd number of coordinates (${coords.length})`,
        });
      } else checkPolygon(findings, where, field, coords as number[], frame);
    });
    return;
  }
  if (isObject(segmentation)) {
    const { size, counts } = segmentation;
    const sizeOk = Array.isArray(size) && size.length === 2 && size.every((v) => Number.isInteger(v) && v >= 0);
    const countsOk = typeof counts === 'string' || (Array.isArray(counts) && counts.every((v) => Number.isInteger(v) && v >= 0));
    if (!sizeOk || !countsOk) {
      findings.add('structure.schema', {
        ...where,
        field: sizeOk ? 'segmentation.counts' : 'segmentation.size',
        value: sizeOk ? counts : size,
        message: 'RLE needs size [height, width] and counts (integers or a compressed string)',
      });
      return;
    }
    checkRle(findings, where, 'segmentation', size as number[], counts as number[] | string, frame);
    return;
  }
  findings.add('structure.schema', {
    ...where,
    field: 'segmentation',
    value: segmentation,
    message: 'segmentation must be a list of polygons or an RLE object',
  });
}
