import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar';

/** Unpacks a package, lets `edit` change its files, and packs them again as plain files (no directory entries). */
export async function repack(archive: string, out: string, edit: (dir: string) => void): Promise<string> {
  const dir = `${out}.d`;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  await tar.x({ file: archive, cwd: dir });
  edit(dir);
  const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
  await tar.c({ gzip: true, file: out, cwd: dir, portable: true }, files);
  return out;
}

/** A copy of `file` with one byte flipped at `offset` (from the end when negative). */
export function flipByte(file: string, out: string, offset: number): string {
  const bytes = fs.readFileSync(file);
  const at = offset < 0 ? bytes.length + offset : offset;
  bytes[at] ^= 0xff;
  fs.writeFileSync(out, bytes);
  return out;
}
