/**
 * Where OTA packages and channel documents live. Keys are relative to the store root (a folder, an S3 prefix,
 * an Azure container prefix) and always use forward slashes:
 *   blobs/sha256/<hex>.tar.gz       content-addressed packages, written once, never overwritten
 *   channels/<channel>.json         signed channel documents, replaced only by conditional writes
 *   releases/<channel>/<seq>.json   one append-only release record per channel sequence number
 */
export type StoreKind = 'local' | 's3' | 'azure-blob';

export interface BlobInfo {
  size: number;
  /** The sha256 the store recorded at upload (metadata), when it has one. */
  sha256?: string;
}

export interface StoredDocument {
  body: Buffer;
  /** Opaque version tag for a later conditional write (S3/Azure ETag, sha256 of the bytes for a folder). */
  etag: string;
}

/** `ifNoneMatch: '*'` creates only when absent; `ifMatch` replaces only the version that was read. */
export type WriteCondition = { ifMatch: string } | { ifNoneMatch: '*' };

export interface UploadProgress {
  done: number;
  total: number;
}

/** A blob already stored with this size and hash (or with no hash recorded) need not be uploaded again. */
export function isStoredAlready(existing: BlobInfo | undefined, options: Pick<PutBlobOptions, 'size' | 'sha256'>): boolean {
  return !!existing && existing.size === options.size && (existing.sha256 === undefined || existing.sha256 === options.sha256);
}

export interface PutBlobOptions {
  sha256: string;
  size: number;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface PutBlobResult {
  /** 0 when the store already held the blob. */
  bytesUploaded: number;
}

export interface OtaStore {
  readonly kind: StoreKind;
  /** Human-readable location of the store root, for logs and summaries (no credentials). */
  readonly location: string;
  /** Where a device (or a person) downloads `key` from. */
  urlOf(key: string): string;
  headBlob(key: string): Promise<BlobInfo | undefined>;
  /**
   * Uploads a file under a content-addressed key unless it is already there, and returns only once the store
   * holds exactly `size` bytes whose sha256 is `sha256`: a channel may point at the key as soon as this resolves.
   */
  putBlob(key: string, file: string, options: PutBlobOptions): Promise<PutBlobResult>;
  /** Streams a stored object to a local file (written to a temp name and renamed). */
  download(key: string, destination: string): Promise<void>;
  readDocument(key: string): Promise<StoredDocument | undefined>;
  /** Throws WriteConflict when the condition does not hold; never overwrites a newer version. */
  writeDocument(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }>;
  /** Keys under `prefix` (relative to the store root, sorted), at most `limit`: device reports are read this way. */
  listKeys(prefix: string, limit: number): Promise<string[]>;
}

/** A conditional write lost a race or found the object changed since it was read. */
export class WriteConflict extends Error {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`conditional write of ${key} refused: ${detail}`);
    this.name = 'WriteConflict';
  }
}

export function isWriteConflict(error: unknown): error is WriteConflict {
  return error instanceof WriteConflict;
}

export const CHANNEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function blobKey(sha256: string): string {
  return `blobs/sha256/${sha256}.tar.gz`;
}

export function channelKey(channel: string): string {
  return `channels/${channel}.json`;
}

export function releaseKey(channel: string, sequence: number): string {
  return `releases/${channel}/${String(sequence).padStart(10, '0')}.json`;
}

/** Joins a store prefix and a key without doubled or leading slashes. */
export function joinKey(prefix: string, key: string): string {
  const p = prefix.replace(/^\/+|\/+$/g, '');
  return p ? `${p}/${key}` : key;
}
