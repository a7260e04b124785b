import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { openStore } from '../../shared/ota/open-store';
import { isWriteConflict } from '../../shared/ota/store';
import { MOTO_KEY, MotoServer } from '../support/moto';
import { testConnections } from './support/stores';

/**
 * The S3 OTA store's conditional channel writes against moto_server, the widely used AWS emulator: moto 5.2
 * honours If-None-Match: * and If-Match on PutObject (412 PreconditionFailed), as S3 has since 2024. The
 * other S3 tests keep test/ota/support/s3-server.ts because they count received bytes and parts, and check
 * aws-chunked trailing checksums, which an emulator does not report.
 */
const moto = new MotoServer();
beforeAll(async () => {
  await moto.start();
  await new S3Client({ region: 'us-east-1', endpoint: moto.url, forcePathStyle: true, credentials: MOTO_KEY }).send(
    new CreateBucketCommand({ Bucket: 'mlship-ota' }),
  );
}, 120_000);
afterAll(() => moto.stop());

const open = (prefix: string) =>
  openStore({
    kind: 's3',
    uri: `s3://mlship-ota/${prefix}`,
    endpoint: moto.url,
    connections: testConnections({
      AWS_ACCESS_KEY_ID: MOTO_KEY.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_KEY.secretAccessKey,
      AWS_REGION: 'us-east-1',
    }),
  });

describe('S3 OTA store against moto', () => {
  test('conditional document writes: create-only, replace-if-unchanged', async () => {
    const store = open('docs');
    const key = 'channels/test.json';
    expect(await store.readDocument(key)).toBeUndefined();
    const first = await store.writeDocument(key, Buffer.from('{"v":1}'), { ifNoneMatch: '*' });
    await expect(store.writeDocument(key, Buffer.from('{"v":2}'), { ifNoneMatch: '*' })).rejects.toThrow(
      /conditional write of channels\/test.json refused/,
    );
    expect((await store.readDocument(key))?.etag).toBe(first.etag);
    const second = await store.writeDocument(key, Buffer.from('{"v":2}'), { ifMatch: first.etag });
    expect(second.etag).not.toBe(first.etag);
    await expect(store.writeDocument(key, Buffer.from('{"v":3}'), { ifMatch: first.etag })).rejects.toThrow(/refused/);
    expect((await store.readDocument(key))?.body.toString()).toBe('{"v":2}');
  });

  test('of 8 writers racing on one version exactly one wins', async () => {
    const store = open('race');
    const key = 'channels/race.json';
    const { etag } = await store.writeDocument(key, Buffer.from('start'), { ifNoneMatch: '*' });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.writeDocument(key, Buffer.from(`writer ${i}`), { ifMatch: etag })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected' && isWriteConflict(r.reason))).toHaveLength(7);
  });
});
