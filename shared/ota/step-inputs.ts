import { connectionsFromInputs, type CloudConnections, type CloudInputValues } from '../cloud/connections';
import { cloudInputs } from '../cloud/inputs';
import { secretFromEnv, type StepContext } from '../core/context';
import { pickInputs } from '../core/merge-inputs';
import { openStore } from './open-store';
import type { OtaStore, StoreKind } from './store';

/**
 * Inputs that say where the OTA store is, shared by stage-ota and promote-release. `storeRegion` is the
 * bucket's own: the run's AWS region (`region`, from cloudInputs) may be another, e.g. for a SageMaker registry.
 */
export const storeInputs = {
  store: {
    type: 'enum',
    options: ['local', 's3', 'azure-blob'],
    default: 'local',
    description: 'Kind of OTA store: a folder (local), Amazon S3 or an S3-compatible server (s3), or Azure Blob Storage (azure-blob).',
  },
  storeUri: {
    type: 'string',
    description:
      'Where the store is: a folder for local (default .mlship/ota), s3://bucket/prefix for s3, container/prefix (with azure-connection-string) or https://account.blob.core.windows.net/container/prefix for azure-blob.',
  },
  endpoint: {
    type: 'string',
    description: 'Endpoint of an S3-compatible server (MinIO, an emulator); objects are then addressed path-style.',
  },
  storeRegion: { type: 'string', description: 'AWS region of the S3 bucket; default the input region, else AWS_REGION, else us-east-1.' },
  publicBaseUrl: {
    type: 'string',
    description: 'Base URL devices download from (a CDN in front of the store); recorded as the package URL.',
  },
  azureConnectionString: {
    type: 'secret',
    description: 'Azure Storage connection string, for azure-blob with storeUri given as container/prefix.',
  },
} as const;

/**
 * How a store-only step (stage-ota) reaches the cloud: the credential inputs of submit-training
 * (role-to-assume with the platform's OIDC token; Azure OIDC federation or a service connection), without the
 * Azure ML workspace ones.
 */
export const storeCloudInputs = pickInputs(
  cloudInputs,
  'region',
  'roleToAssume',
  'azureClientId',
  'azureTenantId',
  'azureServiceConnection',
  'awsServiceConnection',
);

export interface StoreInputValues extends CloudInputValues {
  store: string;
  storeUri?: string;
  endpoint?: string;
  storeRegion?: string;
  publicBaseUrl?: string;
  azureConnectionString?: string;
}

/** The store the inputs name, reached with `connections` (default: those the cloud inputs describe). */
export function storeFromInputs(
  inputs: StoreInputValues,
  ctx: StepContext,
  connections: CloudConnections = connectionsFromInputs(inputs, ctx),
): OtaStore {
  // Credentials the store reads besides secret inputs: AWS keys from the environment, a SAS token in the URI.
  if (inputs.store === 's3') for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) secretFromEnv(ctx, name);
  const sas = inputs.store === 'azure-blob' && /^https?:\/\/[^?]*\?(.+)$/.exec(inputs.storeUri ?? '');
  if (sas) {
    ctx.setSecret(sas[1]);
    const signature = new URLSearchParams(sas[1]).get('sig');
    if (signature) ctx.setSecret(signature);
  }
  return openStore(
    {
      kind: inputs.store as StoreKind,
      uri: inputs.storeUri,
      endpoint: inputs.endpoint,
      region: inputs.storeRegion,
      publicBaseUrl: inputs.publicBaseUrl,
      azureConnectionString: inputs.azureConnectionString,
      connections,
      log: ctx.log,
      workspace: ctx.workspace,
    },
    (key) => ctx.inputLabel(key),
  );
}

/** `expires-in-hours` default: a month, so a forgotten channel goes stale before it can be replayed for long. */
export const DEFAULT_EXPIRY_HOURS = 720;
