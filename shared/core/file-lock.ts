import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { processAlive } from './process-alive';
import { backoffDelay, sleep } from './retry';

const LOCK_BACKOFF = { baseMs: 2, maxMs: 50 };

/**
 * An exclusive lock file for compare-and-swap on a local or network folder, where POSIX offers no atomic
 * "replace only if unchanged". The lock appears atomically with its owner token (written to a temp file, then
 * hard-linked into place), so a reader never sees an empty lock. A lock whose owner process is gone (killed
 * mid-write) is broken by the next writer; on another host only age tells, so such locks expire after
 * `staleAfterMs`.
 */
export interface LockOptions {
  /** Give up after this long; the message names the holder. */
  timeoutMs?: number;
  staleAfterMs?: number;
}

/** The lock stayed held by a live owner for longer than the caller would wait. */
export class LockTimeout extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockTimeout';
  }
}

export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const release = await acquire(lockPath, options.timeoutMs ?? 30_000, options.staleAfterMs ?? 60_000);
  try {
    return await fn();
  } finally {
    await release();
  }
}

async function acquire(lockPath: string, timeoutMs: number, staleAfterMs: number): Promise<() => Promise<void>> {
  const token = `${process.pid}@${os.hostname()}#${randomUUID()}`;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const temp = `${lockPath}.${randomUUID()}.tmp`;
    // A full disk fails this write after the file was created: the temp must not stay behind.
    await fs.writeFile(temp, token).catch(async (error: Error) => {
      await fs.unlink(temp).catch(() => undefined);
      throw error;
    });
    try {
      await fs.link(temp, lockPath);
      return async () => {
        const holder = await fs.readFile(lockPath, 'utf8').catch(() => undefined);
        if (holder === token) await fs.unlink(lockPath);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await fs.unlink(temp).catch(() => undefined);
    }
    const holder = await fs.readFile(lockPath, 'utf8').catch(() => undefined);
    if (holder !== undefined && (await isStale(lockPath, holder, staleAfterMs))) {
      await breakLock(lockPath, holder);
      continue;
    }
    if (Date.now() - started > timeoutMs)
      throw new LockTimeout(
        `timed out after ${timeoutMs} ms waiting for the lock ${lockPath}, held by ${holder ?? 'nobody (it kept changing)'}`,
      );
    // Holders keep the lock for one read and one rename: short jittered waits.
    await sleep(backoffDelay(attempt + 1, LOCK_BACKOFF));
  }
}

/**
 * Removes the `.lock` files in `dir` whose holder is gone, by the same rule and the same safe break as a writer
 * waiting for the lock: locks of release records are taken once per key, so no later writer would ever find
 * (and break) one its killed owner left. Returns the lock names removed.
 */
export async function sweepStaleLocks(dir: string, staleAfterMs = 60_000): Promise<string[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.lock'))) {
    const lockPath = path.join(dir, name);
    const holder = await fs.readFile(lockPath, 'utf8').catch(() => undefined);
    if (holder === undefined || !(await isStale(lockPath, holder, staleAfterMs))) continue;
    await breakLock(lockPath, holder).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

async function isStale(lockPath: string, holder: string, staleAfterMs: number): Promise<boolean> {
  const match = /^(\d+)@(.*)#/.exec(holder);
  if (match && match[2] === os.hostname()) return !processAlive(Number(match[1]));
  const stat = await fs.stat(lockPath).catch(() => undefined);
  return stat !== undefined && Date.now() - stat.mtimeMs > staleAfterMs;
}

/**
 * Moves the lock aside under a private name before deleting it, so two writers that both saw the same dead
 * holder cannot delete each other's fresh lock: the second one finds a different token aside and puts it back.
 */
async function breakLock(lockPath: string, staleHolder: string): Promise<void> {
  const aside = `${lockPath}.${randomUUID()}.stale`;
  try {
    await fs.rename(lockPath, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await fs.readFile(aside, 'utf8');
  if (moved !== staleHolder) await fs.link(aside, lockPath).catch(() => undefined);
  await fs.unlink(aside);
}
