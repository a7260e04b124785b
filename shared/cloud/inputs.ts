/**
 * Step inputs that reach AWS and Azure, shared by every step that talks to a training backend or a model
 * registry so they are spelt the same everywhere. Spread into a step's `inputs`.
 */
export const cloudInputs = {
  region: { type: 'string', description: 'AWS region (default: AWS_REGION from the environment).' },
  roleToAssume: {
    type: 'string',
    description: 'IAM role ARN. On GitHub the step exchanges a fresh OIDC token for it on every refresh (needs `permissions: id-token: write`); elsewhere it is assumed from the default credentials.',
  },
  azureSubscriptionId: { type: 'string', description: 'Azure subscription of the Azure ML workspace (default: the service connection’s).' },
  azureResourceGroup: { type: 'string', description: 'Resource group of the Azure ML workspace.' },
  azureWorkspace: { type: 'string', description: 'Azure ML workspace name.' },
  azureClientId: { type: 'string', description: 'App (client) id for OIDC federation on GitHub (default: AZURE_CLIENT_ID).' },
  azureTenantId: { type: 'string', description: 'Tenant id for OIDC federation on GitHub (default: AZURE_TENANT_ID).' },
  azureServiceConnection: {
    type: 'connection',
    connection: 'AzureRM',
    description: 'Azure Resource Manager service connection (workload identity federation recommended; also service principal secret or certificate, and managed identity). Workload identity federation needs `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` in the task env.',
  },
  awsServiceConnection: {
    type: 'connection',
    connection: 'AWS',
    description: 'AWS service connection of the AWS Toolkit for Azure DevOps: access keys (optionally assuming the connection’s role) or OpenID Connect with a role (needs `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` in the task env).',
  },
} as const;

export const registryInputs = {
  registry: { type: 'enum', options: ['local', 'sagemaker', 'azureml'], default: 'local', description: 'Model registry: a local folder, SageMaker Model Registry or Azure ML models.' },
  registryPath: { type: 'path', default: '.mlship/registry', description: 'Folder of the local registry (one JSON file per model).' },
  registryMetricsS3Prefix: { type: 'string', description: 'SageMaker registry: s3://bucket/prefix/ for metrics documents when the model artifact is not in S3.' },
} as const;
