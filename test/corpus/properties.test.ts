import { generateKeyPairSync } from 'node:crypto';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { jsonDepthViolation, MAX_JSON_DEPTH, parseJsonBounded } from '../../shared/core/json-depth';
import { StepError } from '../../shared/core/errors';
import { parseChannel } from '../../shared/ota/channel';
import { gunzipStream, GzipFormatError } from '../../shared/package/block-gzip';
import { manifestSchemaErrors, signatureSchemaErrors } from '../../shared/package/manifest';
import { archivePathProblem } from '../../shared/package/tar-format';
import { RefusedEntryError, TarWalker } from '../../shared/package/tar-walker';
import { checkBufferBeforeDecode, HeaderError, MAX_DECODE_PIXELS } from '../../shared/validate/image-header';
import { SectionScanner } from '../../shared/validate/json-sections';
import { readMaskValues } from '../../shared/validate/masks';
import { tarBytes } from '../package/helpers';
import { loopingTiff, pngFile, pngWithSize, tiffFile } from './images';

/**
 * Property tests of the parsers and walkers that face untrusted bytes. Each property is "whatever the bytes, the
 * reader ends, and either succeeds within its bounds or refuses with its own error type" (the type the step maps
 * to a clear message); a RangeError, TypeError or a hang is a failure. Seeded, so a failure reproduces.
 */
const SEED = 1717;
const runs = (numRuns: number) => ({ seed: SEED, numRuns });

/** Flips, overwrites or cuts bytes of a valid file: most structure survives, so the readers go deep into it. */
const mutated = (base: Buffer) =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.option(fc.nat(base.length), { nil: undefined }),
    )
    .map(([edits, cut]) => {
      const out = Buffer.from(base);
      for (const [at, value] of edits) out[at] = value;
      return cut === undefined ? out : out.subarray(0, cut);
    });

describe('image headers and the TIFF IFD walk', () => {
  const bases = { tiff: tiffFile(), looping: loopingTiff(), png: pngFile(8, 8), huge: pngWithSize(100_000, 100_000) };

  test.each(Object.entries(bases))('any mutation of a %s file: a bounded header or a HeaderError', (_name, base) => {
    fc.assert(
      fc.property(mutated(base), (bytes) => {
        try {
          const header = checkBufferBeforeDecode(bytes);
          expect(header.width * header.height).toBeLessThanOrEqual(MAX_DECODE_PIXELS);
        } catch (error) {
          expect(error).toBeInstanceOf(HeaderError);
        }
      }),
      runs(400),
    );
  });

  test('arbitrary bytes behind each magic number: a header or a HeaderError', () => {
    const magic = fc.constantFrom(
      Buffer.from('II*\0'),
      Buffer.from('MM\0*'),
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      Buffer.from([0xff, 0xd8, 0xff]),
      Buffer.from('BM'),
      Buffer.from('RIFF\0\0\0\0WEBP'),
    );
    fc.assert(
      fc.property(magic, fc.uint8Array({ maxLength: 600 }), (head, rest) => {
        try {
          checkBufferBeforeDecode(Buffer.concat([head, Buffer.from(rest)]));
        } catch (error) {
          expect(error).toBeInstanceOf(HeaderError);
        }
      }),
      runs(600),
    );
  });

  test('any chain of IFD pointers (loops, sub-IFDs, offsets past the end) ends: loops are refused', () => {
    // Up to 6 IFDs at known offsets; each IFD's next pointer and optional SubIFD pointer go anywhere.
    const ifd = fc.record({ next: fc.option(fc.nat(7), { nil: undefined }), sub: fc.option(fc.nat(7), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(ifd, { minLength: 1, maxLength: 6 }), (graph) => {
        const size = 2 + 3 * 12 + 4;
        const at = (i: number) => 8 + i * size;
        const out = Buffer.alloc(8 + graph.length * size);
        out.write('II', 0, 'latin1');
        out.writeUInt16LE(42, 2);
        out.writeUInt32LE(8, 4);
        graph.forEach((g, i) => {
          const o = at(i);
          const entries = [
            [256, 4, 1, 1],
            [257, 4, 1, 1],
            [330, 4, 1, g.sub === undefined ? 0 : at(g.sub)],
          ];
          out.writeUInt16LE(g.sub === undefined ? 2 : 3, o);
          entries.slice(0, g.sub === undefined ? 2 : 3).forEach(([tag, type, count, value], k) => {
            out.writeUInt16LE(tag, o + 2 + k * 12);
            out.writeUInt16LE(type, o + 4 + k * 12);
            out.writeUInt32LE(count, o + 6 + k * 12);
            out.writeUInt32LE(value, o + 10 + k * 12);
          });
          out.writeUInt32LE(g.next === undefined ? 0 : at(g.next), o + 2 + (g.sub === undefined ? 2 : 3) * 12);
        });
        // What a decoder visits: the main chain by next pointers, and from any IFD its SubIFDs (whose own next
        // pointers decoders do not follow). A revisit is a loop; a pointer to no IFD is past the end.
        const seen = new Set<number>();
        const stack: [number, boolean][] = [[0, true]];
        let loops = false;
        let pastEnd = false;
        while (stack.length) {
          const [i, chain] = stack.pop()!;
          if (i >= graph.length) {
            pastEnd = true;
            continue;
          }
          if (seen.has(i)) {
            loops = true;
            continue;
          }
          seen.add(i);
          if (chain && graph[i].next !== undefined) stack.push([graph[i].next!, true]);
          if (graph[i].sub !== undefined) stack.push([graph[i].sub!, false]);
        }
        let refused: HeaderError | undefined;
        try {
          checkBufferBeforeDecode(out);
        } catch (error) {
          if (!(error instanceof HeaderError)) throw error;
          refused = error;
        }
        if (loops || pastEnd) expect(refused).toBeDefined();
        else expect(refused).toBeUndefined();
      }),
      runs(500),
    );
  });

  test('the mask decoders end on any mutation of a TIFF or PNG mask', () => {
    for (const [format, base] of [
      ['tiff', bases.tiff],
      ['png', bases.png],
    ] as const) {
      fc.assert(
        fc.property(mutated(base), (bytes) => {
          try {
            readMaskValues(bytes, format);
          } catch (error) {
            // pngjs and utif2 throw plain Errors for what passed the header gate; the loader turns them into findings.
            expect(error).toBeInstanceOf(Error);
            expect(error).not.toBeInstanceOf(RangeError);
          }
        }),
        runs(300),
      );
    }
  });
});

describe('JSON depth and the COCO section scanner', () => {
  /** Depth of a parsed value, iteratively. */
  const depthOf = (value: unknown): number => {
    let max = 0;
    const stack: [unknown, number][] = [[value, 0]];
    while (stack.length) {
      const [v, d] = stack.pop()!;
      if (v !== null && typeof v === 'object') {
        max = Math.max(max, d + 1);
        for (const child of Object.values(v)) stack.push([child, d + 1]);
      }
    }
    return max;
  };

  test('the depth check agrees with the parsed depth, strings with brackets included', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 1, max: 8 }), (value, limit) => {
        const text = JSON.stringify(value);
        expect(jsonDepthViolation(text, limit) !== -1).toBe(depthOf(value) > limit);
      }),
      runs(500),
    );
  });

  test('parseJsonBounded: the value, or a SyntaxError, for any text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.json({ maxDepth: 6 }),
          fc.nat(200).map((n) => '['.repeat(n + MAX_JSON_DEPTH - 30) + ']'.repeat(n)),
        ),
        (text) => {
          try {
            parseJsonBounded(text);
          } catch (error) {
            expect(error).toBeInstanceOf(SyntaxError);
          }
        },
      ),
      runs(500),
    );
  });

  test('any valid object, fed in any chunking, is cut into sections that parse back to it', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 5 }), { maxKeys: 6 }),
        fc.array(fc.nat(40), { maxLength: 8 }),
        fc.integer({ min: 8, max: 256 }),
        (object, cuts, sliceBytes) => {
          const bytes = Buffer.from(JSON.stringify(object, null, cuts.length % 2 ? 1 : 0));
          const scanner = new SectionScanner(sliceBytes);
          let at = 0;
          for (const cut of [...cuts, bytes.length]) {
            const end = Math.min(bytes.length, at + cut);
            scanner.feed(bytes.subarray(at, end));
            at = end;
          }
          scanner.end();
          expect(scanner.error).toBeUndefined();
          const rebuilt: Record<string, unknown> = {};
          for (const section of scanner.sections) {
            const parts = section.slices.map((s) => bytes.toString('utf8', s.start, s.end));
            rebuilt[section.key] = section.array ? JSON.parse(`[${parts.join(',')}]`) : JSON.parse(parts.join(''));
          }
          expect(rebuilt).toEqual(JSON.parse(bytes.toString()));
        },
      ),
      runs(400),
    );
  });

  test('the scanner ends on any bytes, with a result or an error position inside the file', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.concat([Buffer.from('{"a":'), Buffer.from(b)])),
          fc.string({ maxLength: 300 }).map((s) => Buffer.from(`{${s}`)),
        ),
        (bytes) => {
          const scanner = new SectionScanner(16);
          scanner.feed(bytes);
          scanner.end();
          if (scanner.error) expect(scanner.error.offset).toBeLessThanOrEqual(bytes.length);
        },
      ),
      runs(600),
    );
  });
});

describe('tar walker and gzip members', () => {
  const entry = fc.record({
    path: fc.oneof(
      fc.string({ minLength: 1, maxLength: 30 }),
      fc.constantFrom('../x', '/etc/x', 'a/../../b', 'a\\b', 'C:/x', './a', 'a//b', 'A', 'a', 'a/b'),
    ),
    type: fc.constantFrom('0', '0', '0', '1', '2', '3', '5', '6', 'x'),
    size: fc.nat(700),
  });

  test('any archive: every entry passed on has a safe, unique path, or the walk refuses with RefusedEntryError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 8 }), fc.boolean(), async (entries, end) => {
        let bytes: Buffer;
        try {
          bytes = tarBytes(
            entries.map((e) => ({
              path: e.path,
              type: e.type,
              data: Buffer.alloc(e.type === '0' ? e.size : 0, 7),
              linkpath: e.type === '1' || e.type === '2' ? 'target' : undefined,
            })),
            { end },
          );
        } catch {
          return; // the tar library cannot encode this header at all
        }
        const opened: string[] = [];
        const walker = new TarWalker(
          async (p) => {
            opened.push(p);
            return undefined;
          },
          { maxEntries: 5, maxBytes: 2000 },
        );
        try {
          await walker.push(bytes);
          walker.end();
        } catch (error) {
          expect(error).toBeInstanceOf(RefusedEntryError);
        }
        expect(opened.length).toBeLessThanOrEqual(5);
        for (const p of opened) expect(archivePathProblem(p)).toBeUndefined();
        expect(new Set(opened.map((p) => p.toLowerCase())).size).toBe(opened.length);
      }),
      runs(400),
    );
  });

  test('any mutation of a tar stream: entries or RefusedEntryError, in any chunking', async () => {
    const base = tarBytes([
      { path: 'models/model.onnx', data: Buffer.alloc(900, 1) },
      { path: 'manifest.json', data: Buffer.from('{}') },
    ]);
    await fc.assert(
      fc.asyncProperty(mutated(base), fc.integer({ min: 1, max: 1200 }), async (bytes, chunk) => {
        const walker = new TarWalker(async () => undefined);
        try {
          for (let at = 0; at < bytes.length; at += chunk) await walker.push(bytes.subarray(at, at + chunk));
          walker.end();
        } catch (error) {
          expect(error).toBeInstanceOf(RefusedEntryError);
        }
      }),
      runs(400),
    );
  });

  test('any mutation of a gzip stream: the bytes, or GzipFormatError', async () => {
    const base = zlib.gzipSync(Buffer.alloc(5000, 3));
    await fc.assert(
      fc.asyncProperty(mutated(base), async (bytes) => {
        try {
          for await (const chunk of gunzipStream(
            (async function* () {
              yield bytes;
            })(),
          ))
            void chunk;
        } catch (error) {
          expect(error).toBeInstanceOf(GzipFormatError);
        }
      }),
      runs(300),
    );
  });
});

describe('channel and manifest documents', () => {
  const { publicKey } = generateKeyPairSync('ed25519');

  test('parseChannel on any bytes or JSON: a StepError naming the document', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.json({ maxDepth: 6 }),
          fc.nat(100).map((n) => '['.repeat(n + 60) + ']'.repeat(n + 60)),
        ),
        (text) => {
          try {
            parseChannel(text, publicKey, 'store/channels/staging.json');
            throw new Error('accepted an unsigned document');
          } catch (error) {
            expect(error).toBeInstanceOf(StepError);
            expect((error as Error).message).toContain('store/channels/staging.json');
          }
        },
      ),
      runs(400),
    );
  });

  test('the manifest and signature schemas judge any JSON value without throwing', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        expect(Array.isArray(manifestSchemaErrors(value))).toBe(true);
        expect(Array.isArray(signatureSchemaErrors(value))).toBe(true);
      }),
      runs(400),
    );
  });
});
