import { createHash, type Hash } from 'node:crypto';
import { commitFileAtomic } from '../core/atomic-write';
import * as fs from 'node:fs';
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
  return commitFileAtomic(target, async (temp) => {
    const hasher = new HashingStream(onBytes);
    await pipeline(source, hasher, fs.createWriteStream(temp));
    const sha256 = hasher.sha256.digest('hex');
    if (expected.size !== undefined && hasher.bytes !== expected.size)
      throw new IntegrityError(`size ${hasher.bytes} bytes, expected ${expected.size}`);
    if (expected.sha256 !== undefined && sha256 !== expected.sha256)
      throw new IntegrityError(`sha256 ${sha256}, expected ${expected.sha256}`);
    return { sha256, size: hasher.bytes };
  });
}

/** Bytes that arrived are not the bytes that were promised. */
export class IntegrityError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'IntegrityError';
  }
}
