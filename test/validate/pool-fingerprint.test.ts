import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { hashFiles, probeFiles } from '../../shared/validate/file-pool';
import type { FileProbe } from '../../shared/validate/file-pool';
import { buildManifest, fingerprintDataset, manifestDigest, manifestText, writeManifest } from '../../shared/validate/fingerprint';
import type { DatasetManifest, HashedFile } from '../../shared/validate/fingerprint';
import { interpretProbe } from '../../shared/validate/image-checks';
import { walkPngChunks } from '../../shared/validate/image-header';
import { parseJsonText, positionAt, readTextFile } from '../../shared/core/json-text';
import { cocoDataset, TempDirs, validateCoco, write } from './fixtures';

const temp = new TempDirs();
afterAll(() => temp.cleanup());
const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe('hashing pool', () => {
  it('hashFiles matches crypto sha256 for empty, small and multi-block files, in input order', async () => {
    const dir = temp.make();
    const contents = [Buffer.alloc(0), Buffer.from('cells'), randomBytes(3 * 1024 * 1024 + 17), randomBytes(1024 * 1024)];
    const files = contents.map((c, i) => write(path.join(dir, `f${i}`), c));
    const digests = await hashFiles(files, { threads: 2 });
    expect(digests).toEqual(files.map((f, i) => ({ path: f, size: contents[i].length, sha256: sha(contents[i]) })));
  });

  it('hashFiles names an unreadable file in a StepError', async () => {
    await expect(hashFiles(['/nonexistent/mlship/a.png'], { threads: 1 })).rejects.toThrow('Cannot read /nonexistent/mlship/a.png: ENOENT');
  });

  it('walks PNG chunks while streaming, across 1 MiB block boundaries, like the in-memory walk', async () => {
    const dir = temp.make();
    const png = new PNG({ width: 1024, height: 600 });
    png.data = randomBytes(1024 * 600 * 4);
    const full = PNG.sync.write(png, { deflateChunkSize: 8192, deflateLevel: 0, filterType: 0 });
    expect(full.length).toBeGreaterThan(2 * 1024 * 1024);
    const cuts = [full.length, full.length - 1, full.length - 12, 1024 * 1024 + 3, 1024 * 1024 - 4, 2 * 1024 * 1024 + 1, 700_001];
    const files = cuts.map((n, i) => write(path.join(dir, `cut${i}.png`), full.subarray(0, n)));
    const probes: FileProbe[] = [];
    await probeFiles(
      files.map((f) => ({ path: f, head: true })),
      { threads: 2 },
      (p, i) => (probes[i] = p),
    );
    expect(probes.map((p) => p.png)).toEqual(cuts.map((n) => walkPngChunks(full.subarray(0, n))));
    expect(probes[0].png).toBe('complete');
    expect(probes[1].png).toBe('truncated');
    expect(probes[0].head?.length).toBe(64 * 1024);
    expect(probes[0].tail).toEqual(full.subarray(full.length - 64));
    expect(probes[0].sha256).toBe(sha(full));
  });

  it('reads a JPEG frame header that lies beyond the 64 KiB head (large APP segments)', async () => {
    const jpeg = await sharp(Buffer.alloc(40 * 30 * 3, 90), { raw: { width: 40, height: 30, channels: 3 } })
      .jpeg()
      .toBuffer();
    const app = (n: number) => Buffer.concat([Buffer.from([0xff, 0xe2, (n + 2) >> 8, (n + 2) & 255]), Buffer.alloc(n, 0x41)]);
    const big = Buffer.concat([jpeg.subarray(0, 2), app(60000), app(60000), jpeg.subarray(2)]);
    const file = write(path.join(temp.make(), 'exif.jpg'), big);
    let record: ReturnType<typeof interpretProbe> | undefined;
    await probeFiles([{ path: file, head: true }], { threads: 1 }, (p) => (record = interpretProbe(p)));
    expect(record).toEqual({
      size: big.length,
      sha256: sha(big),
      header: { format: 'jpeg', width: 40, height: 30, bitDepth: 8, channels: 3 },
    });
  });

  it('reports missing files per file and reports progress', async () => {
    const dir = temp.make();
    const ok = write(path.join(dir, 'ok.bin'), 'abc');
    const seen: number[] = [];
    const probes: FileProbe[] = [];
    await probeFiles(
      [
        { path: ok, head: false },
        { path: path.join(dir, 'gone.bin'), head: true },
      ],
      { threads: 2, onProgress: (done, total) => seen.push(done * 10 + total) },
      (p, i) => (probes[i] = p),
    );
    expect(probes[0]).toEqual({ path: ok, size: 3, sha256: sha('abc') });
    expect(probes[1].error?.code).toBe('ENOENT');
    expect(seen).toEqual([12, 22]);
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled by SIGTERM'));
    await expect(probeFiles([{ path: __filename, head: false }], { signal: controller.signal }, () => undefined)).rejects.toThrow(
      'cancelled by SIGTERM',
    );
  });
});

describe('dataset fingerprint', () => {
  const files: HashedFile[] = [
    { split: 'val', role: 'image', path: '/data/set/images/b.png', size: 3, sha256: sha('bbb') },
    { split: 'train', role: 'annotation', path: '/data/set/train.json', size: 2, sha256: sha('{}') },
    { split: 'train', role: 'image', path: '/data/set/images/a.png', size: 3, sha256: sha('aaa') },
    { split: 'train', role: 'image', path: '/data/set/images/a.png', size: 3, sha256: sha('aaa') },
  ];

  it('is a sha256 over a canonical, documented text', () => {
    const manifest = buildManifest(files);
    const canonical = `mlship-dataset-manifest v1\n"train"\t"images/a.png"\t3\t${sha('aaa')}\n"train"\t"train.json"\t2\t${sha('{}')}\n"val"\t"images/b.png"\t3\t${sha('bbb')}\n`;
    expect(manifest).toEqual({
      version: 1,
      algorithm: 'sha256',
      digest: `sha256:${sha(canonical)}`,
      files: 3,
      bytes: 8,
      splits: {
        train: [
          { path: 'images/a.png', size: 3, sha256: sha('aaa'), role: 'image' },
          { path: 'train.json', size: 2, sha256: sha('{}'), role: 'annotation' },
        ],
        val: [{ path: 'images/b.png', size: 3, sha256: sha('bbb'), role: 'image' }],
      },
    });
  });

  it('does not depend on input order or on where the dataset lives', () => {
    const digest = buildManifest(files).digest;
    expect(buildManifest([...files].reverse()).digest).toBe(digest);
    expect(buildManifest(files.map((f) => ({ ...f, path: f.path.replace('/data/set', '/mnt/other/place') }))).digest).toBe(digest);
    expect(buildManifest(files.map((f, i) => (i === 0 ? { ...f, sha256: sha('bbc') } : f))).digest).not.toBe(digest);
    expect(buildManifest(files.map((f, i) => (i === 0 ? { ...f, split: 'test' } : f))).digest).not.toBe(digest);
    expect(manifestDigest(buildManifest(files).splits)).toBe(digest);
  });

  it('writeManifest writes what JSON.stringify would, in pieces, for empty, small and many-file manifests', async () => {
    const dir = temp.make();
    const many: HashedFile[] = Array.from({ length: 3000 }, (_, i) => ({
      split: i % 3 ? 'train' : 'test',
      role: 'image',
      path: `/d/img "${i}".png`,
      size: i,
      sha256: sha(String(i)),
    }));
    const cases: [string, DatasetManifest][] = [
      ['empty', buildManifest([])],
      ['small', buildManifest(files)],
      ['many', buildManifest(many)],
      ['empty split', { ...buildManifest(files), splits: { train: [], val: buildManifest(files).splits.val } }],
    ];
    for (const [name, manifest] of cases) {
      const file = path.join(dir, `${name}.json`);
      await writeManifest(file, manifest);
      expect(fs.readFileSync(file, 'utf8')).toBe(JSON.stringify(manifest, null, 2) + '\n');
    }
    expect([...manifestText(buildManifest(many))].length).toBeGreaterThan(3);
  });

  it('validate-data gives the same digest for a copy written in another order elsewhere, and a new one after a change', async () => {
    const a = cocoDataset(temp.make());
    const b = temp.make();
    const all = listFiles(a.root);
    for (const rel of [...all].reverse()) write(path.join(b, rel), fs.readFileSync(path.join(a.root, rel)));
    const copy = {
      ...a,
      root: b,
      imagesRoot: path.join(b, 'images'),
      train: path.join(b, 'annotations/train.json'),
      val: path.join(b, 'annotations/val.json'),
    };
    const first = await validateCoco(a);
    expect((await validateCoco(a)).fingerprint).toEqual(first.fingerprint);
    expect((await validateCoco(copy)).fingerprint).toEqual(first.fingerprint);
    const png = fs.readFileSync(path.join(b, 'images/val_0.png'));
    png[png.length - 5] ^= 1;
    fs.writeFileSync(path.join(b, 'images/val_0.png'), png);
    expect((await validateCoco(copy)).fingerprint.digest).not.toBe(first.fingerprint.digest);
  });

  it('fingerprintDataset walks folders for any step to reuse', async () => {
    const dir = temp.make();
    write(path.join(dir, 'train/img/1.png'), 'one');
    write(path.join(dir, 'train/labels.json'), '[]');
    write(path.join(dir, 'val/2.png'), 'two');
    const manifest = await fingerprintDataset({
      splits: { train: [path.join(dir, 'train')], val: [path.join(dir, 'val/2.png')] },
      threads: 2,
    });
    expect(manifest.splits).toEqual({
      train: [
        { path: 'train/img/1.png', size: 3, sha256: sha('one'), role: 'image' },
        { path: 'train/labels.json', size: 2, sha256: sha('[]'), role: 'annotation' },
      ],
      val: [{ path: 'val/2.png', size: 3, sha256: sha('two'), role: 'image' }],
    });
    await expect(fingerprintDataset({ splits: { train: [path.join(dir, 'nope')] } })).rejects.toThrow('it does not exist');
  });
});

function listFiles(root: string, rel = ''): string[] {
  return fs
    .readdirSync(path.join(root, rel), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(root, path.join(rel, e.name)) : [path.join(rel, e.name)]));
}

describe('JSON with positions', () => {
  it.each([
    ['{"a": [1, 2,]}', 1, 13, 'unexpected character "]" where a value was expected'],
    ['{\n  "a": 1\n  "b": 2\n}', 3, 3, `expected ',' or '}', found "\\""`],
    ['{"a": tru}', 1, 7, 'unexpected character "t" where a value was expected'],
    ['{"a": "x\ny"}', 1, 9, 'invalid string (unescaped control character or bad escape, or missing closing quote)'],
    ['{"a": [1, 2', 1, 12, 'unexpected end of file'],
    ['{} {}', 1, 4, 'unexpected "{" after the end of the JSON document'],
  ])('%j → line %d, column %d', (text, line, column, message) => {
    expect(parseJsonText(text)).toMatchObject({ ok: false, line, column, message });
  });

  it("turns Python's NaN / Infinity tokens into strings the geometry checks recognise", () => {
    expect(parseJsonText('{"b": [NaN, Infinity, -Infinity, 1.5], "s": "NaN inside a string"}')).toEqual({
      ok: true,
      nonFinite: 3,
      value: { b: ['NaN', 'Infinity', '-Infinity', 1.5], s: 'NaN inside a string' },
    });
  });

  it('positionAt counts lines from 1', () => {
    expect(positionAt('ab\ncd\nef', 0)).toEqual({ line: 1, column: 1 });
    expect(positionAt('ab\ncd\nef', 4)).toEqual({ line: 2, column: 2 });
    expect(positionAt('ab\ncd\nef', 6)).toEqual({ line: 3, column: 1 });
  });

  it('readTextFile reports progress in bytes and strips a BOM', async () => {
    const file = write(path.join(temp.make(), 'a.json'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"x": 1}')]));
    const seen: [number, number][] = [];
    expect(await readTextFile(file, (done, total) => seen.push([done, total]))).toBe('{"x": 1}');
    expect(seen).toEqual([[11, 11]]);
  });
});
