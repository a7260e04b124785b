import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sweepStaleLocks, withFileLock } from '../core/file-lock';
import { sweepStaleFiles } from '../core/stale-files';
import { writeFileAtomic } from '../core/atomic-write';
import { sha256Hex } from '../core/sha256';
import { streamToFileVerified } from './files';
import {
  type BlobInfo,
  type OtaStore,
  type PutBlobOptions,
  type PutBlobResult,
  type StoredDocument,
  type WriteCondition,
  WriteConflict,
} from './store';

/**
 * A folder (local disk or a mounted share) as an OTA store. Every file appears by rename, so readers never see
 * a partial one; conditional document writes compare the sha256 of the current bytes (the ETag) under a lock
 * file, which makes "replace only what I read" safe across processes.
 */
export class LocalFolderStore implements OtaStore {
  readonly kind = 'local' as const;

  /** Folders swept of stale temp and lock files by this instance (once each: a sweep is a readdir). */
  private readonly swept = new Set<string>();

  constructor(readonly root: string) {}

  /** Leftovers of killed writers in the folder about to be written: temp files older than STALE_AFTER_MS, dead locks. */
  private async sweep(dir: string): Promise<void> {
    if (this.swept.has(dir)) return;
    this.swept.add(dir);
    await sweepStaleFiles(dir);
    await sweepStaleLocks(dir);
  }

  get location(): string {
    return this.root;
  }

  pathOf(key: string): string {
    const resolved = path.resolve(this.root, ...key.split('/'));
    if (!resolved.startsWith(path.resolve(this.root) + path.sep)) throw new Error(`key "${key}" escapes the store folder ${this.root}`);
    return resolved;
  }

  urlOf(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  async headBlob(key: string): Promise<BlobInfo | undefined> {
    const stat = await fsp.stat(this.pathOf(key)).catch(() => undefined);
    return stat?.isFile() ? { size: stat.size } : undefined;
  }

  async putBlob(key: string, file: string, options: PutBlobOptions): Promise<PutBlobResult> {
    await this.sweep(path.dirname(this.pathOf(key)));
    const existing = await this.headBlob(key);
    // The blob name is its sha256 and it only ever appears by rename after a verified copy.
    if (existing && existing.size === options.size) return { bytesUploaded: 0 };
    const source = fs.createReadStream(file);
    options.signal?.addEventListener('abort', () => source.destroy(new Error('upload cancelled')), { once: true });
    await streamToFileVerified(source, this.pathOf(key), { sha256: options.sha256, size: options.size }, (done) =>
      options.onProgress?.({ done, total: options.size }),
    );
    return { bytesUploaded: options.size };
  }

  async download(key: string, destination: string): Promise<void> {
    await streamToFileVerified(fs.createReadStream(this.pathOf(key)), destination, {});
  }

  async readDocument(key: string): Promise<StoredDocument | undefined> {
    const body = await fsp.readFile(this.pathOf(key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    return body && { body, etag: sha256Hex(body) };
  }

  async writeDocument(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    const target = this.pathOf(key);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    await this.sweep(path.dirname(target));
    return withFileLock(`${target}.lock`, async () => {
      const current = await this.readDocument(key);
      if ('ifNoneMatch' in condition) {
        if (current) throw new WriteConflict(key, 'it already exists');
      } else if (!current) {
        throw new WriteConflict(key, 'it no longer exists');
      } else if (current.etag !== condition.ifMatch) {
        throw new WriteConflict(
          key,
          `it changed since it was read (etag ${current.etag.slice(0, 12)}…, expected ${condition.ifMatch.slice(0, 12)}…)`,
        );
      }
      await writeFileAtomic(target, body);
      return { etag: sha256Hex(body) };
    });
  }

  async listKeys(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    const base = prefix.replace(/\/+$/, '');
    const walk = async (key: string): Promise<void> => {
      const entries = await fsp
        .readdir(key ? this.pathOf(key) : this.root, { withFileTypes: true })
        .catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return [];
          throw error;
        });
      for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (keys.length >= limit) return;
        // Temp and lock files of writes in progress are not documents.
        if (entry.name.startsWith('.') || entry.name.endsWith('.lock')) continue;
        const child = key ? `${key}/${entry.name}` : entry.name;
        if (entry.isDirectory()) await walk(child);
        else if (entry.isFile()) keys.push(child);
      }
    };
    await walk(base);
    return keys;
  }
}
