/**
 * JSON schema of a training job spec (YAML or JSON). Every object is closed (`additionalProperties: false`)
 * so a misspelt field fails in seconds instead of silently training with defaults for hours.
 * Backend-specific required fields are checked after the merge with direct inputs (see spec.ts).
 */
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

const s3Uri = {
  type: 'string',
  pattern: '^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$',
  description: 'an S3 URI like s3://bucket/prefix/',
} as const;

const dataInput = {
  anyOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      additionalProperties: false,
      required: ['uri'],
      properties: {
        uri: { type: 'string', minLength: 1 },
        type: { enum: ['uri_folder', 'uri_file', 'mltable', 'custom_model', 'mlflow_model'] },
        mode: { enum: ['ro_mount', 'download', 'direct'] },
      },
    },
  ],
} as const;

export const jobSpecSchema = {
  $id: 'https://mlship.dev/schemas/training-job.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: '^[a-zA-Z0-9][a-zA-Z0-9-]{0,40}$', description: 'letters, digits and hyphens, at most 41 characters' },
    backend: { enum: ['local', 'sagemaker', 'azureml'] },
    command: { type: 'string', minLength: 1 },
    inputs: { type: 'object', propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$' }, additionalProperties: dataInput },
    outputPath: { type: 'string', minLength: 1 },
    hyperparameters: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    environment: stringMap,
    tags: stringMap,
    maxRuntimeMinutes: { type: 'number', exclusiveMinimum: 0 },
    metricsFile: { type: 'string', minLength: 1 },
    dataFingerprint: { type: 'string' },
    sagemaker: {
      type: 'object',
      additionalProperties: false,
      properties: {
        region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-\\d$', description: 'an AWS region like eu-west-1' },
        image: { type: 'string', minLength: 1 },
        roleArn: {
          type: 'string',
          pattern: '^arn:aws[a-z-]*:iam::\\d{12}:role/.+$',
          description: 'an IAM role ARN like arn:aws:iam::123456789012:role/SageMakerTraining',
        },
        instanceType: {
          type: 'string',
          pattern: '^ml\\.[a-z0-9]+\\.[a-z0-9]+$',
          description: 'a SageMaker instance type like ml.g5.2xlarge',
        },
        instanceCount: { type: 'integer', minimum: 1 },
        volumeSizeGb: { type: 'integer', minimum: 1 },
        inputMode: { enum: ['File', 'FastFile', 'Pipe'] },
        entryPoint: { type: 'string', minLength: 1 },
        sourceDir: { type: 'string', minLength: 1, description: 'an s3:// tarball, or a local folder packed and uploaded at submit' },
        spot: {
          type: 'object',
          additionalProperties: false,
          required: ['maxWaitMinutes', 'checkpointS3Uri'],
          properties: {
            maxWaitMinutes: { type: 'number', exclusiveMinimum: 0 },
            checkpointS3Uri: s3Uri,
            checkpointLocalPath: { type: 'string' },
          },
        },
        metricDefinitions: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'regex'],
            properties: { name: { type: 'string', minLength: 1 }, regex: { type: 'string', minLength: 1 } },
          },
        },
        outputKmsKeyId: { type: 'string' },
        enableNetworkIsolation: { type: 'boolean' },
        vpc: {
          type: 'object',
          additionalProperties: false,
          required: ['subnets', 'securityGroupIds'],
          properties: {
            subnets: { type: 'array', items: { type: 'string' }, minItems: 1 },
            securityGroupIds: { type: 'array', items: { type: 'string' }, minItems: 1 },
          },
        },
      },
    },
    azureml: {
      type: 'object',
      additionalProperties: false,
      properties: {
        subscriptionId: { type: 'string', pattern: '^[0-9a-fA-F-]{36}$', description: 'a subscription GUID' },
        resourceGroup: { type: 'string', minLength: 1 },
        workspace: { type: 'string', pattern: '^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$', description: 'an Azure ML workspace name' },
        compute: { type: 'string', minLength: 1 },
        environment: { type: 'string', minLength: 1 },
        code: { type: 'string', minLength: 1 },
        codePath: { type: 'string', minLength: 1, description: 'a local folder, uploaded as a content-hashed code asset' },
        experimentName: { type: 'string', minLength: 1 },
        displayName: { type: 'string' },
        description: { type: 'string' },
        instanceType: { type: 'string' },
        instanceCount: { type: 'integer', minimum: 1 },
        distribution: {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: {
            type: { enum: ['pytorch', 'mpi', 'tensorflow'] },
            processCountPerInstance: { type: 'integer', minimum: 1 },
            workerCount: { type: 'integer', minimum: 1 },
            parameterServerCount: { type: 'integer', minimum: 0 },
          },
        },
        shmSize: { type: 'string', pattern: '^\\d+[bkmg]?$', description: 'a size like 16g' },
        modelOutput: { type: 'string', minLength: 1 },
        outputs: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['type'],
            properties: {
              type: { enum: ['uri_folder', 'uri_file', 'custom_model', 'mlflow_model'] },
              uri: { type: 'string' },
              mode: { enum: ['rw_mount', 'upload'] },
            },
          },
        },
        armEndpoint: { type: 'string', pattern: '^https?://', description: 'a URL like https://management.usgovcloudapi.net' },
      },
    },
    local: {
      type: 'object',
      additionalProperties: false,
      properties: { workingDirectory: { type: 'string' }, jobsDir: { type: 'string' } },
    },
  },
} as const;
