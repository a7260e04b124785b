import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { StepError } from '../core/errors';
import { sha256File } from '../core/sha256';

/** One file of a code folder, as it goes into the cloud. */
export interface CodeFile {
  abs: string;
  /** Path inside the folder, with / separators. */
  rel: string;
  size: number;
  sha256: string;
}

export interface CodeSnapshot {
  root: string;
  files: CodeFile[];
  bytes: number;
  /** SHA-256 over every (path, content hash) pair in path order: equal code gives an equal hash. */
  hash: string;
}

export interface SnapshotOptions {
  /** Ignore files read from the folder, first found wins (Azure ML: .amlignore, else .gitignore). */
  ignoreFiles?: string[];
  /** Refuse folders larger than this (a code folder that holds the dataset by mistake). */
  maxBytes?: number;
  maxFiles?: number;
  /** For error messages: which input or spec field named the folder. */
  field: string;
}

const ALWAYS_LEFT_OUT = ['.git/', '__pycache__/', '.ipynb_checkpoints/'];

/**
 * Lists a local code folder for upload (a SageMaker source_dir, an Azure ML `code:` folder), honouring ignore
 * files the way the platform's own CLI does, and hashes its contents so an unchanged folder is recognised and
 * not uploaded again.
 */
export async function snapshotCodeFolder(dir: string, options: SnapshotOptions): Promise<CodeSnapshot> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new StepError(`The code folder ${dir} (${options.field}) does not exist.`, {
      hint: `Point ${options.field} at the folder that holds the training script.`,
    });
  }
  if (!stat.isDirectory())
    throw new StepError(`${dir} (${options.field}) is a file, not a folder.`, {
      hint: `Give the folder that holds the training script as ${options.field}.`,
    });
  const rules: Ignore = ignore().add(ALWAYS_LEFT_OUT);
  for (const name of options.ignoreFiles ?? []) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) {
      rules.add(fs.readFileSync(file, 'utf8'));
      break;
    }
  }
  const maxFiles = options.maxFiles ?? 10_000;
  const maxBytes = options.maxBytes ?? 512 * 1024 * 1024;
  const files: CodeFile[] = [];
  let bytes = 0;
  const walk = async (sub: string) => {
    const entries = fs
      .readdirSync(path.join(dir, sub), { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!rules.ignores(`${rel}/`)) await walk(rel);
        continue;
      }
      if (!entry.isFile() || rules.ignores(rel)) continue;
      const abs = path.join(dir, rel);
      const size = fs.statSync(abs).size;
      bytes += size;
      files.push({ abs, rel, size, sha256: await sha256File(abs) });
      if (files.length > maxFiles || bytes > maxBytes) {
        throw new StepError(
          `The code folder ${dir} (${options.field}) holds more than ${files.length > maxFiles ? `${maxFiles} files` : `${Math.round(maxBytes / 1048576)} MiB`}; code folders are uploaded with every job.`,
          {
            hint: `Keep data and checkpoints out of it, or list them in ${(options.ignoreFiles ?? ['an ignore file']).join(' / ')}.`,
          },
        );
      }
    }
  };
  await walk('');
  if (files.length === 0)
    throw new StepError(`The code folder ${dir} (${options.field}) has no files to upload (everything is ignored or it is empty).`, {
      hint: 'Check the folder and its ignore files.',
    });
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.rel}\0${f.sha256}\n`);
  return { root: dir, files, bytes, hash: h.digest('hex') };
}
