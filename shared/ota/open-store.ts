import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobContainerAccess } from '../cloud/storage-clients';
import type { CloudConnections } from '../cloud/connections';
import type { Logger } from '../core/context';
import { InputError } from '../core/errors';
import { LocalFolderStore } from './local-store';
import type { OtaStore, StoreKind } from './store';

// Cloud SDKs load only for the store in use: a CLI run against a folder (or a device) does not pay for them.
const clients = () => require('../cloud/storage-clients') as typeof import('../cloud/storage-clients');
const s3 = () => require('./s3-store') as typeof import('./s3-store');
const azure = () => require('./azure-blob-store') as typeof import('./azure-blob-store');

export interface StoreConfig {
  kind: StoreKind;
  /** Folder (local), s3://bucket/prefix (s3), container/prefix or a container URL (azure-blob). */
  uri?: string;
  /** S3-compatible endpoint, e.g. MinIO or a test server. */
  endpoint?: string;
  /** Region of the bucket, when it differs from the run's AWS region. */
  region?: string;
  publicBaseUrl?: string;
  azureConnectionString?: string;
  /** The run's credentials and retry policy (role-to-assume / OIDC, Azure identity); needed by s3 and azure-blob. */
  connections?: CloudConnections;
  log?: Logger;
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
        throw new InputError(`Input "${labelOf('storeUri')}" has value "${config.uri ?? ''}", which is not an S3 location.`, {
          hint: 'Use s3://bucket/prefix, e.g. s3://acme-ota/cellseg.',
        });
      }
      const { caller, region, endpoint } = clients().s3Caller(
        needConnections(config),
        { region: config.region, endpoint: config.endpoint },
        config.log,
      );
      return new (s3().S3Store)({
        s3: caller,
        bucket: match[1],
        prefix: match[2] ?? '',
        endpoint,
        region,
        publicBaseUrl: config.publicBaseUrl,
        partSize: config.partSize,
      });
    }
    case 'azure-blob': {
      const { access, prefix } = azureContainer(config, labelOf);
      const { container, caller } = clients().blobContainer(needConnections(config), access, config.log);
      return new (azure().AzureBlobStore)({ container, caller, prefix, blockSize: config.partSize });
    }
  }
}

function needConnections(config: StoreConfig): CloudConnections {
  // A programming error, not a user one: every caller that opens a cloud store passes the run's connections.
  if (!config.connections) throw new Error(`openStore(): a ${config.kind} store needs the run's CloudConnections.`);
  return config.connections;
}

function azureContainer(config: StoreConfig, labelOf: (key: string) => string): { access: BlobContainerAccess; prefix: string } {
  const uri = config.uri ?? '';
  if (/^https?:\/\//.test(uri)) {
    const url = new URL(uri);
    const parts = url.pathname.split('/').filter(Boolean);
    // Azurite and other emulators put the account name first in the path.
    const accountInPath = !url.hostname.includes('.blob.');
    const [container, ...rest] = accountInPath ? parts.slice(1) : parts;
    if (!container)
      throw new InputError(`Input "${labelOf('storeUri')}" has value "${uri}", which names no container.`, {
        hint: 'Use https://account.blob.core.windows.net/container/prefix.',
      });
    const containerUrl = `${url.origin}/${(accountInPath ? parts.slice(0, 1) : []).concat(container).join('/')}${url.search}`;
    // A SAS query authorizes by itself; otherwise the run's Azure identity (OIDC federation, service connection,
    // managed identity, az login), as for Azure ML.
    return { access: url.search ? { kind: 'sas', containerUrl } : { kind: 'identity', containerUrl }, prefix: rest.join('/') };
  }
  const [container, ...rest] = uri.split('/').filter(Boolean);
  if (!container || !config.azureConnectionString) {
    throw new InputError(`Input "${labelOf('storeUri')}" has value "${uri}": an Azure Blob store needs a container and credentials.`, {
      hint: `Give "${labelOf('storeUri')}" as container/prefix together with "${labelOf('azureConnectionString')}", or a container URL (https://account.blob.core.windows.net/container/prefix, with a SAS query or an Azure login).`,
    });
  }
  return { access: { kind: 'connection-string', connectionString: config.azureConnectionString, container }, prefix: rest.join('/') };
}
