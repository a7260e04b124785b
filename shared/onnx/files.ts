import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** File helpers the export and benchmark steps share: streamed hashing and publishing without half-written files. */

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** Copies to `<dest>.tmp-<pid>` and renames, so readers never see a partial file. */
export async function publishFile(source: string, dest: string): Promise<void> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  await fs.promises.copyFile(source, tmp);
  await fs.promises.rename(tmp, dest);
}

/** Replaces folder `dest` with a copy of `source` (copied beside it, then swapped in by rename). */
export async function publishDir(source: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}`;
  await fs.promises.rm(tmp, { recursive: true, force: true });
  await fs.promises.cp(source, tmp, { recursive: true });
  await fs.promises.rm(dest, { recursive: true, force: true });
  await fs.promises.rename(tmp, dest);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}
