import type { Logger } from '../../core/context';
import { StepError } from '../../core/errors';
import type { ArmClient } from '../../cloud/azure-arm';
import { type AzureWorkspaceConnection, workspaceArm } from '../../cloud/azureml-workspace';
import * as path from 'node:path';
import { uploadCodeFolder } from '../../cloud/azureml-code';
import type { AzureMlSection, JobOutputs, JobSpec, JobState, JobStatus, LogChunk, TrainingBackend } from '../types';

export interface AzureMlBackendOptions extends AzureWorkspaceConnection {
  log: Logger;
  runTags?: Record<string, string>;
  /** Name of the job output that holds the model (spec `azureml.modelOutput`). */
  modelOutput?: string;
  /** Ends retry backoff of status polls when the step is cancelled; cancelling the job ignores it. */
  signal?: AbortSignal;
  /** Checkout folder against which a local `code:` folder is resolved. */
  checkoutDir?: string;
}

/** Azure ML v2 job as ARM returns it (the fields this backend reads). */
interface ArmJob {
  name: string;
  systemData?: { createdAt?: string; lastModifiedAt?: string };
  properties: {
    status?: string;
    experimentName?: string;
    outputs?: Record<string, { uri?: string | null } | null>;
    services?: Record<string, { endpoint?: string | null } | null>;
  };
}

const STATES: Record<string, JobState> = {
  NotStarted: 'pending',
  Starting: 'pending',
  Provisioning: 'pending',
  Preparing: 'pending',
  Queued: 'pending',
  Running: 'running',
  Finalizing: 'running',
  CancelRequested: 'stopping',
  Completed: 'completed',
  Failed: 'failed',
  Canceled: 'stopped',
};

/**
 * Azure ML command jobs through ARM (`Microsoft.MachineLearningServices/workspaces/jobs`). The job name is
 * the resource id, so creating it twice is harmless; metrics come from the workspace's MLflow endpoint and
 * failure messages from run history, both reached with the same ARM token.
 */
export class AzureMlBackend implements TrainingBackend {
  readonly kind = 'azureml' as const;
  readonly arm: ArmClient;
  private readonly ws: string;
  private readonly jobs = new Map<string, ArmJob>();
  private dataPlane?: { mlflow: string; history: string };

  constructor(private readonly options: AzureMlBackendOptions) {
    ({ arm: this.arm, ws: this.ws } = workspaceArm(options));
  }

  async preflight(): Promise<void> {
    await this.options.auth.token(this.arm.scope);
  }

  async submit(name: string, spec: JobSpec): Promise<{ created: boolean }> {
    const codePath = spec.azureml?.codePath;
    if (codePath) {
      const dir = path.resolve(this.options.checkoutDir ?? process.cwd(), codePath);
      const { codeId } = await uploadCodeFolder({ arm: this.arm, ws: this.ws, dir, log: this.options.log });
      spec = { ...spec, azureml: { ...spec.azureml, code: codeId } };
    }
    const body = commandJobBody(spec, this.ws, this.options.runTags ?? {});
    const res = await this.arm.put<ArmJob>(`${this.ws}/jobs/${name}`, body);
    if (res.body) this.jobs.set(name, res.body);
    return { created: res.status === 201 };
  }

  async status(name: string): Promise<JobStatus | undefined> {
    const job = await this.arm.get<ArmJob>(`${this.ws}/jobs/${name}`, undefined, this.options.signal);
    if (!job) return undefined;
    this.jobs.set(name, job);
    const status = job.properties.status ?? 'Unknown';
    const state = STATES[status] ?? 'running';
    return {
      name,
      state,
      status,
      createdAt: job.systemData?.createdAt ? new Date(job.systemData.createdAt) : undefined,
      failureReason: state === 'failed' ? await this.failureReason(name, job) : undefined,
      modelUri: state === 'completed' ? this.modelUri(name, job) : undefined,
    };
  }

  async cancel(name: string): Promise<void> {
    // The cancel LRO can take minutes; the request being accepted is what matters before the runner exits.
    await this.arm.postAndWait(`${this.ws}/jobs/${name}/cancel`, undefined, 20_000);
  }

  async outputs(name: string): Promise<JobOutputs> {
    const job = this.jobs.get(name) ?? (await this.arm.get<ArmJob>(`${this.ws}/jobs/${name}`));
    const dp = await this.endpoints();
    const res = await this.arm.send<{ run?: { data?: { metrics?: { key: string; value: number }[] } } }>(
      'GET',
      `${dp.mlflow}/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(name)}`,
      undefined,
      { allowNotFound: true },
    );
    const metrics: Record<string, number> = {};
    for (const m of res.body?.run?.data?.metrics ?? [])
      if (typeof m.value === 'number' && Number.isFinite(m.value)) metrics[m.key] = m.value;
    return { modelUri: job ? this.modelUri(name, job) : undefined, metrics };
  }

  /**
   * New lines of the job's user logs (`user_logs/std_log.txt`, one `std_log_process_N.txt` per process of a
   * distributed job), as `az ml job stream` shows them: run history lists the files with read-only SAS URLs,
   * which are read from the last offset on with a Range request, 1 MiB at most per file and call.
   */
  async logs(name: string, cursor?: string): Promise<LogChunk> {
    const offsets = (cursor ? JSON.parse(cursor) : {}) as Record<string, number>;
    const dp = await this.endpoints();
    const res = await this.arm.send<{ logFiles?: Record<string, string> }>(
      'GET',
      `${dp.history}/runs/${encodeURIComponent(name)}/details`,
      undefined,
      { allowNotFound: true, signal: this.options.signal },
    );
    const files = Object.entries(res.body?.logFiles ?? {})
      .filter(([f]) => /^user_logs\/std_log(_process_\d+)?\.txt$/.test(f))
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const lines: string[] = [];
    for (const [file, url] of files) {
      const offset = offsets[file] ?? 0;
      const r = await fetch(url, { headers: { range: `bytes=${offset}-${offset + LOG_READ_BYTES - 1}` }, signal: this.options.signal });
      if (r.status === 416 || r.status === 404) continue;
      if (!r.ok) throw new StepError(`Reading the Azure ML log ${file} of ${name} failed: ${r.status} ${r.statusText}.`);
      let bytes = Buffer.from(await r.arrayBuffer());
      if (r.status === 200) bytes = bytes.subarray(offset); // the server ignored the range
      // Only whole lines; a partial last line waits for the next call.
      const end = bytes.lastIndexOf(0x0a) + 1;
      if (end === 0) continue;
      offsets[file] = offset + end;
      const process = /_process_(\d+)/.exec(file)?.[1];
      for (const line of bytes.subarray(0, end).toString('utf8').split('\n').slice(0, -1))
        lines.push(`${files.length > 1 && process !== undefined ? `[process ${process}] ` : ''}${line.replace(/\r$/, '')}`);
    }
    return { lines, cursor: JSON.stringify(offsets) };
  }

  consoleUrl(name: string): string {
    const studio = this.jobs.get(name)?.properties.services?.Studio?.endpoint;
    return studio ?? `https://ml.azure.com/runs/${encodeURIComponent(name)}?wsid=${encodeURIComponent(this.ws)}`;
  }

  private modelUri(name: string, job: ArmJob): string {
    const output = this.options.modelOutput ?? 'model';
    return job.properties.outputs?.[output]?.uri ?? `azureml://jobs/${name}/outputs/${output}`;
  }

  private async failureReason(name: string, job: ArmJob): Promise<string> {
    const dp = await this.endpoints();
    const experiment = job.properties.experimentName ?? 'Default';
    const res = await this.arm.send<{ error?: { error?: { code?: string; message?: string } } }>(
      'GET',
      `${dp.history}/experiments/${encodeURIComponent(experiment)}/runs/${encodeURIComponent(name)}`,
      undefined,
      { allowNotFound: true },
    );
    const e = res.body?.error?.error;
    if (e?.message) return e.code ? `${e.code}: ${e.message}` : e.message;
    return `Azure ML reports the job as Failed without a message; its logs are in the studio: ${this.consoleUrl(name)}`;
  }

  /** Regional data-plane URLs (MLflow, run history), read once from the workspace. */
  private async endpoints(): Promise<{ mlflow: string; history: string }> {
    if (this.dataPlane) return this.dataPlane;
    const ws = await this.arm.get<{ properties?: { mlFlowTrackingUri?: string } }>(this.ws);
    const tracking = ws?.properties?.mlFlowTrackingUri;
    if (!tracking)
      throw new StepError(`Azure ML workspace ${this.options.workspace} has no MLflow tracking URI; cannot read the job's metrics.`, {
        hint: 'Check that the workspace name is right and that it is an Azure ML (not a hub) workspace.',
      });
    // Data-plane hosts are https in Azure; a plain-http ARM endpoint means a local test fake.
    const scheme = new URL(this.arm.endpoint).protocol.replace(':', '');
    const mlflow = tracking.replace(/^azureml:\/\//, `${scheme}://`);
    const host = new URL(mlflow).host;
    this.dataPlane = { mlflow, history: `${scheme}://${host}/history/v1.0${this.ws}` };
    return this.dataPlane;
  }
}

const LOG_READ_BYTES = 1024 * 1024;

const INPUT_MODES = { ro_mount: 'ReadOnlyMount', download: 'Download', direct: 'Direct' } as const;
const OUTPUT_MODES = { rw_mount: 'ReadWriteMount', upload: 'Upload' } as const;

/** The ARM body of a command job: code, command, environment, compute, inputs, outputs, distribution, resources. */
export function commandJobBody(spec: JobSpec, ws: string, runTags: Record<string, string>): unknown {
  const az: AzureMlSection = spec.azureml ?? {};
  const inputs: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(spec.inputs)) {
    inputs[name] = {
      jobInputType: input.type ?? (input.uri.endsWith('/') ? 'uri_folder' : 'uri_file'),
      uri: input.uri,
      ...(input.mode ? { mode: INPUT_MODES[input.mode] } : {}),
    };
  }
  // Hyperparameters become literal inputs, so the command refers to them as ${{inputs.lr}}.
  for (const [name, value] of Object.entries(spec.hyperparameters)) inputs[name] = { jobInputType: 'literal', value: String(value) };
  const modelOutput = az.modelOutput ?? 'model';
  const outputs: Record<string, unknown> = { [modelOutput]: { jobOutputType: 'uri_folder', mode: 'ReadWriteMount' } };
  for (const [name, o] of Object.entries(az.outputs ?? {})) {
    outputs[name] = { jobOutputType: o.type, ...(o.uri ? { uri: o.uri } : {}), ...(o.mode ? { mode: OUTPUT_MODES[o.mode] } : {}) };
  }
  if (spec.outputPath && !(az.outputs ?? {})[modelOutput]) (outputs[modelOutput] as Record<string, unknown>).uri = spec.outputPath;
  return {
    properties: {
      jobType: 'Command',
      displayName: az.displayName ?? spec.name,
      experimentName: az.experimentName ?? spec.name ?? 'mlship',
      description: az.description ?? 'Submitted by mlship submit-training',
      tags: { ...spec.tags, ...runTags },
      command: spec.command,
      codeId: az.code ? armId(az.code, ws, 'codes') : undefined,
      environmentId: armId(az.environment!, ws, 'environments'),
      computeId: az.compute!.startsWith('/') ? az.compute : `${ws}/computes/${az.compute}`,
      environmentVariables: spec.environment,
      inputs,
      outputs,
      distribution: distribution(az),
      resources: {
        instanceCount: az.instanceCount ?? 1,
        ...(az.instanceType ? { instanceType: az.instanceType } : {}),
        ...(az.shmSize ? { shmSize: az.shmSize } : {}),
      },
      ...(spec.maxRuntimeMinutes ? { limits: { jobLimitsType: 'Command', timeout: `PT${Math.round(spec.maxRuntimeMinutes * 60)}S` } } : {}),
    },
  };
}

function distribution(az: AzureMlSection): unknown {
  const d = az.distribution;
  if (!d) return undefined;
  if (d.type === 'pytorch') return { distributionType: 'PyTorch', processCountPerInstance: d.processCountPerInstance ?? 1 };
  if (d.type === 'mpi') return { distributionType: 'Mpi', processCountPerInstance: d.processCountPerInstance ?? 1 };
  return { distributionType: 'TensorFlow', workerCount: d.workerCount ?? 1, parameterServerCount: d.parameterServerCount ?? 0 };
}

/**
 * ARM ids for assets: full ids and registry URIs pass through; `name:version` (optionally `azureml:`) is
 * expanded within the workspace. `@latest` is refused: a pinned version is what ties a model to its build.
 */
export function armId(ref: string, ws: string, kind: 'codes' | 'environments'): string {
  const r = ref.replace(/^azureml:(?=\/)/, '');
  if (r.startsWith('/') || r.startsWith('azureml://')) return r;
  const short = r.replace(/^azureml:/, '');
  if (short.includes('@')) {
    throw new StepError(
      `The Azure ML ${kind === 'codes' ? 'code' : 'environment'} "${ref}" uses a label; the step needs a pinned version.`,
      {
        hint: `Write it as name:version (e.g. ${short.split('@')[0]}:3) or a full ARM id, so every run uses the same ${kind === 'codes' ? 'code' : 'environment'}.`,
      },
    );
  }
  const [name, version] = short.split(':');
  if (!name || !version)
    throw new StepError(`The Azure ML ${kind === 'codes' ? 'code' : 'environment'} "${ref}" is not name:version or an ARM id.`, {
      hint: 'Use name:version, azureml://registries/<registry>/environments/<name>/versions/<v>, or /subscriptions/… ids.',
    });
  return `${ws}/${kind}/${name}/versions/${version}`;
}
