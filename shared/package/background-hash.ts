import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

// Inline source, so bundled actions need no separate worker file. Buffers travel both ways (transferred,
// not copied) so a fixed few are reused: fresh ones would pile up as garbage the worker collects late.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (message) => {
  if (message === null) parentPort.postMessage(hash.digest('hex'));
  else {
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    parentPort.postMessage(message.buffer, [message.buffer]);
  }
});`;

const MAX_IN_FLIGHT = 3;

/**
 * SHA-256 computed on a worker thread over exactly the bytes handed to `update`, so the archive digest
 * costs the main thread one copy instead of a hash while it also hashes entries and drives zlib.
 */
export class BackgroundHash implements ChunkHash {
  private readonly worker = new Worker(SOURCE, { eval: true });
  private readonly free: ArrayBuffer[] = [];
  private inFlight = 0;
  private wake?: () => void;
  private failure?: Error;
  private settle?: { resolve: (digest: string) => void; reject: (error: Error) => void };

  constructor() {
    this.worker.on('message', (message: ArrayBuffer | string) => {
      if (typeof message === 'string') this.settle?.resolve(message);
      else {
        this.inFlight--;
        this.free.push(message);
      }
      this.wake?.();
    });
    this.worker.on('error', (error) => {
      this.failure = error;
      this.settle?.reject(error);
      this.wake?.();
    });
  }

  async update(...chunks: Buffer[]): Promise<void> {
    while (this.inFlight >= MAX_IN_FLIGHT && !this.failure) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
    const length = chunks.reduce((sum, c) => sum + c.length, 0);
    let buffer = this.free.pop();
    if (!buffer || buffer.byteLength < length) buffer = new ArrayBuffer(Math.max(length, 1 << 20));
    const view = new Uint8Array(buffer);
    let at = 0;
    for (const chunk of chunks) {
      view.set(chunk, at);
      at += chunk.length;
    }
    this.inFlight++;
    this.worker.postMessage({ buffer, length }, [buffer]);
  }

  async digest(): Promise<string> {
    if (this.failure) throw this.failure;
    const digest = new Promise<string>((resolve, reject) => (this.settle = { resolve, reject }));
    this.worker.postMessage(null);
    try {
      return await digest;
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

export interface ChunkHash {
  /** Adds the chunks, in order. */
  update(...chunks: Buffer[]): Promise<void>;
  digest(): Promise<string>;
  close(): Promise<void>;
}

/** Below this a worker's start-up (20-70 ms) costs more than the hashing it takes off the main thread. */
const WORKER_THRESHOLD = 64 << 20;

/** A SHA-256 of `expectedBytes` bytes: on a worker thread when that is large, inline otherwise. */
export function chunkHash(expectedBytes: number): ChunkHash {
  if (expectedBytes >= WORKER_THRESHOLD) return new BackgroundHash();
  const hash = createHash('sha256');
  return {
    update: async (...chunks) => chunks.forEach((c) => hash.update(c)),
    digest: async () => hash.digest('hex'),
    close: async () => undefined,
  };
}
