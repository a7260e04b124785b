import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempSibling } from '../core/atomic-write';

/** Publishing export-onnx's outputs without half-written files. */

/** Copies to a temp sibling and renames, so readers never see a partial file (nor a stale temp after a failure). */
export async function publishFile(source: string, dest: string): Promise<void> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = tempSibling(dest);
  try {
    await fs.promises.copyFile(source, tmp);
    await fs.promises.rename(tmp, dest);
  } catch (error) {
    await fs.promises.rm(tmp, { force: true });
    throw error;
  }
}

/** Replaces folder `dest` with a copy of `source` (copied beside it, then swapped in by rename). */
export async function publishDir(source: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}`;
  await fs.promises.rm(tmp, { recursive: true, force: true });
  await fs.promises.cp(source, tmp, { recursive: true });
  await fs.promises.rm(dest, { recursive: true, force: true });
  await fs.promises.rename(tmp, dest);
}
