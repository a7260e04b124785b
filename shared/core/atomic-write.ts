import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** A sibling temp name in the same folder, so the final rename is atomic (same filesystem). */
export function tempSibling(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomUUID()}.tmp`);
}

/**
 * The one way a file appears under its final name: `fill` writes the temp sibling it is given (a stream, a copy,
 * a checked download), the temp file is flushed to disk and renamed onto `target`. If `fill` throws (a hash
 * that does not match, a full disk) the temp file is removed and `target` is untouched: readers see the old or
 * the new file, never half of one. Returns what `fill` returned.
 */
export async function commitFileAtomic<T>(target: string, fill: (temp: string) => Promise<T>): Promise<T> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const temp = tempSibling(target);
  try {
    const result = await fill(temp);
    // Read-only is enough for fsync on POSIX, and a copy of a read-only file (copyFile keeps the mode) opens.
    const handle = await fsp.open(temp, process.platform === 'win32' ? 'r+' : 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temp, target);
    return result;
  } catch (error) {
    await fsp.rm(temp, { force: true });
    throw error;
  }
}

/**
 * Writes the whole file atomically (see commitFileAtomic). `data` may come in pieces (an iterable of strings), so
 * a large document need not be one string in memory.
 */
export async function writeFileAtomic(target: string, data: Buffer | string | Iterable<string>): Promise<void> {
  await commitFileAtomic(target, async (temp) => {
    const handle = await fsp.open(temp, 'w');
    try {
      if (typeof data === 'string' || Buffer.isBuffer(data)) await handle.writeFile(data);
      else for (const piece of data) await handle.write(piece);
    } finally {
      await handle.close();
    }
  });
}

/** Copies `source` to `target` atomically: a reader never sees a partial copy, nor a stale temp after a failure. */
export async function copyFileAtomic(source: string, target: string): Promise<void> {
  await commitFileAtomic(target, (temp) => fsp.copyFile(source, temp));
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
