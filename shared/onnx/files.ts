import * as fs from 'node:fs';
import * as path from 'node:path';

/** Publishing export-onnx's outputs without half-written files. */

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
