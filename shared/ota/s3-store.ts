import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { sha256Hex } from '../core/sha256';
import { HashingStream, IntegrityError, streamToFileVerified } from './files';
import { type BlobInfo, joinKey, type OtaStore, type PutBlobOptions, type PutBlobResult, type StoredDocument, type WriteCondition, WriteConflict } from './store';

export interface S3StoreOptions {
  client: S3Client;
  bucket: string;
  prefix?: string;
  /** Base URL devices download from (CloudFront, a public bucket); defaults to the bucket's S3 URL. */
  publicBaseUrl?: string;
  /** Custom endpoint (S3-compatible servers, emulators); object URLs are then path-style. */
  endpoint?: string;
  region?: string;
  /** Multipart part size; S3 needs at least 5 MiB. Files up to one part go up in a single PUT. */
  partSize?: number;
  /** Parts in flight at once. */
  queueSize?: number;
}

/**
 * Amazon S3 (or an S3-compatible server) as an OTA store. Packages are uploaded with SHA-256 checksums that S3
 * verifies on arrival: a single PUT carries the package's own sha256, so S3 rejects any other bytes; a multipart
 * upload carries one checksum per part, and the whole stream is hashed on the way and compared before the
 * upload counts. Channel documents use conditional PUTs (If-Match / If-None-Match, S3 since 2024).
 */
export class S3Store implements OtaStore {
  readonly kind = 's3' as const;
  private readonly partSize: number;

  constructor(private readonly options: S3StoreOptions) {
    this.partSize = Math.max(5 * 1024 * 1024, options.partSize ?? 16 * 1024 * 1024);
  }

  get location(): string {
    return `s3://${this.options.bucket}/${this.options.prefix ?? ''}`.replace(/\/$/, '');
  }

  private full(key: string): string {
    return joinKey(this.options.prefix ?? '', key);
  }

  urlOf(key: string): string {
    const { publicBaseUrl, endpoint, bucket, region } = this.options;
    const objectKey = this.full(key);
    if (publicBaseUrl) return `${publicBaseUrl.replace(/\/+$/, '')}/${objectKey}`;
    if (endpoint) return `${endpoint.replace(/\/+$/, '')}/${bucket}/${objectKey}`;
    return `https://${bucket}.s3.${region ?? 'us-east-1'}.amazonaws.com/${objectKey}`;
  }

  async headBlob(key: string): Promise<BlobInfo | undefined> {
    try {
      const head = await this.options.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) }));
      return { size: head.ContentLength ?? 0, sha256: head.Metadata?.sha256 };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async putBlob(key: string, file: string, options: PutBlobOptions): Promise<PutBlobResult> {
    const existing = await this.headBlob(key);
    if (existing && existing.size === options.size && (existing.sha256 === undefined || existing.sha256 === options.sha256)) return { bytesUploaded: 0 };
    if (options.size <= this.partSize) await this.putSingle(key, file, options);
    else await this.putMultipart(key, file, options);
    const stored = await this.headBlob(key);
    if (!stored || stored.size !== options.size || stored.sha256 !== options.sha256) {
      throw new IntegrityError(`after upload, s3://${this.options.bucket}/${this.full(key)} holds ${stored ? `${stored.size} bytes with sha256 metadata ${stored.sha256}` : 'nothing'}, expected ${options.size} bytes with sha256 ${options.sha256}`);
    }
    return { bytesUploaded: options.size };
  }

  private async putSingle(key: string, file: string, options: PutBlobOptions): Promise<void> {
    const body = fs.createReadStream(file);
    await this.options.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: this.full(key),
        Body: body,
        ContentLength: options.size,
        ContentType: 'application/gzip',
        // S3 recomputes SHA-256 over what arrives and refuses the PUT unless it equals the package's digest.
        ChecksumSHA256: Buffer.from(options.sha256, 'hex').toString('base64'),
        Metadata: { sha256: options.sha256 },
      }),
      { abortSignal: options.signal },
    );
    options.onProgress?.({ done: options.size, total: options.size });
  }

  private async putMultipart(key: string, file: string, options: PutBlobOptions): Promise<void> {
    const hasher = new HashingStream();
    const source = fs.createReadStream(file);
    source.on('error', (error) => hasher.destroy(error));
    source.pipe(hasher);
    const upload = new Upload({
      client: this.options.client,
      params: {
        Bucket: this.options.bucket,
        Key: this.full(key),
        Body: hasher,
        ContentType: 'application/gzip',
        ChecksumAlgorithm: 'SHA256',
        Metadata: { sha256: options.sha256 },
      },
      partSize: this.partSize,
      queueSize: this.options.queueSize ?? 4,
      leavePartsOnError: false,
    });
    upload.on('httpUploadProgress', (p) => options.onProgress?.({ done: p.loaded ?? 0, total: options.size }));
    const onAbort = () => void upload.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    const sha256 = hasher.sha256.digest('hex');
    if (sha256 !== options.sha256 || hasher.bytes !== options.size) {
      // The file changed between hashing and upload: the object must not stay under a key that names another digest.
      await this.options.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) }));
      throw new IntegrityError(`${file} changed during the upload: sent ${hasher.bytes} bytes with sha256 ${sha256}, expected ${options.size} bytes with sha256 ${options.sha256}`);
    }
  }

  async download(key: string, destination: string): Promise<void> {
    const object = await this.options.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) }));
    await streamToFileVerified(object.Body as Readable, destination, { size: object.ContentLength });
  }

  async readDocument(key: string): Promise<StoredDocument | undefined> {
    try {
      const object = await this.options.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) }));
      const body = Buffer.from(await object.Body!.transformToByteArray());
      return { body, etag: object.ETag ?? '' };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async writeDocument(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    try {
      const result = await this.options.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.full(key),
          Body: body,
          ContentType: 'application/json',
          CacheControl: 'no-cache',
          ChecksumSHA256: Buffer.from(sha256Hex(body), 'hex').toString('base64'),
          ...('ifMatch' in condition ? { IfMatch: condition.ifMatch } : { IfNoneMatch: '*' }),
        }),
      );
      return { etag: result.ETag ?? '' };
    } catch (error) {
      // 412 PreconditionFailed: the ETag moved on; 409 ConditionalRequestConflict: a concurrent conditional write
      // won; 404 on If-Match: the object was deleted since it was read.
      const status = statusOf(error);
      if (status === 412 || status === 409 || ('ifMatch' in condition && status === 404)) throw new WriteConflict(key, `S3 answered ${status} ${(error as Error).name}`);
      throw error;
    }
  }

  async listKeys(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    const root = (this.options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    let token: string | undefined;
    do {
      const page = await this.options.client.send(
        new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: joinKey(this.options.prefix ?? '', prefix), ContinuationToken: token, MaxKeys: Math.min(1000, limit - keys.length) }),
      );
      for (const object of page.Contents ?? []) if (object.Key) keys.push(root ? object.Key.slice(root.length + 1) : object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token && keys.length < limit);
    return keys.sort();
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}
