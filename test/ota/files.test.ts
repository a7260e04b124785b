import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { IntegrityError, streamToFileVerified } from '../../shared/ota/files';

/** Downloads and uploads are hashed on the way; a file appears under its name only when its bytes are the promised ones. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-ota-files-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const entries = (d: string) => fs.readdirSync(d).sort();

describe('streamToFileVerified', () => {
  it('commits only bytes whose size and sha256 match', async () => {
    const target = path.join(dir, 'pkg.tar.gz');
    const bytes = Buffer.from('package bytes');
    const sha256 = '5b0bb29a2a4e9d3d1a5bd1b40d6d0a4e28e9f4b4f6cf1ef8b0b1e1ea0b2b6b0c';
    await expect(streamToFileVerified(Readable.from([bytes]), target, { sha256 })).rejects.toBeInstanceOf(IntegrityError);
    expect(fs.existsSync(target)).toBe(false);
    const good = await streamToFileVerified(Readable.from([bytes]), target, { size: bytes.length });
    expect(good.size).toBe(bytes.length);
    expect(fs.readFileSync(target).equals(bytes)).toBe(true);
    await expect(streamToFileVerified(Readable.from([bytes]), target, { sha256: good.sha256, size: 3 })).rejects.toThrow(
      'size 13 bytes, expected 3',
    );
    expect(fs.readFileSync(target).equals(bytes)).toBe(true);
    expect(entries(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
