/**
 * One vocabulary for every training backend: the step and the waiter only ever see these shapes, so
 * local, SageMaker and Azure ML jobs are submitted, watched, stopped and read back the same way.
 */
export type BackendKind = 'local' | 'sagemaker' | 'azureml';

/** Normalised lifecycle; `status` keeps the backend's own word for people reading logs. */
export type JobState = 'pending' | 'running' | 'stopping' | 'completed' | 'failed' | 'stopped';

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'stopped']);

export interface JobStatus {
  name: string;
  state: JobState;
  /** Backend status, e.g. `InProgress` (SageMaker), `Running` (Azure ML). */
  status: string;
  /** Finer phase, e.g. SageMaker's `Downloading` / `Training`. */
  secondaryStatus?: string;
  /** Latest human-readable status message from the service. */
  message?: string;
  failureReason?: string;
  createdAt?: Date;
  startedAt?: Date;
  endedAt?: Date;
  billableSeconds?: number;
  modelUri?: string;
}

export interface JobOutputs {
  modelUri?: string;
  /** Final metrics, flattened to name → number. */
  metrics: Record<string, number>;
  /** Metrics per epoch (or logged step), oldest first, where the backend has them. */
  history?: MetricPoint[];
}

export interface MetricPoint {
  /** Epoch or step number. */
  step: number;
  values: Record<string, number>;
}

export interface LogChunk {
  lines: string[];
  /** Opaque position to pass back for the next chunk. */
  cursor: string;
}

export interface TrainingBackend {
  readonly kind: BackendKind;
  /** Fails early with a StepError when no credential can be found, before anything is created. */
  preflight(): Promise<void>;
  /**
   * Creates job `name` from `spec`. Returns `created: false` when a job with that name already exists, so a
   * re-run attaches to it instead of paying for a second one.
   */
  submit(name: string, spec: JobSpec): Promise<{ created: boolean }>;
  /** Undefined when no job has that name. */
  status(name: string): Promise<JobStatus | undefined>;
  /** Asks the service to stop the job; returns once the request is accepted. */
  cancel(name: string): Promise<void>;
  outputs(name: string, status: JobStatus): Promise<JobOutputs>;
  /** New log lines since `cursor`; only where the backend can stream them. */
  logs?(name: string, cursor?: string): Promise<LogChunk>;
  consoleUrl(name: string): string;
  /** Where the job's logs can be read, when the step does not stream them itself. */
  logsUrl?(name: string): string;
}

/** One input channel: a URI (s3://, azureml://, https://) or a local path for the local backend. */
export interface DataInput {
  uri: string;
  /** Azure ML input type; SageMaker treats every channel as an S3 prefix. */
  type?: 'uri_folder' | 'uri_file' | 'mltable' | 'custom_model' | 'mlflow_model';
  mode?: 'ro_mount' | 'download' | 'direct';
}

export interface SageMakerSection {
  region?: string;
  image?: string;
  roleArn?: string;
  instanceType?: string;
  instanceCount?: number;
  volumeSizeGb?: number;
  inputMode?: 'File' | 'FastFile' | 'Pipe';
  /** Framework containers: script inside `sourceDir`, passed as sagemaker_program. `sourceDir` is an S3 tar.gz, or a local folder that submit packs and uploads under `<outputPath>/<job>/source/` (as the SDK's source_dir). */
  entryPoint?: string;
  sourceDir?: string;
  spot?: { maxWaitMinutes: number; checkpointS3Uri: string; checkpointLocalPath?: string };
  metricDefinitions?: { name: string; regex: string }[];
  outputKmsKeyId?: string;
  enableNetworkIsolation?: boolean;
  vpc?: { subnets: string[]; securityGroupIds: string[] };
}

export interface AzureMlSection {
  subscriptionId?: string;
  resourceGroup?: string;
  workspace?: string;
  compute?: string;
  environment?: string;
  /** Existing code asset (ARM id or azureml: reference). */
  code?: string;
  /** Local code folder, uploaded at submit to the default datastore as a content-hashed code asset. */
  codePath?: string;
  experimentName?: string;
  displayName?: string;
  description?: string;
  instanceType?: string;
  instanceCount?: number;
  distribution?: {
    type: 'pytorch' | 'mpi' | 'tensorflow';
    processCountPerInstance?: number;
    workerCount?: number;
    parameterServerCount?: number;
  };
  shmSize?: string;
  /** Name of the job output holding the model. */
  modelOutput?: string;
  outputs?: Record<
    string,
    { type: 'uri_folder' | 'uri_file' | 'custom_model' | 'mlflow_model'; uri?: string; mode?: 'rw_mount' | 'upload' }
  >;
  /** ARM endpoint for sovereign clouds. */
  armEndpoint?: string;
}

export interface LocalSection {
  workingDirectory?: string;
  /** Where local jobs keep status, logs and outputs; default `.mlship/jobs` in the workspace. */
  jobsDir?: string;
}

/** A validated job spec: the file merged with the step's direct inputs. */
export interface JobSpec {
  name?: string;
  command?: string;
  inputs: Record<string, DataInput>;
  outputPath?: string;
  hyperparameters: Record<string, string | number | boolean>;
  environment: Record<string, string>;
  tags: Record<string, string>;
  maxRuntimeMinutes?: number;
  /** Local backend: metrics file relative to the output folder. */
  metricsFile: string;
  dataFingerprint?: string;
  sagemaker?: SageMakerSection;
  azureml?: AzureMlSection;
  local?: LocalSection;
}
