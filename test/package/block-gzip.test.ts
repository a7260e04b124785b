import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { GzipFormatError, gunzipStream, MEMBER_SIZE, ParallelGzipWriter, type Compression } from '../../shared/package/block-gzip';
import { archivePathProblem, decodeHeader, fileHeader } from '../../shared/package/tar-format';
import { tarBytes } from './helpers';

async function compress(data: Buffer, compression: Compression, chunk: number, parallelism?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const writer = new ParallelGzipWriter(async (m) => void out.push(...m), compression, parallelism);
  for (let at = 0; at < data.length; at += chunk) await writer.write(data.subarray(at, at + chunk));
  await writer.end();
  return Buffer.concat(out);
}

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function decompress(data: Buffer, chunkSize = 65536): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of gunzipStream(chunks(data, chunkSize))) out.push(c);
  return Buffer.concat(out);
}

/** Offsets of every gzip member, following the MS length fields. */
function members(gz: Buffer): number[] {
  const at: number[] = [];
  for (let pos = 0; pos < gz.length; pos += gz.readUInt32LE(pos + 16)) at.push(pos);
  return at;
}

describe('parallel gzip members', () => {
  // Weight-like content: small floats, so Huffman coding has something to gain.
  const data = Buffer.alloc(2 * MEMBER_SIZE + 12345);
  for (let i = 0; i < data.length / 4 - 1; i++) data.writeFloatLE(Math.sin(i) * 0.02, i * 4);

  test.each(['fast', 'balanced', 'best', 'none'] as Compression[])(
    '%s: standard gunzip reads it, and the output does not depend on write sizes or parallelism',
    async (compression) => {
      const a = await compress(data, compression, 65536, 4);
      const b = await compress(data, compression, 999_983, 1);
      expect(crypto.createHash('sha256').update(a).digest('hex')).toBe(crypto.createHash('sha256').update(b).digest('hex'));
      expect(zlib.gunzipSync(a).equals(data)).toBe(true);
      expect(members(a)).toHaveLength(3);
      expect(a.subarray(0, 10).toString('hex')).toBe('1f8b08040000000000ff');
      expect((await decompress(a)).equals(data)).toBe(true);
      if (compression !== 'none') expect(a.length).toBeLessThan(data.length);
    },
  );

  test('empty input is one valid empty member', async () => {
    const gz = await compress(Buffer.alloc(0), 'fast', 1);
    expect(zlib.gunzipSync(gz).length).toBe(0);
    expect(members(gz)).toEqual([0]);
  });

  test('reads plain single-member gzip through the streaming fallback', async () => {
    const plain = zlib.gzipSync(data);
    expect((await decompress(plain, 4096)).equals(data)).toBe(true);
  });

  test('reports corrupt, truncated and foreign input', async () => {
    const gz = await compress(data, 'fast', 65536);
    const flipped = Buffer.from(gz);
    flipped[members(gz)[1] + 500] ^= 0xff;
    await expect(decompress(flipped)).rejects.toThrow(GzipFormatError);
    await expect(decompress(flipped)).rejects.toThrow(/gzip member at byte \d+ is corrupt/);
    await expect(decompress(gz.subarray(0, gz.length - 100))).rejects.toThrow(
      /archive is truncated: the gzip member at byte \d+ needs \d+ bytes/,
    );
    await expect(decompress(Buffer.concat([gz, Buffer.from('trailing junk here!!')]))).rejects.toThrow(
      '20 bytes of data follow the last gzip member',
    );
    await expect(decompress(Buffer.from('PK\x03\x04 this is a zip file'))).rejects.toThrow('it is not a gzip file');
    await expect(decompress(Buffer.alloc(0))).rejects.toThrow('the archive is empty');
  });

  test('refuses a member whose declared output would exhaust memory', async () => {
    const gz = await compress(Buffer.alloc(1000), 'fast', 1000);
    gz.writeUInt32LE(64 << 20, gz.length - 4);
    await expect(decompress(gz)).rejects.toThrow(/expands to more than 4194304 bytes/);
  });
});

describe('tar format', () => {
  test.each([
    ['models/cellseg.onnx', undefined],
    ['tensorrt/cellseg/nvidia-rtx-a4000_sm86_trt10.3.0/TRTKernel_graph_1.engine', undefined],
    ['/etc/passwd', 'the path is absolute'],
    ['C:/Windows/evil.dll', 'the path is absolute'],
    ['../evil', 'the path contains ".."'],
    ['models/../../evil', 'the path contains ".."'],
    ['models//a', 'the path has an empty or "." segment'],
    ['./a', 'the path has an empty or "." segment'],
    ['models\\a.onnx', 'the path contains a backslash'],
    ['models/my model.onnx', '"my model.onnx" has characters other than A-Z a-z 0-9 . _ -'],
    ['', 'the path is empty'],
    ['a/'.repeat(128) + 'b', 'the path is longer than 255 bytes'],
  ])('path %j → %s', (p, problem) => {
    expect(archivePathProblem(p)).toBe(problem);
  });

  test('headers carry fixed metadata and round-trip', () => {
    const block = fileHeader('models/cellseg.onnx', 1234567);
    expect(block.toString('latin1', 257, 263)).toBe('ustar\0');
    expect(block.toString('latin1', 108, 115)).toBe('000000 '); // uid 0
    expect(block.toString('latin1', 136, 147)).toBe('0000000000 '); // mtime 0
    expect(block.toString('latin1', 265, 297).replace(/\0/g, '')).toBe(''); // no user name
    expect(decodeHeader(block)).toEqual({ kind: 'file', path: 'models/cellseg.onnx', size: 1234567 });
    const long = `tensorrt/${'a'.repeat(60)}/${'b'.repeat(60)}/c.engine`;
    expect(decodeHeader(fileHeader(long, 1))).toEqual({ kind: 'file', path: long, size: 1 });
    expect(() => fileHeader(`models/${'x'.repeat(120)}.onnx`, 1)).toThrow('does not fit a ustar header');
  });

  test.each([
    ['2', 'it is a symbolic link; packages hold regular files only'],
    ['1', 'it is a hard link; packages hold regular files only'],
    ['3', 'it is a character device; packages hold regular files only'],
    ['6', 'it is a FIFO; packages hold regular files only'],
    ['5', 'it is a directory; packages hold regular files only'],
    ['x', 'it is a pax extended header; packages hold regular files only'],
  ])('refuses entry type %s', (type, reason) => {
    const block = tarBytes([{ path: 'models/x', type, linkpath: '/etc/passwd' }]).subarray(0, 512);
    expect(decodeHeader(block)).toEqual({ kind: 'refused', path: 'models/x', reason });
  });

  test('refuses a header with a wrong checksum', () => {
    const block = fileHeader('models/a.onnx', 10);
    block[0] = 'M'.charCodeAt(0);
    expect(decodeHeader(block)).toMatchObject({
      kind: 'refused',
      reason: 'its header checksum is wrong (the archive is corrupt or not a tar file)',
    });
  });
});
