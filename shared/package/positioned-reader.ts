import type { FileHandle } from 'node:fs/promises';

/**
 * Random-access reads through one small window, so a parser can walk the headers of a multi-GB file and
 * jump over large payloads without reading them.
 */
export class PositionedReader {
  private window: Buffer;
  private windowStart = 0;
  private windowLength = 0;
  /** Bytes read from the file so far. */
  bytesRead = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    windowSize = 64 * 1024,
  ) {
    this.window = Buffer.alloc(windowSize);
  }

  /** Returns the window holding `[pos, pos + length)`, clipped at the end of the file, and the offset of `pos` in it. */
  async view(pos: number, length: number): Promise<{ buffer: Buffer; offset: number; available: number }> {
    const wanted = Math.min(length, this.size - pos);
    if (pos < this.windowStart || pos + wanted > this.windowStart + this.windowLength) {
      if (wanted > this.window.length) this.window = Buffer.alloc(wanted);
      const { bytesRead } = await this.handle.read(this.window, 0, Math.min(this.window.length, this.size - pos), pos);
      this.windowStart = pos;
      this.windowLength = bytesRead;
      this.bytesRead += bytesRead;
    }
    const offset = pos - this.windowStart;
    return { buffer: this.window, offset, available: Math.max(0, Math.min(wanted, this.windowLength - offset)) };
  }

  /** A copy of `[start, end)`; callers bound the length. */
  async bytes(start: number, end: number): Promise<Buffer> {
    const { buffer, offset, available } = await this.view(start, end - start);
    if (available < end - start) throw new RangeError(`file ends at byte ${this.size}, before byte ${end}`);
    return Buffer.from(buffer.subarray(offset, offset + (end - start)));
  }
}
