import * as crypto from 'node:crypto';
import { archivePathProblem, BLOCK, decodeHeader, padding } from './tar-format';

export class RefusedEntryError extends Error {
  constructor(
    readonly entryPath: string | undefined,
    readonly reason: string,
  ) {
    super(entryPath === undefined ? reason : `entry "${entryPath}": ${reason}`);
  }
}

export interface EntrySink {
  write(chunk: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface WalkedEntry {
  path: string;
  size: number;
  sha256: string;
}

/** Caps on what one archive may unpack to: checked on each header, before any byte of the entry is passed on. */
export interface TarLimits {
  maxEntries: number;
  /** Sum of the entries' sizes. */
  maxBytes: number;
}

/**
 * Defaults for device packages: a package holds a few models, caches and metadata files (tens of entries), and
 * its models plus TensorRT caches stay well under 16 GiB. A 1 MB gzip of 1 GiB of zeros, or an archive of
 * 100,000 empty files, is refused at the header that crosses a cap.
 */
export const DEFAULT_TAR_LIMITS: TarLimits = { maxEntries: 10_000, maxBytes: 16 * 1024 ** 3 };

/**
 * Reads a tar stream strictly, hashing each entry's content as it passes. Every header is checked
 * before any byte of its entry reaches `open`: unsafe paths, links, devices, duplicates and entries
 * that would collide on a case-insensitive file system are refused on the spot, and so is an entry that would
 * take the archive over its caps on entry count or unpacked bytes (TarLimits).
 */
export class TarWalker {
  readonly entries: WalkedEntry[] = [];
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private state: 'header' | 'data' | 'padding' | 'end' = 'header';
  private remaining = 0;
  private current?: { path: string; size: number; hash: crypto.Hash; sink?: EntrySink };
  private readonly seenFiles = new Set<string>();
  private readonly seenDirs = new Set<string>();
  private offset = 0;
  private declaredBytes = 0;

  constructor(
    private readonly open: (path: string, size: number) => Promise<EntrySink | undefined>,
    private readonly limits: TarLimits = DEFAULT_TAR_LIMITS,
  ) {}

  async push(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      switch (this.state) {
        case 'header': {
          const n = Math.min(BLOCK - this.headerFill, chunk.length - at);
          chunk.copy(this.header, this.headerFill, at, at + n);
          this.headerFill += n;
          at += n;
          if (this.headerFill === BLOCK) {
            this.headerFill = 0;
            await this.startEntry();
            this.offset += BLOCK;
          }
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, chunk.length - at);
          const part = chunk.subarray(at, at + n);
          this.current!.hash.update(part);
          if (this.current!.sink) await this.current!.sink.write(part);
          this.remaining -= n;
          at += n;
          this.offset += n;
          if (this.remaining === 0) await this.finishEntry();
          break;
        }
        case 'padding': {
          const n = Math.min(this.remaining, chunk.length - at);
          this.remaining -= n;
          at += n;
          this.offset += n;
          if (this.remaining === 0) this.state = 'header';
          break;
        }
        case 'end': {
          // Anything but zero padding after the end marker is content some other reader might extract.
          const rest = chunk.subarray(at);
          const bad = rest.findIndex((b) => b !== 0);
          if (bad >= 0)
            throw new RefusedEntryError(undefined, `non-zero data at byte ${this.offset + bad} follows the end-of-archive marker`);
          this.offset += rest.length;
          at = chunk.length;
          break;
        }
      }
    }
  }

  /** Checks the stream ended at the end-of-archive marker. */
  end(): void {
    if (this.state === 'end') return;
    if (this.current)
      throw new RefusedEntryError(
        this.current.path,
        `the archive is truncated inside it (${this.remaining} of ${this.current.size} bytes missing)`,
      );
    throw new RefusedEntryError(
      undefined,
      this.offset === 0 ? 'the archive holds no tar data' : 'the archive is truncated: there is no end-of-archive marker',
    );
  }

  private async startEntry(): Promise<void> {
    const decoded = decodeHeader(this.header);
    if (decoded.kind === 'end') {
      this.state = 'end';
      return;
    }
    if (decoded.kind === 'refused') throw new RefusedEntryError(decoded.path, decoded.reason);
    const { path, size } = decoded;
    const problem = archivePathProblem(path);
    if (problem) throw new RefusedEntryError(path, problem);
    if (this.entries.length + 1 > this.limits.maxEntries)
      throw new RefusedEntryError(path, `the archive holds more than ${this.limits.maxEntries} entries, the most allowed`);
    if (this.declaredBytes + size > this.limits.maxBytes) {
      throw new RefusedEntryError(
        path,
        `with its ${size} bytes the archive would unpack to more than the ${this.limits.maxBytes} bytes allowed`,
      );
    }
    this.declaredBytes += size;
    this.checkCollisions(path);
    this.current = { path, size, hash: crypto.createHash('sha256'), sink: await this.open(path, size) };
    this.remaining = size;
    this.state = 'data';
    if (size === 0) await this.finishEntry();
  }

  private checkCollisions(path: string): void {
    const key = path.toLowerCase();
    if (this.seenFiles.has(key)) {
      throw new RefusedEntryError(
        path,
        this.entries.some((e) => e.path === path)
          ? 'it appears twice in the archive'
          : 'another entry has the same name in different letter case',
      );
    }
    if (this.seenDirs.has(key)) throw new RefusedEntryError(path, 'another entry uses this name as a folder');
    const segments = key.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/');
      if (this.seenFiles.has(dir)) throw new RefusedEntryError(path, `"${dir}" is a file in the archive, not a folder`);
      this.seenDirs.add(dir);
    }
    this.seenFiles.add(key);
  }

  private async finishEntry(): Promise<void> {
    const entry = this.current!;
    this.current = undefined;
    if (entry.sink) await entry.sink.close();
    this.entries.push({ path: entry.path, size: entry.size, sha256: entry.hash.digest('hex') });
    this.remaining = padding(entry.size);
    this.state = this.remaining > 0 ? 'padding' : 'header';
  }
}
