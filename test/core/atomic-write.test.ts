import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commitFileAtomic, copyFileAtomic, writeFileAtomic } from '../../shared/core/atomic-write';

/** Every file mlship publishes appears whole or not at all; a failed write leaves the old file and no temp file. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-atomic-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const entries = (d: string) => fs.readdirSync(d).sort();

describe('commitFileAtomic', () => {
  it('renames the filled temp sibling onto the target, creating folders, and returns what fill returned', async () => {
    const target = path.join(dir, 'a', 'b', 'report.json');
    let seen = '';
    const result = await commitFileAtomic(target, async (temp) => {
      seen = temp;
      expect(path.dirname(temp)).toBe(path.dirname(target)); // same folder: the rename cannot cross filesystems
      expect(fs.existsSync(target)).toBe(false); // nothing under the final name while writing
      fs.writeFileSync(temp, '{"ok":true}');
      return 42;
    });
    expect(result).toBe(42);
    expect(fs.readFileSync(target, 'utf8')).toBe('{"ok":true}');
    expect(fs.existsSync(seen)).toBe(false);
    expect(entries(path.dirname(target))).toEqual(['report.json']);
  });

  it('keeps the old file and removes the temp file when fill throws', async () => {
    const target = path.join(dir, 'keep.txt');
    fs.writeFileSync(target, 'old');
    await expect(
      commitFileAtomic(target, async (temp) => {
        fs.writeFileSync(temp, 'half of the ne');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(fs.readFileSync(target, 'utf8')).toBe('old');
    expect(entries(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('writeFileAtomic and copyFileAtomic', () => {
  it('writes a document given in pieces', async () => {
    const target = path.join(dir, 'pieces.txt');
    await writeFileAtomic(target, ['a', 'b', 'c']);
    expect(fs.readFileSync(target, 'utf8')).toBe('abc');
  });

  it('copies a file whole, and fails naming the missing source without leaving anything', async () => {
    const source = path.join(dir, 'model.onnx');
    fs.writeFileSync(source, Buffer.alloc(70_000, 7));
    const target = path.join(dir, 'out', 'model.onnx');
    await copyFileAtomic(source, target);
    expect(fs.readFileSync(target).equals(fs.readFileSync(source))).toBe(true);
    await expect(copyFileAtomic(path.join(dir, 'missing.onnx'), path.join(dir, 'out', 'other.onnx'))).rejects.toThrow(/missing\.onnx/);
    expect(entries(path.join(dir, 'out'))).toEqual(['model.onnx']);
  });
});
