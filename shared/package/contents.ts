import type { ValidateFunction } from 'ajv/dist/2020';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StepError } from '../core/errors';
import type { PackageLabels } from './manifest';
import { archivePathProblem } from './tar-format';
import tensorrtCacheSchema from './tensorrt-cache.schema.json';
import { parseJsonBounded } from '../core/json-depth';

/** Reads and checks the small files that go into a package, with messages naming the file and the fix. */

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const DOTTED_VERSION = /^\d+(\.\d+){0,3}$/;
export const COMPUTE_CAPABILITY = /^\d+\.\d+$/;
/** Reports are embedded in the manifest, which a device parses whole. */
const MAX_REPORT_BYTES = 1 << 20;
const MAX_SMALL_FILE_BYTES = 16 << 20;

export function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new StepError(`Package name "${name}" is not allowed.`, {
      hint: 'Use 1-64 characters: letters, digits, ".", "_" and "-", starting with a letter or digit.',
    });
  }
}

export function checkVersion(version: string): void {
  if (version.length > 128 || !SEMVER.test(version)) {
    const near = /^v\d/.test(version) ? ` Drop the leading "v": ${version.slice(1)}.` : '';
    throw new StepError(`Version "${version}" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease][+build]).${near}`, {
      hint: 'Use e.g. 1.4.0 or 2.0.0-rc.1; see https://semver.org.',
    });
  }
}

/**
 * Semantic-version precedence (semver.org §11): MAJOR.MINOR.PATCH numerically, a pre-release below its release,
 * pre-release identifiers numeric < alphanumeric, build metadata ignored. Negative when a < b.
 */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split('+')[0].split(/-(.*)/s);
    return { core: core.split('.').map(Number), pre: pre ? pre.split('.') : [] };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return (x.core[i] ?? 0) - (y.core[i] ?? 0);
  if (!x.pre.length || !y.pre.length) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const [p, q] = [x.pre[i], y.pre[i]];
    if (p === q) continue;
    const [pn, qn] = [/^\d+$/.test(p), /^\d+$/.test(q)];
    if (pn && qn) return Number(p) - Number(q);
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return x.pre.length - y.pre.length;
}

export function checkPattern(value: string | undefined, pattern: RegExp, what: string, example: string): string | null {
  if (value === undefined || value === '') return null;
  if (!pattern.test(value))
    throw new StepError(`${what} "${value}" is not a version like ${example}.`, { hint: `Write it as ${example}.` });
  return value;
}

async function readSmall(file: string, label: string, limit = MAX_SMALL_FILE_BYTES): Promise<Buffer> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (error) {
    throw new StepError(`Cannot read the ${label} ${file}: ${(error as Error).message}`, {
      hint: 'Check the path; it is relative to the workspace.',
      cause: error,
    });
  }
  if (!stat.isFile()) throw new StepError(`The ${label} ${file} is not a regular file.`, { hint: 'Pass the path of the file itself.' });
  if (stat.size > limit)
    throw new StepError(`The ${label} ${file} is ${stat.size} bytes; at most ${limit} are allowed.`, {
      hint: 'Pass the summary report, not raw per-image data.',
    });
  return fs.readFile(file);
}

export async function readJsonFile(file: string, label: string, limit?: number): Promise<unknown> {
  const text = (await readSmall(file, label, limit)).toString('utf8');
  try {
    return parseJsonBounded(text);
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message);
    const line = position ? text.slice(0, Number(position[1])).split('\n').length : undefined;
    throw new StepError(`The ${label} ${file} is not valid JSON: ${(error as Error).message}`, {
      hint: 'Fix the JSON syntax (a JSON linter shows the spot).',
      file,
      line,
    });
  }
}

export async function readJsonObject(file: string, label: string, limit?: number): Promise<Record<string, unknown>> {
  const value = await readJsonFile(file, label, limit);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new StepError(
      `The ${label} ${file} must hold a JSON object, but holds ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}.`,
      { hint: 'Pass the report or spec file written by the step that produces it.', file },
    );
  }
  return value as Record<string, unknown>;
}

export async function readReport(file: string | undefined, label: string): Promise<Record<string, unknown> | null> {
  return file ? readJsonObject(file, label, MAX_REPORT_BYTES) : null;
}

/**
 * Counts the classes of a class map: a text file with one name per line, or JSON holding an array of
 * names, an array of `{id, name}` (COCO categories) or an object mapping ids to names.
 */
export async function readLabels(file: string): Promise<Omit<PackageLabels, 'path'> & { ids: number[] }> {
  const hint = 'Use a .txt file with one class name per line, or JSON: ["cell", "nucleus"], [{"id": 1, "name": "cell"}] or {"1": "cell"}.';
  if (path.extname(file).toLowerCase() !== '.json') {
    const lines = (await readSmall(file, 'labels file')).toString('utf8').split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop();
    const blank = lines.findIndex((l) => l.trim() === '');
    if (blank >= 0)
      throw new StepError(`The labels file ${file} has an empty class name on line ${blank + 1}.`, { hint, file, line: blank + 1 });
    if (lines.length === 0) throw new StepError(`The labels file ${file} is empty.`, { hint, file });
    return { format: 'txt', classes: lines.length, ids: lines.map((_, i) => i) };
  }
  const value = await readJsonFile(file, 'labels file');
  const named = (v: unknown) =>
    (typeof v === 'string' && v !== '') || (typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string');
  const entries = Array.isArray(value) ? value : value !== null && typeof value === 'object' ? Object.values(value) : [];
  const bad = entries.findIndex((v) => !named(v));
  if (entries.length === 0 || bad >= 0) {
    const what = entries.length === 0 ? 'no class names' : `entry ${bad} without a name (${JSON.stringify(entries[bad])})`;
    throw new StepError(`The labels file ${file} has ${what}.`, { hint, file });
  }
  // Class ids: COCO categories carry their own, {"1": "cell"} keys them; a plain list is indexed from 0.
  const ids = Array.isArray(value)
    ? value.map((v, i) =>
        typeof v === 'object' && v !== null && Number.isInteger((v as { id?: unknown }).id) ? (v as { id: number }).id : i,
      )
    : Object.keys(value as object).map((k, i) => (/^\d+$/.test(k) ? Number(k) : i));
  return { format: 'json', classes: entries.length, ids };
}

export interface TensorRtSidecar {
  gpuModel: string;
  computeCapability: string;
  tensorrtVersion: string;
  model?: string;
  onnxruntimeVersion?: string;
  precision?: string;
}

export const TENSORRT_SIDECAR = 'tensorrt-cache.json';
let sidecarValidator: ValidateFunction | undefined;

export async function readTensorRtSidecar(file: string): Promise<TensorRtSidecar> {
  const value = await readJsonFile(file, 'TensorRT cache description');
  const Ajv2020 = (require('ajv/dist/2020') as typeof import('ajv/dist/2020')).default;
  sidecarValidator ??= new Ajv2020({ allErrors: true, strict: true }).compile(tensorrtCacheSchema);
  if (!sidecarValidator(value)) {
    const problems = (sidecarValidator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new StepError(`The TensorRT cache description ${file} is invalid: ${problems}.`, {
      hint: 'Write {"gpuModel": "NVIDIA RTX A4000", "computeCapability": "8.6", "tensorrtVersion": "10.3.0"} (model, onnxruntimeVersion and precision are optional).',
      file,
    });
  }
  return value as TensorRtSidecar;
}

export interface SourceFile {
  /** Path relative to the listed folder, with `/` separators. */
  relative: string;
  absolute: string;
  size: number;
}

/** Every regular file under `dir`, sorted; links and special files are refused rather than followed. */
export async function listFiles(dir: string, skip: (relative: string) => boolean): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  const walk = async (relDir: string): Promise<void> => {
    const entries = await fs.readdir(path.join(dir, relDir), { withFileTypes: true });
    for (const entry of entries) {
      const relative = relDir ? `${relDir}/${entry.name}` : entry.name;
      const absolute = path.join(dir, relative);
      if (entry.isDirectory()) await walk(relative);
      else if (entry.isFile()) {
        if (!skip(relative)) out.push({ relative, absolute, size: (await fs.stat(absolute)).size });
      } else {
        throw new StepError(
          `${absolute} is ${entry.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; a package holds regular files only.`,
          {
            hint: 'Copy the file it points to into the folder instead.',
          },
        );
      }
    }
  };
  await walk('');
  return out.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
}

export function checkArchivePath(archivePath: string, source: string): void {
  const problem = archivePathProblem(archivePath);
  if (problem) {
    throw new StepError(`Cannot package ${source} as "${archivePath}": ${problem}.`, {
      hint: 'Rename the file: package paths use letters, digits, ".", "_" and "-" only, so every device file system and installer handles them alike.',
    });
  }
}

export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
