import * as crypto from 'node:crypto';
import { BackgroundHash, chunkHash } from '../../shared/package/background-hash';

describe('archive digest off the main thread', () => {
  test('hashes exactly the bytes handed over, also when they are views into larger buffers', async () => {
    const data = crypto.randomBytes(3 * 1024 * 1024 + 5);
    const hash = new BackgroundHash();
    // More chunks than may be in flight, so update() has to wait for the worker.
    for (let at = 0; at < data.length; at += 100_000) await hash.update(data.subarray(at, at + 100_000));
    expect(await hash.digest()).toBe(crypto.createHash('sha256').update(data).digest('hex'));
  });

  test('small inputs are hashed inline with the same result', async () => {
    const data = Buffer.from('manifest');
    const hash = chunkHash(data.length);
    expect(hash).not.toBeInstanceOf(BackgroundHash);
    const large = chunkHash(1 << 30);
    expect(large).toBeInstanceOf(BackgroundHash);
    await large.close();
    await hash.update(data);
    expect(await hash.digest()).toBe(crypto.createHash('sha256').update(data).digest('hex'));
  });
});
