import * as fs from 'node:fs/promises';
import { StepError } from '../core/errors';
import { jsonDepthMessage, MAX_JSON_DEPTH } from '../core/json-depth';
import type { JsonParse } from '../core/json-text';
import { parseJsonText } from '../core/json-text';

/**
 * Streaming access to the top-level members of a large JSON object (a COCO file: images, annotations,
 * categories), so memory does not grow with the file.
 *
 * Pass 1 (`scanSections`) reads the file in blocks and only tracks strings, brackets and the top-level
 * grammar. It records where each member's value lies and cuts array values into slices of whole elements
 * (about 64 KiB each). Pass 2 (`readSlices`) reads one slice at a time and hands it to V8's JSON.parse,
 * which validates it: a byte loop to find cut points plus the native parser is several times faster than a
 * streaming parser written in JavaScript, and the members can be read in any order the caller needs (COCO
 * writes categories after annotations).
 */

/**
 * Small enough that a slice's text and parsed objects stay in V8's young generation (strings over 128 KiB are
 * allocated as old "large objects") and die there, large enough that JSON.parse call overhead does not show.
 */
export const SLICE_BYTES = 64 << 10;
const BLOCK = 1 << 20;

/** A run of bytes in the file: whole array elements, or a whole member value. */
export interface Slice {
  start: number;
  end: number;
  /** 1-based position of `start`; columns count UTF-16 units, like an editor. */
  line: number;
  column: number;
  /** Index of the slice's first element in its array. */
  first: number;
}

export interface Section {
  key: string;
  /** The value is an array: its slices hold elements. Otherwise one slice holds the whole value. */
  array: boolean;
  slices: Slice[];
  /** Elements in the array (0 for non-array values). */
  elements: number;
}

export interface JsonFailure {
  message: string;
  offset: number;
  line: number;
  column: number;
}

export type SectionScan =
  | { kind: 'object'; sections: Section[]; size: number; error?: JsonFailure }
  /** The document is not an object: the first non-blank byte, for the caller to explain. */
  | { kind: 'other'; first: string; size: number };

export interface ScanOptions {
  onProgress?(done: number, total: number): void;
  signal?: AbortSignal;
  /** Target slice size; tests make it small to exercise the cuts. */
  sliceBytes?: number;
}

type State = 'start' | 'first-key' | 'key' | 'in-key' | 'colon' | 'value' | 'in-value' | 'after-value' | 'done';

const isBlank = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** Bytes of numbers and literals (true, NaN, -Infinity, 1e-5): a top-level primitive ends at any other. */
const isPrimitiveByte = (c: number) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2e || c === 0x2b || c === 0x2d;
const BOM = [0xef, 0xbb, 0xbf];
const ESCAPES = new Set([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)));
const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
const describe = (c: number) => JSON.stringify(String.fromCharCode(c));

/**
 * The pass-1 state machine, fed block by block. Inside member values it only follows strings and bracket
 * depth; everything it does not check there, JSON.parse checks in pass 2 with an exact position.
 */
export class SectionScanner {
  /** Every member in file order; a key given twice appears twice (a reader takes the last, as JSON.parse does). */
  readonly sections: Section[] = [];
  error?: JsonFailure;
  private state: State = 'start';
  private offset = 0;
  private line = 1;
  private lineStart = 0;
  private previousLineStart = 0;
  /** Bytes of the current line that are not UTF-16 units of their own (see feed). */
  private lineAdjust = 0;
  private previousLineAdjust = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private keyBytes: number[] = [];
  private escapeAt = 0;
  private hexLeft = 0;
  private section?: Section;
  private opener = 0;
  /** Brackets open inside the current member value, below its own. */
  private readonly openers: number[] = [];
  private sliceStart = 0;
  private sliceLine = 1;
  private sliceColumn = 1;
  private sliceFirst = 0;
  private elements = 0;
  /** Non-blank bytes seen in the current element: an array of only blanks has no element. */
  private elementHasContent = false;
  /** Primitive member values (numbers, literals) end at the first byte that cannot belong to them. */
  private primitive = false;
  firstByte = -1;
  private bomBytes = 0;

  constructor(private readonly sliceBytes = SLICE_BYTES) {}

  /** Scans `chunk`, the next bytes of the file; returns false once an error is found or the root is not an object. */
  feed(chunk: Uint8Array): boolean {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      const at = this.offset + i;
      if (c === 0x0a) {
        this.line++;
        this.previousLineStart = this.lineStart;
        this.previousLineAdjust = this.lineAdjust;
        this.lineStart = at + 1;
        this.lineAdjust = 0;
      } else if (c >= 0x80) {
        // Columns count UTF-16 units, as editors and JSON.parse do: a continuation byte adds none, a 4-byte
        // sequence adds two.
        if (c < 0xc0) this.lineAdjust++;
        else if (c >= 0xf0) this.lineAdjust--;
      }
      if (this.inString) {
        if (this.state === 'in-key') {
          if (!this.keyByte(c, at)) return false;
        } else if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) {
          this.inString = false;
          if (this.depth === 1) this.endValue(at + 1);
        }
        continue;
      }
      if (this.state === 'in-value' && this.primitive) {
        if (isPrimitiveByte(c)) continue;
        // The delimiter ends the value and is then read at the top level below.
        this.endValue(at);
      }
      if (this.state === 'in-value') {
        switch (c) {
          case 0x22:
            this.inString = true;
            this.elementHasContent = true;
            break;
          case 0x5b:
          case 0x7b:
            // The one depth limit of every JSON walk (core/json-depth), enforced here for streamed files.
            if (this.depth >= MAX_JSON_DEPTH) return this.fail(jsonDepthMessage(), at);
            this.openers.push(c);
            this.depth++;
            this.elementHasContent = true;
            break;
          case 0x5d:
          case 0x7d: {
            // Bracket kinds are checked at every depth: a stray "}" must not look like the end of the document.
            const expected = (this.depth === 2 ? this.opener : this.openers.pop()) === 0x5b ? 0x5d : 0x7d;
            if (c !== expected) return this.fail(`expected ',' or '${String.fromCharCode(expected)}', found ${describe(c)}`, at);
            if (this.depth === 2) {
              if (this.section?.array && this.elements > 0 && !this.elementHasContent)
                return this.fail(`unexpected character "]" where a value was expected`, at);
              this.depth = 1;
              this.endValue(at + 1);
            } else this.depth--;
            break;
          }
          case 0x2c:
            if (this.depth === 2 && this.section?.array) {
              // An empty element ("[,", ",,"): caught here, since a cut at this comma would hide it from JSON.parse.
              if (!this.elementHasContent) return this.fail(`unexpected character "," where a value was expected`, at);
              this.elements++;
              this.elementHasContent = false;
              if (at - this.sliceStart >= this.sliceBytes) this.cut(at, at + 1);
            }
            break;
          default:
            if (!isBlank(c)) this.elementHasContent = true;
        }
        continue;
      }
      if (isBlank(c)) continue;
      if (this.firstByte === -1) {
        // A UTF-8 byte order mark before the document, possibly split across chunks. It has no column of its
        // own, as when the text is decoded without it (its two continuation bytes were counted above).
        if (at === this.bomBytes && at < 3 && c === BOM[at]) {
          if (at === 0) this.lineAdjust++;
          this.bomBytes++;
          continue;
        }
        // Half a BOM: the document starts with a stray byte.
        this.firstByte = this.bomBytes > 0 && this.bomBytes < 3 ? 0xef : c;
      }
      switch (this.state) {
        case 'start':
          if (c !== 0x7b) {
            this.state = 'done';
            return false;
          }
          this.depth = 1;
          this.state = 'first-key';
          break;
        case 'first-key':
        case 'key':
          if (c === 0x7d && this.state === 'first-key') {
            this.depth = 0;
            this.state = 'done';
          } else if (c === 0x22) {
            this.inString = true;
            this.keyBytes = [];
            this.state = 'in-key';
          } else return this.fail(`expected a double-quoted property name, found ${describe(c)}`, at);
          break;
        case 'colon':
          if (c !== 0x3a) return this.fail(`expected ':' after the property name, found ${describe(c)}`, at);
          this.state = 'value';
          break;
        case 'value':
          this.startValue(c, at);
          break;
        case 'after-value':
          if (c === 0x2c) this.state = 'key';
          else if (c === 0x7d) {
            this.depth = 0;
            this.state = 'done';
          } else return this.fail(`expected ',' or '}', found ${describe(c)}`, at);
          break;
        case 'done':
          return this.fail(`unexpected ${describe(c)} after the end of the JSON document`, at);
      }
    }
    this.offset += chunk.length;
    return true;
  }

  /** Call after the last block: anything but a closed root object is cut short. */
  end(): void {
    if (this.error || this.state === 'done') return;
    if (this.state === 'in-value' && this.primitive) this.endValue(this.offset);
    if (this.state === 'in-key' && (this.escaped || this.hexLeft > 0)) {
      this.fail('invalid property name string', this.escapeAt);
      return;
    }
    if (this.firstByte === -1 && this.bomBytes > 0 && this.bomBytes < 3) this.firstByte = 0xef;
    this.fail('unexpected end of file', this.offset, false);
  }

  /**
   * One byte of a property name, checked with the rules and at the positions of a whole-text parse (inside
   * values that is JSON.parse's job in pass 2).
   */
  private keyByte(c: number, at: number): boolean {
    if (this.hexLeft > 0) {
      if (!isHex(c)) return this.fail('invalid property name string', this.escapeAt);
      this.hexLeft--;
    } else if (this.escaped) {
      this.escaped = false;
      if (c === 0x75) this.hexLeft = 4;
      else if (!ESCAPES.has(c)) return this.fail('invalid property name string', this.escapeAt);
    } else if (c === 0x5c) {
      this.escaped = true;
      this.escapeAt = at;
    } else if (c === 0x22) {
      this.inString = false;
      this.state = 'colon';
      return true;
    } else if (c < 0x20) return this.fail('invalid property name string', at);
    this.keyBytes.push(c);
    return true;
  }

  private startValue(c: number, at: number): void {
    // The bytes were checked as they came, so the escapes decode.
    const name = JSON.parse(`"${Buffer.from(this.keyBytes).toString('utf8')}"`) as string;
    this.section = { key: name, array: c === 0x5b, slices: [], elements: 0 };
    this.sections.push(this.section);
    this.opener = c;
    this.sliceStart = c === 0x5b ? at + 1 : at;
    this.sliceLine = this.line;
    this.sliceColumn = this.sliceStart - this.lineStart + 1 - this.lineAdjust;
    this.sliceFirst = 0;
    this.elements = 0;
    this.elementHasContent = false;
    this.primitive = false;
    this.state = 'in-value';
    if (c === 0x5b || c === 0x7b) this.depth = 2;
    else if (c === 0x22) this.inString = true;
    else this.primitive = true;
  }

  private endValue(end: number): void {
    const section = this.section as Section;
    if (section.array) {
      if (this.elementHasContent) this.elements++;
      this.cut(end - 1, end);
      section.elements = this.elements;
    } else this.pushSlice(end);
    this.primitive = false;
    this.section = undefined;
    this.state = 'after-value';
  }

  /** Closes the current slice at `end` (exclusive) and opens the next one at `next`. */
  private cut(end: number, next: number): void {
    if (this.elements > this.sliceFirst || this.elementHasContent) this.pushSlice(end);
    this.sliceStart = next;
    this.sliceLine = this.line;
    this.sliceColumn = next - this.lineStart + 1 - this.lineAdjust;
    this.sliceFirst = this.elements;
  }

  /** Records the current slice, from its start to `end` (exclusive). */
  private pushSlice(end: number): void {
    (this.section as Section).slices.push({
      start: this.sliceStart,
      end,
      line: this.sliceLine,
      column: this.sliceColumn,
      first: this.sliceFirst,
    });
  }

  /** `atByte`: the error is a byte of the file (false at the end of the file). */
  private fail(message: string, offset: number, atByte = true): false {
    // A newline that is itself the error belongs to the line it ends, which was already counted.
    const onNewline = offset < this.lineStart;
    const lineStart = onNewline ? this.previousLineStart : this.lineStart;
    const adjust = onNewline ? this.previousLineAdjust : this.lineAdjust;
    this.error = { message, offset, line: onNewline ? this.line - 1 : this.line, column: offset - lineStart + 1 - adjust };
    // The value being read stays readable up to here, so pass 2 can find an earlier, more exact error in it.
    if (this.section && this.state === 'in-value') this.pushSlice(atByte ? offset + 1 : offset);
    this.state = 'done';
    return false;
  }
}

/** Pass 1 over a file: where every top-level member's value lies. */
export async function scanSections(file: string, options: ScanOptions = {}): Promise<SectionScan> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const scanner = new SectionScanner(options.sliceBytes);
    const block = Buffer.allocUnsafe(Math.min(BLOCK, Math.max(size, 1)));
    let done = 0;
    while (done < size) {
      options.signal?.throwIfAborted();
      const { bytesRead } = await handle.read(block, 0, Math.min(block.length, size - done), done);
      if (bytesRead === 0) break;
      const going = scanner.feed(block.subarray(0, bytesRead));
      done += bytesRead;
      options.onProgress?.(done, size);
      if (!going) break;
    }
    if (scanner.firstByte !== -1 && scanner.firstByte !== 0x7b)
      return { kind: 'other', first: String.fromCharCode(scanner.firstByte), size };
    scanner.end();
    return { kind: 'object', sections: scanner.sections, size, error: scanner.error };
  } finally {
    await handle.close();
  }
}

/** `atSliceEnd`: the error is at the bracket added around the slice (the slice ended, e.g. cut short by pass 1). */
export type SliceParse = { ok: true; values: unknown[]; first: number } | { ok: false; error: JsonFailure; atSliceEnd: boolean };

/**
 * Pass 2: parses the given slices one at a time, in order. Array slices yield their elements; a value slice
 * yields its value as the single element. A syntax error ends the walk with its position in the file.
 */
export async function* readSlices(file: string, section: Section, signal?: AbortSignal): AsyncGenerator<SliceParse> {
  const handle = await fs.open(file, 'r');
  try {
    let buffer = Buffer.allocUnsafe(0);
    for (const slice of section.slices) {
      signal?.throwIfAborted();
      const length = slice.end - slice.start;
      if (buffer.length < length) buffer = Buffer.allocUnsafe(Math.max(length, SLICE_BYTES + 4096));
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, slice.start + done);
        if (bytesRead === 0)
          throw new StepError(`${file} got shorter while it was read (expected ${length} bytes at offset ${slice.start}).`, {
            hint: 'Keep the dataset unchanged while the step runs.',
            file,
          });
        done += bytesRead;
      }
      const text = buffer.toString('utf8', 0, length);
      // Parsed inside the bracket that holds it in the file ("[" for elements, the root "{" for a member
      // value), so JSON.parse's messages read as they would for the whole document.
      const prefix = section.array ? '[' : '{"":';
      const parsed: JsonParse = parseJsonText(`${prefix}${text}${section.array ? ']' : '}'}`, { checkDepth: false });
      if (!parsed.ok) {
        const line = slice.line + parsed.line - 1;
        const column = parsed.line === 1 ? slice.column + parsed.column - 1 - prefix.length : parsed.column;
        // JSON.parse counts UTF-16 units; the file is addressed in bytes.
        const units = parsed.offset - prefix.length;
        const offset = slice.start + Buffer.byteLength(text.slice(0, Math.max(0, Math.min(units, text.length))));
        yield { ok: false, error: { message: parsed.message, offset, line, column }, atSliceEnd: units >= text.length };
        return;
      }
      yield {
        ok: true,
        values: section.array ? (parsed.value as unknown[]) : [(parsed.value as Record<string, unknown>)['']],
        first: slice.first,
      };
    }
  } finally {
    await handle.close();
  }
}

/**
 * The error to report for a file: the first one in file order. Pass 1 only follows the top level, so when it
 * stopped (`scanError`), JSON.parse may still find an earlier error inside a member value read so far; when it
 * did not, this finds the first of the errors JSON.parse sees, whatever order the caller read the members in.
 */
export async function firstError(
  file: string,
  sections: readonly Section[],
  scanError: JsonFailure | undefined,
  signal?: AbortSignal,
): Promise<JsonFailure | undefined> {
  for (const section of sections) {
    for await (const slice of readSlices(file, section, signal)) {
      if (slice.ok) continue;
      if (!scanError) return slice.error;
      // The value pass 1 stopped in ends just after the byte it stopped at: an error at or before that byte
      // comes with JSON.parse's exact message; running off the end of the slice is pass 1's error.
      return !slice.atSliceEnd && slice.error.offset <= scanError.offset ? slice.error : scanError;
    }
  }
  return scanError;
}
