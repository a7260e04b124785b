import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sha256Hex } from '../../shared/core/sha256';
import { isWriteConflict, type StoreKind, type UploadProgress } from '../../shared/ota/store';
import { StoreBackends } from './support/stores';

const backends = new StoreBackends();
const kinds: StoreKind[] = ['local', 's3', 'azure-blob'];
const MiB = 1024 * 1024;
let smallFile: string;
let largeFile: string;

beforeAll(async () => {
  await backends.start();
  smallFile = path.join(backends.folder, 'small.bin');
  largeFile = path.join(backends.folder, 'large.bin');
  fs.writeFileSync(smallFile, randomBytes(1000));
  fs.writeFileSync(largeFile, randomBytes(12 * MiB + 123));
});
afterAll(() => backends.stop());

function digest(file: string) {
  const bytes = fs.readFileSync(file);
  return { sha256: sha256Hex(bytes), size: bytes.length };
}

describe.each(kinds)('%s store', (kind) => {
  test('uploads a blob once, verifies it, and uploads nothing the second time', async () => {
    const store = backends.open(kind, `blob-${kind}`);
    const { sha256, size } = digest(smallFile);
    const key = `blobs/sha256/${sha256}.tar.gz`;
    expect(await store.headBlob(key)).toBeUndefined();
    expect(await store.putBlob(key, smallFile, { sha256, size })).toEqual({ bytesUploaded: 1000 });
    const head = await store.headBlob(key);
    expect(head?.size).toBe(1000);
    if (kind !== 'local') expect(head?.sha256).toBe(sha256);
    const received = backends.s3.stats.bytesReceived;
    expect(await store.putBlob(key, smallFile, { sha256, size })).toEqual({ bytesUploaded: 0 });
    expect(backends.s3.stats.bytesReceived).toBe(received);
    const copy = path.join(backends.folder, `copy-${kind}.bin`);
    await store.download(key, copy);
    expect(sha256Hex(fs.readFileSync(copy))).toBe(sha256);
  });

  test('uploads a large blob in parts with progress', async () => {
    const store = backends.open(kind, `large-${kind}`, 5 * MiB);
    const { sha256, size } = digest(largeFile);
    const key = `blobs/sha256/${sha256}.tar.gz`;
    const progress: UploadProgress[] = [];
    const parts = backends.s3.stats.uploadParts;
    expect(await store.putBlob(key, largeFile, { sha256, size, onProgress: (p) => progress.push(p) })).toEqual({ bytesUploaded: size });
    if (kind === 's3') expect(backends.s3.stats.uploadParts - parts).toBe(3);
    expect(progress.length).toBeGreaterThanOrEqual(kind === 'local' ? 2 : 3);
    expect(progress.at(-1)).toEqual({ done: size, total: size });
    expect(progress.every((p, i) => i === 0 || p.done >= progress[i - 1].done)).toBe(true);
    const copy = path.join(backends.folder, `large-copy-${kind}.bin`);
    await store.download(key, copy);
    expect(sha256Hex(fs.readFileSync(copy))).toBe(sha256);
  });

  test('refuses bytes that do not match the promised sha256 and leaves no blob behind', async () => {
    const store = backends.open(kind, `bad-${kind}`);
    const { size } = digest(smallFile);
    const wrong = '0'.repeat(64);
    const key = `blobs/sha256/${wrong}.tar.gz`;
    await expect(store.putBlob(key, smallFile, { sha256: wrong, size })).rejects.toThrow(
      kind === 's3' ? /SHA256 you specified did not match/ : /expected (1000 bytes with sha256 )?0{64}/,
    );
    expect(await store.headBlob(key)).toBeUndefined();
  });

  test('conditional document writes: create-only, replace-if-unchanged', async () => {
    const store = backends.open(kind, `docs-${kind}`);
    const key = 'channels/test.json';
    expect(await store.readDocument(key)).toBeUndefined();
    await expect(store.writeDocument(key, Buffer.from('{"v":0}'), { ifMatch: '"nope"' })).rejects.toThrow(
      /conditional write of channels\/test.json refused/,
    );
    const first = await store.writeDocument(key, Buffer.from('{"v":1}'), { ifNoneMatch: '*' });
    await expect(store.writeDocument(key, Buffer.from('{"v":2}'), { ifNoneMatch: '*' })).rejects.toThrow(/refused/);
    const read = await store.readDocument(key);
    expect(read?.body.toString()).toBe('{"v":1}');
    expect(read?.etag).toBe(first.etag);
    const second = await store.writeDocument(key, Buffer.from('{"v":2}'), { ifMatch: first.etag });
    expect(second.etag).not.toBe(first.etag);
    await expect(store.writeDocument(key, Buffer.from('{"v":3}'), { ifMatch: first.etag })).rejects.toThrow(/refused/);
    expect((await store.readDocument(key))?.body.toString()).toBe('{"v":2}');
  });

  test('of 8 writers racing on one version exactly one wins', async () => {
    const store = backends.open(kind, `race-${kind}`);
    const key = 'channels/race.json';
    const { etag } = await store.writeDocument(key, Buffer.from('start'), { ifNoneMatch: '*' });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.writeDocument(key, Buffer.from(`writer ${i}`), { ifMatch: etag })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected' && isWriteConflict(r.reason))).toHaveLength(7);
    const winner = results.findIndex((r) => r.status === 'fulfilled');
    expect((await store.readDocument(key))?.body.toString()).toBe(`writer ${winner}`);
  });
});
