import * as path from 'node:path';
import type { IdentityOptions } from '../../cloud/auth/azure';
import type { StepContext } from '../../core/context';
import { InputError, StepError } from '../../core/errors';
import { defineStep, type InputValues } from '../../core/step';
import { mlflowSettings, openRegistry } from '../../registry';
import type { ModelVersion } from '../../registry/types';
import { createBackend } from '../../training';
import { CloudConnections } from '../../cloud/connections';
import { mergeInputs } from '../../core/merge-inputs';
import { cloudInputs, registryInputs } from '../../cloud/inputs';
import { deriveJobName, isValidJobName, jobKey } from '../../training/job-name';
import { DEFAULT_RETRY, type RetryPolicy } from '../../core/retry';
import { loadJobSpec, requireBackendFields } from '../../training/spec';
import type { BackendKind } from '../../training/types';
import { describeStatus, waitForJob } from '../../training/wait';
import { attachTarget, chooseJob } from './job-target';
import { inputForPath, overridesFrom } from './overrides';
import { azureSettings, runTags, STATE, type SavedConnection } from './state';
import { cancelled, stopOrphanedJob } from './stop';
import { type TrainingResult, writeSummary } from './summary';

const inputs = mergeInputs(
  {
    backend: {
      type: 'enum',
      options: ['local', 'sagemaker', 'azureml'],
      description: 'Where to train: local (a child process, the default), sagemaker or azureml. Overrides `backend` in the job spec.',
    },
    jobSpec: {
      type: 'path',
      description: 'Job spec, YAML or JSON (see docs/submit-training.md). Direct inputs below override its fields.',
    },
    command: {
      type: 'string',
      description:
        'Training command (local and Azure ML; on SageMaker the container entry point). Azure ML-style placeholders for inputs.NAME and outputs.model are substituted (see docs/submit-training.md).',
    },
    image: { type: 'string', description: 'SageMaker training image URI.' },
    roleArn: { type: 'string', description: 'SageMaker execution role ARN the job runs as.' },
    instanceType: { type: 'string', description: 'Instance type (ml.g5.2xlarge on SageMaker, a VM size on Azure ML).' },
    instanceCount: { type: 'number', integer: true, min: 1, description: 'Number of instances.' },
    dataInputs: {
      type: 'list',
      description: 'Input channels, one name=uri per line (s3://, azureml://, or a local path for the local backend).',
    },
    outputPath: {
      type: 'string',
      description: 'Where the model goes: s3:// prefix on SageMaker, a datastore URI on Azure ML, a folder locally.',
    },
    hyperparameters: { type: 'list', description: 'One name=value per line; numbers and true/false keep their type.' },
    compute: { type: 'string', description: 'Azure ML compute cluster name or ARM id.' },
    azureEnvironment: { type: 'string', description: 'Azure ML environment as name:version, a registry URI or an ARM id.' },
    maxRuntimeMinutes: { type: 'number', min: 1, description: 'Longest the training itself may run before the service stops it.' },
  },
  cloudInputs,
  {
    azureArmEndpoint: {
      type: 'string',
      description:
        'Azure Resource Manager endpoint for sovereign clouds (default https://management.azure.com); sets azureml.armEndpoint, also for a standard Azure ML job YAML.',
    },
    wait: {
      type: 'boolean',
      default: true,
      description: 'Wait for the job to finish. false submits, prints the job name and returns (detached mode).',
    },
    timeoutMinutes: {
      type: 'number',
      min: 0,
      default: 0,
      description: 'Stop waiting after this long (0: no limit); the job is then stopped unless keep-running-on-cancel is true.',
    },
    pollInterval: { type: 'number', min: 0, description: 'Seconds between status checks (default 30 in the cloud, 1 locally).' },
    streamLogs: {
      type: 'boolean',
      default: true,
      description:
        'While waiting, print the training log into the CI log (local job log, SageMaker CloudWatch Logs streams, Azure ML user logs), one collapsible group per poll.',
    },
    logLinesPerPoll: {
      type: 'number',
      integer: true,
      min: 1,
      max: 10000,
      default: 200,
      description: 'Most training-log lines printed per poll; more wait for the next poll.',
    },
    jobName: {
      type: 'string',
      description:
        'Job to attach to (without a spec), or the exact name to submit under. Default: derived from the repository, run id and job, so re-runs attach.',
    },
    idempotencyKey: { type: 'string', description: 'Tells two submit-training steps in one job apart (default: the spec name or file).' },
    keepRunningOnCancel: {
      type: 'boolean',
      default: false,
      description: 'Leave the cloud job running when the pipeline is cancelled or the wait times out.',
    },
    rerunFailed: {
      type: 'boolean',
      default: false,
      description: 'When this run’s job already failed or was stopped, start a new one (name suffix -r2, -r3, …) instead of failing.',
    },
    register: {
      type: 'boolean',
      default: false,
      description: 'Register the trained model (artifact, metrics, commit, data fingerprint, job) in the model registry.',
    },
    modelName: { type: 'string', description: 'Registry model name (default: the spec name).' },
    dataFingerprint: { type: 'string', description: 'Fingerprint of the training data, recorded with the model.' },
  },
  registryInputs,
);

const outputs = {
  jobName: { description: 'Training job name (pass as job-name to attach later).' },
  status: { description: 'Final (or, when not waiting, current) status as the backend reports it.' },
  modelUri: { description: 'Model artifact URI (s3://…/model.tar.gz, azureml://jobs/…/outputs/model, or a local folder).' },
  metrics: { description: 'Final metrics as a JSON object.' },
  consoleUrl: { description: 'Link to the job in the SageMaker console, Azure ML studio, or the local job folder.' },
  modelVersion: { description: 'Registered model version, when register is true.' },
} as const;

type Inputs = InputValues<typeof inputs>;

export interface SubmitTrainingOptions {
  /** Backoff for throttled and failing cloud calls. */
  retry?: RetryPolicy;
  /** Passed to @azure/identity credentials (sovereign clouds' authority host; tests route them to a fake). */
  azureIdentityOptions?: IdentityOptions;
}

export function createSubmitTrainingStep(options: SubmitTrainingOptions = {}) {
  return defineStep({
    name: 'submit-training',
    title: 'Submit training',
    description:
      'Submits a training job to SageMaker, Azure ML or a local process, idempotently per workflow run; waits with progress, stops the job on cancel, and registers the model.',
    azure: { id: '9593e10e-27bb-4157-a7bc-2f70b102d0c9', major: 1, minor: 0, patch: 0, category: 'Build' },
    branding: { icon: 'cpu', color: 'purple' },
    inputs,
    outputs,
    async run(values, ctx) {
      try {
        return await submitTraining(values, ctx, options);
      } finally {
        // Tells the post entry that this process got to handle its own ending (and any cancellation).
        ctx.saveState(STATE.ended, '1');
      }
    },
    async post(values, ctx) {
      await stopOrphanedJob(values, ctx, options);
    },
  });
}

export const submitTrainingStep = createSubmitTrainingStep();

async function submitTraining(values: Inputs, ctx: StepContext, options: SubmitTrainingOptions) {
  let kind = 'local' as BackendKind;
  const { spec } = loadJobSpec(values.jobSpec, (fileBackend) => {
    kind = values.backend ?? fileBackend ?? 'local';
    return overridesFrom(values, kind, ctx.inputLabel);
  });
  const hasDefinition = Boolean(values.jobSpec || values.command || values.image);
  if (!hasDefinition && !values.jobName) {
    throw new InputError(
      `Give ${ctx.inputLabel('jobSpec')} (or ${ctx.inputLabel('command')}) to submit a job, or ${ctx.inputLabel('jobName')} to attach to one.`,
      {
        hint: 'See docs/submit-training.md for a job spec example.',
      },
    );
  }
  const attachOnly = !hasDefinition;
  requireBackendFields(spec, kind, attachOnly ? 'attach' : 'submit', values.jobSpec, (p) => inputForPath(p, ctx.inputLabel));

  const connection: SavedConnection = {
    region: spec.sagemaker?.region ?? values.region,
    azure: azureSettings(spec, values),
    jobsDir: spec.local?.jobsDir,
    modelOutput: spec.azureml?.modelOutput,
  };
  const connections = new CloudConnections(ctx, {
    region: connection.region,
    roleToAssume: values.roleToAssume,
    awsServiceConnection: values.awsServiceConnection,
    azure: connection.azure,
    identityOptions: options.azureIdentityOptions,
    retry: options.retry ?? DEFAULT_RETRY,
  });
  const backend = createBackend(kind, spec, connections, {
    workspace: ctx.workspace,
    env: ctx.env,
    log: ctx.log,
    signal: ctx.signal,
    runTags: runTags(ctx),
  });
  await backend.preflight();

  const base =
    values.jobName ??
    deriveJobName(
      jobKey(
        ctx.run,
        values.idempotencyKey ?? spec.name ?? (values.jobSpec ? path.relative(ctx.workspace, values.jobSpec) : 'submit-training'),
      ),
      spec.name ?? 'mlship',
    );
  if (!isValidJobName(base)) {
    throw new InputError(`Input "${ctx.inputLabel('jobName')}" is "${base}", which is not a valid job name.`, {
      hint: 'Use letters, digits and hyphens, at most 63 characters, starting with a letter or digit.',
    });
  }
  ctx.saveState(STATE.backend, kind);
  ctx.saveState(STATE.connection, JSON.stringify(connection));

  const target = attachOnly ? await attachTarget(backend, base) : await chooseJob(backend, base, values.rerunFailed, ctx);
  const name = target.name;
  if (target.submit) {
    if (ctx.signal.aborted) throw new StepError('The run was cancelled before the training job was submitted; nothing was started.');
    const created = await ctx.group(`Submit ${kind} training job ${name}`, async () => {
      const r = await backend.submit(name, spec);
      ctx.log.info(
        r.created ? `Submitted training job ${name}.` : `Training job ${name} already exists (an earlier attempt created it); attaching.`,
      );
      ctx.log.info(`Console: ${backend.consoleUrl(name)}`);
      if (backend.logsUrl) ctx.log.info(`Logs: ${backend.logsUrl(name)}`);
      return r.created;
    });
    ctx.saveState(STATE.job, name);
    if (ctx.signal.aborted) return cancelled(backend, name, values, ctx, 'cancelled');
    if (!created) target.status = await backend.status(name);
  } else {
    ctx.saveState(STATE.job, name);
    ctx.log.info(`Attaching to training job ${name} (${describeStatus(target.status!)}). Console: ${backend.consoleUrl(name)}`);
  }

  if (!values.wait) {
    const now = (await backend.status(name)) ?? target.status;
    ctx.summary.heading('Training job submitted').fields([
      ['Job', name],
      ['Backend', kind],
      ['Status', now?.status ?? 'Submitted'],
      ['Console', backend.consoleUrl(name)],
    ]);
    ctx.log.info(`Not waiting (wait: false). Attach later with ${ctx.inputLabel('jobName')}: ${name}`);
    return { jobName: name, status: now?.status ?? 'Submitted', consoleUrl: backend.consoleUrl(name) };
  }

  const pollSeconds = values.pollInterval ?? (kind === 'local' ? 1 : 30);
  const result = await waitForJob(backend, name, {
    pollMs: Math.max(1, pollSeconds * 1000),
    timeoutMs: values.timeoutMinutes * 60_000,
    signal: ctx.signal,
    log: ctx.log,
    progress: (r) => ctx.progress(r),
    logs: { enabled: values.streamLogs, maxLinesPerPoll: values.logLinesPerPoll, group: (title, fn) => ctx.group(title, fn) },
  });
  if (result.kind !== 'finished') return cancelled(backend, name, values, ctx, result.kind);
  const status = result.status;
  // The job's summary, written on failure as well: what ran, where to look, and what it produced if it finished.
  const summarize = (produced: Pick<TrainingResult, 'metrics' | 'history' | 'modelUri' | 'registered'> = {}) =>
    writeSummary(ctx, {
      kind,
      name,
      status,
      consoleUrl: backend.consoleUrl(name),
      logsUrl: backend.logsUrl?.(name),
      hyperparameters: spec.hyperparameters,
      ...produced,
    });
  if (status.state !== 'completed') {
    summarize();
    const verb = status.state === 'stopped' ? 'was stopped' : 'failed';
    throw new StepError(`Training job ${name} ${verb} (${status.status}): ${status.failureReason ?? 'no reason given by the service'}`, {
      hint: `Logs and details: ${backend.consoleUrl(name)}. To train again in this run, re-run with ${ctx.inputLabel('rerunFailed')}: true.`,
    });
  }

  const out = await backend.outputs(name, status);
  const modelUri = out.modelUri ?? status.modelUri;
  let registered: ModelVersion | undefined;
  if (values.register) {
    const modelName = values.modelName ?? spec.name;
    if (!modelName)
      throw new InputError(`Input "${ctx.inputLabel('modelName')}" is required to register the model (the job spec has no name either).`, {
        hint: 'Set model-name, or name: in the job spec.',
      });
    if (!modelUri)
      throw new StepError(`Training job ${name} completed but reported no model artifact, so there is nothing to register.`, {
        hint: 'Make the training write its model to the output folder.',
      });
    const registry = openRegistry(
      { kind: values.registry, path: values.registryPath, metricsS3Prefix: values.registryMetricsS3Prefix, mlflow: mlflowSettings(values) },
      connections,
      ctx,
    );
    registered = await registry.register({
      name: modelName,
      artifactUri: modelUri,
      metrics: out.metrics,
      dataFingerprint: values.dataFingerprint ?? spec.dataFingerprint,
      gitCommit: ctx.run.commit,
      trainingJob: name,
      properties: Object.fromEntries(
        Object.entries({ backend: kind, repository: ctx.run.repository, runUrl: ctx.run.url }).filter(([, v]) => v !== undefined),
      ) as Record<string, string>,
    });
    ctx.log.info(
      `Registered ${registered.name} version ${registered.version} in the ${registry.kind} registry (stage ${registered.stage}).`,
    );
  }
  summarize({ metrics: out.metrics, history: out.history, modelUri, registered });
  return {
    jobName: name,
    status: status.status,
    modelUri,
    metrics: out.metrics,
    consoleUrl: backend.consoleUrl(name),
    modelVersion: registered?.version,
  };
}
