import * as path from 'node:path';
import type { IdentityOptions } from '../../cloud/auth/azure';
import type { StepContext } from '../../core/context';
import { InputError, StepError } from '../../core/errors';
import { defineStep, type InputValues } from '../../core/step';
import { mlflowSettings, openRegistry } from '../../registry';
import type { ModelVersion } from '../../registry/types';
import { createBackend } from '../../training';
import { CloudConnections, type CloudSettings } from '../../cloud/connections';
import { cloudInputs, registryInputs } from '../../cloud/inputs';
import { attemptName, deriveJobName, isValidJobName, jobKey } from '../../training/job-name';
import { AbortedError, DEFAULT_RETRY, type RetryPolicy } from '../../cloud/retry';
import { loadJobSpec, requireBackendFields } from '../../training/spec';
import { TERMINAL_STATES, type BackendKind, type JobSpec, type JobStatus, type MetricPoint, type TrainingBackend } from '../../training/types';
import { markdownTable } from '../../core/summary';
import { PALETTE } from '../../report/charts';
import { describeStatus, formatDuration, waitForJob } from '../../training/wait';
import { inputForPath, overridesFrom } from './overrides';

const inputs = {
  backend: { type: 'enum', options: ['local', 'sagemaker', 'azureml'], description: 'Where to train: local (a child process, the default), sagemaker or azureml. Overrides `backend` in the job spec.' },
  jobSpec: { type: 'path', description: 'Job spec, YAML or JSON (see docs/submit-training.md). Direct inputs below override its fields.' },
  command: { type: 'string', description: 'Training command (local and Azure ML; on SageMaker the container entry point). Azure ML-style placeholders for inputs.NAME and outputs.model are substituted (see docs/submit-training.md).' },
  image: { type: 'string', description: 'SageMaker training image URI.' },
  roleArn: { type: 'string', description: 'SageMaker execution role ARN the job runs as.' },
  instanceType: { type: 'string', description: 'Instance type (ml.g5.2xlarge on SageMaker, a VM size on Azure ML).' },
  instanceCount: { type: 'number', integer: true, min: 1, description: 'Number of instances.' },
  dataInputs: { type: 'list', description: 'Input channels, one name=uri per line (s3://, azureml://, or a local path for the local backend).' },
  outputPath: { type: 'string', description: 'Where the model goes: s3:// prefix on SageMaker, a datastore URI on Azure ML, a folder locally.' },
  hyperparameters: { type: 'list', description: 'One name=value per line; numbers and true/false keep their type.' },
  compute: { type: 'string', description: 'Azure ML compute cluster name or ARM id.' },
  azureEnvironment: { type: 'string', description: 'Azure ML environment as name:version, a registry URI or an ARM id.' },
  maxRuntimeMinutes: { type: 'number', min: 1, description: 'Longest the training itself may run before the service stops it.' },
  ...cloudInputs,
  azureArmEndpoint: { type: 'string', description: 'Azure Resource Manager endpoint for sovereign clouds (default https://management.azure.com); sets azureml.armEndpoint, also for a standard Azure ML job YAML.' },
  wait: { type: 'boolean', default: true, description: 'Wait for the job to finish. false submits, prints the job name and returns (detached mode).' },
  timeoutMinutes: { type: 'number', min: 0, default: 0, description: 'Stop waiting after this long (0: no limit); the job is then stopped unless keep-running-on-cancel is true.' },
  pollInterval: { type: 'number', min: 0, description: 'Seconds between status checks (default 30 in the cloud, 1 locally).' },
  streamLogs: { type: 'boolean', default: true, description: 'While waiting, print the training log into the CI log (local job log; SageMaker CloudWatch Logs streams), one collapsible group per poll.' },
  logLinesPerPoll: { type: 'number', integer: true, min: 1, max: 10000, default: 200, description: 'Most training-log lines printed per poll; more wait for the next poll.' },
  jobName: { type: 'string', description: 'Job to attach to (without a spec), or the exact name to submit under. Default: derived from the repository, run id and job, so re-runs attach.' },
  idempotencyKey: { type: 'string', description: 'Tells two submit-training steps in one job apart (default: the spec name or file).' },
  keepRunningOnCancel: { type: 'boolean', default: false, description: 'Leave the cloud job running when the pipeline is cancelled or the wait times out.' },
  rerunFailed: { type: 'boolean', default: false, description: 'When this run’s job already failed or was stopped, start a new one (name suffix -r2, -r3, …) instead of failing.' },
  register: { type: 'boolean', default: false, description: 'Register the trained model (artifact, metrics, commit, data fingerprint, job) in the model registry.' },
  modelName: { type: 'string', description: 'Registry model name (default: the spec name).' },
  dataFingerprint: { type: 'string', description: 'Fingerprint of the training data, recorded with the model.' },
  ...registryInputs,
} as const;

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

const STATE = { job: 'jobName', backend: 'backend', connection: 'connection', ended: 'mainEnded' } as const;

/** Connection details kept for the post entry, which runs in a fresh process; no secrets. */
interface SavedConnection {
  region?: string;
  azure?: CloudSettings['azure'];
  jobsDir?: string;
  modelOutput?: string;
}

export function createSubmitTrainingStep(options: SubmitTrainingOptions = {}) {
  return defineStep({
    name: 'submit-training',
    title: 'Submit training',
    description: 'Submits a training job to SageMaker, Azure ML or a local process, idempotently per workflow run; waits with progress, stops the job on cancel, and registers the model.',
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
    throw new InputError(`Give ${ctx.inputLabel('jobSpec')} (or ${ctx.inputLabel('command')}) to submit a job, or ${ctx.inputLabel('jobName')} to attach to one.`, {
      hint: 'See docs/submit-training.md for a job spec example.',
    });
  }
  const attachOnly = !hasDefinition;
  requireBackendFields(spec, kind, attachOnly ? 'attach' : 'submit', values.jobSpec, (p) => inputForPath(p, ctx.inputLabel));

  const connection: SavedConnection = { region: spec.sagemaker?.region ?? values.region, azure: azureSettings(spec, values), jobsDir: spec.local?.jobsDir, modelOutput: spec.azureml?.modelOutput };
  const connections = new CloudConnections(ctx, { region: connection.region, roleToAssume: values.roleToAssume, awsServiceConnection: values.awsServiceConnection, azure: connection.azure, identityOptions: options.azureIdentityOptions, retry: options.retry ?? DEFAULT_RETRY });
  const backend = createBackend(kind, spec, connections, { workspace: ctx.workspace, env: ctx.env, log: ctx.log, signal: ctx.signal, runTags: runTags(ctx) });
  await backend.preflight();

  const base = values.jobName ?? deriveJobName(jobKey(ctx.run, values.idempotencyKey ?? spec.name ?? (values.jobSpec ? path.relative(ctx.workspace, values.jobSpec) : 'submit-training')), spec.name ?? 'mlship');
  if (!isValidJobName(base)) {
    throw new InputError(`Input "${ctx.inputLabel('jobName')}" is "${base}", which is not a valid job name.`, { hint: 'Use letters, digits and hyphens, at most 63 characters, starting with a letter or digit.' });
  }
  ctx.saveState(STATE.backend, kind);
  ctx.saveState(STATE.connection, JSON.stringify(connection));

  const target = attachOnly ? await attachTarget(backend, base) : await chooseJob(backend, base, values.rerunFailed, ctx);
  const name = target.name;
  if (target.submit) {
    if (ctx.signal.aborted) throw new StepError('The run was cancelled before the training job was submitted; nothing was started.');
    const created = await ctx.group(`Submit ${kind} training job ${name}`, async () => {
      const r = await backend.submit(name, spec);
      ctx.log.info(r.created ? `Submitted training job ${name}.` : `Training job ${name} already exists (an earlier attempt created it); attaching.`);
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
    ctx.summary.heading('Training job submitted').fields([['Job', name], ['Backend', kind], ['Status', now?.status ?? 'Submitted'], ['Console', backend.consoleUrl(name)]]);
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
  if (status.state !== 'completed') {
    summarise(ctx, kind, backend, name, status, { hyperparameters: spec.hyperparameters });
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
    if (!modelName) throw new InputError(`Input "${ctx.inputLabel('modelName')}" is required to register the model (the job spec has no name either).`, { hint: 'Set model-name, or name: in the job spec.' });
    if (!modelUri) throw new StepError(`Training job ${name} completed but reported no model artifact, so there is nothing to register.`, { hint: 'Make the training write its model to the output folder.' });
    const registry = openRegistry({ kind: values.registry, path: values.registryPath, metricsS3Prefix: values.registryMetricsS3Prefix, mlflow: mlflowSettings(values) }, connections, ctx);
    registered = await registry.register({
      name: modelName,
      artifactUri: modelUri,
      metrics: out.metrics,
      dataFingerprint: values.dataFingerprint ?? spec.dataFingerprint,
      gitCommit: ctx.run.commit,
      trainingJob: name,
      properties: Object.fromEntries(Object.entries({ backend: kind, repository: ctx.run.repository, runUrl: ctx.run.url }).filter(([, v]) => v !== undefined)) as Record<string, string>,
    });
    ctx.log.info(`Registered ${registered.name} version ${registered.version} in the ${registry.kind} registry (stage ${registered.stage}).`);
  }
  summarise(ctx, kind, backend, name, status, { metrics: out.metrics, history: out.history, modelUri, registered, hyperparameters: spec.hyperparameters });
  return {
    jobName: name,
    status: status.status,
    modelUri,
    metrics: out.metrics,
    consoleUrl: backend.consoleUrl(name),
    modelVersion: registered?.version,
  };
}

interface Target {
  name: string;
  submit: boolean;
  status?: JobStatus;
}

async function attachTarget(backend: TrainingBackend, name: string): Promise<Target> {
  const status = await backend.status(name);
  if (!status) throw new StepError(`There is no ${backend.kind} training job named ${name} to attach to.`, { hint: 'Check the job name (the jobName output of the step that submitted it) and the region or workspace.' });
  return { name, submit: false, status };
}

/**
 * Finds where this run stands: no job yet → submit; a job running or done → attach; the latest job failed or
 * stopped → fail, or start `<name>-rN` when asked. Only one job per run is ever started without asking.
 */
async function chooseJob(backend: TrainingBackend, base: string, rerunFailed: boolean, ctx: StepContext): Promise<Target> {
  let latest: { n: number; status: JobStatus } | undefined;
  for (let n = 1; n <= 50; n++) {
    const status = await backend.status(attemptName(base, n));
    if (!status) break;
    latest = { n, status };
  }
  if (!latest) return { name: base, submit: true };
  const name = attemptName(base, latest.n);
  if (latest.status.state !== 'failed' && latest.status.state !== 'stopped') return { name, submit: false, status: latest.status };
  if (!rerunFailed) {
    throw new StepError(`Training job ${name} of this run already ${latest.status.state === 'failed' ? 'failed' : 'was stopped'} (${latest.status.status}): ${latest.status.failureReason ?? 'no reason given'}. A re-run does not start a new paid job by itself.`, {
      hint: `Set ${ctx.inputLabel('rerunFailed')}: true to start ${attemptName(base, latest.n + 1)}, or fix the cause first. Details: ${backend.consoleUrl(name)}`,
    });
  }
  ctx.log.info(`Job ${name} ${latest.status.state}; starting ${attemptName(base, latest.n + 1)} because ${ctx.inputLabel('rerunFailed')} is true.`);
  return { name: attemptName(base, latest.n + 1), submit: true };
}

/** The run was cancelled or the wait timed out: stop the job first (unless told not to), then fail the step. */
async function cancelled(backend: TrainingBackend, name: string, values: Inputs, ctx: StepContext, why: 'cancelled' | 'timeout'): Promise<never> {
  const reason = why === 'timeout' ? `The wait timed out after ${values.timeoutMinutes} minutes` : 'The run was cancelled';
  if (values.keepRunningOnCancel) {
    ctx.log.warning(`${reason}; training job ${name} keeps running (keep-running-on-cancel). Attach later with ${ctx.inputLabel('jobName')}: ${name}`);
    throw new StepError(`${reason}; training job ${name} was left running.`, { hint: `Attach with ${ctx.inputLabel('jobName')}: ${name}. Console: ${backend.consoleUrl(name)}` });
  }
  ctx.log.info(`${reason}; stopping training job ${name}…`);
  await backend.cancel(name);
  const after = await backend.status(name).catch((error: unknown) => {
    if (error instanceof AbortedError) return undefined;
    throw error;
  });
  ctx.log.info(`Stop requested for ${name}${after ? `; it is now ${after.status}` : ''}.`);
  throw new StepError(`${reason}; training job ${name} was stopped.`, { hint: `Console: ${backend.consoleUrl(name)}` });
}

/**
 * The post entry: GitHub runs it after every job, also a cancelled one whose main process was killed before
 * it could stop the job. Only then (main never finished) and only for a job we waited on is there anything to do.
 */
async function stopOrphanedJob(values: Inputs, ctx: StepContext, options: SubmitTrainingOptions): Promise<void> {
  const name = ctx.getState(STATE.job);
  if (!name || ctx.getState(STATE.ended) === '1' || !values.wait || values.keepRunningOnCancel) return;
  const kind = ctx.getState(STATE.backend) as BackendKind | undefined;
  if (!kind) return;
  const saved = JSON.parse(ctx.getState(STATE.connection) ?? '{}') as SavedConnection;
  const connections = new CloudConnections(ctx, { region: saved.region, roleToAssume: values.roleToAssume, awsServiceConnection: values.awsServiceConnection, azure: saved.azure, identityOptions: options.azureIdentityOptions, retry: options.retry ?? DEFAULT_RETRY });
  const spec: Partial<JobSpec> = { local: { jobsDir: saved.jobsDir }, azureml: { modelOutput: saved.modelOutput } };
  const backend = createBackend(kind, spec, connections, { workspace: ctx.workspace, env: ctx.env, log: ctx.log });
  const status = await backend.status(name);
  if (!status || TERMINAL_STATES.has(status.state)) return;
  ctx.log.info(`The run ended before submit-training finished; stopping training job ${name} (${status.status}).`);
  await backend.cancel(name);
  ctx.log.info(`Stop requested for ${name}.`);
}

function azureSettings(spec: JobSpec, values: Inputs): CloudSettings['azure'] {
  const az = spec.azureml ?? {};
  return {
    subscriptionId: az.subscriptionId,
    resourceGroup: az.resourceGroup,
    workspace: az.workspace,
    armEndpoint: az.armEndpoint,
    clientId: values.azureClientId,
    tenantId: values.azureTenantId,
    serviceConnection: values.azureServiceConnection,
  };
}

function runTags(ctx: StepContext): Record<string, string> {
  const tags: Record<string, string | undefined> = { 'mlship:repository': ctx.run.repository, 'mlship:run-id': ctx.run.id, 'mlship:commit': ctx.run.commit, 'mlship:workflow': ctx.run.workflow };
  // SageMaker tag values allow letters, digits, spaces and _.:/=+-@ only, at most 256 characters.
  const clean = (v: string) => v.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '-').slice(0, 256);
  return Object.fromEntries(Object.entries(tags).filter(([, v]) => v).map(([k, v]) => [k, clean(v!)]));
}

function summarise(
  ctx: StepContext,
  kind: BackendKind,
  backend: TrainingBackend,
  name: string,
  status: JobStatus,
  r: { metrics?: Record<string, number>; history?: MetricPoint[]; modelUri?: string; registered?: ModelVersion; hyperparameters?: Record<string, string | number | boolean> },
): void {
  const { metrics, modelUri, registered } = r;
  const elapsed = status.startedAt && status.endedAt ? formatDuration(status.endedAt.getTime() - status.startedAt.getTime()) : undefined;
  const rows: (string | number | undefined)[][] = [
    ['Job', name],
    ['Backend', kind],
    ['Status', status.status],
    ['Training time', elapsed],
    ['Billable seconds', status.billableSeconds],
    ['Model', modelUri],
    ['Registered', registered ? `${registered.name} v${registered.version} (${registered.stage})` : undefined],
    ['Console', backend.consoleUrl(name)],
    ['Logs', backend.logsUrl?.(name)],
  ];
  if (status.failureReason) rows.push(['Failure', status.failureReason]);
  ctx.summary.heading(`Training ${status.state === 'completed' ? 'completed' : status.state}`).fields(rows.filter((row) => row[1] !== undefined) as [string, string | number][]);
  const hps = Object.entries(r.hyperparameters ?? {});
  if (hps.length) ctx.summary.heading('Hyperparameters', 3).table(['name', 'value'], hps);
  const entries = Object.entries(metrics ?? {});
  if (entries.length) {
    const table = (list: [string, number][]) => list.map(([k, v]) => [k, Number(v.toPrecision(5))]);
    ctx.summary.heading('Final metrics', 3).table(['metric', 'value'], table(entries.slice(0, 20)));
    if (entries.length > 20) ctx.summary.details(`All ${entries.length} metrics`, markdownTable(['metric', 'value'], table(entries)));
  }
  trainingCurves(ctx, r.history ?? []);
}

/** One line chart per metric over epochs: loss and validation scores live on different scales. */
function trainingCurves(ctx: StepContext, history: MetricPoint[]): void {
  if (history.length < 2) return;
  const names = [...new Set(history.flatMap((p) => Object.keys(p.values)))].slice(0, 6);
  ctx.summary.heading(`Training curves (${history.length} points)`, 3);
  for (const [i, metric] of names.entries()) {
    const points = history.filter((p) => metric in p.values).map((p) => [p.step, p.values[metric]] as const);
    if (points.length < 2) continue;
    ctx.summary.chart({ kind: 'line', title: `${metric} during training`, x: { label: 'epoch or step' }, y: { label: metric }, series: [{ name: metric, points, color: PALETTE.series[i % PALETTE.series.length] }] });
  }
}
