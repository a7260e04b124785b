import * as fs from 'node:fs';
import * as path from 'node:path';
import { seededRandom } from '../../shared/core/random';
import type { JsonFailure, SectionScan } from '../../shared/validate/json-sections';
import { firstError, readSlices, scanSections, SectionScanner } from '../../shared/validate/json-sections';
import { parseJsonText } from '../../shared/core/json-text';
import { TempDirs, write } from './fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());

type Streamed = { ok: true; value: Record<string, unknown>; slices: number } | { ok: false; error: Omit<JsonFailure, 'offset'> };

/** What a reader of the file learns through the two passes, in the shape parseJsonText gives for the whole text. */
async function streamed(file: string, sliceBytes: number): Promise<Streamed> {
  const scan = await scanSections(file, { sliceBytes });
  if (scan.kind !== 'object') throw new Error(`not an object: ${scan.first}`);
  if (scan.error) {
    const { line, column, message } = (await firstError(file, scan.sections, scan.error)) ?? scan.error;
    return { ok: false, error: { line, column, message } };
  }
  const value: Record<string, unknown> = {};
  let slices = 0;
  for (const section of scan.sections) {
    const items: unknown[] = [];
    for await (const slice of readSlices(file, section)) {
      if (!slice.ok) return { ok: false, error: { line: slice.error.line, column: slice.error.column, message: slice.error.message } };
      expect(slice.first).toBe(items.length);
      items.push(...slice.values);
      slices++;
    }
    if (section.array) expect(section.elements).toBe(items.length);
    value[section.key] = section.array ? items : items[0];
  }
  return { ok: true, value, slices };
}

function whole(text: string): Streamed {
  const parsed = parseJsonText(text);
  if (!parsed.ok) return { ok: false, error: { line: parsed.line, column: parsed.column, message: parsed.message } };
  return { ok: true, value: parsed.value as Record<string, unknown>, slices: 0 };
}

/** A COCO-like document with the awkward parts: escapes, brackets and commas inside strings, nesting, unicode, CRLF, NaN. */
function document(random: () => number): string {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const names = ['cell', 'nu"cleus', 'a,b', '[x]', '{y}', 'back\\slash', 'ünïcode', 'tab\there', 'emoji 🧫'];
  const images = Array.from({ length: 1 + Math.floor(random() * 30) }, (_, i) => ({
    id: i + 1,
    file_name: `${pick(names)}_${i}.png`,
    width: 64,
    height: 48,
  }));
  const annotations = Array.from({ length: Math.floor(random() * 60) }, (_, i) => ({
    id: i + 1,
    image_id: 1 + Math.floor(random() * images.length),
    category_id: 1 + Math.floor(random() * 3),
    bbox: [random() * 10, random() * 10, 1 + random() * 20, 1 + random() * 20],
    segmentation: random() < 0.3 ? { size: [48, 64], counts: [0, 3072] } : [[1, 1, 5, 1, 5, 5]],
    note: random() < 0.2 ? pick(names) : undefined,
  }));
  const categories = [1, 2, 3].map((id) => ({ id, name: pick(names) }));
  const members: [string, unknown][] = [
    ['info', { description: 'mlship "test" {set}', year: 2026 }],
    ['images', images],
    ['annotations', annotations],
    ['categories', categories],
    ['licenses', []],
    ['n', 12.5],
    ['flag', true],
    ['s', 'x\\"]}'],
  ];
  members.sort(() => random() - 0.5);
  const pretty = random() < 0.5;
  let text = JSON.stringify(Object.fromEntries(members), null, pretty ? 2 : undefined);
  if (pretty && random() < 0.3) text = text.replace(/\n/g, '\r\n');
  // Python's json.dump writes NaN for a NaN coordinate; JSON.stringify would write null.
  if (random() < 0.3) text = text.replace('"bbox":[', '"bbox":[NaN,').replace('"bbox": [', '"bbox": [NaN, ');
  return text;
}

describe('scanSections + readSlices', () => {
  it('cut a document into slices of whole elements that give back exactly what JSON.parse gives', async () => {
    const random = seededRandom(7);
    const dir = temp.make();
    for (let n = 0; n < 60; n++) {
      const text = document(random);
      const file = write(path.join(dir, `doc${n}.json`), text);
      for (const sliceBytes of [1, 37, 1 << 16]) {
        const got = await streamed(file, sliceBytes);
        expect({ ...got, slices: 0 }).toEqual(whole(text));
        if (sliceBytes === 1 && got.ok) expect(got.slices).toBeGreaterThan(3);
      }
    }
  });

  it('report the same line, column and message as a whole-text parse for any one-byte corruption', async () => {
    const random = seededRandom(11);
    const dir = temp.make();
    const bytes = [...'{}[],:"\\ 0-eEtn.\n\u0001'].map((c) => c.charCodeAt(0));
    let failures = 0;
    for (let n = 0; n < 1500; n++) {
      const text = Buffer.from(document(random));
      const at = 1 + Math.floor(random() * (text.length - 1));
      const broken = Buffer.concat([
        text.subarray(0, at),
        Buffer.from([bytes[Math.floor(random() * bytes.length)]]),
        text.subarray(at + (random() < 0.5 ? 1 : 0)),
      ]);
      // A multi-byte character cut in half is an encoding question, not a JSON one.
      if (broken.toString('utf8').includes('\ufffd')) continue;
      const file = write(path.join(dir, `broken${n}.json`), broken);
      const expected = whole(broken.toString('utf8'));
      if (!expected.ok) failures++;
      const got = await streamed(file, 1 + Math.floor(random() * 64));
      expect({ file: n, ...got, ...(got.ok ? { slices: 0 } : {}) }).toEqual({ file: n, ...expected });
    }
    // Most corruptions land inside strings and leave valid JSON; enough of them must not.
    expect(failures).toBeGreaterThan(150);
  });

  it('positions errors by line and column across CRLF lines and slices', async () => {
    const file = write(path.join(temp.make(), 'a.json'), '{\r\n  "images": [\r\n    {"id": 1},\r\n    {"id": 2,}\r\n  ]\r\n}');
    expect(await streamed(file, 4)).toEqual({
      ok: false,
      error: { line: 4, column: 14, message: 'expected a double-quoted property name, found "}"' },
    });
  });

  it.each([
    ['', 1, 1, 'unexpected end of file'],
    ['{"images": [1, 2', 1, 17, 'unexpected end of file'],
    ['{"images": [{"a": 1]]}', 1, 20, `expected ',' or '}', found "]"`],
    ['{"images": [] "x": 1}', 1, 15, `expected ',' or '}', found "\\""`],
    ['{"a": 1} x', 1, 10, 'unexpected "x" after the end of the JSON document'],
    ['{"a": "unterminated}', 1, 21, 'unexpected end of file'],
    ['{"a": [{"b": 1', 1, 15, 'unexpected end of file'],
    ['{"a": {"b": [1', 1, 15, 'unexpected end of file'],
    ['{"a": ["é', 1, 10, 'unexpected end of file'],
    ['{"a": ["é", 01]}', 1, 14, `expected ',' or ']', found "1"`],
    ['{"\\', 1, 3, 'invalid property name string'],
    ['{"\\u12', 1, 3, 'invalid property name string'],
    ['{"a": [01], "a": []}', 1, 9, `expected ',' or ']', found "1"`],
    ['{"a": 1, "b": [01], "a": [1,,]}', 1, 17, `expected ',' or ']', found "1"`],
  ])('%j → line %d, column %d', async (text, line, column, message) => {
    const file = write(path.join(temp.make(), 'e.json'), text);
    expect(await streamed(file, 8)).toEqual({ ok: false, error: { line, column, message } });
  });

  it('skips a UTF-8 byte order mark and says what a non-object document starts with', async () => {
    const dir = temp.make();
    const bom = write(path.join(dir, 'bom.json'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"images": [1]}')]));
    expect(await streamed(bom, 8)).toEqual({ ok: true, value: { images: [1] }, slices: 1 });
    const bomError = write(
      path.join(dir, 'bom-error.json'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"images": [1,]}')]),
    );
    expect(await streamed(bomError, 8)).toEqual({
      ok: false,
      error: { line: 1, column: 15, message: 'unexpected character "]" where a value was expected' },
    });
    const array = write(path.join(dir, 'array.json'), '  [1, 2]');
    expect(await scanSections(array)).toEqual<SectionScan>({ kind: 'other', first: '[', size: 8 });
  });

  it('gives the same result fed in chunks of any size (state carried across block boundaries)', () => {
    const random = seededRandom(5);
    const docs = [
      document(random),
      document(random),
      '\ufeff{"k\\u00e9y": [1, "a,]}", {"b": [NaN]}], "n": -1.5e3}',
      '{"a": [{"x":1]]}',
      '{"a"  :  tr',
      '\ufeff{"a": "é🧫",,}',
    ];
    const scan = (bytes: Buffer, sizes: () => number) => {
      const scanner = new SectionScanner(16);
      for (let at = 0; at < bytes.length;) {
        const n = sizes();
        if (!scanner.feed(bytes.subarray(at, at + n))) break;
        at += n;
      }
      scanner.end();
      return { sections: scanner.sections, error: scanner.error, first: scanner.firstByte };
    };
    for (const doc of docs) {
      const bytes = Buffer.from(doc);
      const whole = scan(bytes, () => bytes.length);
      for (const size of [1, 2, 3, 5]) expect(scan(bytes, () => size)).toEqual(whole);
      expect(scan(bytes, () => 1 + Math.floor(random() * 7))).toEqual(whole);
    }
  });

  it('reports read progress in bytes up to the file size', async () => {
    const text = `{"a": [${'1,'.repeat(800_000)}1]}`;
    const file = write(path.join(temp.make(), 'big.json'), text);
    const seen: number[] = [];
    const scan = await scanSections(file, { onProgress: (done, total) => seen.push(done / total) });
    expect(scan.kind === 'object' && scan.sections[0].elements).toBe(800_001);
    expect(seen.length).toBeGreaterThan(1);
    expect(seen[seen.length - 1]).toBe(1);
  });

  it('never holds more than about one slice of the file: slices stay near the target size', async () => {
    const file = write(
      path.join(temp.make(), 'big.json'),
      `{"a": [${Array.from({ length: 20000 }, (_, i) => JSON.stringify({ id: i, name: 'x'.repeat(i % 50) })).join(',')}]}`,
    );
    const scan = await scanSections(file, { sliceBytes: 4096 });
    if (scan.kind !== 'object') throw new Error('expected an object');
    const sizes = scan.sections[0].slices.map((s) => s.end - s.start);
    expect(Math.max(...sizes)).toBeLessThan(4096 + 100);
    expect(sizes.length).toBeGreaterThan(fs.statSync(file).size / 4200);
  });
});
