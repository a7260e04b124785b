import { Header } from 'tar';

/**
 * The tar subset a device package uses: plain ustar headers, regular files only, fixed metadata. Keeping
 * the format this small is what lets a C++ installer read it with a few dozen lines and no surprises
 * (no pax/GNU extensions that two readers could interpret differently).
 */

export const BLOCK = 512;
/** Every entry has this mtime, owner and mode, so the archive bytes depend only on file contents. */
export const FIXED_MTIME = new Date(0);
export const FILE_MODE = 0o644;
export const MAX_PATH_BYTES = 255;

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Why `path` cannot be an entry of a package, or undefined when it can. */
export function archivePathProblem(path: string): string | undefined {
  if (path === '') return 'the path is empty';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'the path is absolute';
  if (path.includes('\\')) return 'the path contains a backslash';
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `the path is longer than ${MAX_PATH_BYTES} bytes`;
  for (const segment of path.split('/')) {
    if (segment === '..') return 'the path contains ".."';
    if (segment === '' || segment === '.') return 'the path has an empty or "." segment';
    if (!SEGMENT.test(segment)) return `"${segment}" has characters other than A-Z a-z 0-9 . _ -`;
  }
  return undefined;
}

/** The 512-byte ustar header of a regular file with the package's fixed metadata. */
export function fileHeader(path: string, size: number): Buffer {
  const header = new Header({ path, mode: FILE_MODE, uid: 0, gid: 0, size, mtime: FIXED_MTIME, type: 'File', uname: '', gname: '' });
  const block = Buffer.alloc(BLOCK);
  // encode() reports fields a plain ustar header cannot hold; a package never uses pax to hold them.
  if (header.encode(block))
    throw new RangeError(`"${path}" does not fit a ustar header (a file name over 100 bytes, or a size over 8 GiB)`);
  return block;
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

const TYPE_NAMES: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '5': 'a directory',
  '6': 'a FIFO',
  '7': 'a contiguous file',
  x: 'a pax extended header',
  g: 'a pax global header',
  L: 'a GNU long-name header',
  K: 'a GNU long-link header',
};

export type DecodedHeader =
  { kind: 'end' } | { kind: 'file'; path: string; size: number } | { kind: 'refused'; path: string; reason: string };

/** Decodes one header block strictly: anything but a checksummed ustar regular file is refused. */
export function decodeHeader(block: Buffer): DecodedHeader {
  if (block.every((b) => b === 0)) return { kind: 'end' };
  let header: Header;
  try {
    header = new Header(block);
  } catch (error) {
    // node-tar throws on some malformed numeric fields (a base-256 size or checksum it cannot read).
    return { kind: 'refused', path: '', reason: `its header cannot be decoded (${(error as Error).message})` };
  }
  const path = header.path ?? '';
  if (!header.cksumValid)
    return { kind: 'refused', path, reason: 'its header checksum is wrong (the archive is corrupt or not a tar file)' };
  if (block.toString('latin1', 257, 263) !== 'ustar\0') return { kind: 'refused', path, reason: 'its header is not a POSIX ustar header' };
  const flag = String.fromCharCode(block[156]);
  if (flag !== '0' && flag !== '\0')
    return { kind: 'refused', path, reason: `it is ${TYPE_NAMES[flag] ?? `an entry of type "${flag}"`}; packages hold regular files only` };
  const size = header.size;
  if (size === undefined || !Number.isSafeInteger(size)) return { kind: 'refused', path, reason: 'its size field is not a number' };
  return { kind: 'file', path, size };
}
