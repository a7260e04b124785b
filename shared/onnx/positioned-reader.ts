import * as fs from 'node:fs';

/** Random access to a file or buffer, enough for a parser that walks headers and jumps over large payloads. */
export interface ByteReader {
  readonly size: number;
  /** A buffer holding `[pos, pos + length)` (clipped at the end), the offset of `pos` in it, and how many of those bytes it has. */
  view(pos: number, length: number): { buffer: Buffer; offset: number; available: number };
  /** The bytes `[start, end)`; callers bound the length. */
  bytes(start: number, end: number): Buffer;
}

/**
 * Reads an open file through one small window, so walking the headers of a multi-GB file costs a few
 * kilobytes of reads. Synchronous: each read is one small pread, and sync callers (step checks) need the result inline.
 */
export class PositionedReader implements ByteReader {
  private window: Buffer;
  private windowStart = 0;
  private windowLength = 0;
  /** Bytes read from the file so far. */
  bytesRead = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    windowSize = 64 * 1024,
  ) {
    this.window = Buffer.alloc(windowSize);
  }

  view(pos: number, length: number): { buffer: Buffer; offset: number; available: number } {
    const wanted = Math.min(length, this.size - pos);
    if (pos < this.windowStart || pos + wanted > this.windowStart + this.windowLength) {
      if (wanted > this.window.length) this.window = Buffer.alloc(wanted);
      const bytesRead = fs.readSync(this.fd, this.window, 0, Math.min(this.window.length, this.size - pos), pos);
      this.windowStart = pos;
      this.windowLength = bytesRead;
      this.bytesRead += bytesRead;
    }
    const offset = pos - this.windowStart;
    return { buffer: this.window, offset, available: Math.max(0, Math.min(wanted, this.windowLength - offset)) };
  }

  bytes(start: number, end: number): Buffer {
    const { buffer, offset, available } = this.view(start, end - start);
    if (available < end - start) throw new RangeError(`file ends at byte ${this.size}, before byte ${end}`);
    return Buffer.from(buffer.subarray(offset, offset + (end - start)));
  }
}

export class BufferReader implements ByteReader {
  constructor(private readonly buffer: Buffer) {}

  get size(): number {
    return this.buffer.length;
  }

  view(pos: number, length: number): { buffer: Buffer; offset: number; available: number } {
    return { buffer: this.buffer, offset: pos, available: Math.max(0, Math.min(length, this.buffer.length - pos)) };
  }

  bytes(start: number, end: number): Buffer {
    if (end > this.buffer.length) throw new RangeError(`buffer ends at byte ${this.buffer.length}, before byte ${end}`);
    return this.buffer.subarray(start, end);
  }
}
