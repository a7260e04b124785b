import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { AwsCaller } from '../cloud/aws-call';
import { sha256Hex } from '../core/sha256';
import { HashingStream, IntegrityError, streamToFileVerified } from './files';
import {
  type BlobInfo,
  joinKey,
  type OtaStore,
  type PutBlobOptions,
  type PutBlobResult,
  type StoredDocument,
  type WriteCondition,
  WriteConflict,
  isStoredAlready,
} from './store';

export interface S3StoreOptions {
  /** The S3 client with the run's credentials and retry policy (shared/cloud/storage-clients.ts). */
  s3: AwsCaller<S3Client>;
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
 * upload counts. Channel documents use conditional PUTs (If-Match / If-None-Match, S3 since 2024). Every call
 * goes through the run's AwsCaller: throttling and 5xx are retried with backoff, expired credentials refreshed.
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
    return this.options.s3.call(
      'HeadObject',
      async (c) => {
        const head = await c.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) }));
        return { size: head.ContentLength ?? 0, sha256: head.Metadata?.sha256 } as BlobInfo | undefined;
      },
      (error) => (statusOf(error) === 404 ? { value: undefined } : undefined),
    );
  }

  async putBlob(key: string, file: string, options: PutBlobOptions): Promise<PutBlobResult> {
    const existing = await this.headBlob(key);
    if (isStoredAlready(existing, options)) return { bytesUploaded: 0 };
    if (options.size <= this.partSize) await this.putSingle(key, file, options);
    else await this.putMultipart(key, file, options);
    const stored = await this.headBlob(key);
    if (!stored || stored.size !== options.size || stored.sha256 !== options.sha256) {
      throw new IntegrityError(
        `after upload, s3://${this.options.bucket}/${this.full(key)} holds ${stored ? `${stored.size} bytes with sha256 metadata ${stored.sha256}` : 'nothing'}, expected ${options.size} bytes with sha256 ${options.sha256}`,
      );
    }
    return { bytesUploaded: options.size };
  }

  private async putSingle(key: string, file: string, options: PutBlobOptions): Promise<void> {
    // A fresh stream per attempt: a retried PUT must send the file from its first byte. S3 recomputes SHA-256
    // over what arrives and refuses the PUT unless it equals the package's digest.
    const put = () => ({
      Body: fs.createReadStream(file),
      ContentLength: options.size,
      ContentType: 'application/gzip',
      Metadata: { sha256: options.sha256 },
    });
    await this.putObject(key, options.sha256, put, undefined, options.signal);
    options.onProgress?.({ done: options.size, total: options.size });
  }

  /** PutObject with the body's SHA-256 for S3 to check; `fields` is called once per attempt. */
  private putObject(
    key: string,
    sha256: string,
    fields: () => Omit<PutObjectCommandInput, 'Bucket' | 'Key' | 'ChecksumSHA256'>,
    expected?: (error: unknown) => undefined,
    signal?: AbortSignal,
  ) {
    const command = () =>
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: this.full(key),
        ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
        ...fields(),
      });
    return this.options.s3.call('PutObject', (c) => c.send(command(), { abortSignal: signal }), expected, signal);
  }

  /** A throttled or failed multipart upload is aborted (leavePartsOnError false) and retried whole. */
  private async putMultipart(key: string, file: string, options: PutBlobOptions): Promise<void> {
    const sent = await this.options.s3.call('multipart upload', (c) => this.uploadParts(c, key, file, options), undefined, options.signal);
    if (sent.sha256 !== options.sha256 || sent.bytes !== options.size) {
      // The file changed between hashing and upload: the object must not stay under a key that names another digest.
      await this.options.s3.call('DeleteObject', (c) =>
        c.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) })),
      );
      throw new IntegrityError(
        `${file} changed during the upload: sent ${sent.bytes} bytes with sha256 ${sent.sha256}, expected ${options.size} bytes with sha256 ${options.sha256}`,
      );
    }
  }

  private async uploadParts(
    client: S3Client,
    key: string,
    file: string,
    options: PutBlobOptions,
  ): Promise<{ sha256: string; bytes: number }> {
    const hasher = new HashingStream();
    const source = fs.createReadStream(file);
    source.on('error', (error) => hasher.destroy(error));
    source.pipe(hasher);
    const upload = new Upload({
      client,
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
    return { sha256: hasher.sha256.digest('hex'), bytes: hasher.bytes };
  }

  async download(key: string, destination: string): Promise<void> {
    const object = await this.options.s3.call('GetObject', (c) =>
      c.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) })),
    );
    await streamToFileVerified(object.Body as Readable, destination, { size: object.ContentLength });
  }

  async readDocument(key: string): Promise<StoredDocument | undefined> {
    return this.options.s3.call(
      'GetObject',
      async (c) => {
        const object = await c.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.full(key) }));
        const body = Buffer.from(await object.Body!.transformToByteArray());
        return { body, etag: object.ETag ?? '' } as StoredDocument | undefined;
      },
      (error) => (statusOf(error) === 404 ? { value: undefined } : undefined),
    );
  }

  async writeDocument(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    const fields = () => ({
      Body: body,
      ContentType: 'application/json',
      CacheControl: 'no-cache',
      ...('ifMatch' in condition ? { IfMatch: condition.ifMatch } : { IfNoneMatch: '*' }),
    });
    const result = await this.putObject(key, sha256Hex(body), fields, (error) => {
      // 412 PreconditionFailed: the ETag moved on; 409 ConditionalRequestConflict: a concurrent conditional write
      // won; 404 on If-Match: the object was deleted since it was read.
      const status = statusOf(error);
      if (status === 412 || status === 409 || ('ifMatch' in condition && status === 404))
        throw new WriteConflict(key, `S3 answered ${status} ${(error as Error).name}`);
      return undefined;
    });
    return { etag: result.ETag ?? '' };
  }

  async listKeys(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    const root = (this.options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    let token: string | undefined;
    do {
      const continuation = token;
      const page = await this.options.s3.call('ListObjectsV2', (c) =>
        c.send(
          new ListObjectsV2Command({
            Bucket: this.options.bucket,
            Prefix: joinKey(this.options.prefix ?? '', prefix),
            ContinuationToken: continuation,
            MaxKeys: Math.min(1000, limit - keys.length),
          }),
        ),
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
