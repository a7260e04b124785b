import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerClient } from '@azure/storage-blob';
import { InputError } from '../core/errors';
import { LocalFolderStore } from './local-store';
import type { OtaStore, StoreKind } from './store';

// Cloud SDKs load only for the store in use: a CLI run against a folder (or a device) does not pay for them.
const s3 = () => ({ ...(require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3')), ...(require('./s3-store') as typeof import('./s3-store')) });
const azure = () => ({ ...(require('@azure/storage-blob') as typeof import('@azure/storage-blob')), ...(require('./azure-blob-store') as typeof import('./azure-blob-store')) });

export interface StoreConfig {
  kind: StoreKind;
  /** Folder (local), s3://bucket/prefix (s3), container/prefix or a container URL (azure-blob). */
  uri?: string;
  /** S3-compatible endpoint, e.g. MinIO or a test server. */
  endpoint?: string;
  region?: string;
  publicBaseUrl?: string;
  azureConnectionString?: string;
  /** Environment to read AWS keys from when they are set explicitly (AWS_ACCESS_KEY_ID, …). */
  env?: NodeJS.ProcessEnv;
  /** Folder that a relative local path is resolved against. */
  workspace?: string;
  /** Multipart part / block size in bytes. */
  partSize?: number;
}

export const DEFAULT_LOCAL_STORE = '.mlship/ota';

/** Builds the store a step's inputs describe; the messages name the input (`labelOf`) the user must fix. */
export function openStore(config: StoreConfig, labelOf: (key: string) => string = (k) => k): OtaStore {
  switch (config.kind) {
    case 'local': {
      const uri = config.uri ?? DEFAULT_LOCAL_STORE;
      const folder = uri.startsWith('file:') ? fileURLToPath(uri) : path.resolve(config.workspace ?? process.cwd(), uri);
      return new LocalFolderStore(folder);
    }
    case 's3': {
      const match = /^(?:s3:\/\/)?([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(config.uri ?? '');
      if (!match) {
        throw new InputError(`Input "${labelOf('storeUri')}" has value "${config.uri ?? ''}", which is not an S3 location.`, { hint: 'Use s3://bucket/prefix, e.g. s3://acme-ota/cellseg.' });
      }
      const env = config.env ?? {};
      const region = config.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
      const credentials = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN } : undefined;
      const { S3Client, S3Store } = s3();
      const client = new S3Client({ region, ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}), ...(credentials ? { credentials } : {}) });
      return new S3Store({ client, bucket: match[1], prefix: match[2] ?? '', endpoint: config.endpoint, region, publicBaseUrl: config.publicBaseUrl, partSize: config.partSize });
    }
    case 'azure-blob': {
      const { container, prefix } = azureContainer(config, labelOf);
      return new (azure().AzureBlobStore)({ container, prefix, blockSize: config.partSize });
    }
  }
}

function azureContainer(config: StoreConfig, labelOf: (key: string) => string): { container: ContainerClient; prefix: string } {
  const { BlobServiceClient, ContainerClient } = azure();
  const uri = config.uri ?? '';
  if (/^https?:\/\//.test(uri)) {
    const url = new URL(uri);
    const parts = url.pathname.split('/').filter(Boolean);
    // Azurite and other emulators put the account name first in the path.
    const accountInPath = !url.hostname.includes('.blob.');
    const [container, ...rest] = accountInPath ? parts.slice(1) : parts;
    if (!container) throw new InputError(`Input "${labelOf('storeUri')}" has value "${uri}", which names no container.`, { hint: 'Use https://account.blob.core.windows.net/container/prefix.' });
    const containerUrl = `${url.origin}/${(accountInPath ? parts.slice(0, 1) : []).concat(container).join('/')}${url.search}`;
    // A SAS query authorizes by itself; otherwise the Azure identity of the runner (OIDC login, managed identity).
    const client = url.search ? new ContainerClient(containerUrl) : new ContainerClient(containerUrl, new (require('@azure/identity') as typeof import('@azure/identity')).DefaultAzureCredential());
    return { container: client, prefix: rest.join('/') };
  }
  const [container, ...rest] = uri.split('/').filter(Boolean);
  if (!container || !config.azureConnectionString) {
    throw new InputError(`Input "${labelOf('storeUri')}" has value "${uri}": an Azure Blob store needs a container and credentials.`, {
      hint: `Give "${labelOf('storeUri')}" as container/prefix together with "${labelOf('azureConnectionString')}", or a container URL (https://account.blob.core.windows.net/container/prefix, with a SAS query or an Azure login).`,
    });
  }
  return { container: BlobServiceClient.fromConnectionString(config.azureConnectionString).getContainerClient(container), prefix: rest.join('/') };
}
