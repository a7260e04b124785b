import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StepError } from '../../core/errors';
import type { DeclaredClass, FinishContext, ImageRef, LoadedSplit, LoaderContext, SplitName } from '../dataset';
import { StatsBuilder } from '../dataset';
import { isImageFile, mapLimit, pathKind, stemKey, walkFiles } from '../files';
import { readMaskValues } from '../masks';

const MASK_FOLDERS = ['masks', 'labels', 'annotations', 'SegmentationClass'];

/** Label value 0 is background: a mask with nothing else is "empty" and adds no class. */
const BACKGROUND = 0;

/**
 * A semantic-segmentation split: `<split>/images/**` and `<split>/masks/**` (or labels/, annotations/,
 * SegmentationClass/), an image and its mask paired by their relative path without extension.
 */
export async function loadSegmentation(
  split: SplitName,
  source: string,
  classes: readonly DeclaredClass[],
  ctx: LoaderContext,
): Promise<LoadedSplit> {
  const { findings } = ctx;
  findings.ran('mask.missing', 'mask.orphan', 'mask.size-mismatch', 'mask.undeclared-label', 'mask.empty-ratio');
  const imagesDir = path.join(source, 'images');
  if ((await pathKind(imagesDir)) !== 'dir') {
    throw new StepError(`The ${split} split ${source} has no images/ folder.`, {
      hint: `Lay the split out as ${split}/images/… and ${split}/masks/…, paired by file name.`,
    });
  }
  let masksDir: string | undefined;
  for (const name of MASK_FOLDERS) {
    if ((await pathKind(path.join(source, name))) === 'dir') {
      masksDir = path.join(source, name);
      break;
    }
  }
  if (!masksDir)
    throw new StepError(`The ${split} split ${source} has no masks folder (looked for ${MASK_FOLDERS.join(', ')}).`, {
      hint: `Put the label masks in ${split}/masks/, named like their images.`,
    });

  const stats = new StatsBuilder();
  const loaded: LoadedSplit = { split, images: [], files: [], stats: stats.stats };
  const images = await walkFiles(imagesDir, isImageFile);
  const masks = new Map<string, string>();
  for (const mask of await walkFiles(masksDir, isImageFile)) masks.set(stemKey(masksDir, mask), mask);
  const pairs: { image: ImageRef; mask: ImageRef }[] = [];
  const paired = new Set<string>();
  for (const image of images) {
    const key = stemKey(imagesDir, image);
    const imageRef: ImageRef = { split, path: image, file: ctx.display(image), role: 'image' };
    loaded.images.push(imageRef);
    const mask = masks.get(key);
    if (!mask) {
      findings.add('mask.missing', { split, file: ctx.display(image), message: `no mask named ${key}.* in ${ctx.display(masksDir)}` });
      stats.image([]);
      continue;
    }
    paired.add(key);
    const maskRef: ImageRef = { split, path: mask, file: ctx.display(mask), role: 'mask' };
    loaded.images.push(maskRef);
    pairs.push({ image: imageRef, mask: maskRef });
  }
  for (const [key, mask] of masks)
    if (!paired.has(key)) findings.add('mask.orphan', { split, file: ctx.display(mask), message: `mask has no image named ${key}.*` });

  const byValue = new Map(classes.map((c) => [c.value, c.name]));
  loaded.finish = async ({ probed }: FinishContext) => {
    let empty = 0;
    let checked = 0;
    for (let start = 0; start < pairs.length; start += 64) {
      ctx.signal?.throwIfAborted();
      const batch = pairs.slice(start, start + 64);
      const buffers = await mapLimit(batch, 8, async ({ mask }) => {
        const header = probed(mask.path)?.header;
        return header && !header.truncated && (header.format === 'png' || header.format === 'tiff') ? fs.readFile(mask.path) : undefined;
      });
      batch.forEach(({ image, mask }, k) => {
        const imageHeader = probed(image.path)?.header;
        const maskHeader = probed(mask.path)?.header;
        if (!maskHeader || maskHeader.truncated) return stats.image([]);
        if (imageHeader && (imageHeader.width !== maskHeader.width || imageHeader.height !== maskHeader.height)) {
          findings.add('mask.size-mismatch', {
            split,
            file: mask.file,
            field: 'size',
            value: { mask: [maskHeader.width, maskHeader.height], image: [imageHeader.width, imageHeader.height] },
            message: `mask is ${maskHeader.width}×${maskHeader.height} but its image ${image.file} is ${imageHeader.width}×${imageHeader.height}`,
          });
        }
        const buffer = buffers[k];
        if (!buffer) {
          findings.add('image.unsupported-format', {
            split,
            file: mask.file,
            field: 'format',
            value: maskHeader.format,
            message: `masks must be PNG or TIFF (lossless); this one is ${maskHeader.format}`,
          });
          return stats.image([]);
        }
        let histogram: Map<number, number>;
        try {
          histogram = readMaskValues(buffer, maskHeader.format as 'png' | 'tiff').histogram;
        } catch (error) {
          findings.add('image.unreadable', { split, file: mask.file, message: `mask cannot be decoded: ${(error as Error).message}` });
          return stats.image([]);
        }
        checked++;
        const undeclared = [...histogram].filter(([value]) => !byValue.has(value));
        if (undeclared.length > 0) {
          findings.add('mask.undeclared-label', {
            split,
            file: mask.file,
            field: 'value',
            value: undeclared.map(([v]) => v),
            message: `label value(s) ${undeclared.map(([v, n]) => `${v} (${n} px)`).join(', ')} are not in the declared classes`,
          });
        }
        const labels = [...histogram.keys()].filter((v) => v !== BACKGROUND && byValue.has(v)).map((v) => byValue.get(v) as string);
        if (![...histogram.keys()].some((v) => v !== BACKGROUND)) empty++;
        stats.image(labels);
      });
      ctx.progress(`decode ${split} masks`, Math.min(start + 64, pairs.length), pairs.length, 'items');
    }
    const share = checked > 0 ? empty / checked : 0;
    if (share > ctx.options.maxEmptyMaskShare) {
      findings.add(
        'mask.empty-ratio',
        {
          split,
          field: 'emptyMasks',
          value: +share.toFixed(4),
          message: `${empty} of ${checked} masks (${(100 * share).toFixed(1)}%) hold only background, over max-empty-mask-share ${ctx.options.maxEmptyMaskShare}`,
        },
        empty,
      );
    }
  };
  return loaded;
}
