import {
  CreateTrainingJobCommand,
  DescribeTrainingJobCommand,
  SageMakerClient,
  StopTrainingJobCommand,
  type CreateTrainingJobRequest,
  type DescribeTrainingJobResponse,
} from '@aws-sdk/client-sagemaker';
import * as path from 'node:path';
import { CloudWatchLogsClient, DescribeLogStreamsCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../../core/context';
import type { AwsAuth } from '../../cloud/auth/aws';
import { AwsCaller } from '../../cloud/aws-call';
import { sageMakerCaller } from '../../cloud/sagemaker-caller';
import { awsErrorName } from '../../cloud/aws-errors';
import type { RetryPolicy } from '../../core/retry';
import type { JobOutputs, JobSpec, JobState, JobStatus, LogChunk, TrainingBackend } from '../types';
import { uploadSourceDir } from './sagemaker-source';

export interface SageMakerBackendOptions {
  region: string;
  auth: AwsAuth;
  /** Endpoint override (VPC endpoint, FIPS, or a test fake). */
  endpoint?: string;
  /** S3 endpoint override, for the source folder upload. */
  s3Endpoint?: string;
  /** CloudWatch Logs endpoint override, for streaming the job's logs. */
  logsEndpoint?: string;
  /** Folder against which a local sagemaker.sourceDir is resolved. */
  workspace?: string;
  retry: RetryPolicy;
  log: Logger;
  /** Tags tying the job to the commit and run that started it. */
  runTags?: Record<string, string>;
  /** Ends retry backoff of status polls when the step is cancelled; stopping the job ignores it. */
  signal?: AbortSignal;
}

const LOG_GROUP = '/aws/sagemaker/TrainingJobs';

const STATES: Record<string, JobState> = {
  InProgress: 'running',
  Stopping: 'stopping',
  Completed: 'completed',
  Failed: 'failed',
  Stopped: 'stopped',
};

export class SageMakerBackend implements TrainingBackend {
  readonly kind = 'sagemaker' as const;
  private readonly aws: AwsCaller<SageMakerClient>;
  /** Last description per job, so outputs() need not describe again. */
  private readonly described = new Map<string, DescribeTrainingJobResponse>();
  private s3Caller?: AwsCaller<S3Client>;
  private logsCaller?: AwsCaller<CloudWatchLogsClient>;

  constructor(private readonly options: SageMakerBackendOptions) {
    this.aws = sageMakerCaller(options);
  }

  private s3(): AwsCaller<S3Client> {
    const o = this.options;
    this.s3Caller ??= new AwsCaller(
      'S3',
      () =>
        new S3Client({
          region: o.region,
          endpoint: o.s3Endpoint,
          forcePathStyle: Boolean(o.s3Endpoint),
          credentials: o.auth.credentials,
          maxAttempts: 1,
        }),
      o.auth,
      o.retry,
      o.log,
    );
    return this.s3Caller;
  }

  preflight(): Promise<void> {
    return this.options.auth.check();
  }

  async submit(name: string, spec: JobSpec): Promise<{ created: boolean }> {
    const sourceDir = spec.sagemaker?.sourceDir;
    if (sourceDir && !sourceDir.startsWith('s3://')) {
      // A local folder: packed and uploaded as the SDK does, then referenced like any S3 source_dir.
      const uploaded = await uploadSourceDir({
        dir: path.resolve(this.options.workspace ?? process.cwd(), sourceDir),
        entryPoint: spec.sagemaker?.entryPoint,
        outputPath: spec.outputPath!,
        jobName: name,
        s3: this.s3(),
        log: this.options.log,
      });
      spec = { ...spec, sagemaker: { ...spec.sagemaker, sourceDir: uploaded.uri } };
    }
    const request = createTrainingJobRequest(name, spec, this.options.runTags ?? {}, this.options.region);
    return this.aws.call<{ created: boolean }>(
      'CreateTrainingJob',
      async (c) => {
        await c.send(new CreateTrainingJobCommand(request));
        return { created: true };
      },
      // A create that timed out but went through, or a concurrent attempt, both surface as ResourceInUse.
      (error) => (awsErrorName(error) === 'ResourceInUse' ? { value: { created: false } } : undefined),
    );
  }

  async status(name: string): Promise<JobStatus | undefined> {
    const job = await this.aws.call(
      'DescribeTrainingJob',
      (c) => c.send(new DescribeTrainingJobCommand({ TrainingJobName: name })) as Promise<DescribeTrainingJobResponse | undefined>,
      (error) => (isNotFound(error) ? { value: undefined } : undefined),
      this.options.signal,
    );
    if (!job) return undefined;
    this.described.set(name, job);
    return toStatus(name, job);
  }

  async cancel(name: string): Promise<void> {
    await this.aws.call(
      'StopTrainingJob',
      async (c) => {
        await c.send(new StopTrainingJobCommand({ TrainingJobName: name }));
      },
      // Already finished or already stopping: nothing left to stop.
      (error) => (awsErrorName(error) === 'ValidationException' ? { value: undefined } : undefined),
    );
  }

  async outputs(name: string): Promise<JobOutputs> {
    const job = this.described.get(name) ?? (await this.status(name), this.described.get(name));
    const metrics: Record<string, number> = {};
    for (const m of job?.FinalMetricDataList ?? []) {
      if (m.MetricName && typeof m.Value === 'number' && Number.isFinite(m.Value)) metrics[m.MetricName] = m.Value;
    }
    return { modelUri: job?.ModelArtifacts?.S3ModelArtifacts, metrics };
  }

  consoleUrl(name: string): string {
    const r = this.options.region;
    return `https://${r}.console.aws.amazon.com/sagemaker/home?region=${r}#/jobs/${encodeURIComponent(name)}`;
  }

  /**
   * New lines of the job's CloudWatch Logs streams (`/aws/sagemaker/TrainingJobs`, one `<job>/algo-N-…` stream
   * per instance), as the SDK's `logs=True` shows them. The cursor keeps each stream's forward token.
   */
  async logs(name: string, cursor?: string): Promise<LogChunk> {
    const o = this.options;
    this.logsCaller ??= new AwsCaller(
      'CloudWatch Logs',
      () => new CloudWatchLogsClient({ region: o.region, endpoint: o.logsEndpoint, credentials: o.auth.credentials, maxAttempts: 1 }),
      o.auth,
      o.retry,
      o.log,
    );
    const logs = this.logsCaller;
    const tokens = (cursor ? JSON.parse(cursor) : {}) as Record<string, string>;
    const notYet = (error: unknown) => (awsErrorName(error) === 'ResourceNotFoundException' ? { value: undefined } : undefined);
    const found = await logs.call(
      'DescribeLogStreams',
      (c) => c.send(new DescribeLogStreamsCommand({ logGroupName: LOG_GROUP, logStreamNamePrefix: `${name}/` })),
      notYet,
      o.signal,
    );
    const streams = (found?.logStreams ?? [])
      .map((s) => s.logStreamName!)
      .filter(Boolean)
      .sort();
    const lines: string[] = [];
    for (const stream of streams) {
      const page = await logs.call(
        'GetLogEvents',
        (c) =>
          c.send(
            new GetLogEventsCommand({
              logGroupName: LOG_GROUP,
              logStreamName: stream,
              startFromHead: true,
              nextToken: tokens[stream],
              limit: 500,
            }),
          ),
        notYet,
        o.signal,
      );
      if (!page) continue;
      if (page.nextForwardToken) tokens[stream] = page.nextForwardToken;
      const host =
        streams.length > 1
          ? `[${stream
              .slice(name.length + 1)
              .split('-')
              .slice(0, 2)
              .join('-')}] `
          : '';
      for (const e of page.events ?? []) for (const line of (e.message ?? '').replace(/\n$/, '').split('\n')) lines.push(host + line);
    }
    return { lines, cursor: JSON.stringify(tokens) };
  }

  /** CloudWatch Logs console link for the job's streams. */
  logsUrl(name: string): string {
    const r = this.options.region;
    return `https://${r}.console.aws.amazon.com/cloudwatch/home?region=${r}#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs$3FlogStreamNameFilter$3D${encodeURIComponent(name)}`;
  }
}

function isNotFound(error: unknown): boolean {
  const name = awsErrorName(error);
  // DescribeTrainingJob answers ValidationException "Requested resource not found." for unknown names
  // (moto: "Could not find training job …").
  return name === 'ResourceNotFound' || (name === 'ValidationException' && /not found|could not find/i.test((error as Error).message));
}

function toStatus(name: string, job: DescribeTrainingJobResponse): JobStatus {
  const status = job.TrainingJobStatus ?? 'InProgress';
  const transitions = job.SecondaryStatusTransitions ?? [];
  return {
    name,
    state: STATES[status] ?? 'running',
    status,
    secondaryStatus: job.SecondaryStatus,
    message: transitions[transitions.length - 1]?.StatusMessage,
    failureReason: job.FailureReason,
    createdAt: job.CreationTime,
    startedAt: job.TrainingStartTime,
    endedAt: job.TrainingEndTime,
    billableSeconds: job.BillableTimeInSeconds,
    modelUri: job.ModelArtifacts?.S3ModelArtifacts,
  };
}

/** Maps a job spec onto CreateTrainingJob; exported for tests and for `--dry-run` style inspection. */
export function createTrainingJobRequest(
  name: string,
  spec: JobSpec,
  runTags: Record<string, string>,
  region: string,
): CreateTrainingJobRequest {
  const sm = spec.sagemaker ?? {};
  const framework = Boolean(sm.entryPoint);
  const hyperparameters: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.hyperparameters)) {
    // Framework (script mode) containers JSON-decode every hyperparameter, as the SageMaker Python SDK encodes them.
    hyperparameters[k] = framework ? JSON.stringify(v) : String(v);
  }
  if (framework) {
    hyperparameters.sagemaker_program = JSON.stringify(sm.entryPoint);
    if (sm.sourceDir) hyperparameters.sagemaker_submit_directory = JSON.stringify(sm.sourceDir);
    hyperparameters.sagemaker_region = JSON.stringify(region);
  }
  const maxRuntime = Math.round((spec.maxRuntimeMinutes ?? 24 * 60) * 60);
  const tags = { ...spec.tags, ...runTags };
  return {
    TrainingJobName: name,
    RoleArn: sm.roleArn,
    AlgorithmSpecification: {
      TrainingImage: sm.image,
      TrainingInputMode: sm.inputMode ?? 'File',
      MetricDefinitions: sm.metricDefinitions?.map((m) => ({ Name: m.name, Regex: m.regex })),
      ...(spec.command && !framework ? { ContainerEntrypoint: ['/bin/sh', '-c'], ContainerArguments: [spec.command] } : {}),
    },
    InputDataConfig: Object.entries(spec.inputs).map(([channel, input]) => ({
      ChannelName: channel,
      DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: input.uri, S3DataDistributionType: 'FullyReplicated' } },
    })),
    OutputDataConfig: { S3OutputPath: spec.outputPath, KmsKeyId: sm.outputKmsKeyId },
    ResourceConfig: { InstanceType: sm.instanceType as never, InstanceCount: sm.instanceCount ?? 1, VolumeSizeInGB: sm.volumeSizeGb ?? 30 },
    StoppingCondition: {
      MaxRuntimeInSeconds: maxRuntime,
      ...(sm.spot ? { MaxWaitTimeInSeconds: Math.max(maxRuntime, Math.round(sm.spot.maxWaitMinutes * 60)) } : {}),
    },
    EnableManagedSpotTraining: sm.spot ? true : undefined,
    CheckpointConfig: sm.spot ? { S3Uri: sm.spot.checkpointS3Uri, LocalPath: sm.spot.checkpointLocalPath } : undefined,
    HyperParameters: Object.keys(hyperparameters).length ? hyperparameters : undefined,
    Environment: Object.keys(spec.environment).length ? spec.environment : undefined,
    EnableNetworkIsolation: sm.enableNetworkIsolation,
    VpcConfig: sm.vpc ? { Subnets: sm.vpc.subnets, SecurityGroupIds: sm.vpc.securityGroupIds } : undefined,
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
}
