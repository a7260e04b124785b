import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../../../shared/core/errors';
import {
  buildPackage,
  stableJson,
  extractVerifiedPackage,
  generateSigningKeyPair,
  keyIdOf,
  loadPublicKey,
  verifyPackage,
  type BuiltPackage,
} from '../../../shared/package';
import { ParallelGzipWriter } from '../../../shared/package/block-gzip';
import { gzipTar, listTree, makeWorkspace, readEntries, tarBytes, tempDir, writeArchive, type RawEntry } from '../../package/helpers';

const keys = generateSigningKeyPair();
const otherKeys = generateSigningKeyPair();

async function failure(promise: Promise<unknown>): Promise<StepError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StepError);
  return error as StepError;
}

describe('verifyPackage', () => {
  const root = tempDir();
  let built: BuiltPackage;
  let entries: RawEntry[];
  const repack = (name: string, change: (entries: RawEntry[]) => RawEntry[], options?: Parameters<typeof gzipTar>[1]) =>
    writeArchive(root, name, gzipTar(change(entries.map((e) => ({ ...e, data: Buffer.from(e.data!) }))), options));

  beforeAll(async () => {
    const ws = await makeWorkspace(root);
    built = await buildPackage({
      name: 'cellseg',
      version: '1.4.0',
      models: [ws.model],
      labels: ws.labels,
      preprocessing: ws.preprocessing,
      signingKey: keys.privateKeyPem,
      outputDir: path.join(root, 'out'),
    });
    entries = readEntries(built.archivePath);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('accepts the package with the PEM key, the raw base64 key or a KeyObject', async () => {
    const verified = await verifyPackage(built.archivePath, { publicKey: keys.publicKeyPem });
    expect(verified).toEqual({ manifest: built.manifest, archivePath: built.archivePath, sha256: built.sha256, size: built.size });
    const raw = loadPublicKey(keys.publicKeyPem).export({ format: 'jwk' }).x as string;
    await expect(verifyPackage(built.archivePath, { publicKey: Buffer.from(raw, 'base64url').toString('base64') })).resolves.toMatchObject({
      sha256: built.sha256,
    });
    await expect(verifyPackage(built.archivePath, { publicKey: crypto.createPublicKey(keys.publicKeyPem) })).resolves.toMatchObject({
      sha256: built.sha256,
    });
  });

  test('accepts the same content repacked by another gzip (single member, streamed)', async () => {
    const archive = repack('repacked.tar.gz', (e) => e);
    await expect(verifyPackage(archive, { publicKey: keys.publicKeyPem })).resolves.toMatchObject({ manifest: built.manifest });
  });

  test('a flipped byte in a file', async () => {
    const archive = repack('flipped.tar.gz', (e) => {
      e[1].data![100] ^= 0x01;
      return e;
    });
    const error = await failure(verifyPackage(archive, { publicKey: keys.publicKeyPem }));
    const expected = built.manifest.files.find((f) => f.path === 'models/cellseg.onnx')!.sha256;
    const actual = crypto
      .createHash('sha256')
      .update(entries[1].data!.map((b, i) => (i === 100 ? b ^ 0x01 : b)))
      .digest('hex');
    expect(error.message).toBe(
      `Package ${archive}: a file does not match the signed manifest: "models/cellseg.onnx" does not match the manifest: its sha256 is ${actual}, the signed manifest says ${expected}.`,
    );
    expect(error.hint).toContain('changed after it was signed');
  });

  test('a flipped byte in the compressed archive', async () => {
    const bytes = fs.readFileSync(built.archivePath);
    bytes[200] ^= 0x40;
    const archive = writeArchive(root, 'corrupt.tar.gz', bytes);
    const error = await failure(verifyPackage(archive, { publicKey: keys.publicKeyPem }));
    expect(error.message).toMatch(new RegExp(`^Package ${archive} is not a readable \\.tar\\.gz: the gzip member at byte 0 is corrupt`));
  });

  test('a changed manifest', async () => {
    const archive = repack('manifest.tar.gz', (e) => {
      const m = JSON.parse(e[3].data!.toString());
      m.compatibility.minGpuMemoryMb = 1;
      e[3].data = Buffer.from(stableJson(m));
      return e;
    });
    const error = await failure(verifyPackage(archive, { publicKey: keys.publicKeyPem }));
    expect(error.message).toContain(`Package ${archive}: manifest.json does not match manifest.sig: the manifest's sha256 is`);
    expect(error.message).toContain(
      `but the signature was made over ${built.manifestDigest}, so the manifest was changed after it was signed`,
    );
  });

  test('a replaced signature', async () => {
    // Same key id and digest, but the signature bytes of another document.
    const archive = repack('signature.tar.gz', (e) => {
      const sig = JSON.parse(e[4].data!.toString());
      sig.signature = crypto.sign(null, Buffer.from('something else'), crypto.createPrivateKey(keys.privateKeyPem)).toString('base64');
      e[4].data = Buffer.from(stableJson(sig));
      return e;
    });
    const error = await failure(verifyPackage(archive, { publicKey: keys.publicKeyPem }));
    expect(error.message).toBe(
      `Package ${archive}: the signature in manifest.sig is not valid for manifest.json under key ${keyIdOf(loadPublicKey(keys.publicKeyPem))}: the signature was replaced or corrupted.`,
    );
  });

  test('a manifest re-signed by an attacker, and the wrong key', async () => {
    const archive = repack('resigned.tar.gz', (e) => {
      const m = JSON.parse(e[3].data!.toString());
      m.releaseNotes = 'trust me';
      e[3].data = Buffer.from(stableJson(m));
      const signature = crypto.sign(null, e[3].data, crypto.createPrivateKey(otherKeys.privateKeyPem)).toString('base64');
      const sig = {
        algorithm: 'ed25519',
        keyId: keyIdOf(loadPublicKey(otherKeys.publicKeyPem)),
        manifestSha256: crypto.createHash('sha256').update(e[3].data).digest('hex'),
        signature,
      };
      e[4].data = Buffer.from(stableJson(sig));
      return e;
    });
    const mine = keyIdOf(loadPublicKey(keys.publicKeyPem));
    const theirs = keyIdOf(loadPublicKey(otherKeys.publicKeyPem));
    const error = await failure(verifyPackage(archive, { publicKey: keys.publicKeyPem }));
    expect(error.message).toBe(`Package ${archive}: it was signed with key ${theirs}, but the public key given has id ${mine}.`);
    const wrongKey = await failure(verifyPackage(built.archivePath, { publicKey: otherKeys.publicKeyPem }));
    expect(wrongKey.message).toBe(
      `Package ${built.archivePath}: it was signed with key ${mine}, but the public key given has id ${theirs}.`,
    );
    expect(wrongKey.hint).toContain('public key matching the signing key');
  });

  test('an unsigned package and a malformed signature file', async () => {
    const unsigned = repack('unsigned.tar.gz', (e) => e.slice(0, 4));
    expect((await failure(verifyPackage(unsigned, { publicKey: keys.publicKeyPem }))).message).toBe(
      `Package ${unsigned}: it has no manifest.sig: it is not signed.`,
    );
    const malformed = repack('malformed.tar.gz', (e) => {
      e[4].data = Buffer.from('{"algorithm": "rsa"}');
      return e;
    });
    expect((await failure(verifyPackage(malformed, { publicKey: keys.publicKeyPem }))).message).toBe(
      `Package ${malformed}: manifest.sig is malformed (/: must have required property 'keyId'; /: must have required property 'manifestSha256'; /: must have required property 'signature').`,
    );
  });

  test('a file not in the manifest, and a manifest file missing from the archive', async () => {
    const extra = repack('extra.tar.gz', (e) => [
      ...e.slice(0, 3),
      { path: 'models/backdoor.onnx', data: Buffer.from('x') },
      ...e.slice(3),
    ]);
    expect((await failure(verifyPackage(extra, { publicKey: keys.publicKeyPem }))).message).toBe(
      `Package ${extra}: a file does not match the signed manifest: "models/backdoor.onnx" is in the archive but not in the manifest.`,
    );
    const missing = repack('missing.tar.gz', (e) => e.filter((x) => x.path !== 'labels.json'));
    expect((await failure(verifyPackage(missing, { publicKey: keys.publicKeyPem }))).message).toBe(
      `Package ${missing}: a file does not match the signed manifest: "labels.json" is listed in the manifest but missing from the archive.`,
    );
    const both = repack('both.tar.gz', (e) => [
      { path: 'evil.sh', data: Buffer.from('rm -rf /') },
      ...e.filter((x) => x.path !== 'labels.json'),
    ]);
    expect((await failure(verifyPackage(both, { publicKey: keys.publicKeyPem }))).message).toContain(
      '2 files do not match the signed manifest: "evil.sh" is in the archive but not in the manifest; "labels.json" is listed in the manifest but missing from the archive.',
    );
  });

  test('a signed manifest that breaks the schema', async () => {
    const archive = repack('schema.tar.gz', (e) => {
      const m = JSON.parse(e[3].data!.toString());
      m.files[0].sha256 = 'not-a-hash';
      delete m.compatibility;
      m.extra = true;
      e[3].data = Buffer.from(stableJson(m));
      e[4].data = Buffer.from(
        stableJson({
          algorithm: 'ed25519',
          keyId: keyIdOf(loadPublicKey(keys.publicKeyPem)),
          manifestSha256: crypto.createHash('sha256').update(e[3].data).digest('hex'),
          signature: crypto.sign(null, e[3].data, crypto.createPrivateKey(keys.privateKeyPem)).toString('base64'),
        }),
      );
      return e;
    });
    const error = await failure(verifyPackage(archive, { publicKey: keys.publicKeyPem }));
    expect(error.message).toContain(`Package ${archive}: manifest.json does not follow the manifest schema (`);
    expect(error.message).toContain(`/: must have required property 'compatibility'`);
    expect(error.message).toContain(`/: must NOT have additional properties "extra"`);
    expect(error.message).toContain(`/files/0/sha256: must match pattern`);
  });

  describe('refuses unsafe archives before writing anything', () => {
    const good = () => entries.map((e) => ({ ...e, data: Buffer.from(e.data!) }));
    test.each<[string, RawEntry[], string]>([
      ['an absolute path', [{ path: '/etc/cron.d/evil', data: Buffer.from('x') }], 'entry "/etc/cron.d/evil": the path is absolute'],
      ['a ".." path', [{ path: '../../evil', data: Buffer.from('x') }], 'entry "../../evil": the path contains ".."'],
      [
        'a ".." inside a path',
        [{ path: 'models/../../../evil', data: Buffer.from('x') }],
        'entry "models/../../../evil": the path contains ".."',
      ],
      [
        'a symlink',
        [{ path: 'models/link.onnx', type: '2', linkpath: '/etc/shadow' }],
        'entry "models/link.onnx": it is a symbolic link; packages hold regular files only',
      ],
      [
        'a hard link',
        [{ path: 'models/hard.onnx', type: '1', linkpath: 'models/cellseg.onnx' }],
        'entry "models/hard.onnx": it is a hard link; packages hold regular files only',
      ],
      [
        'a character device',
        [{ path: 'dev/null', type: '3' }],
        'entry "dev/null": it is a character device; packages hold regular files only',
      ],
      ['a block device', [{ path: 'dev/sda', type: '4' }], 'entry "dev/sda": it is a block device; packages hold regular files only'],
      ['a FIFO', [{ path: 'fifo', type: '6' }], 'entry "fifo": it is a FIFO; packages hold regular files only'],
      [
        'a pax header',
        [{ path: 'PaxHeader/x', type: 'x', data: Buffer.from('30 path=../../../../etc/passwd\n') }],
        'entry "PaxHeader/x": it is a pax extended header; packages hold regular files only',
      ],
      ['a duplicate entry', [{ path: 'labels.json', data: Buffer.from('[]') }], 'entry "labels.json": it appears twice in the archive'],
      [
        'names differing in case only',
        [{ path: 'Labels.json', data: Buffer.from('[]') }],
        'entry "Labels.json": another entry has the same name in different letter case',
      ],
      [
        'a file used as a folder',
        [{ path: 'labels.json/x', data: Buffer.from('[]') }],
        'entry "labels.json/x": "labels.json" is a file in the archive, not a folder',
      ],
    ])('%s', async (_what, evil, reason) => {
      const archive = writeArchive(root, 'evil.tar.gz', gzipTar([...good(), ...evil]));
      const error = await failure(verifyPackage(archive, { publicKey: keys.publicKeyPem }));
      expect(error.message).toBe(`Package ${archive} is refused: ${reason}.`);
      const dest = path.join(root, 'evil-dest', 'slot');
      await failure(extractVerifiedPackage(archive, dest, { publicKey: keys.publicKeyPem }));
      expect(fs.existsSync(dest)).toBe(false);
      expect(fs.readdirSync(path.dirname(dest))).toEqual([]);
      expect(fs.existsSync(path.join(root, '..', 'evil'))).toBe(false);
    });

    test('data hidden after the end-of-archive marker, and a truncated archive', async () => {
      const hidden = writeArchive(
        root,
        'hidden.tar.gz',
        gzipTar(good(), { trailing: tarBytes([{ path: 'evil.sh', data: Buffer.from('x') }]) }),
      );
      expect((await failure(verifyPackage(hidden, { publicKey: keys.publicKeyPem }))).message).toMatch(
        /is refused: non-zero data at byte \d+ follows the end-of-archive marker\.$/,
      );
      const truncated = writeArchive(root, 'truncated.tar.gz', gzipTar(good(), { end: false }).subarray(0));
      expect((await failure(verifyPackage(truncated, { publicKey: keys.publicKeyPem }))).message).toContain(
        'the archive is truncated: there is no end-of-archive marker',
      );
      const cut = tarBytes(good()).subarray(0, 1600);
      const inside = writeArchive(root, 'inside.tar.gz', require('node:zlib').gzipSync(cut));
      expect((await failure(verifyPackage(inside, { publicKey: keys.publicKeyPem }))).message).toContain(
        'entry "models/cellseg.onnx": the archive is truncated inside it',
      );
    });

    test('an archive that is not gzip, and one that does not exist', async () => {
      const zip = writeArchive(root, 'x.tar.gz', Buffer.from('PK\x03\x04 not gzip'));
      expect((await failure(verifyPackage(zip, { publicKey: keys.publicKeyPem }))).message).toBe(
        `Package ${zip} is not a readable .tar.gz: it is not a gzip file.`,
      );
      const none = path.join(root, 'nope.tar.gz');
      expect((await failure(verifyPackage(none, { publicKey: keys.publicKeyPem }))).message).toBe(`Package ${none} does not exist.`);
    });
  });

  test('refuses a public key that is not Ed25519 before reading the archive', async () => {
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect((await failure(verifyPackage(path.join(root, 'nope.tar.gz'), { publicKey: rsa }))).message).toBe(
      'The public key is not an Ed25519 public key (PEM, or base64 of the 32 raw bytes).',
    );
  });
});

describe('extractVerifiedPackage', () => {
  const root = tempDir();
  let built: BuiltPackage;
  beforeAll(async () => {
    const ws = await makeWorkspace(root);
    built = await buildPackage({
      name: 'cellseg',
      version: '2.0.0-rc.1',
      models: [ws.model],
      labels: ws.labels,
      signingKey: keys.privateKeyPem,
      outputDir: path.join(root, 'out'),
    });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('extracts every file, manifest and signature included, into a new folder', async () => {
    const dest = path.join(root, 'slots', 'b');
    const verified = await extractVerifiedPackage(built.archivePath, dest, { publicKey: keys.publicKeyPem });
    expect(verified.sha256).toBe(built.sha256);
    expect(listTree(dest)).toEqual(['labels.json', 'manifest.json', 'manifest.sig', 'models/cellseg.onnx']);
    expect(
      fs.readFileSync(path.join(dest, 'models', 'cellseg.onnx')).equals(fs.readFileSync(path.join(root, 'model', 'cellseg.onnx'))),
    ).toBe(true);
    expect(fs.statSync(path.join(dest, 'labels.json')).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(path.join(root, 'slots'))).toEqual(['b']);
  });

  test('replaces an empty folder, refuses a non-empty one', async () => {
    const empty = path.join(root, 'slots', 'empty');
    fs.mkdirSync(empty, { recursive: true });
    await extractVerifiedPackage(built.archivePath, empty, { publicKey: keys.publicKeyPem });
    expect(listTree(empty)).toHaveLength(4);
    const error = await failure(extractVerifiedPackage(built.archivePath, empty, { publicKey: keys.publicKeyPem }));
    expect(error.message).toBe(`Cannot extract ${built.archivePath} into ${empty}: the folder is not empty.`);
  });

  test('removes everything it wrote when a check fails at the end', async () => {
    const dest = path.join(root, 'slots', 'wrong-key');
    const error = await failure(extractVerifiedPackage(built.archivePath, dest, { publicKey: otherKeys.publicKeyPem }));
    expect(error.message).toContain('it was signed with key');
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.readdirSync(path.join(root, 'slots')).filter((n) => n.includes('partial'))).toEqual([]);
  });

  test('reads packages written with any member layout (parallelism 1 gives the same bytes)', async () => {
    const out: Buffer[] = [];
    const writer = new ParallelGzipWriter(async (m) => void out.push(...m), 'none', 1);
    const tarStream = tarBytes(readEntries(built.archivePath));
    await writer.write(tarStream);
    await writer.end();
    expect(crypto.createHash('sha256').update(Buffer.concat(out)).digest('hex')).toBe(built.sha256);
  });
});
