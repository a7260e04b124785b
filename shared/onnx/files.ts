import * as fs from 'node:fs';
import { tempSibling } from '../core/atomic-write';

/**
 * Replaces folder `dest` with a copy of `source`: copied beside it under a temp sibling name, then swapped in by
 * rename, so a reader never sees a folder with half of the files. (Files go through core/atomic-write.)
 */
export async function publishDir(source: string, dest: string): Promise<void> {
  const tmp = tempSibling(dest);
  try {
    await fs.promises.cp(source, tmp, { recursive: true });
    await fs.promises.rm(dest, { recursive: true, force: true });
    await fs.promises.rename(tmp, dest);
  } catch (error) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw error;
  }
}
