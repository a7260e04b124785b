import { createHash, randomUUID, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Passes bytes through while hashing and counting them, so one read of a file both uploads and checks it. */
export class HashingStream extends Transform {
  readonly sha256: Hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly onBytes?: (total: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void): void {
    this.sha256.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    done(null, chunk);
  }
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256OfFile(file: string): Promise<{ sha256: string; size: number }> {
  const hasher = new HashingStream();
  await pipeline(fs.createReadStream(file), hasher, async function* (source) {
    for await (const _ of source) void _;
  });
  return { sha256: hasher.sha256.digest('hex'), size: hasher.bytes };
}

/** A sibling temp name in the same folder, so the final rename is atomic (same filesystem). */
export function tempSibling(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomUUID()}.tmp`);
}

/** Writes the whole file under a temp name, flushes it, then renames: readers see the old or the new file. */
export async function writeFileAtomic(target: string, data: Buffer | string): Promise<void> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const temp = tempSibling(target);
  try {
    const handle = await fsp.open(temp, 'w');
    try {
      await handle.writeFile(data);
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

/**
 * Streams `source` into `target` via a temp file, hashing on the way; the rename happens only when the
 * size and sha256 match what the caller expects, so a partial or wrong file never appears under `target`.
 */
export async function streamToFileVerified(
  source: Readable,
  target: string,
  expected: { sha256?: string; size?: number },
  onBytes?: (done: number) => void,
): Promise<{ sha256: string; size: number }> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const temp = tempSibling(target);
  const hasher = new HashingStream(onBytes);
  try {
    const out = fs.createWriteStream(temp);
    await pipeline(source, hasher, out);
    const sha256 = hasher.sha256.digest('hex');
    if (expected.size !== undefined && hasher.bytes !== expected.size) throw new IntegrityError(`size ${hasher.bytes} bytes, expected ${expected.size}`);
    if (expected.sha256 !== undefined && sha256 !== expected.sha256) throw new IntegrityError(`sha256 ${sha256}, expected ${expected.sha256}`);
    const handle = await fsp.open(temp, 'r+');
    await handle.sync();
    await handle.close();
    await fsp.rename(temp, target);
    return { sha256, size: hasher.bytes };
  } catch (error) {
    await fsp.rm(temp, { force: true });
    throw error;
  }
}

/** Bytes that arrived are not the bytes that were promised. */
export class IntegrityError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'IntegrityError';
  }
}
