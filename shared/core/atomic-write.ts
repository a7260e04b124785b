import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** A sibling temp name in the same folder, so the final rename is atomic (same filesystem). */
export function tempSibling(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomUUID()}.tmp`);
}

/**
 * Writes the whole file under a temp name, flushes it, then renames: readers see the old or the new file,
 * never half of one. `data` may come in pieces (an iterable of strings), so a large document need not be one
 * string in memory.
 */
export async function writeFileAtomic(target: string, data: Buffer | string | Iterable<string>): Promise<void> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const temp = tempSibling(target);
  try {
    const handle = await fsp.open(temp, 'w');
    try {
      if (typeof data === 'string' || Buffer.isBuffer(data)) await handle.writeFile(data);
      else for (const piece of data) await handle.write(piece);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temp, target);
  } catch (error) {
    await fsp.rm(temp, { force: true });
    throw error;
  }
}

/** The same for synchronous callers (a status file written from a timer, a report at the end of a sync run). */
export function writeFileAtomicSync(target: string, data: Buffer | string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temp = tempSibling(target);
  try {
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, target);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
}
