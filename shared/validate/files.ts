import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StepError } from '../core/errors';

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.webp']);

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

/**
 * Every file under `dir`, recursively, as absolute paths in code-point order, so results never depend on the
 * file system's enumeration order. Hidden entries (.git, .DS_Store) are skipped.
 */
export async function walkFiles(dir: string, keep: (file: string) => boolean = () => true): Promise<string[]> {
  const out: string[] = [];
  const visit = async (current: string) => {
    const entries = await fs.readdir(current, { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) await visit(full);
      else if ((entry.isFile() || entry.isSymbolicLink()) && keep(full)) out.push(full);
    }
  };
  await visit(dir);
  return out.sort(compareCodePoints);
}

/** Locale-independent ordering, identical on every machine. */
export function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function pathKind(p: string): Promise<'file' | 'dir' | undefined> {
  try {
    const stat = await fs.stat(p);
    return stat.isDirectory() ? 'dir' : 'file';
  } catch {
    return undefined;
  }
}

/**
 * The text of an annotation file that may be absent: undefined when it does not exist, which the loader reports its
 * own way (a YOLO background image has no label file; a VOC split that lists a missing XML is a finding). Any other
 * failure stops the step: a file that exists but cannot be read must not pass as one without annotations.
 */
export async function readOptionalText(file: string, what: string, hint: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new StepError(`Cannot read ${what} ${file} (${code}).`, { hint, file, cause: error });
  }
}

/** Relative path without extension, '/'-separated: how an image and its mask or label are paired. */
export function stemKey(root: string, file: string): string {
  const rel = path.relative(root, file);
  return rel
    .slice(0, rel.length - path.extname(rel).length)
    .split(path.sep)
    .join('/');
}

/** Path as shown in findings: relative to the workspace when inside it, '/'-separated. */
export function displayPath(workspace: string, file: string): string {
  const rel = path.relative(workspace, file);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return file.split(path.sep).join('/');
  return rel.split(path.sep).join('/');
}

/** Runs `fn` over items with at most `limit` in flight, keeping results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
