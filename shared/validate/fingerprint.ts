import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { FileRole } from './dataset';
import type { PoolOptions } from './file-pool';
import { hashFiles } from './file-pool';
import { writeFileAtomic } from '../core/atomic-write';
import { compareCodePoints, isImageFile, pathKind, walkFiles } from './files';
import { StepError } from '../core/errors';

export interface ManifestFile {
  /** '/'-separated, relative to the dataset root (the deepest folder holding every file). */
  path: string;
  size: number;
  sha256: string;
  role: FileRole;
}

/**
 * Exactly which bytes a dataset is made of. `digest` covers every split, path, role, size and hash, and
 * nothing about where the dataset lives or the order the file system listed it in.
 */
export interface DatasetManifest {
  version: 1;
  algorithm: 'sha256';
  digest: string;
  files: number;
  bytes: number;
  /** Split name (train, val, test; "shared" for files of every split) → files sorted by path. */
  splits: Record<string, ManifestFile[]>;
}

export interface HashedFile {
  split: string;
  role: FileRole;
  /** Absolute path. */
  path: string;
  size: number;
  sha256: string;
}

/**
 * Builds the manifest from hashed files; a file listed twice in one split counts once. `files` is walked twice
 * (common root, then entries), so a caller can pass a generator-backed iterable instead of a list.
 */
export function buildManifest(files: Iterable<HashedFile>): DatasetManifest {
  const root = commonRoot(files);
  const splits: Record<string, ManifestFile[]> = {};
  for (const f of files)
    (splits[f.split] ??= []).push({
      path: path.relative(root, f.path).split(path.sep).join('/'),
      size: f.size,
      sha256: f.sha256,
      role: f.role,
    });
  const sorted: Record<string, ManifestFile[]> = {};
  let count = 0;
  let bytes = 0;
  for (const split of Object.keys(splits).sort(compareCodePoints)) {
    const list = splits[split].sort((a, b) => compareCodePoints(a.path, b.path));
    // Listed twice (two annotations naming one file): the copies are next to each other once sorted.
    sorted[split] = list.filter((f, i) => i === 0 || list[i - 1].path !== f.path);
    for (const f of sorted[split]) {
      count++;
      bytes += f.size;
    }
  }
  return { version: 1, algorithm: 'sha256', digest: manifestDigest(sorted), files: count, bytes, splits: sorted };
}

/**
 * sha256 over a canonical text: a version line, then one line per file in split and path order (code points,
 * never locale), fields tab-separated and the path JSON-quoted so no name can forge a line. Roles are
 * descriptive and left out: the digest is the bytes and the layout, nothing else.
 */
export function manifestDigest(splits: Readonly<Record<string, readonly ManifestFile[]>>): string {
  const hash = createHash('sha256').update('mlship-dataset-manifest v1\n');
  for (const split of Object.keys(splits).sort(compareCodePoints)) {
    const files = [...splits[split]].sort((a, b) => compareCodePoints(a.path, b.path));
    for (const f of files) hash.update(`${JSON.stringify(split)}\t${JSON.stringify(f.path)}\t${f.size}\t${f.sha256}\n`);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Deepest folder that holds every path. */
export function commonRoot(files: Iterable<string | { path: string }>): string {
  let root: string | undefined;
  for (const entry of files) {
    const abs = path.resolve(typeof entry === 'string' ? entry : entry.path);
    if (root === undefined) root = path.dirname(abs);
    while (abs !== root && !abs.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) root = path.dirname(root);
  }
  return root ?? path.resolve('.');
}

/** Writes the manifest as `JSON.stringify(manifest, null, 2)` would, in pieces, never as one string per dataset. */
export async function writeManifest(file: string, manifest: DatasetManifest): Promise<void> {
  await writeFileAtomic(file, manifestText(manifest));
}

export function* manifestText(manifest: DatasetManifest): Generator<string> {
  const { splits, ...head } = manifest;
  const names = Object.keys(splits);
  let out = `${JSON.stringify(head, null, 2).slice(0, -2)},\n  "splits": {`;
  for (const [i, name] of names.entries()) {
    const files = splits[name];
    out += `${i ? ',' : ''}\n    ${JSON.stringify(name)}: [`;
    for (const [k, f] of files.entries()) {
      out += `${k ? ',' : ''}\n      ${JSON.stringify(f, null, 2).split('\n').join('\n      ')}`;
      if (out.length >= 1 << 16) {
        yield out;
        out = '';
      }
    }
    out += files.length ? '\n    ]' : ']';
  }
  yield out + (names.length ? '\n  }\n}\n' : '}\n}\n');
}

/**
 * Fingerprint of any set of files or folders, for steps that record what data they used (train, package,
 * release). Folders are walked recursively; every file is hashed on all cores.
 *
 *   const m = await fingerprintDataset({ splits: { train: ['data/train'], val: ['data/val'] } });
 *   m.digest // "sha256:…", the same on any machine for the same bytes and layout
 */
export async function fingerprintDataset(input: { splits: Record<string, readonly string[]> } & PoolOptions): Promise<DatasetManifest> {
  const listed: { split: string; path: string }[] = [];
  for (const split of Object.keys(input.splits).sort(compareCodePoints)) {
    for (const entry of input.splits[split]) {
      const kind = await pathKind(entry);
      if (kind === undefined) throw new StepError(`Cannot fingerprint ${entry}: it does not exist.`, { hint: `Check the ${split} path.` });
      const files = kind === 'dir' ? await walkFiles(entry) : [path.resolve(entry)];
      for (const file of files) listed.push({ split, path: file });
    }
  }
  const digests = await hashFiles(
    listed.map((f) => f.path),
    input,
  );
  return buildManifest(
    listed.map((f, i) => ({ split: f.split, role: roleOf(f.path), path: f.path, size: digests[i].size, sha256: digests[i].sha256 })),
  );
}

function roleOf(file: string): FileRole {
  if (isImageFile(file)) return 'image';
  return /\.ya?ml$/i.test(file) ? 'config' : 'annotation';
}
