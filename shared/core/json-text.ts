import * as fs from 'node:fs/promises';
import { StepError } from './errors';
import { jsonDepthMessage, jsonDepthViolation } from './json-depth';

export interface TextPosition {
  line: number;
  column: number;
}

/** 1-based line and column of a character offset. */
export function positionAt(text: string, offset: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

const READ_BLOCK = 16 << 20;

/**
 * Reads a whole text file in blocks so a 200 MB annotation file shows progress while it loads. The buffer is
 * allocated once at the file's size and dropped after decoding, so the peak is file + string, not a list of copies.
 */
export async function readTextFile(
  file: string,
  onProgress?: (done: number, total: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, done, Math.min(READ_BLOCK, size - done), done);
      if (bytesRead === 0) break;
      done += bytesRead;
      onProgress?.(done, size);
    }
    try {
      const text = buffer.toString('utf8', 0, done);
      return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    } catch (error) {
      throw new StepError(`${file} is too large to load as one text (${(size / 1048576).toFixed(0)} MB).`, {
        hint: 'Split the annotation file (one file per split or per shard) below 500 MB.',
        file,
        cause: error,
      });
    }
  } finally {
    await handle.close();
  }
}

export type JsonParse =
  { ok: true; value: unknown; nonFinite: number } | { ok: false; message: string; offset: number; line: number; column: number };

/**
 * JSON.parse with two additions annotation files need: the line and column of a syntax error (V8 does not
 * always give a position), and Python's NaN / Infinity tokens, which json.dump writes by default. Those are
 * turned into the strings "NaN" / "Infinity" / "-Infinity" so the geometry checks can report them by field.
 * Documents nested deeper than MAX_JSON_DEPTH are refused before parsing, with the position of the bracket.
 */
export function parseJsonText(text: string, options: { checkDepth?: boolean } = {}): JsonParse {
  // Streamed sections skip this: their scanner (json-sections.ts) enforces the same limit as it reads.
  const tooDeep = options.checkDepth === false ? -1 : jsonDepthViolation(text);
  if (tooDeep !== -1) {
    const { line, column } = positionAt(text, tooDeep);
    return { ok: false, message: `${jsonDepthMessage()} (annotation files need far fewer)`, offset: tooDeep, line, column };
  }
  try {
    return { ok: true, value: JSON.parse(text), nonFinite: 0 };
  } catch {
    // Fall through: locate the problem with the scanner below; only runs on bad files.
  }
  const scan = scanJson(text);
  if (scan.error) {
    const { line, column } = positionAt(text, scan.error.offset);
    return { ok: false, message: scan.error.message, offset: scan.error.offset, line, column };
  }
  let sanitized = '';
  let last = 0;
  for (const [start, length] of scan.nonFinite) {
    sanitized += text.slice(last, start) + JSON.stringify(text.slice(start, start + length));
    last = start + length;
  }
  sanitized += text.slice(last);
  return { ok: true, value: JSON.parse(sanitized), nonFinite: scan.nonFinite.length };
}

/** A number, or NaN/±Infinity written as a Python token; undefined for anything else. */
export function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
  return undefined;
}

interface Scan {
  error?: { offset: number; message: string };
  /** [offset, length] of NaN / Infinity / -Infinity tokens. */
  nonFinite: [number, number][];
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const NON_FINITE = /NaN|-?Infinity/y;
const LITERAL = /true|false|null/y;

/** A JSON grammar walk that stops at the first error; iterative so deep nesting cannot overflow the stack. */
function scanJson(text: string): Scan {
  const nonFinite: [number, number][] = [];
  const stack: ('{' | '[')[] = [];
  let i = 0;
  let state: 'value' | 'key' | 'after' = 'value';
  const fail = (message: string, at = i): Scan => ({
    nonFinite,
    error: { offset: at, message: at >= text.length ? 'unexpected end of file' : message },
  });
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
  };
  const string = (): boolean => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return false;
          i += 6;
          continue;
        }
        if (!e || !'"\\/bfnrt'.includes(e)) return false;
        i += 2;
        continue;
      }
      i++;
    }
    return false;
  };
  const match = (re: RegExp): number => {
    re.lastIndex = i;
    return re.exec(text) ? re.lastIndex - i : 0;
  };

  for (;;) {
    ws();
    if (state === 'value') {
      const c = text[i];
      if (c === '{' || c === '[') {
        stack.push(c);
        i++;
        ws();
        if (text[i] === (c === '{' ? '}' : ']')) {
          stack.pop();
          i++;
          state = 'after';
        } else state = c === '{' ? 'key' : 'value';
        continue;
      }
      if (c === '"') {
        if (!string()) return fail('invalid string (unescaped control character or bad escape, or missing closing quote)');
        state = 'after';
        continue;
      }
      const special = match(NON_FINITE);
      if (special) {
        nonFinite.push([i, special]);
        i += special;
        state = 'after';
        continue;
      }
      const n = match(NUMBER) || match(LITERAL);
      if (!n) return fail(`unexpected character ${JSON.stringify(c)} where a value was expected`);
      i += n;
      state = 'after';
      continue;
    }
    if (state === 'key') {
      if (text[i] !== '"') return fail(`expected a double-quoted property name, found ${JSON.stringify(text[i])}`);
      if (!string()) return fail('invalid property name string');
      ws();
      if (text[i] !== ':') return fail(`expected ':' after the property name, found ${JSON.stringify(text[i])}`);
      i++;
      state = 'value';
      continue;
    }
    const top = stack[stack.length - 1];
    if (!top) {
      if (i < text.length)
        return { nonFinite, error: { offset: i, message: `unexpected ${JSON.stringify(text[i])} after the end of the JSON document` } };
      return { nonFinite };
    }
    const close = top === '{' ? '}' : ']';
    if (text[i] === ',') {
      i++;
      state = top === '{' ? 'key' : 'value';
    } else if (text[i] === close) {
      i++;
      stack.pop();
    } else return fail(`expected ',' or '${close}', found ${JSON.stringify(text[i])}`);
  }
}
