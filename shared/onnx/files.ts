import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Replaces folder `dest` with a copy of `source`: copied beside it under one fixed hidden name, then swapped in by
 * rename, so a reader never sees a folder with half of the files. The name is fixed, not random, so the next
 * publish removes what a killed one left (a reference folder of .npy files can be large). Files go through
 * core/atomic-write.
 */
export async function publishDir(source: string, dest: string): Promise<void> {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.publishing`);
  await fs.promises.rm(tmp, { recursive: true, force: true });
  try {
    await fs.promises.cp(source, tmp, { recursive: true });
    await fs.promises.rm(dest, { recursive: true, force: true });
    await fs.promises.rename(tmp, dest);
  } catch (error) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw error;
  }
}
