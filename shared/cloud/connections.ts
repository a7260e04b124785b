import type { IdentityOptions } from './auth/azure';
import { StepError } from '../core/errors';
import { awsEndpoint, resolveAwsAuth, resolveAwsRegion, type AwsAuth } from './auth/aws';
import { resolveAzureAuth, type AzureAuth } from './auth/azure';
import type { AuthContext } from './auth/context';
import type { AzureWorkspace } from './azureml-workspace';
import { DEFAULT_RETRY, type RetryPolicy } from './retry';

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
    const auth = resolveAwsAuth(this.ctx, { region, roleToAssume: this.settings.roleToAssume, serviceConnection: this.settings.awsServiceConnection, serviceConnectionLabel: this.ctx.inputLabel('awsServiceConnection') });
    this.awsConnection = { region, auth, sagemakerEndpoint: awsEndpoint(this.ctx.env, 'SAGEMAKER'), s3Endpoint: awsEndpoint(this.ctx.env, 'S3'), logsEndpoint: awsEndpoint(this.ctx.env, 'CLOUDWATCH_LOGS') };
    return this.awsConnection;
  }

  azure(): AzureConnection {
    if (this.azureConnection) return this.azureConnection;
    const a = this.settings.azure ?? {};
    const auth = resolveAzureAuth(this.ctx, {
      clientId: a.clientId,
      tenantId: a.tenantId,
      serviceConnection: a.serviceConnection,
      serviceConnectionLabel: this.ctx.inputLabel('azureServiceConnection'),
      identityOptions: this.settings.identityOptions,
    });
    const subscriptionId = a.subscriptionId ?? auth.subscriptionId ?? this.ctx.env.AZURE_SUBSCRIPTION_ID;
    const missing = [
      ['subscriptionId', 'azureSubscriptionId', subscriptionId],
      ['resourceGroup', 'azureResourceGroup', a.resourceGroup],
      ['workspace', 'azureWorkspace', a.workspace],
    ].filter(([, , v]) => !v);
    if (missing.length) {
      throw new StepError(`The Azure ML workspace is not fully named: ${missing.map(([f]) => f).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing.`, {
        hint: `Set ${missing.map(([f, input]) => `azureml.${f} in the job spec or the input ${this.ctx.inputLabel(input!)}`).join('; ')}.`,
      });
    }
    this.azureConnection = { auth, workspace: { subscriptionId: subscriptionId!, resourceGroup: a.resourceGroup!, workspace: a.workspace! }, armEndpoint: a.armEndpoint };
    return this.azureConnection;
  }
}
