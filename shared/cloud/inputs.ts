/**
 * Step inputs that reach AWS and Azure, shared by every step that talks to a training backend or a model
 * registry so they are spelt the same everywhere. Spread into a step's `inputs`.
 */
export const cloudInputs = {
  region: { type: 'string', description: 'AWS region (default: AWS_REGION from the environment).' },
  roleToAssume: {
    type: 'string',
    description:
      'IAM role ARN. On GitHub the step exchanges a fresh OIDC token for it on every refresh (needs `permissions: id-token: write`); elsewhere it is assumed from the default credentials.',
  },
  azureSubscriptionId: { type: 'string', description: 'Azure subscription of the Azure ML workspace (default: the service connection’s).' },
  azureResourceGroup: { type: 'string', description: 'Resource group of the Azure ML workspace.' },
  azureWorkspace: { type: 'string', description: 'Azure ML workspace name.' },
  azureClientId: { type: 'string', description: 'App (client) id for OIDC federation on GitHub (default: AZURE_CLIENT_ID).' },
  azureTenantId: { type: 'string', description: 'Tenant id for OIDC federation on GitHub (default: AZURE_TENANT_ID).' },
  azureServiceConnection: {
    type: 'connection',
    connection: 'AzureRM',
    description:
      'Azure Resource Manager service connection (workload identity federation recommended; also service principal secret or certificate, and managed identity). Workload identity federation needs `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` in the task env.',
  },
  awsServiceConnection: {
    type: 'connection',
    connection: 'AWS',
    description:
      'AWS service connection of the AWS Toolkit for Azure DevOps: access keys (optionally assuming the connection’s role) or OpenID Connect with a role (needs `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` in the task env).',
  },
} as const;

export const registryInputs = {
  registry: {
    type: 'enum',
    options: ['local', 'sagemaker', 'azureml', 'mlflow'],
    default: 'local',
    description: 'Model registry: a local folder, SageMaker Model Registry, Azure ML models or an MLflow Model Registry.',
  },
  registryPath: { type: 'path', default: '.mlship/registry', description: 'Folder of the local registry (one JSON file per model).' },
  registryMetricsS3Prefix: {
    type: 'string',
    description: 'SageMaker registry: s3://bucket/prefix/ for metrics documents when the model artifact is not in S3.',
  },
  mlflowTrackingUri: {
    type: 'string',
    description:
      'MLflow registry: tracking server URL (default MLFLOW_TRACKING_URI); an Azure ML workspace’s azureml://… MLflow URI uses the Azure credentials.',
  },
  mlflowToken: { type: 'secret', description: 'MLflow registry: bearer token (default MLFLOW_TRACKING_TOKEN).' },
  mlflowUsername: { type: 'string', description: 'MLflow registry: basic-auth user (default MLFLOW_TRACKING_USERNAME).' },
  mlflowPassword: { type: 'secret', description: 'MLflow registry: basic-auth password (default MLFLOW_TRACKING_PASSWORD).' },
  registryAlias: {
    type: 'string',
    default: 'champion',
    description: 'MLflow registry: alias that marks the production version; promote-release moves it.',
  },
} as const;
