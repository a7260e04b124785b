import * as os from 'node:os';
import * as stream from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

/**
 * Gzip in fixed-size independent members, compressed and decompressed in parallel on the libuv thread pool.
 *
 * Each MEMBER_SIZE bytes of input become one gzip member (RFC 1952 allows any number, and gzip, tar,
 * libarchive, zlib's gzread and Python read them as one stream). Every member header carries an extra
 * field `MS` holding the member's total length, so a reader can cut the file into members without
 * inflating it and inflate several at once. Member boundaries depend only on the input bytes, and the
 * header is fixed (mtime 0, no name, OS byte 255), so the output is reproducible.
 */

export const MEMBER_SIZE = 1 << 20;
/** A member this reader accepts: larger ones are not from a package builder and could exhaust memory. */
const MAX_MEMBER_BYTES = 16 << 20;
const MAX_MEMBER_OUTPUT = 4 * MEMBER_SIZE;
const HEADER_BYTES = 20;

export type Compression = 'fast' | 'balanced' | 'best' | 'none';
export const COMPRESSIONS: readonly Compression[] = ['none', 'fast', 'balanced', 'best'];

/**
 * `none` (stored deflate) is the default: float32 weights shrink only ~7 % under any level, and stored
 * members keep building and verifying at hashing speed. `fast` is Huffman-only deflate: weights have
 * almost no repeated strings, so entropy coding gets nearly all of what level 9 gets (0.926 vs 0.927 on
 * float32 weights, more on fp16) at 3x the speed of level 6, and its output does not depend on the CPU's
 * match-finding code paths.
 */
const ZLIB_OPTIONS: Record<Compression, zlib.ZlibOptions> = {
  fast: { level: 1, strategy: zlib.constants.Z_HUFFMAN_ONLY },
  balanced: { level: 6 },
  best: { level: 9 },
  none: { level: 0 },
};

const gzip = promisify(zlib.gzip) as (buf: Buffer, options: zlib.ZlibOptions) => Promise<Buffer>;
const gunzip = promisify(zlib.gunzip) as (buf: Buffer, options: zlib.ZlibOptions) => Promise<Buffer>;

export function defaultParallelism(): number {
  return Math.max(2, Math.min(8, os.availableParallelism()));
}

/** zlib's output with its 10-byte gzip header replaced by the fixed one carrying the member length. */
function memberOf(gz: Buffer): Buffer[] {
  const body = gz.subarray(10);
  const header = Buffer.alloc(HEADER_BYTES);
  header.set([0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 0xff], 0); // FLG = FEXTRA; mtime 0; XFL 0; OS unknown
  header.writeUInt16LE(8, 10); // XLEN
  header.write('MS', 12, 'latin1');
  header.writeUInt16LE(4, 14);
  header.writeUInt32LE(HEADER_BYTES + body.length, 16);
  return [header, body];
}

/** Writes compressed output in order; `sink` receives each member once, as header and body (hash them, write them). */
export class ParallelGzipWriter {
  private current: Buffer = Buffer.allocUnsafe(MEMBER_SIZE);
  private filled = 0;
  /** Input blocks zlib is done with, reused so a multi-GB archive does not churn through fresh buffers. */
  private readonly spare: Buffer[] = [];
  /** Per member, settled once the sink has taken it; the chain keeps members in order. */
  private readonly outstanding: Promise<void>[] = [];
  private tail: Promise<void> = Promise.resolve();
  private wroteAny = false;
  private readonly options: zlib.ZlibOptions;

  constructor(
    private readonly sink: (member: Buffer[]) => Promise<void>,
    compression: Compression = 'none',
    private readonly parallelism = defaultParallelism(),
  ) {
    // One output buffer per member: zlib's default 16 KiB chunks would cost 64 thread-pool round trips each.
    this.options = { ...ZLIB_OPTIONS[compression], chunkSize: MEMBER_SIZE + 64 * 1024 };
  }

  async write(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(MEMBER_SIZE - this.filled, data.length - offset);
      data.copy(this.current, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      if (this.filled === MEMBER_SIZE) await this.submit();
    }
  }

  async end(): Promise<void> {
    if (this.filled > 0 || !this.wroteAny) await this.submit();
    await this.tail;
  }

  private async submit(): Promise<void> {
    const full = this.current;
    const block = full.subarray(0, this.filled);
    this.current = this.spare.pop() ?? Buffer.allocUnsafe(MEMBER_SIZE);
    this.filled = 0;
    this.wroteAny = true;
    const compressed = gzip(block, this.options).then((gz) => {
      this.spare.push(full);
      return memberOf(gz);
    });
    compressed.catch(() => undefined); // surfaces through the chain below
    this.tail = this.tail.then(async () => this.sink(await compressed));
    this.tail.catch(() => undefined); // surfaces when awaited in submit() or end()
    this.outstanding.push(this.tail);
    // Compression and writing overlap the caller's reading; waiting on the oldest bounds memory.
    while (this.outstanding.length > this.parallelism + 2) await this.outstanding.shift();
  }
}

export class GzipFormatError extends Error {}

/**
 * Decompresses a gzip stream, in parallel when its members carry the `MS` length field and through one
 * streaming inflater otherwise (a package repacked by another tool still verifies, just slower).
 */
export async function* gunzipStream(source: AsyncIterable<Buffer>, parallelism = defaultParallelism()): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const buffered: Buffer[] = [];
  let bufferedBytes = 0;
  let exhausted = false;
  let consumed = 0;

  const fill = async (wanted: number): Promise<boolean> => {
    while (bufferedBytes < wanted && !exhausted) {
      const next = await iterator.next();
      if (next.done) exhausted = true;
      else {
        buffered.push(next.value);
        bufferedBytes += next.value.length;
      }
    }
    return bufferedBytes >= wanted;
  };
  /** The next `n` buffered bytes: a slice when one chunk holds them, else one copy of just those bytes. */
  const take = (n: number): Buffer => {
    let out: Buffer;
    if (buffered[0].length >= n) out = buffered[0].subarray(0, n);
    else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      for (let i = 0; filled < n; i++) filled += buffered[i].copy(out, filled, 0, Math.min(buffered[i].length, n - filled));
    }
    let left = n;
    while (left > 0 && left >= buffered[0].length) left -= buffered.shift()!.length;
    if (left > 0) buffered[0] = buffered[0].subarray(left);
    bufferedBytes -= n;
    consumed += n;
    return out;
  };
  const peek = (n: number): Buffer => {
    if (buffered[0].length >= n) return buffered[0].subarray(0, n);
    // fill() stops at the chunk that crosses `n`, so this joins at most a few small pieces.
    return Buffer.concat(buffered).subarray(0, n);
  };

  const pending: Promise<Buffer>[] = [];
  while (await fill(1)) {
    await fill(HEADER_BYTES);
    const head = peek(HEADER_BYTES);
    if (head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8) {
      throw new GzipFormatError(
        consumed === 0 ? 'it is not a gzip file' : `${bufferedBytes} bytes of data follow the last gzip member (from byte ${consumed})`,
      );
    }
    if (head.length < HEADER_BYTES) throw new GzipFormatError(`the archive ends inside a gzip header at byte ${consumed}`);
    const indexed =
      head[3] === 0x04 && head.readUInt16LE(10) === 8 && head.toString('latin1', 12, 14) === 'MS' && head.readUInt16LE(14) === 4;
    if (!indexed) break;
    const length = head.readUInt32LE(16);
    if (length < HEADER_BYTES + 8 || length > MAX_MEMBER_BYTES)
      throw new GzipFormatError(`the gzip member at byte ${consumed} declares a length of ${length} bytes`);
    if (!(await fill(length)))
      throw new GzipFormatError(
        `the archive is truncated: the gzip member at byte ${consumed} needs ${length} bytes, ${bufferedBytes} are left`,
      );
    const at = consumed;
    const member = take(length);
    if (member.readUInt32LE(length - 4) > MAX_MEMBER_OUTPUT)
      throw new GzipFormatError(`the gzip member at byte ${at} expands to more than ${MAX_MEMBER_OUTPUT} bytes`);
    pending.push(
      gunzip(member, { maxOutputLength: MAX_MEMBER_OUTPUT, chunkSize: MEMBER_SIZE + 64 * 1024 }).catch((error: Error) => {
        throw new GzipFormatError(`the gzip member at byte ${at} is corrupt (${error.message})`);
      }),
    );
    // Keeps a rejected member from being reported as unhandled while earlier ones are still awaited.
    pending[pending.length - 1].catch(() => undefined);
    while (pending.length >= parallelism) yield await pending.shift()!;
  }
  while (pending.length > 0) yield await pending.shift()!;
  if (consumed === 0 && bufferedBytes === 0) throw new GzipFormatError('the archive is empty');
  if (bufferedBytes === 0 && exhausted) return;

  // Not our member format: one streaming inflater over the rest.
  const rest = (async function* () {
    yield* buffered;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  })();
  const inflater = zlib.createGunzip({ chunkSize: 256 * 1024 });
  // Errors of either side destroy the inflater and surface in the loop below.
  stream.pipeline(stream.Readable.from(rest), inflater, () => undefined);
  try {
    for await (const chunk of inflater) yield chunk as Buffer;
  } catch (error) {
    if (String((error as NodeJS.ErrnoException).code).startsWith('Z_'))
      throw new GzipFormatError(`the gzip stream is corrupt (${(error as Error).message})`);
    throw error;
  }
}
