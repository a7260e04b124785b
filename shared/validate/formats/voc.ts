import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { StepError } from '../../core/errors';
import type { LoadedSplit, LoaderContext, SplitName, Where } from '../dataset';
import { resolveImagesRoot, StatsBuilder } from '../dataset';
import { mapLimit, pathKind, readOptionalText, walkFiles } from '../files';
import type { Frame } from '../geometry';
import { checkBox, parseNumberToken } from '../geometry';

// Built on first use, so loading this module (every CLI start) does not load the XML parser.
let parser: XMLParser | undefined;
const xmlParser = () =>
  (parser ??= new XMLParser({
    isArray: (_name, jpath) => jpath === 'annotation.object',
    parseTagValue: false,
    trimValues: true,
    ignoreAttributes: true,
  }));

export interface VocSplit {
  loaded: LoadedSplit;
  /** Object names in first-seen order. */
  seen: string[];
}

/**
 * A Pascal VOC split: a folder of XML files, or an ImageSets list (ids, one per line) whose XMLs live in
 * ../../Annotations. Images are `<imagesRoot>/<filename>`, by default the JPEGImages folder beside Annotations.
 */
export async function loadVoc(split: SplitName, source: string, declared: readonly string[], ctx: LoaderContext): Promise<VocSplit> {
  const { findings } = ctx;
  findings.ran('structure.parse-error', 'structure.schema', 'geometry.non-finite', 'geometry.box-degenerate', 'geometry.box-outside');
  if (declared.length > 0) findings.ran('voc.unknown-class');
  if (ctx.options.minBoxSize > 0) findings.ran('geometry.box-tiny');
  const stats = new StatsBuilder();
  const loaded: LoadedSplit = { split, images: [], files: [], stats: stats.stats };
  const seen = new Set<string>();

  const kind = await pathKind(source);
  let xmlFiles: string[];
  let annotationsDir: string;
  if (kind === 'dir') {
    annotationsDir = source;
    xmlFiles = await walkFiles(source, (f) => f.toLowerCase().endsWith('.xml'));
  } else if (kind === 'file') {
    annotationsDir = path.resolve(path.dirname(source), '../../Annotations');
    loaded.files.push({ path: source, role: 'config' });
    const ids = (await fs.readFile(source, 'utf8'))
      .split(/\r?\n/)
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((id) => id);
    xmlFiles = ids.map((id) => path.join(annotationsDir, `${id}.xml`));
  } else {
    throw new StepError(`The ${split} split of the VOC dataset points at ${source}, which does not exist.`, {
      hint: 'Give the folder of XML annotations, or an ImageSets/Main/<split>.txt list.',
    });
  }
  const besideJpeg = path.resolve(annotationsDir, '../JPEGImages');
  const imagesRoot =
    resolveImagesRoot(ctx.options.imagesRoot, split) ?? ((await pathKind(besideJpeg)) === 'dir' ? besideJpeg : annotationsDir);
  const known = new Set(declared);

  for (let start = 0; start < xmlFiles.length; start += 512) {
    ctx.signal?.throwIfAborted();
    const batch = xmlFiles.slice(start, start + 512);
    const texts = await mapLimit(batch, 32, (file) =>
      readOptionalText(file, 'the annotation', 'Make the annotations readable by the runner user.'),
    );
    batch.forEach((file, k) => {
      const shown = ctx.display(file);
      const text = texts[k];
      if (text === undefined) {
        findings.add('structure.schema', {
          split,
          file: shown,
          field: 'file',
          value: 'missing',
          message: 'annotation XML listed in the split does not exist',
        });
        return;
      }
      loaded.files.push({ path: file, role: 'annotation' });
      const valid = XMLValidator.validate(text);
      if (valid !== true) {
        const { line, col, msg } = valid.err;
        findings.add('structure.parse-error', {
          split,
          file: shown,
          line,
          column: col,
          message: `invalid XML at line ${line}, column ${col}: ${msg}`,
        });
        return;
      }
      let doc: { annotation?: Record<string, unknown> };
      try {
        doc = xmlParser().parse(text) as typeof doc;
      } catch (error) {
        // fast-xml-parser refuses external entities and entities over its size limits (XXE, "billion laughs")
        // by throwing; the file is not read further, and the finding names it.
        findings.add('structure.parse-error', {
          split,
          file: shown,
          message: `XML refused: ${(error as Error).message} (VOC annotations need no DOCTYPE or entities)`,
        });
        return;
      }
      const ann = doc.annotation;
      const base: Where = { split, file: shown };
      if (!ann || typeof ann !== 'object') {
        findings.add('structure.schema', {
          ...base,
          field: 'annotation',
          value: 'missing',
          message: 'VOC XML needs an <annotation> root element',
        });
        return;
      }
      const filename = typeof ann.filename === 'string' ? ann.filename : '';
      const where: Where = { ...base, id: filename || undefined };
      const size = (ann.size ?? {}) as Record<string, unknown>;
      const width = Number(size.width);
      const height = Number(size.height);
      let frame: Frame | undefined;
      if (Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) frame = { width, height };
      else
        findings.add('structure.schema', {
          ...where,
          field: 'size',
          value: { width: size.width, height: size.height },
          message: '<size> needs positive integer <width> and <height>',
        });
      const labels: string[] = [];
      const objects = Array.isArray(ann.object) ? (ann.object as Record<string, unknown>[]) : [];
      objects.forEach((object, o) => {
        const field = `object[${o}]`;
        const name = typeof object?.name === 'string' ? object.name : '';
        if (!name)
          findings.add('structure.schema', {
            ...where,
            field: `${field}.name`,
            value: object?.name ?? 'missing',
            message: 'object needs a <name>',
          });
        else {
          seen.add(name);
          if (declared.length > 0 && !known.has(name))
            findings.add('voc.unknown-class', {
              ...where,
              field: `${field}.name`,
              value: name,
              message: `class "${name}" is not in the declared classes`,
            });
          else labels.push(name);
        }
        const bndbox = (object?.bndbox ?? {}) as Record<string, unknown>;
        const corners = ['xmin', 'ymin', 'xmax', 'ymax'].map((key) =>
          typeof bndbox[key] === 'string' ? parseNumberToken(bndbox[key] as string) : undefined,
        );
        if (corners.some((v) => v === undefined)) {
          findings.add('structure.schema', {
            ...where,
            field: `${field}.bndbox`,
            value: bndbox,
            message: '<bndbox> needs numeric <xmin>, <ymin>, <xmax>, <ymax>',
          });
          return;
        }
        const [xmin, ymin, xmax, ymax] = corners as number[];
        checkBox(findings, where, `${field}.bndbox`, [xmin, ymin, xmax - xmin, ymax - ymin], frame, ctx.options.minBoxSize);
      });
      stats.image(labels);
      if (!filename) {
        findings.add('structure.schema', {
          ...where,
          field: 'filename',
          value: ann.filename ?? 'missing',
          message: 'annotation needs a <filename>',
        });
        return;
      }
      loaded.images.push({
        split,
        path: path.resolve(imagesRoot, filename),
        file: shown,
        id: filename,
        field: 'filename',
        declared: frame,
        role: 'image',
      });
    });
    ctx.progress(`read ${split} XML`, Math.min(start + 512, xmlFiles.length), xmlFiles.length, 'items');
  }
  return { loaded, seen: [...seen] };
}
