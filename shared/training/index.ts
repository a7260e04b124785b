import * as path from 'node:path';
import type { Logger } from '../core/context';
import { AzureMlBackend } from './backends/azureml';
import { LocalBackend } from './backends/local';
import { SageMakerBackend } from './backends/sagemaker';
import type { CloudConnections } from '../cloud/connections';
import type { BackendKind, JobSpec, TrainingBackend } from './types';

export interface BackendContext {
  workspace: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  signal?: AbortSignal;
  /** Tags tying cloud jobs to the run that started them. */
  runTags?: Record<string, string>;
}

/** The training backend for `kind`, with credentials from `connections`; `spec` may be partial when attaching. */
export function createBackend(
  kind: BackendKind,
  spec: Partial<JobSpec> | undefined,
  connections: CloudConnections,
  ctx: BackendContext,
): TrainingBackend {
  switch (kind) {
    case 'local':
      return new LocalBackend({
        jobsDir: path.resolve(ctx.workspace, spec?.local?.jobsDir ?? '.mlship/jobs'),
        workspace: ctx.workspace,
        env: ctx.env,
      });
    case 'sagemaker': {
      const aws = connections.aws();
      return new SageMakerBackend({
        region: aws.region,
        auth: aws.auth,
        endpoint: aws.sagemakerEndpoint,
        s3Endpoint: aws.s3Endpoint,
        logsEndpoint: aws.logsEndpoint,
        workspace: ctx.workspace,
        retry: connections.retry,
        log: ctx.log,
        runTags: ctx.runTags,
        signal: ctx.signal,
      });
    }
    case 'azureml': {
      const az = connections.azure();
      return new AzureMlBackend({
        ...az.workspace,
        auth: az.auth,
        armEndpoint: az.armEndpoint,
        retry: connections.retry,
        log: ctx.log,
        runTags: ctx.runTags,
        modelOutput: spec?.azureml?.modelOutput,
        signal: ctx.signal,
        checkoutDir: ctx.workspace,
      });
    }
  }
}

export { CloudConnections } from '../cloud/connections';
export { DEFAULT_RETRY, type RetryPolicy } from '../core/retry';
export type { BackendKind, JobOutputs, JobSpec, JobStatus, TrainingBackend } from './types';
