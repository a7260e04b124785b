import * as crypto from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StepError } from '../core/errors';
import { chunkHash } from './background-hash';
import { gunzipStream, GzipFormatError } from './block-gzip';
import {
  MANIFEST_FILE,
  manifestSchemaErrors,
  SIGNATURE_FILE,
  signatureSchemaErrors,
  type PackageManifest,
  type SignatureDocument,
} from './manifest';
import { sha256Hex } from '../core/sha256';
import { keyIdOf, loadPublicKey, verifySignature } from './signing';
import { DEFAULT_TAR_LIMITS, RefusedEntryError, TarWalker, type EntrySink, type TarLimits, type WalkedEntry } from './tar-walker';
import { parseJsonBounded } from '../core/json-depth';
import { sweepStaleFiles } from '../core/stale-files';

export interface VerifiedPackage {
  manifest: PackageManifest;
  archivePath: string;
  /** SHA-256 of the archive file. */
  sha256: string;
  size: number;
}

export interface VerifyOptions {
  /** Ed25519 public key: PEM, base64 of the raw 32 bytes, or a KeyObject. */
  publicKey: string | crypto.KeyObject;
  /** Caps on entries and unpacked bytes (default: effectiveLimits); extraction writes at most these. */
  limits?: Partial<TarLimits>;
  /** Extraction progress: files created and bytes written so far (in the quarantine). */
  onExtracted?(progress: { files: number; bytes: number }): void;
}

const MAX_MANIFEST_BYTES = 16 << 20;
/**
 * Unpacked bytes allowed per archive byte. Models and TensorRT engines compress by 1.1–3×, so 32× is far above
 * any package, while a gzip bomb (1 MB of gzip → 1 GiB of zeros is 1000×) is refused once it has unpacked 32 MB
 * (or EXPANSION_FLOOR, for tiny archives), long before the absolute cap.
 */
export const MAX_EXPANSION = 32;
const EXPANSION_FLOOR = 64 << 20;
const MAX_SIGNATURE_BYTES = 4096;
const READ_CHUNK = 1 << 20;
const TAMPERED_HINT =
  'The package was changed after it was signed. Do not install it; download it again from the release store, or rebuild it.';

interface Scan {
  entries: WalkedEntry[];
  manifestBytes?: Buffer;
  signatureBytes?: Buffer;
  sha256: string;
  size: number;
}

/** One pass over the archive: archive digest, decompression, strict tar walk, per-entry digests. */
async function scanArchive(
  archivePath: string,
  open: (entryPath: string, size: number) => Promise<EntrySink | undefined>,
  limits: Partial<TarLimits> = {},
): Promise<Scan> {
  const stat = await fs.stat(archivePath).catch(() => undefined);
  if (stat?.isDirectory())
    throw new StepError(`Package ${archivePath} is a folder, not a .tar.gz archive.`, {
      hint: 'Give the path of the package file (<name>-<version>.tar.gz).',
    });
  const archiveHash = chunkHash(stat?.size ?? 0);
  let size = 0;
  const small = new Map<string, Buffer[]>();
  const walker = new TarWalker(
    async (entryPath, entrySize) => {
      const sink = await open(entryPath, entrySize);
      const limit = entryPath === MANIFEST_FILE ? MAX_MANIFEST_BYTES : entryPath === SIGNATURE_FILE ? MAX_SIGNATURE_BYTES : undefined;
      if (limit === undefined) return sink;
      if (entrySize > limit) throw new RefusedEntryError(entryPath, `it is ${entrySize} bytes, more than the ${limit} allowed`);
      const parts: Buffer[] = [];
      small.set(entryPath, parts);
      return {
        write: async (chunk) => {
          parts.push(Buffer.from(chunk));
          await sink?.write(chunk);
        },
        close: async () => sink?.close(),
      };
    },
    effectiveLimits(stat?.size ?? 0, limits),
  );

  const source = (async function* () {
    for await (const chunk of createReadStream(archivePath, { highWaterMark: READ_CHUNK })) {
      await archiveHash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  })();
  try {
    for await (const chunk of gunzipStream(source)) await walker.push(chunk);
    walker.end();
  } catch (error) {
    await archiveHash.close();
    if (error instanceof RefusedEntryError) {
      throw new StepError(`Package ${archivePath} is refused: ${error.message}.`, {
        hint: 'Packages hold only regular files at plain relative paths, each once; this archive was not made by build-device-package or was tampered with.',
      });
    }
    if (error instanceof GzipFormatError)
      throw new StepError(`Package ${archivePath} is not a readable .tar.gz: ${error.message}.`, {
        hint: 'The download may be incomplete; fetch the package again.',
      });
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new StepError(`Package ${archivePath} does not exist.`, { hint: 'Check the path of the archive.' });
    throw error;
  }
  const joined = (name: string) => (small.has(name) ? Buffer.concat(small.get(name)!) : undefined);
  return {
    entries: walker.entries,
    manifestBytes: joined(MANIFEST_FILE),
    signatureBytes: joined(SIGNATURE_FILE),
    sha256: await archiveHash.digest(),
    size,
  };
}

/** The caps for one archive: the given (or default) ones, with total bytes also bounded by MAX_EXPANSION × its size. */
export function effectiveLimits(archiveSize: number, limits: Partial<TarLimits> = {}): TarLimits {
  const maxBytes = limits.maxBytes ?? Math.min(DEFAULT_TAR_LIMITS.maxBytes, Math.max(EXPANSION_FLOOR, MAX_EXPANSION * archiveSize));
  return { maxEntries: limits.maxEntries ?? DEFAULT_TAR_LIMITS.maxEntries, maxBytes };
}

function parseJson(bytes: Buffer, what: string, archivePath: string): unknown {
  try {
    return parseJsonBounded(bytes.toString('utf8'));
  } catch (error) {
    throw new StepError(`Package ${archivePath}: ${what} is not valid JSON (${(error as Error).message}).`, { hint: TAMPERED_HINT });
  }
}

/** Signature first, then schema, then every file against the signed list. */
function checkScan(archivePath: string, scan: Scan, publicKey: crypto.KeyObject): PackageManifest {
  const fail = (message: string, hint = TAMPERED_HINT): never => {
    throw new StepError(`Package ${archivePath}: ${message}`, { hint });
  };
  if (!scan.manifestBytes) fail(`it has no ${MANIFEST_FILE}.`, 'Build packages with build-device-package.');
  if (!scan.signatureBytes)
    fail(`it has no ${SIGNATURE_FILE}: it is not signed.`, 'Build packages with build-device-package and a signing key.');
  const manifestBytes = scan.manifestBytes!;

  const signature = parseJson(scan.signatureBytes!, SIGNATURE_FILE, archivePath);
  const sigProblems = signatureSchemaErrors(signature);
  if (sigProblems.length > 0) fail(`${SIGNATURE_FILE} is malformed (${sigProblems.slice(0, 3).join('; ')}).`);
  const sig = signature as SignatureDocument;
  const givenKeyId = keyIdOf(publicKey);
  if (sig.keyId !== givenKeyId) {
    fail(
      `it was signed with key ${sig.keyId}, but the public key given has id ${givenKeyId}.`,
      'Verify with the public key matching the signing key the package was built with; if you did, this package is not from you.',
    );
  }
  if (!verifySignature(manifestBytes, sig.signature, publicKey)) {
    const actual = sha256Hex(manifestBytes);
    if (actual !== sig.manifestSha256) {
      fail(
        `${MANIFEST_FILE} does not match ${SIGNATURE_FILE}: the manifest's sha256 is ${actual} but the signature was made over ${sig.manifestSha256}, so the manifest was changed after it was signed (or the signature belongs to another manifest).`,
      );
    }
    fail(
      `the signature in ${SIGNATURE_FILE} is not valid for ${MANIFEST_FILE} under key ${givenKeyId}: the signature was replaced or corrupted.`,
    );
  }

  const manifest = parseJson(manifestBytes, MANIFEST_FILE, archivePath);
  const problems = manifestSchemaErrors(manifest);
  if (problems.length > 0)
    fail(
      `${MANIFEST_FILE} does not follow the manifest schema (${problems.slice(0, 5).join('; ')}).`,
      'Rebuild the package with a build-device-package version this verifier knows.',
    );
  const m = manifest as PackageManifest;

  const listed = new Map(m.files.map((f) => [f.path, f]));
  if (listed.size !== m.files.length) fail(`${MANIFEST_FILE} lists a file twice.`);
  const mismatches: string[] = [];
  const present = new Set<string>();
  for (const entry of scan.entries) {
    if (entry.path === MANIFEST_FILE || entry.path === SIGNATURE_FILE) continue;
    present.add(entry.path);
    const expected = listed.get(entry.path);
    if (!expected) mismatches.push(`"${entry.path}" is in the archive but not in the manifest`);
    else if (expected.size !== entry.size)
      mismatches.push(`"${entry.path}" is ${entry.size} bytes, the signed manifest says ${expected.size}`);
    else if (expected.sha256 !== entry.sha256)
      mismatches.push(
        `"${entry.path}" does not match the manifest: its sha256 is ${entry.sha256}, the signed manifest says ${expected.sha256}`,
      );
  }
  for (const file of m.files)
    if (!present.has(file.path)) mismatches.push(`"${file.path}" is listed in the manifest but missing from the archive`);
  if (mismatches.length > 0) {
    const more = mismatches.length > 10 ? `; and ${mismatches.length - 10} more` : '';
    fail(
      `${mismatches.length === 1 ? 'a file' : `${mismatches.length} files`} ${mismatches.length === 1 ? 'does' : 'do'} not match the signed manifest: ${mismatches.slice(0, 10).join('; ')}${more}.`,
    );
  }

  const referenced = [
    ...m.models.flatMap((x) => [x.path, ...x.externalData]),
    ...(m.preprocessing ? [m.preprocessing] : []),
    ...(m.labels ? [m.labels.path] : []),
    ...m.tensorrtCaches.flatMap((t) => t.files),
    ...(m.golden ? [m.golden.index] : []),
  ];
  const dangling = referenced.find((p) => !listed.has(p));
  if (dangling) fail(`${MANIFEST_FILE} refers to "${dangling}", which is not in its file list.`);
  return m;
}

/** Verifies signature, schema and every file hash of a package without extracting it. */
export async function verifyPackage(archivePath: string, options: VerifyOptions): Promise<VerifiedPackage> {
  const publicKey = loadPublicKey(options.publicKey);
  const scan = await scanArchive(archivePath, async () => undefined, options.limits);
  return { manifest: checkScan(archivePath, scan, publicKey), archivePath, sha256: scan.sha256, size: scan.size };
}

/**
 * Verifies while extracting into a sibling quarantine folder (`<destDir>.partial-…`), then renames it to `destDir`;
 * nothing appears at `destDir` unless every check passed. The signature covers the manifest, which comes last in
 * the archive, so entries land in the quarantine before it can be checked: the tar walker's caps on entry count
 * and unpacked bytes (`limits`) bound what an unsigned or hostile archive can write there, and the quarantine is
 * removed on any refusal. Quarantines a killed run left behind are swept first. `destDir` must not exist or be
 * an empty folder.
 */
export async function extractVerifiedPackage(archivePath: string, destDir: string, options: VerifyOptions): Promise<VerifiedPackage> {
  const publicKey = loadPublicKey(options.publicKey);
  const target = path.resolve(destDir);
  const existing = await fs.readdir(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    if (error.code === 'ENOTDIR')
      throw new StepError(`Cannot extract ${archivePath} into ${target}: it is a file, not a folder.`, {
        hint: 'Give a new folder (or an empty one) to extract into.',
      });
    throw new StepError(`Cannot extract ${archivePath} into ${target}: ${error.code ?? error.message}.`, {
      hint: 'Give a new folder (or an empty one) the runner can write.',
    });
  });
  if (existing && existing.length > 0)
    throw new StepError(`Cannot extract ${archivePath} into ${target}: the folder is not empty.`, {
      hint: 'Extract into a new folder (e.g. the inactive A/B slot after clearing it).',
    });

  await fs.mkdir(path.dirname(target), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new StepError(
      `Cannot extract ${archivePath} into ${target}: its parent folder cannot be created (${error.code}: a file is in the way?).`,
      { hint: 'Give a folder path whose parents are folders.' },
    );
  });
  const quarantine = `${path.basename(target)}.partial-`;
  await sweepStaleFiles(path.dirname(target), (name) => name.startsWith(quarantine));
  const temporary = `${target}.partial-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  await fs.mkdir(temporary);
  let open: fs.FileHandle | undefined;
  const written = { files: 0, bytes: 0 };
  try {
    const scan = await scanArchive(
      archivePath,
      async (entryPath) => {
        const file = path.join(temporary, ...entryPath.split('/'));
        await fs.mkdir(path.dirname(file), { recursive: true });
        const handle = await fs.open(file, 'wx', 0o644);
        open = handle;
        written.files++;
        options.onExtracted?.(written);
        return {
          write: async (chunk) => {
            await handle.write(chunk);
            written.bytes += chunk.length;
            options.onExtracted?.(written);
          },
          close: async () => {
            open = undefined;
            await handle.close();
          },
        };
      },
      options.limits,
    );
    const manifest = checkScan(archivePath, scan, publicKey);
    if (existing) await fs.rmdir(target);
    await fs.rename(temporary, target);
    return { manifest, archivePath, sha256: scan.sha256, size: scan.size };
  } catch (error) {
    await open?.close().catch(() => undefined);
    await fs.rm(temporary, { recursive: true, force: true });
    throw error;
  }
}
