import { S3Client } from '@aws-sdk/client-s3';
import { AnonymousCredential, BlobServiceClient, ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import type { Logger } from '../core/context';
import { StepError } from '../core/errors';
import { asTokenCredential } from './auth/azure';
import { AwsCaller } from './aws-call';
import type { CloudConnections } from './connections';
import { AbortedError, isTransientNetworkError, withRetry, type RetryDecision, type RetryPolicy } from '../core/retry';

/**
 * The object-storage clients of the OTA stores, built from the run's CloudConnections so S3 and Blob staging
 * get the credentials training gets (role-to-assume with the platform's OIDC token, refreshed ahead of
 * expiry) and the same time-bounded backoff. The SDKs' own retries are off so backoff lives in one place.
 */

export interface S3Location {
  /** Region of the bucket; see CloudConnections.s3 for the fallbacks. */
  region?: string;
  /** An S3-compatible server (MinIO, an emulator); objects are then addressed path-style. */
  endpoint?: string;
}

export function s3Caller(
  connections: CloudConnections,
  location: S3Location,
  log?: Logger,
): { caller: AwsCaller<S3Client>; region: string; endpoint?: string } {
  const aws = connections.s3(location.region);
  const endpoint = location.endpoint || aws.s3Endpoint;
  // The SDK's own notices (e.g. "non-retryable streaming request") go to the step's debug log, not to stderr.
  const sdkLog = (m: unknown) => log?.debug(`S3 SDK: ${String(m)}`);
  const logger = { trace() {}, debug() {}, info() {}, warn: sdkLog, error: sdkLog };
  const make = () =>
    new S3Client({
      region: aws.region,
      credentials: aws.auth.credentials,
      maxAttempts: 1,
      logger,
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    });
  return { caller: new AwsCaller('S3', make, aws.auth, connections.retry, log), region: aws.region, endpoint };
}

const NO_SDK_RETRY: StoragePipelineOptions = { retryOptions: { maxTries: 1 } };

export type BlobContainerAccess =
  /** A container URL that carries its own SAS query. */
  | { kind: 'sas'; containerUrl: string }
  /** A container URL reached with the run's Azure identity (OIDC federation, service connection, managed identity, az login). */
  | { kind: 'identity'; containerUrl: string }
  | { kind: 'connection-string'; connectionString: string; container: string };

export function blobContainer(
  connections: CloudConnections,
  access: BlobContainerAccess,
  log?: Logger,
): { container: ContainerClient; caller: AzureStorageCaller } {
  const caller = new AzureStorageCaller(connections.retry, log);
  switch (access.kind) {
    case 'sas':
      return { container: new ContainerClient(access.containerUrl, new AnonymousCredential(), NO_SDK_RETRY), caller };
    case 'identity':
      return { container: new ContainerClient(access.containerUrl, asTokenCredential(connections.azureAuth()), NO_SDK_RETRY), caller };
    case 'connection-string':
      return {
        container: BlobServiceClient.fromConnectionString(access.connectionString, NO_SDK_RETRY).getContainerClient(access.container),
        caller,
      };
  }
}

/**
 * Azure Storage calls with the run's retry policy: throttling (429, 503 ServerBusy), other 5xx, request
 * timeouts and transient network errors are retried with backoff, honouring Retry-After.
 */
export class AzureStorageCaller {
  constructor(
    private readonly retry: RetryPolicy,
    private readonly log?: Logger,
  ) {}

  /** Like AwsCaller.call: `expected` may turn a known error (404, 412) into a value or its own error. */
  async call<T>(
    operation: string,
    fn: () => Promise<T>,
    expected?: (error: unknown) => { value: T } | undefined,
    signal?: AbortSignal,
  ): Promise<T> {
    try {
      return await withRetry(fn, {
        policy: this.retry,
        signal,
        classify: classifyAzureStorageError,
        onRetry: ({ attempt, delayMs, reason }) =>
          this.log?.debug(`Azure Blob ${operation}: ${reason}; retry ${attempt} in ${Math.round(delayMs)} ms`),
      });
    } catch (error) {
      if (error instanceof AbortedError || (error as Error)?.name === 'AbortError') throw error;
      const handled = expected?.(error);
      if (handled) return handled.value;
      throw azureStorageStepError(operation, error);
    }
  }
}

interface AzureStorageErrorShape {
  statusCode?: number;
  code?: string;
  message?: string;
  response?: { headers?: { get(name: string): string | undefined } };
}

export function classifyAzureStorageError(error: unknown): RetryDecision {
  const e = error as AzureStorageErrorShape;
  const status = e?.statusCode;
  if (status === 429 || status === 408 || (status !== undefined && status >= 500)) {
    const after = Number(e.response?.headers?.get('retry-after'));
    return {
      retry: true,
      reason: `${status} ${e.code ?? ''}`.trim(),
      afterMs: Number.isFinite(after) && after > 0 ? after * 1000 : undefined,
    };
  }
  if (isTransientNetworkError(error)) return { retry: true, reason: (error as Error).message };
  return { retry: false };
}

function azureStorageStepError(operation: string, error: unknown): StepError {
  if (error instanceof StepError) return error;
  const e = error as AzureStorageErrorShape;
  const hints: Record<number, string> = {
    401: 'The Azure identity was not accepted; check azure-client-id / azure-tenant-id (OIDC) or the service connection, or the SAS token.',
    403: 'The identity may not write to this container: grant it "Storage Blob Data Contributor" on the container (see docs/permissions.md), or use a SAS with write permission.',
  };
  const retried = classifyAzureStorageError(error).retry ? ' (still failing after retrying with backoff)' : '';
  const what = [e?.statusCode, e?.code].filter(Boolean).join(' ');
  return new StepError(
    `Azure Blob ${operation} failed: ${what ? `${what}: ` : ''}${(e?.message ?? String(error)).split('\n')[0]}${retried}`,
    {
      hint: e?.statusCode ? hints[e.statusCode] : undefined,
      cause: error,
    },
  );
}
