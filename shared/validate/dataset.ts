import * as path from 'node:path';
import type { Example, Findings } from './checks';
import type { ImageHeader } from './image-header';

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];
export type DatasetFormat = 'coco' | 'yolo' | 'voc' | 'segmentation';

/** An image an annotation file refers to, with where that reference is, for examples. */
export interface ImageRef {
  split: SplitName;
  /** Absolute path. */
  path: string;
  /** Display path of the annotation file (or the image itself when nothing else names it). */
  file: string;
  id?: string | number;
  field?: string;
  /** Size the annotation declares, if it declares one. */
  declared?: { width: number; height: number };
  /** Masks go through the same header checks but are kept apart for depth/channel statistics. */
  role: 'image' | 'mask';
}

export type FileRole = 'image' | 'mask' | 'annotation' | 'config';

/** A non-image file that belongs in the fingerprint. */
export interface DataFile {
  path: string;
  role: FileRole;
}

export interface SplitStats {
  images: number;
  /** Labelled objects (instances, or labelled images for segmentation). */
  annotations: number;
  unlabeledImages: number;
  /** The unit the distribution checks use: instances per class, or images per class for segmentation masks. */
  classCounts: Record<string, number>;
  imagesPerClass: Record<string, number>;
}

export interface ProbedImage {
  header?: ImageHeader;
  sha256?: string;
}

export interface FinishContext {
  /** Header of a readable image, by absolute path; undefined when it was missing or broken. */
  probed(file: string): ProbedImage | undefined;
}

export interface LoadedSplit {
  split: SplitName;
  images: ImageRef[];
  files: DataFile[];
  stats: SplitStats;
  /** The split's annotation file could not be read at all: its (empty) counts must not drive distribution checks. */
  unusable?: boolean;
  /** Checks that need image headers or pixels, run after the probe pass. */
  finish?(ctx: FinishContext): Promise<void>;
}

export interface LoadedDataset {
  format: DatasetFormat;
  /** Declared class names, in declaration order. */
  classes: string[];
  splits: LoadedSplit[];
  /** Files shared by all splits (data.yaml). */
  sharedFiles: DataFile[];
}

export interface LoadOptions {
  /** Root images are resolved against; `{split}` is replaced by the split name. */
  imagesRoot?: string;
  /** Class list from the user, one per item ("name" or "value: name"). */
  classes: string[];
  minBoxSize: number;
  /** Share of all-background masks above which mask.empty-ratio warns. */
  maxEmptyMaskShare: number;
}

export interface LoaderContext {
  findings: Findings;
  options: LoadOptions;
  display(file: string): string;
  progress(label: string, done: number, total: number, unit?: 'bytes' | 'items'): void;
  signal?: AbortSignal;
}

/** Counts instances per class while a loader walks its images. */
export class StatsBuilder {
  readonly stats: SplitStats = { images: 0, annotations: 0, unlabeledImages: 0, classCounts: {}, imagesPerClass: {} };

  /** One image and the class of each of its labels (repeats allowed). */
  image(labels: readonly string[]): void {
    this.stats.images++;
    if (labels.length === 0) this.stats.unlabeledImages++;
    this.stats.annotations += labels.length;
    for (const label of labels) this.stats.classCounts[label] = (this.stats.classCounts[label] ?? 0) + 1;
    for (const label of new Set(labels)) this.stats.imagesPerClass[label] = (this.stats.imagesPerClass[label] ?? 0) + 1;
  }
}

/** Where a finding is, minus the message. */
export type Where = Omit<Example, 'message' | 'value' | 'field'> & { field?: string };

/**
 * Absolute path of a file named in an annotation. path.resolve returns a tree of string pieces (a V8 cons
 * string) that costs several times the flat string; a path is kept for every image, so it is flattened here
 * (a numeric conversion flattens a string in place; the tree is then dropped by the next GC).
 */
export function resolveFile(root: string, name: string): string {
  const resolved = path.resolve(root, name);
  void Number(resolved);
  return resolved;
}

export function resolveImagesRoot(template: string | undefined, split: SplitName): string | undefined {
  return template?.split('{split}').join(split);
}

export interface DeclaredClass {
  value: number;
  name: string;
}

/**
 * The `classes` input: one class per item, either "name" (its value is its position) or "value: name"
 * (explicit label value, as segmentation masks use, e.g. "255: ignore").
 */
export function parseClassList(items: readonly string[]): DeclaredClass[] {
  return items.map((item, index) => {
    const match = /^(\d+)\s*[:=]\s*(.+)$/.exec(item.trim());
    return match ? { value: Number(match[1]), name: match[2].trim() } : { value: index, name: item.trim() };
  });
}
