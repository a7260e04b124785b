import type { IdentityOptions } from './auth/azure';
import { StepError } from '../core/errors';
import { awsEndpoint, resolveAwsAuth, resolveAwsRegion, type AwsAuth } from './auth/aws';
import { resolveAzureAuth, type AzureAuth } from './auth/azure';
import type { AuthContext } from './auth/context';
import type { AzureWorkspace } from './azureml-workspace';
import { DEFAULT_RETRY, type RetryPolicy } from '../core/retry';

export interface CloudSettings {
  region?: string;
  roleToAssume?: string;
  /** Azure DevOps: AWS service connection id (input awsServiceConnection). */
  awsServiceConnection?: string;
  azure?: Partial<AzureWorkspace> & { clientId?: string; tenantId?: string; serviceConnection?: string; armEndpoint?: string };
  /** Passed to @azure/identity credentials (sovereign-cloud authority host, or a test transport). */
  identityOptions?: IdentityOptions;
  retry?: RetryPolicy;
}

export interface AwsConnection {
  region: string;
  auth: AwsAuth;
  sagemakerEndpoint?: string;
  s3Endpoint?: string;
  /** CloudWatch Logs endpoint override (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS), for streaming training logs. */
  logsEndpoint?: string;
}

export interface AzureConnection {
  auth: AzureAuth;
  workspace: AzureWorkspace;
  armEndpoint?: string;
}

/**
 * Credentials and endpoints for one step run, resolved lazily and shared, so the training backend and the
 * registry reuse one token cache and a step that never touches Azure never asks for an Azure credential.
 */
export class CloudConnections {
  readonly retry: RetryPolicy;
  private awsConnection?: AwsConnection;
  private awsCredentials?: AwsAuth;
  private azureCredentials?: AzureAuth;
  private azureConnection?: AzureConnection;

  constructor(
    private readonly ctx: AuthContext & { inputLabel(key: string): string },
    private readonly settings: CloudSettings,
  ) {
    this.retry = settings.retry ?? DEFAULT_RETRY;
  }

  aws(): AwsConnection {
    if (this.awsConnection) return this.awsConnection;
    const region = resolveAwsRegion(this.ctx.env, this.settings.region, this.ctx.inputLabel('region'));
    this.awsConnection = {
      region,
      auth: this.awsAuth(region),
      sagemakerEndpoint: awsEndpoint(this.ctx.env, 'SAGEMAKER'),
      s3Endpoint: awsEndpoint(this.ctx.env, 'S3'),
      logsEndpoint: awsEndpoint(this.ctx.env, 'CLOUDWATCH_LOGS'),
    };
    return this.awsConnection;
  }

  /**
   * AWS for an S3 bucket whose region may differ from the region of the rest of the run (an OTA bucket in
   * us-east-1 behind a CDN, a registry in eu-west-1). The bucket falls back to the run's region, then to the
   * environment, then to us-east-1, as S3 itself does; the credentials are the run's.
   */
  s3(bucketRegion?: string): AwsConnection {
    const env = this.ctx.env;
    const region = bucketRegion || this.settings.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
    return {
      region,
      auth: this.awsAuth(this.settings.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || region),
      s3Endpoint: awsEndpoint(env, 'S3'),
    };
  }

  /** One credential source per run: the region only picks the STS endpoint, so the first caller's is kept. */
  private awsAuth(region: string): AwsAuth {
    this.awsCredentials ??= resolveAwsAuth(this.ctx, {
      region,
      roleToAssume: this.settings.roleToAssume,
      serviceConnection: this.settings.awsServiceConnection,
      serviceConnectionLabel: this.ctx.inputLabel('awsServiceConnection'),
    });
    return this.awsCredentials;
  }

  /** The run's Azure identity alone, for services outside an Azure ML workspace (Blob Storage). */
  azureAuth(): AzureAuth {
    const a = this.settings.azure ?? {};
    this.azureCredentials ??= resolveAzureAuth(this.ctx, {
      clientId: a.clientId,
      tenantId: a.tenantId,
      serviceConnection: a.serviceConnection,
      serviceConnectionLabel: this.ctx.inputLabel('azureServiceConnection'),
      identityOptions: this.settings.identityOptions,
    });
    return this.azureCredentials;
  }

  azure(): AzureConnection {
    if (this.azureConnection) return this.azureConnection;
    const a = this.settings.azure ?? {};
    const auth = this.azureAuth();
    const subscriptionId = a.subscriptionId ?? auth.subscriptionId ?? this.ctx.env.AZURE_SUBSCRIPTION_ID;
    const missing = [
      ['subscriptionId', 'azureSubscriptionId', subscriptionId],
      ['resourceGroup', 'azureResourceGroup', a.resourceGroup],
      ['workspace', 'azureWorkspace', a.workspace],
    ].filter(([, , v]) => !v);
    if (missing.length) {
      throw new StepError(
        `The Azure ML workspace is not fully named: ${missing.map(([f]) => f).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing.`,
        {
          hint: `Set ${missing.map(([f, input]) => `azureml.${f} in the job spec or the input ${this.ctx.inputLabel(input!)}`).join('; ')}.`,
        },
      );
    }
    this.azureConnection = {
      auth,
      workspace: { subscriptionId: subscriptionId!, resourceGroup: a.resourceGroup!, workspace: a.workspace! },
      armEndpoint: a.armEndpoint,
    };
    return this.azureConnection;
  }
}

/** Values of `cloudInputs` (shared/cloud/inputs.ts), or the subset a step picks, as a step receives them. */
export interface CloudInputValues {
  region?: string;
  roleToAssume?: string;
  awsServiceConnection?: string;
  azureSubscriptionId?: string;
  azureResourceGroup?: string;
  azureWorkspace?: string;
  azureClientId?: string;
  azureTenantId?: string;
  azureServiceConnection?: string;
}

/** The connections a step's cloud inputs describe; one per run, shared by its store, registry and backend. */
export function connectionsFromInputs(
  inputs: CloudInputValues,
  ctx: AuthContext & { inputLabel(key: string): string },
  settings: Pick<CloudSettings, 'identityOptions' | 'retry'> = {},
): CloudConnections {
  return new CloudConnections(ctx, {
    region: inputs.region,
    roleToAssume: inputs.roleToAssume,
    awsServiceConnection: inputs.awsServiceConnection,
    azure: {
      subscriptionId: inputs.azureSubscriptionId,
      resourceGroup: inputs.azureResourceGroup,
      workspace: inputs.azureWorkspace,
      clientId: inputs.azureClientId,
      tenantId: inputs.azureTenantId,
      serviceConnection: inputs.azureServiceConnection,
    },
    ...settings,
  });
}

/**
 * Connections for code that runs outside a step (the device agent's report sink): credentials from the
 * environment and the default chains, as a step on a laptop would get them; nothing is logged.
 */
export function connectionsFromEnv(env: NodeJS.ProcessEnv, settings: CloudSettings = {}): CloudConnections {
  const ctx = {
    env,
    platform: 'local' as const,
    run: { id: `device-${process.pid}`, attempt: 1 },
    log: { debug() {}, info() {}, warning() {}, error() {} },
    setSecret() {},
    inputLabel: (key: string) => key,
  };
  return new CloudConnections(ctx, settings);
}
