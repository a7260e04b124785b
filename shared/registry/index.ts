import * as path from 'node:path';
import type { StepContext } from '../core/context';
import { StepError } from '../core/errors';
import { CloudConnections, connectionsFromInputs, type CloudInputValues, type CloudSettings } from '../cloud/connections';
import { AzureMlRegistry, type AzureMlRegistryOptions } from './azureml';
import { LocalRegistry, type LocalRegistryOptions } from './local';
import { MlflowRegistry, type MlflowRegistryOptions } from './mlflow';
import { SageMakerRegistry, type SageMakerRegistryOptions } from './sagemaker';
import type { ModelRegistry } from './types';

export type RegistryKind = ModelRegistry['kind'];

/**
 * Options any step can build without knowing the backend: `uri` is the local registry folder, or the Azure ML
 * workspace (ARM id or azureml://subscriptions/…/resourcegroups/…/workspaces/…); credentials come from the
 * step's context when given (OIDC, service connections), else from the environment's default chains.
 */
export interface GenericRegistryOptions {
  uri?: string;
  region?: string;
  /** The step's workspace folder, against which a relative local `uri` is resolved. */
  workspace?: string;
  env?: NodeJS.ProcessEnv;
  ctx?: StepContext;
  metricsS3Prefix?: string;
  /** MLflow: token/basic auth and the production alias (the tracking URI is `uri`). */
  mlflow?: MlflowSettings;
}

type AnyRegistryOptions =
  LocalRegistryOptions | SageMakerRegistryOptions | AzureMlRegistryOptions | MlflowRegistryOptions | GenericRegistryOptions;

export function createRegistry(kind: 'local', options: LocalRegistryOptions | GenericRegistryOptions): ModelRegistry;
export function createRegistry(kind: 'sagemaker', options: SageMakerRegistryOptions | GenericRegistryOptions): ModelRegistry;
export function createRegistry(kind: 'azureml', options: AzureMlRegistryOptions | GenericRegistryOptions): ModelRegistry;
export function createRegistry(kind: 'mlflow', options: MlflowRegistryOptions | GenericRegistryOptions): ModelRegistry;
export function createRegistry(kind: RegistryKind, options: AnyRegistryOptions): ModelRegistry;
export function createRegistry(kind: RegistryKind, options: AnyRegistryOptions): ModelRegistry {
  if (!('root' in options) && !('auth' in options) && !('trackingUri' in options)) return fromGeneric(kind, options);
  switch (kind) {
    case 'local':
      return new LocalRegistry(options as LocalRegistryOptions);
    case 'sagemaker':
      return new SageMakerRegistry(options as SageMakerRegistryOptions);
    case 'azureml':
      return new AzureMlRegistry(options as AzureMlRegistryOptions);
    case 'mlflow':
      return new MlflowRegistry(options as MlflowRegistryOptions);
  }
}

function fromGeneric(kind: RegistryKind, o: GenericRegistryOptions): ModelRegistry {
  const env = o.ctx?.env ?? o.env ?? process.env;
  const workspace = o.ctx?.workspace ?? o.workspace ?? process.cwd();
  const ctx: StepContext =
    o.ctx ??
    ({
      env,
      workspace,
      platform: 'local',
      run: { id: 'registry', attempt: 1 },
      log: { debug() {}, info() {}, warning() {}, error() {} },
      setSecret() {},
      inputLabel: (k: string) => k,
    } as unknown as StepContext);
  if (kind === 'local') return new LocalRegistry({ root: path.resolve(workspace, o.uri ?? '.mlship/registry') });
  const azure = kind === 'azureml' ? parseWorkspaceUri(o.uri) : undefined;
  const connections = new CloudConnections(ctx, { region: o.region, azure });
  return openRegistry(
    { kind, metricsS3Prefix: o.metricsS3Prefix, mlflow: kind === 'mlflow' ? { trackingUri: o.uri, ...o.mlflow } : undefined },
    connections,
    ctx,
  );
}

/** `/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w` or `azureml://subscriptions/s/resourcegroups/g/workspaces/w`. */
export function parseWorkspaceUri(uri: string | undefined): { subscriptionId: string; resourceGroup: string; workspace: string } {
  const m = uri
    ? /subscriptions\/([^/]+)\/resource[gG]roups\/([^/]+)\/(?:providers\/Microsoft\.MachineLearningServices\/)?workspaces\/([^/?#]+)/i.exec(
        uri,
      )
    : null;
  if (!m) {
    throw new StepError(`"${uri ?? ''}" does not name an Azure ML workspace.`, {
      hint: 'Use /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.MachineLearningServices/workspaces/<name> or azureml://subscriptions/<id>/resourcegroups/<group>/workspaces/<name>.',
    });
  }
  return { subscriptionId: m[1], resourceGroup: m[2], workspace: m[3] };
}

export interface MlflowSettings {
  /** Default MLFLOW_TRACKING_URI. An Azure ML workspace's `azureml://…` URI is reached with the Azure credentials. */
  trackingUri?: string;
  /** Default MLFLOW_TRACKING_TOKEN. */
  token?: string;
  /** Default MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD. */
  username?: string;
  password?: string;
  /** Production alias; default champion. */
  alias?: string;
}

export interface OpenRegistryOptions {
  kind: RegistryKind;
  /** Local registry folder (absolute, or relative to the workspace). */
  path?: string;
  metricsS3Prefix?: string;
  mlflow?: MlflowSettings;
}

/** A registry with credentials resolved from the step's context, shared with `connections` when given. */
export function openRegistry(
  options: OpenRegistryOptions,
  connections: CloudConnections,
  ctx: Pick<StepContext, 'workspace' | 'log' | 'env' | 'setSecret' | 'inputLabel'>,
): ModelRegistry {
  switch (options.kind) {
    case 'local':
      return createRegistry('local', { root: path.resolve(ctx.workspace, options.path ?? '.mlship/registry') });
    case 'sagemaker': {
      const aws = connections.aws();
      return createRegistry('sagemaker', {
        region: aws.region,
        auth: aws.auth,
        endpoint: aws.sagemakerEndpoint,
        s3Endpoint: aws.s3Endpoint,
        retry: connections.retry,
        log: ctx.log,
        metricsS3Prefix: options.metricsS3Prefix,
      });
    }
    case 'azureml': {
      const az = connections.azure();
      return createRegistry('azureml', {
        ...az.workspace,
        auth: az.auth,
        armEndpoint: az.armEndpoint,
        retry: connections.retry,
        log: ctx.log,
      });
    }
    case 'mlflow':
      return openMlflow(options.mlflow ?? {}, connections, ctx);
  }
}

function openMlflow(
  m: MlflowSettings,
  connections: CloudConnections,
  ctx: Pick<StepContext, 'workspace' | 'log' | 'env' | 'setSecret' | 'inputLabel'>,
): ModelRegistry {
  const label = ctx.inputLabel('mlflowTrackingUri');
  const uri = m.trackingUri ?? ctx.env.MLFLOW_TRACKING_URI;
  if (!uri) {
    throw new StepError('The MLflow registry needs a tracking server, but none is set.', {
      hint: `Set ${label} (or MLFLOW_TRACKING_URI) to the server's URL, e.g. https://mlflow.example.com.`,
    });
  }
  const token = m.token ?? ctx.env.MLFLOW_TRACKING_TOKEN;
  const password = m.password ?? ctx.env.MLFLOW_TRACKING_PASSWORD;
  for (const secret of [token, password]) if (secret) ctx.setSecret(secret);
  const common = { alias: m.alias, workspace: ctx.workspace, retry: connections.retry, log: ctx.log, uriLabel: label };
  if (uri.startsWith('azureml://')) {
    // An Azure ML workspace's MLflow endpoint: https on the regional host, with the workspace's ARM-scoped token.
    const az = connections.azure();
    const scope = `${(az.armEndpoint ?? 'https://management.azure.com').replace(/\/+$/, '')}/.default`;
    return new MlflowRegistry({ ...common, trackingUri: uri.replace(/^azureml:\/\//, 'https://'), token: () => az.auth.token(scope) });
  }
  return new MlflowRegistry({ ...common, trackingUri: uri, token, username: m.username ?? ctx.env.MLFLOW_TRACKING_USERNAME, password });
}

/** Values of `cloudInputs` + `registryInputs` (see shared/cloud/inputs.ts) as a step receives them. */
export interface RegistryInputValues extends CloudInputValues {
  registry: RegistryKind;
  registryPath: string;
  registryMetricsS3Prefix?: string;
  mlflowTrackingUri?: string;
  mlflowToken?: string;
  mlflowUsername?: string;
  mlflowPassword?: string;
  registryAlias?: string;
}

/**
 * For gate-metrics, promote-release and friends: merge `cloudInputs` and `registryInputs` into the step, then
 * call this; pass the step's `connections` when another part of it (an OTA store) already talks to the cloud.
 */
export function openRegistryFromInputs(
  inputs: RegistryInputValues,
  ctx: StepContext,
  settings: Pick<CloudSettings, 'identityOptions' | 'retry'> = {},
  connections: CloudConnections = connectionsFromInputs(inputs, ctx, settings),
): ModelRegistry {
  return openRegistry(
    { kind: inputs.registry, path: inputs.registryPath, metricsS3Prefix: inputs.registryMetricsS3Prefix, mlflow: mlflowSettings(inputs) },
    connections,
    ctx,
  );
}

/** The MLflow part of `registryInputs`. */
export function mlflowSettings(
  inputs: Pick<RegistryInputValues, 'mlflowTrackingUri' | 'mlflowToken' | 'mlflowUsername' | 'mlflowPassword' | 'registryAlias'>,
): MlflowSettings {
  return {
    trackingUri: inputs.mlflowTrackingUri,
    token: inputs.mlflowToken,
    username: inputs.mlflowUsername,
    password: inputs.mlflowPassword,
    alias: inputs.registryAlias,
  };
}

export type { ApprovalEvidence, ApprovalStatus, ModelRegistry, ModelStage, ModelVersion, RegisterModelInput } from './types';
