import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import type { AzureStorageCaller } from '../cloud/storage-clients';
import { IntegrityError, streamToFileVerified } from './files';
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

export interface AzureBlobStoreOptions {
  /** Built by shared/cloud/storage-clients.ts with the run's Azure identity and the SDK's retries off. */
  container: ContainerClient;
  /** The run's retry policy around every call. */
  caller: AzureStorageCaller;
  prefix?: string;
  /** Block size of package uploads (Azure allows up to 4000 MiB per block and 50,000 blocks). */
  blockSize?: number;
  /** Blocks in flight at once. */
  concurrency?: number;
}

/**
 * Azure Blob Storage as an OTA store. A package goes up as blocks, each with its MD5 so the service rejects a
 * block damaged in transit; the whole file is hashed while the blocks are read, and the block list is committed
 * only when the sha256 matches, so a blob with the wrong bytes never becomes visible. Channel documents use
 * conditional writes (ifMatch / ifNoneMatch '*'). Throttling and 5xx are retried by the run's retry policy.
 */
export class AzureBlobStore implements OtaStore {
  readonly kind = 'azure-blob' as const;

  constructor(private readonly options: AzureBlobStoreOptions) {}

  get location(): string {
    return `${stripQuery(this.options.container.url)}/${this.options.prefix ?? ''}`.replace(/\/$/, '');
  }

  private blob(key: string) {
    return this.options.container.getBlockBlobClient(joinKey(this.options.prefix ?? '', key));
  }

  urlOf(key: string): string {
    return stripQuery(this.blob(key).url);
  }

  async headBlob(key: string): Promise<BlobInfo | undefined> {
    return this.options.caller.call(
      'GetBlobProperties',
      async () => {
        const props = await this.blob(key).getProperties();
        return { size: props.contentLength ?? 0, sha256: props.metadata?.sha256 } as BlobInfo | undefined;
      },
      (error) => (statusOf(error) === 404 ? { value: undefined } : undefined),
    );
  }

  async putBlob(key: string, file: string, options: PutBlobOptions): Promise<PutBlobResult> {
    const existing = await this.headBlob(key);
    if (isStoredAlready(existing, options)) return { bytesUploaded: 0 };
    const blob = this.blob(key);
    const blockSize = this.options.blockSize ?? 8 * 1024 * 1024;
    const concurrency = this.options.concurrency ?? 4;
    const sha256 = createHash('sha256');
    const md5 = createHash('md5');
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let read = 0;
    let sent = 0;
    for await (const chunk of fs.createReadStream(file, { highWaterMark: blockSize }) as AsyncIterable<Buffer>) {
      if (options.signal?.aborted) throw new Error('upload cancelled');
      sha256.update(chunk);
      md5.update(chunk);
      read += chunk.length;
      const id = Buffer.from(`block-${String(ids.length).padStart(8, '0')}`).toString('base64');
      ids.push(id);
      const blockMd5 = createHash('md5').update(chunk).digest();
      const staged = this.options.caller
        .call(
          'PutBlock',
          () => blob.stageBlock(id, chunk, chunk.length, { transactionalContentMD5: blockMd5, abortSignal: options.signal }),
          undefined,
          options.signal,
        )
        .then(() => {
          sent += chunk.length;
          options.onProgress?.({ done: sent, total: options.size });
        })
        .finally(() => inFlight.delete(staged));
      // Handled here too so a failure while the loop reads the next block is not an unhandled rejection.
      staged.catch(() => undefined);
      inFlight.add(staged);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const digest = sha256.digest('hex');
    if (digest !== options.sha256 || read !== options.size) {
      // Nothing was committed: the staged blocks are discarded by the service.
      throw new IntegrityError(
        `${file} changed during the upload: read ${read} bytes with sha256 ${digest}, expected ${options.size} bytes with sha256 ${options.sha256}`,
      );
    }
    const contentMd5 = md5.digest();
    await this.options.caller.call(
      'PutBlockList',
      () =>
        blob.commitBlockList(ids, {
          blobHTTPHeaders: { blobContentType: 'application/gzip', blobContentMD5: contentMd5 },
          metadata: { sha256: options.sha256 },
          abortSignal: options.signal,
        }),
      undefined,
      options.signal,
    );
    const stored = await this.headBlob(key);
    if (!stored || stored.size !== options.size || stored.sha256 !== options.sha256) {
      throw new IntegrityError(
        `after upload, ${this.urlOf(key)} holds ${stored ? `${stored.size} bytes` : 'nothing'}, expected ${options.size} bytes with sha256 ${options.sha256}`,
      );
    }
    return { bytesUploaded: options.size };
  }

  async download(key: string, destination: string): Promise<void> {
    const response = await this.options.caller.call('GetBlob', () => this.blob(key).download());
    await streamToFileVerified(response.readableStreamBody as unknown as Readable, destination, { size: response.contentLength });
  }

  async readDocument(key: string): Promise<StoredDocument | undefined> {
    return this.options.caller.call(
      'GetBlob',
      async () => {
        const response = await this.blob(key).download();
        const chunks: Buffer[] = [];
        for await (const chunk of response.readableStreamBody as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
        return { body: Buffer.concat(chunks), etag: response.etag ?? '' } as StoredDocument | undefined;
      },
      (error) => (statusOf(error) === 404 ? { value: undefined } : undefined),
    );
  }

  async writeDocument(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    const result = await this.options.caller.call(
      'PutBlob',
      () =>
        this.blob(key).upload(body, body.length, {
          conditions: 'ifMatch' in condition ? { ifMatch: condition.ifMatch } : { ifNoneMatch: '*' },
          blobHTTPHeaders: {
            blobContentType: 'application/json',
            blobCacheControl: 'no-cache',
            blobContentMD5: createHash('md5').update(body).digest(),
          },
        }),
      (error) => {
        // 412 ConditionNotMet: the ETag moved on; 409 BlobAlreadyExists: ifNoneMatch '*' found a blob; 404 on
        // ifMatch: the blob was deleted since it was read.
        const status = statusOf(error);
        if (status === 412 || status === 409 || ('ifMatch' in condition && status === 404))
          throw new WriteConflict(key, `Azure answered ${status} ${(error as { code?: string }).code ?? ''}`.trim());
        return undefined;
      },
    );
    return { etag: result.etag ?? '' };
  }

  async listKeys(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    const root = (this.options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    for await (const blob of this.options.container.listBlobsFlat({ prefix: joinKey(this.options.prefix ?? '', prefix) })) {
      keys.push(root ? blob.name.slice(root.length + 1) : blob.name);
      if (keys.length >= limit) break;
    }
    return keys.sort();
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number })?.statusCode;
}

function stripQuery(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
