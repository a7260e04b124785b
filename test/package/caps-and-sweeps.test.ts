import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { StepError } from '../../shared/core/errors';
import { STALE_AFTER_MS } from '../../shared/core/stale-files';
import { LocalFolderStore } from '../../shared/ota/local-store';
import { buildPackage, extractVerifiedPackage, generateSigningKeyPair } from '../../shared/package';
import { fileHeader } from '../../shared/package/tar-format';
import { effectiveLimits } from '../../shared/package/verify';
import { makeWorkspace, tarBytes, tempDir } from './helpers';

/**
 * verify-package --extract-to used to write every entry before the signature (which covers the manifest, last in
 * the archive) could be checked: a 1 MB gzip of 1 GiB of zeros put 1 GB on disk, a 100,000-entry archive made
 * 100,004 files. Now the caps on entries and unpacked bytes are checked at each header, before a byte of the
 * entry is written, and killed runs' leftovers are swept. Writes are counted by spying on the one call that
 * creates extracted files (fs.promises.open with "wx").
 */
const keys = generateSigningKeyPair();
const root = tempDir('mlship-caps-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** What an extraction wrote into its quarantine, from the extractor's own progress report. */
function written(): { files: number; bytes: number; onExtracted(p: { files: number; bytes: number }): void } {
  const seen = {
    files: 0,
    bytes: 0,
    onExtracted: (p: { files: number; bytes: number }) => Object.assign(seen, { files: p.files, bytes: p.bytes }),
  };
  return seen;
}

async function refusal(promise: Promise<unknown>): Promise<StepError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StepError);
  return error as StepError;
}

test('a 1 MB gzip of 1 GiB of zeros is refused at its header: nothing written, no quarantine left', async () => {
  const bomb = path.join(root, 'bomb.tar.gz');
  const GiB = 1024 ** 3;
  const zeros = Buffer.alloc(1 << 20);
  await pipeline(
    Readable.from(
      (function* () {
        yield fileHeader('models/zeros.onnx', GiB);
        for (let i = 0; i < 1024; i++) yield zeros;
        yield Buffer.alloc(1024);
      })(),
    ),
    zlib.createGzip({ level: 1 }),
    fs.createWriteStream(bomb),
  );
  expect(fs.statSync(bomb).size).toBeLessThan(8 << 20);
  const created = written();
  const dest = path.join(root, 'bomb-out');
  const error = await refusal(extractVerifiedPackage(bomb, dest, { publicKey: keys.publicKeyPem, onExtracted: created.onExtracted }));
  expect(error.message).toMatch(
    /entry "models\/zeros\.onnx": with its 1073741824 bytes the archive would unpack to more than the \d+ bytes allowed/,
  );
  expect(created).toMatchObject({ files: 0, bytes: 0 });
  expect(fs.existsSync(dest)).toBe(false);
  expect(fs.readdirSync(root).filter((n) => n.startsWith('bomb-out'))).toEqual([]);
  // A configured cap is honoured the same way.
  const capped = await refusal(extractVerifiedPackage(bomb, dest, { publicKey: keys.publicKeyPem, limits: { maxBytes: 8 << 20 } }));
  // Entries below the cap are written, and the total stops at it: 1 GiB split into 1 MiB entries.
  const split = path.join(root, 'bomb-split.tar.gz');
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < 1024; i++) {
          yield fileHeader(`models/part-${i}.bin`, 1 << 20);
          yield zeros;
        }
        yield Buffer.alloc(1024);
      })(),
    ),
    zlib.createGzip({ level: 1 }),
    fs.createWriteStream(split),
  );
  const splitWritten = written();
  const splitError = await refusal(
    extractVerifiedPackage(split, dest, { publicKey: keys.publicKeyPem, onExtracted: splitWritten.onExtracted }),
  );
  expect(splitError.message).toMatch(/would unpack to more than the \d+ bytes allowed/);
  // The default cap for this archive of a few MB: 32 × its size, far below the 1 GiB it would unpack to.
  const cap = effectiveLimits(fs.statSync(split).size).maxBytes;
  expect(cap).toBeLessThan(256 << 20);
  expect(splitWritten.bytes).toBeLessThanOrEqual(cap);
  expect(splitWritten.bytes).toBeGreaterThan(0);
  expect(fs.existsSync(dest)).toBe(false);
  expect(capped.message).toContain('more than the 8388608 bytes allowed');
});

test('a 100,000-entry archive writes at most the entry cap, then is refused and its quarantine removed', async () => {
  const archive = path.join(root, 'many.tar.gz');
  fs.writeFileSync(archive, zlib.gzipSync(tarBytes(Array.from({ length: 100_000 }, (_, i) => ({ path: `f/${i}` })))));
  const created = written();
  const dest = path.join(root, 'many-out');
  // A configured cap (the default, 10,000, behaves the same and takes longer to fill).
  const error = await refusal(
    extractVerifiedPackage(archive, dest, { publicKey: keys.publicKeyPem, limits: { maxEntries: 1000 }, onExtracted: created.onExtracted }),
  );
  expect(error.message).toContain('the archive holds more than 1000 entries, the most allowed');
  expect(created.files).toBe(1000);
  expect(fs.readdirSync(root).filter((n) => n.startsWith('many-out'))).toEqual([]);
});

test('a real package still extracts within the default caps', async () => {
  const ws = await makeWorkspace(path.join(root, 'ws'));
  const built = await buildPackage({
    name: 'cellseg',
    version: '1.0.0',
    models: [ws.model],
    signingKey: keys.privateKeyPem,
    outputDir: path.join(root, 'pkg'),
  });
  const dest = path.join(root, 'ok-out');
  await expect(extractVerifiedPackage(built.archivePath, dest, { publicKey: keys.publicKeyPem })).resolves.toMatchObject({
    sha256: built.sha256,
  });
  expect(fs.existsSync(path.join(dest, 'manifest.json'))).toBe(true);
});

describe('stale temp files of killed runs are swept, fresh ones of live runs are kept', () => {
  const old = new Date(Date.now() - 2 * STALE_AFTER_MS);
  const age = (file: string) => fs.utimesSync(file, old, old);

  test('the folder store: old .tmp files and locks of dead processes go when the folder is next written', async () => {
    const storeRoot = path.join(root, 'store');
    const channels = path.join(storeRoot, 'channels');
    fs.mkdirSync(channels, { recursive: true });
    const oldTemp = path.join(channels, '.staging.json.0b6f4c1e-8a0e-4c55-9d2c-2b0a3c0f9e11.tmp');
    const freshTemp = path.join(channels, '.staging.json.1b6f4c1e-8a0e-4c55-9d2c-2b0a3c0f9e11.tmp');
    const deadLock = path.join(channels, 'old.json.lock');
    for (const f of [oldTemp, freshTemp]) fs.writeFileSync(f, Buffer.alloc(1024));
    age(oldTemp);
    // A lock whose owner process (pid 2^22 + 1, above Linux's pid_max default) no longer runs on this host.
    fs.writeFileSync(deadLock, `4194305@${require('node:os').hostname()}#x`);
    await new LocalFolderStore(storeRoot).writeDocument('channels/staging.json', Buffer.from('{}'), { ifNoneMatch: '*' });
    expect(fs.readdirSync(channels).sort()).toEqual([path.basename(freshTemp), 'staging.json'].sort());
  });

  test('build-device-package: old .partial archives in the output folder go before a build', async () => {
    const ws = await makeWorkspace(path.join(root, 'ws2'));
    const out = path.join(root, 'out2');
    fs.mkdirSync(out);
    const stale = path.join(out, '.cellseg-0.9.0.tar.gz.1234-abcd1234.partial');
    fs.writeFileSync(stale, Buffer.alloc(4096));
    age(stale);
    await buildPackage({ name: 'cellseg', version: '1.0.0', models: [ws.model], signingKey: keys.privateKeyPem, outputDir: out });
    expect(fs.readdirSync(out)).toEqual(['cellseg-1.0.0.tar.gz']);
  });

  test('extraction: an old quarantine of the same destination goes, another folder stays', async () => {
    const ws = await makeWorkspace(path.join(root, 'ws3'));
    const built = await buildPackage({
      name: 'cellseg',
      version: '1.0.0',
      models: [ws.model],
      signingKey: keys.privateKeyPem,
      outputDir: path.join(root, 'pkg3'),
    });
    const parent = path.join(root, 'slots');
    const quarantine = path.join(parent, 'slot-b.partial-999-deadbeef');
    fs.mkdirSync(path.join(quarantine, 'models'), { recursive: true });
    fs.writeFileSync(path.join(quarantine, 'models/model.onnx'), Buffer.alloc(2048));
    age(quarantine);
    fs.mkdirSync(path.join(parent, 'slot-a'));
    await extractVerifiedPackage(built.archivePath, path.join(parent, 'slot-b'), { publicKey: keys.publicKeyPem });
    expect(fs.readdirSync(parent).sort()).toEqual(['slot-a', 'slot-b']);
  });
});
