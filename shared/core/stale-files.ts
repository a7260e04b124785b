import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/**
 * Temp files a killed run leaves behind (`.tmp` of an atomic write, `.partial` of a package build or an
 * extraction) are never renamed into place and never read; nothing removes them but a sweep. One hour is far
 * longer than any live writer goes without touching its temp file (they are written continuously and renamed at
 * once), and short enough that a store or output folder does not fill up with dead copies of 100 MB packages.
 */
export const STALE_AFTER_MS = 60 * 60 * 1000;

/** Names of temp files mlship writes: tempSibling's `.<name>.<uuid>.tmp`, a lock's `<lock>.<uuid>.tmp|stale`, build's `.partial`. */
export const TEMP_NAME = /(\.[0-9a-f-]{36}\.(tmp|stale)|\.partial(-[0-9]+-[0-9a-f]+)?)$/;

/**
 * Removes entries of `dir` whose name matches `isTemp` and whose last change is older than `olderThanMs`.
 * Folders (an extraction quarantine) are removed with their contents. Returns the names removed; a folder that
 * does not exist, or an entry another sweeper removed first, is not an error.
 */
export async function sweepStaleFiles(
  dir: string,
  isTemp: (name: string) => boolean = (n) => TEMP_NAME.test(n),
  olderThanMs = STALE_AFTER_MS,
  now = Date.now(),
): Promise<string[]> {
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (!isTemp(name)) continue;
    const full = path.join(dir, name);
    const stat = await fsp.lstat(full).catch(() => undefined);
    if (!stat || now - stat.mtimeMs < olderThanMs) continue;
    await fsp.rm(full, { recursive: true, force: true }).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}
