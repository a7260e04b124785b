import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { StepError } from '../../core/errors';
import { yamlValue } from '../../core/yaml-value';
import { parseNumberToken } from '../geometry';
import type { FinishContext, ImageRef, LoadedSplit, LoaderContext, SplitName, Where } from '../dataset';
import { SPLITS, StatsBuilder } from '../dataset';
import { isImageFile, mapLimit, pathKind, readOptionalText, walkFiles } from '../files';

export interface YoloConfig {
  file: string;
  names?: string[];
  /** Split sources from the file, resolved to absolute paths. */
  splits: Partial<Record<SplitName, string[]>>;
}

/** Reads an Ultralytics data.yaml: `path`, `train`/`val`/`test` (a folder, a .txt list, or a list of them), `names`, `nc`. */
export async function readDataYaml(file: string, ctx: LoaderContext): Promise<YoloConfig | undefined> {
  const { findings } = ctx;
  const shown = ctx.display(file);
  findings.ran('structure.parse-error', 'structure.schema');
  const lineCounter = new LineCounter();
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StepError(
      `Cannot read the data.yaml ${shown} (${code === 'EISDIR' ? 'it is a folder' : code === 'ENOENT' ? 'it does not exist' : code}).`,
      { hint: 'Give the path of the Ultralytics data.yaml file.', file: shown, cause: error },
    );
  }
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0) {
    const error = doc.errors[0];
    const at = error.linePos?.[0];
    findings.add('structure.parse-error', {
      file: shown,
      line: at?.line,
      column: at?.col,
      message: `invalid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${error.message.split('\n')[0]}`,
    });
    return undefined;
  }
  const expanded = yamlValue(doc);
  if (!expanded.ok) {
    findings.add('structure.parse-error', { file: shown, message: `invalid YAML: ${expanded.message}` });
    return undefined;
  }
  const value = expanded.value;
  const positionOf = (key: string) => {
    const node = doc.get(key, true) as { range?: [number, number, number] } | undefined;
    const pos = node?.range ? lineCounter.linePos(node.range[0]) : undefined;
    return pos ? { line: pos.line, column: pos.col } : {};
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    findings.add('structure.schema', {
      file: shown,
      field: '(root)',
      value: typeof value,
      message: 'data.yaml must be a mapping with names and train/val/test',
    });
    return undefined;
  }
  const data = value as Record<string, unknown>;
  const config: YoloConfig = { file, splits: {} };
  const names = data.names;
  if (Array.isArray(names) && names.every((n) => typeof n === 'string' || typeof n === 'number')) config.names = names.map(String);
  else if (names && typeof names === 'object' && Object.keys(names).every((k) => /^\d+$/.test(k))) {
    const entries = Object.entries(names as Record<string, unknown>).map(([k, v]) => [Number(k), String(v)] as const);
    config.names = [];
    for (const [k, v] of entries) config.names[k] = v;
    const holes = config.names.findIndex((n) => n === undefined);
    if (holes !== -1)
      findings.add('structure.schema', {
        file: shown,
        ...positionOf('names'),
        field: 'names',
        value: names,
        message: `names has no entry for class ${holes}`,
      });
  } else {
    findings.add('structure.schema', {
      file: shown,
      ...positionOf('names'),
      field: 'names',
      value: names ?? 'missing',
      message: 'names must be a list of class names or a map {index: name}',
    });
  }
  if (data.nc !== undefined && config.names && data.nc !== config.names.length) {
    findings.add('structure.schema', {
      file: shown,
      ...positionOf('nc'),
      field: 'nc',
      value: data.nc,
      message: `nc is ${String(data.nc)} but names lists ${config.names.length} classes`,
    });
  }
  const root = typeof data.path === 'string' ? path.resolve(path.dirname(file), data.path) : path.dirname(file);
  for (const split of SPLITS) {
    const entry = data[split];
    if (entry === undefined || entry === null) continue;
    const items = Array.isArray(entry) ? entry : [entry];
    if (!items.every((s) => typeof s === 'string')) {
      findings.add('structure.schema', {
        file: shown,
        ...positionOf(split),
        field: split,
        value: entry,
        message: `${split} must be a path or a list of paths`,
      });
      continue;
    }
    config.splits[split] = items.map((s) => path.resolve(root, s));
  }
  return config;
}

/** Ultralytics' rule: the label of …/images/…/x.jpg is …/labels/…/x.txt (last `images` folder swapped). */
export function labelPathFor(image: string): string {
  const parts = image.split(path.sep);
  const at = parts.lastIndexOf('images');
  if (at !== -1 && at < parts.length - 1) parts[at] = 'labels';
  const swapped = parts.join(path.sep);
  return swapped.slice(0, swapped.length - path.extname(swapped).length) + '.txt';
}

const EPS = 1e-6;

/** One YOLO split: image folders or .txt image lists, labels found by Ultralytics' images→labels rule. */
export async function loadYolo(
  split: SplitName,
  sources: readonly string[],
  names: readonly string[],
  ctx: LoaderContext,
): Promise<LoadedSplit> {
  const { findings } = ctx;
  findings.ran(
    'structure.schema',
    'yolo.unknown-class',
    'yolo.orphan-label',
    'geometry.non-finite',
    'geometry.box-degenerate',
    'geometry.box-outside',
    'geometry.yolo-out-of-range',
    'geometry.polygon-too-few-points',
  );
  const stats = new StatsBuilder();
  const loaded: LoadedSplit = { split, images: [], files: [], stats: stats.stats };
  const labelDirs: string[] = [];
  for (const source of sources) {
    const kind = await pathKind(source);
    if (kind === 'dir') {
      for (const image of await walkFiles(source, isImageFile))
        loaded.images.push({ split, path: image, file: ctx.display(image), role: 'image' });
      labelDirs.push(path.dirname(labelPathFor(path.join(source, 'x.png'))));
    } else if (kind === 'file') {
      loaded.files.push({ path: source, role: 'config' });
      const lines = (await fs.readFile(source, 'utf8')).split(/\r?\n/);
      lines.forEach((line, i) => {
        const entry = line.trim();
        if (entry === '' || entry.startsWith('#')) return;
        loaded.images.push({
          split,
          path: path.resolve(path.dirname(source), entry),
          file: ctx.display(source),
          id: `line ${i + 1}`,
          field: 'path',
          role: 'image',
        });
      });
    } else {
      throw new StepError(`The ${split} split of the YOLO dataset points at ${source}, which does not exist.`, {
        hint: 'Give an images folder or a .txt list of images, relative to the workspace (or to data.yaml `path`).',
      });
    }
  }

  const expectedLabels = new Set(loaded.images.map((im) => labelPathFor(im.path)));
  const tinyCandidates: { image: ImageRef; where: Where; w: number; h: number; value: string }[] = [];
  // Files are read 32 at a time but handled in list order, so the first examples are the same on every run.
  for (let start = 0; start < loaded.images.length; start += 512) {
    ctx.signal?.throwIfAborted();
    const batch = loaded.images.slice(start, start + 512);
    const texts = await mapLimit(batch, 32, (image) =>
      // No label file: a background image.
      readOptionalText(labelPathFor(image.path), 'the label file', 'Make the labels folder readable by the runner user.'),
    );
    batch.forEach((image, k) => {
      const text = texts[k];
      if (text === undefined) {
        stats.image([]);
        return;
      }
      const labelFile = labelPathFor(image.path);
      loaded.files.push({ path: labelFile, role: 'annotation' });
      const labels: string[] = [];
      const shown = ctx.display(labelFile);
      text.split(/\r?\n/).forEach((raw, i) => {
        const line = raw.trim();
        if (line === '') return;
        const where: Where = { split, file: shown, line: i + 1 };
        const tokens = line.split(/\s+/);
        const values = tokens.slice(1).map(parseNumberToken);
        if (!/^\d+$/.test(tokens[0]) || values.some((v) => v === undefined) || values.length % 2 === 1 || values.length < 2) {
          findings.add('structure.schema', {
            ...where,
            field: 'line',
            value: line,
            message: 'a label line is "class x_center y_center width height" or "class x1 y1 x2 y2 …" (polygon)',
          });
          return;
        }
        const cls = Number(tokens[0]);
        if (names[cls] === undefined)
          findings.add('yolo.unknown-class', {
            ...where,
            field: 'class',
            value: cls,
            message: `class ${cls} is not in the ${names.length} declared names`,
          });
        else labels.push(names[cls]);
        const coords = values as number[];
        if (!coords.every(Number.isFinite)) {
          findings.add('geometry.non-finite', {
            ...where,
            field: 'coordinates',
            value: line,
            message: 'label has a NaN or infinite coordinate',
          });
          return;
        }
        if (coords.some((v) => v < -EPS || v > 1 + EPS)) {
          findings.add('geometry.yolo-out-of-range', {
            ...where,
            field: 'coordinates',
            value: line,
            message: 'normalized coordinates must lie in [0, 1]',
          });
          return;
        }
        if (coords.length === 4) {
          const [cx, cy, w, h] = coords;
          if (w <= 0 || h <= 0) {
            findings.add('geometry.box-degenerate', {
              ...where,
              field: 'width/height',
              value: line,
              message: `box has width ${w} and height ${h}`,
            });
            return;
          }
          if (cx - w / 2 < -EPS || cy - h / 2 < -EPS || cx + w / 2 > 1 + EPS || cy + h / 2 > 1 + EPS) {
            findings.add('geometry.box-outside', {
              ...where,
              field: 'coordinates',
              value: line,
              message: 'box extends past the image edge',
            });
          }
          if (ctx.options.minBoxSize > 0) tinyCandidates.push({ image, where, w, h, value: line });
        } else if (coords.length < 6) {
          findings.add('geometry.polygon-too-few-points', {
            ...where,
            field: 'coordinates',
            value: line,
            message: `polygon has ${coords.length / 2} point(s); at least 3 are needed`,
          });
        }
      });
      stats.image(labels);
    });
    ctx.progress(`read ${split} labels`, Math.min(start + 512, loaded.images.length), loaded.images.length, 'items');
  }

  for (const dir of labelDirs) {
    if ((await pathKind(dir)) !== 'dir') continue;
    for (const label of await walkFiles(dir, (f) => f.endsWith('.txt'))) {
      if (!expectedLabels.has(label))
        findings.add('yolo.orphan-label', { split, file: ctx.display(label), message: 'label file has no matching image' });
    }
  }

  if (ctx.options.minBoxSize > 0) {
    findings.ran('geometry.box-tiny');
    loaded.finish = async ({ probed }: FinishContext) => {
      for (const box of tinyCandidates) {
        const header = probed(box.image.path)?.header;
        if (!header) continue;
        const w = box.w * header.width;
        const h = box.h * header.height;
        if (w < ctx.options.minBoxSize || h < ctx.options.minBoxSize) {
          findings.add('geometry.box-tiny', {
            ...box.where,
            field: 'width/height',
            value: box.value,
            message: `box is ${+w.toFixed(2)}×${+h.toFixed(2)} px, below min-box-size ${ctx.options.minBoxSize}`,
          });
        }
      }
    };
  }
  loaded.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return loaded;
}
