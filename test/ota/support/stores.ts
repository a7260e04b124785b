import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { CloudConnections } from '../../../shared/cloud/connections';
import type { RetryPolicy } from '../../../shared/core/retry';
import { createContext } from '../../../shared/core/context';
import { MemoryHost } from '../../../shared/hosts/memory-host';
import { openStore } from '../../../shared/ota/open-store';
import type { OtaStore, StoreKind } from '../../../shared/ota/store';
import { AzuriteBlob } from './azurite';
import { TestS3Server } from './s3-server';

export const BUCKET = 'mlship-ota';
export const CONTAINER = 'ota';
export const S3_ENV = { AWS_ACCESS_KEY_ID: 'test-key', AWS_SECRET_ACCESS_KEY: 'test-secret', AWS_REGION: 'us-east-1' };
/** Short backoff: the local servers answer at once, and a test that injects throttling should not wait minutes. */
export const FAST_RETRY: RetryPolicy = { baseMs: 1, maxMs: 20, budgetMs: 10_000 };

/** The connections a step run with `env` would have, for tests that open a store directly. */
export function testConnections(env: NodeJS.ProcessEnv, retry: RetryPolicy = FAST_RETRY): CloudConnections {
  return new CloudConnections(createContext(new MemoryHost({}, { env }), new AbortController().signal), { retry });
}

/** The three OTA backends of the tests: a temp folder, the test S3 server and Azurite, all on 127.0.0.1. */
export class StoreBackends {
  readonly s3 = new TestS3Server();
  readonly azurite = new AzuriteBlob();
  readonly folder = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-ota-'));

  async start(kinds: readonly StoreKind[] = ['local', 's3', 'azure-blob']): Promise<void> {
    if (kinds.includes('s3')) {
      await this.s3.start();
      this.s3.createBucket(BUCKET);
    }
    if (kinds.includes('azure-blob')) {
      await this.azurite.start();
      // Public read, as a device fleet would see a container behind a CDN: agents fetch with plain HTTP GETs.
      await BlobServiceClient.fromConnectionString(this.azurite.connectionString).getContainerClient(CONTAINER).create({ access: 'blob' });
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.s3.stop(), this.azurite.stop()]);
    fs.rmSync(this.folder, { recursive: true, force: true });
  }

  /** Step inputs that select `kind` with its own prefix, so tests do not see each other's channels. */
  inputs(kind: StoreKind, prefix: string): Record<string, string> {
    switch (kind) {
      case 'local':
        return { store: 'local', storeUri: path.join(this.folder, prefix) };
      case 's3':
        return { store: 's3', storeUri: `s3://${BUCKET}/${prefix}`, endpoint: this.s3.endpoint };
      case 'azure-blob':
        return { store: 'azure-blob', storeUri: `${CONTAINER}/${prefix}`, azureConnectionString: this.azurite.connectionString };
    }
  }

  env(kind: StoreKind): Record<string, string> {
    return kind === 's3' ? { ...S3_ENV } : {};
  }

  open(kind: StoreKind, prefix: string, partSize?: number): OtaStore {
    const i = this.inputs(kind, prefix);
    return openStore({
      kind,
      uri: i.storeUri,
      endpoint: i.endpoint,
      azureConnectionString: i.azureConnectionString,
      connections: testConnections(this.env(kind)),
      partSize,
    });
  }

  /** URL a device polls for `channel`: file:// for the folder, plain HTTP for the servers. */
  channelUrl(kind: StoreKind, prefix: string, channel: string): string {
    return this.open(kind, prefix).urlOf(`channels/${channel}.json`);
  }
}
