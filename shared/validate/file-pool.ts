import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { StepError } from '../core/errors';
import type { PngChunkStatus } from './image-header';
import { PROBE_WORKER_SOURCE } from './probe-worker';

/** What one streaming pass over a file learned. */
export interface FileProbe {
  path: string;
  size?: number;
  sha256?: string;
  /** open/read failure: ENOENT, EACCES, EISDIR… */
  error?: { code: string; message: string };
  /** First 64 KiB and last 64 bytes, when the header was asked for. */
  head?: Buffer;
  tail?: Buffer;
  png?: PngChunkStatus;
}

export interface ProbeJob {
  path: string;
  /** Keep the head/tail bytes for the image header readers. */
  head: boolean;
}

export interface PoolOptions {
  /** Worker threads; 0 or undefined = one per core. */
  threads?: number;
  signal?: AbortSignal;
  /** Called after each file with files done, total files and bytes hashed so far. */
  onProgress?(done: number, total: number, bytes: number): void;
}

interface WorkerReply {
  id: number;
  size?: number;
  sha256?: string;
  error?: { code: string; message: string };
  head?: Uint8Array;
  tail?: Uint8Array;
  png?: PngChunkStatus;
}

/** Two jobs queued per worker keep it busy while the main thread handles the previous reply. */
const IN_FLIGHT_PER_WORKER = 2;

export function defaultThreads(): number {
  return os.availableParallelism();
}

/**
 * Hashes files on a pool of worker threads (all cores by default), each streaming its file in fixed blocks.
 * Results arrive through `onResult` as they finish, so the caller can parse a header and drop its bytes at
 * once: memory stays flat however many files there are.
 */
export async function probeFiles(
  jobs: readonly ProbeJob[],
  options: PoolOptions,
  onResult: (probe: FileProbe, index: number) => void,
): Promise<void> {
  if (jobs.length === 0) return;
  options.signal?.throwIfAborted();
  const threads = Math.max(1, Math.min(options.threads || defaultThreads(), Math.ceil(jobs.length / IN_FLIGHT_PER_WORKER)));
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let done = 0;
      let bytes = 0;
      const dispatch = (worker: Worker) => {
        if (next >= jobs.length) return;
        const id = next++;
        worker.postMessage({ id, path: jobs[id].path, head: jobs[id].head });
      };
      const onAbort = () => reject(options.signal?.reason ?? new Error('aborted'));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      for (let t = 0; t < threads; t++) {
        const worker = new Worker(PROBE_WORKER_SOURCE, { eval: true });
        workers.push(worker);
        worker.on('error', reject);
        worker.on('message', (reply: WorkerReply) => {
          try {
            const probe: FileProbe = {
              path: jobs[reply.id].path,
              size: reply.size,
              sha256: reply.sha256,
              error: reply.error,
              png: reply.png,
            };
            if (reply.head) probe.head = Buffer.from(reply.head.buffer, reply.head.byteOffset, reply.head.byteLength);
            if (reply.tail) probe.tail = Buffer.from(reply.tail.buffer, reply.tail.byteOffset, reply.tail.byteLength);
            bytes += reply.size ?? 0;
            done++;
            onResult(probe, reply.id);
            options.onProgress?.(done, jobs.length, bytes);
          } catch (error) {
            reject(error);
            return;
          }
          if (done === jobs.length) {
            options.signal?.removeEventListener('abort', onAbort);
            resolve();
          } else dispatch(worker);
        });
        for (let k = 0; k < IN_FLIGHT_PER_WORKER; k++) dispatch(worker);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

export interface FileDigest {
  path: string;
  size: number;
  sha256: string;
}

/**
 * sha256 and size of each file, in the order given, on all cores. Throws on the first file that cannot be
 * read: callers hash files they just listed, so a failure is an environment problem, not a data finding.
 */
export async function hashFiles(paths: readonly string[], options: PoolOptions = {}): Promise<FileDigest[]> {
  const out: FileDigest[] = new Array(paths.length);
  let failure: FileProbe | undefined;
  await probeFiles(
    paths.map((path) => ({ path, head: false })),
    options,
    (probe, index) => {
      if (probe.error) failure ??= probe;
      else out[index] = { path: probe.path, size: probe.size ?? 0, sha256: probe.sha256 ?? '' };
    },
  );
  if (failure) {
    throw new StepError(`Cannot read ${failure.path}: ${failure.error?.code} ${failure.error?.message}`, {
      hint: 'Check that the file exists and is readable by the runner user.',
      file: failure.path,
    });
  }
  return out;
}
