import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StepError } from '../../core/errors';
import type { JobOutputs, JobSpec, JobState, JobStatus, LogChunk, MetricPoint, TrainingBackend } from '../types';
import { TERMINAL_STATES } from '../types';
import { SUPERVISOR_SOURCE } from './local-supervisor';
import { writeFileAtomicSync } from '../../core/atomic-write';
import { processAlive } from '../../core/process-alive';

export interface LocalBackendOptions {
  /** Folder holding one sub-folder per job (status.json, train.log, job.json, output/). */
  jobsDir: string;
  /** Relative paths in the spec are resolved against it. */
  workspace: string;
  /** Environment the training command starts from (the step's). */
  env: NodeJS.ProcessEnv;
}

interface JobFile {
  command: string;
  cwd: string;
  outputDir: string;
  metricsFile: string;
  maxRuntimeSeconds?: number;
}

interface StatusFile {
  state: JobState;
  status: string;
  createdAt?: string;
  startedAt?: string;
  endedAt?: string;
  failureReason?: string;
  pid?: number;
}

const MAX_LOG_CHUNK = 1 << 20;

/**
 * Runs the training command on this machine with the same contract as the cloud backends: named inputs, an
 * output folder, a metrics JSON file the script writes, live logs, stop on cancel, and attach by job name.
 *
 * The command sees MLSHIP_OUTPUT_DIR, MLSHIP_METRICS_FILE, MLSHIP_INPUT_<NAME>, MLSHIP_HYPERPARAMETERS (JSON)
 * and SageMaker's SM_MODEL_DIR / SM_CHANNEL_<NAME> / SM_HPS, and `${{inputs.x}}` / `${{outputs.model}}` in
 * the command are replaced as Azure ML does, so one script and one command run on all three backends.
 */
export class LocalBackend implements TrainingBackend {
  readonly kind = 'local' as const;

  constructor(private readonly options: LocalBackendOptions) {}

  async preflight(): Promise<void> {}

  private dir(name: string): string {
    return path.join(this.options.jobsDir, name);
  }

  async submit(name: string, spec: JobSpec): Promise<{ created: boolean }> {
    const dir = this.dir(name);
    if (fs.existsSync(dir)) return { created: false };
    const ws = this.options.workspace;
    const outputDir = spec.outputPath ? path.resolve(ws, spec.outputPath, name) : path.join(dir, 'output');
    const inputs: Record<string, string> = {};
    for (const [channel, input] of Object.entries(spec.inputs)) inputs[channel] = localPath(input.uri, ws, channel);
    const metricsFile = path.resolve(outputDir, spec.metricsFile);
    const env: Record<string, string> = {
      ...spec.environment,
      MLSHIP_JOB_NAME: name,
      MLSHIP_OUTPUT_DIR: outputDir,
      MLSHIP_METRICS_FILE: metricsFile,
      MLSHIP_HYPERPARAMETERS: JSON.stringify(spec.hyperparameters),
      SM_MODEL_DIR: outputDir,
      SM_HPS: JSON.stringify(spec.hyperparameters),
    };
    for (const [channel, p] of Object.entries(inputs)) {
      env[`MLSHIP_INPUT_${envName(channel)}`] = p;
      env[`SM_CHANNEL_${envName(channel)}`] = p;
    }
    const job: JobFile = {
      command: substitute(spec.command!, inputs, spec.hyperparameters, outputDir),
      cwd: path.resolve(ws, spec.local?.workingDirectory ?? '.'),
      outputDir,
      metricsFile,
      maxRuntimeSeconds: spec.maxRuntimeMinutes ? spec.maxRuntimeMinutes * 60 : undefined,
    };
    // The job folder appears complete or not at all: it is built under a temporary name and renamed into
    // place, and the rename is also what decides, between two racing submits, which one created the job.
    fs.mkdirSync(this.options.jobsDir, { recursive: true });
    const staging = fs.mkdtempSync(path.join(this.options.jobsDir, `.${name}-`));
    fs.writeFileSync(path.join(staging, 'job.json'), JSON.stringify(job, null, 2));
    fs.writeFileSync(
      path.join(staging, 'status.json'),
      JSON.stringify({ state: 'pending', status: 'Starting', createdAt: new Date().toISOString() } satisfies StatusFile),
    );
    try {
      fs.renameSync(staging, dir);
    } catch (error) {
      fs.rmSync(staging, { recursive: true, force: true });
      if (fs.existsSync(dir)) return { created: false };
      throw error;
    }
    fs.mkdirSync(outputDir, { recursive: true });
    const supervisor = spawn(process.execPath, ['-e', SUPERVISOR_SOURCE, dir], {
      detached: true,
      stdio: 'ignore',
      cwd: job.cwd,
      env: { ...process.env, ...this.options.env, ...env },
      windowsHide: true,
    });
    supervisor.unref();
    if (supervisor.pid) fs.writeFileSync(path.join(dir, 'supervisor.pid'), String(supervisor.pid));
    return { created: true };
  }

  async status(name: string): Promise<JobStatus | undefined> {
    const dir = this.dir(name);
    if (!fs.existsSync(dir)) return undefined;
    let s = readStatus(dir);
    if (!s)
      return {
        name,
        state: 'failed',
        status: 'Failed',
        failureReason: `the job folder ${dir} has no status.json; delete it to train again`,
      };
    if (!TERMINAL_STATES.has(s.state)) {
      const pid = s.pid ?? readPid(dir);
      const neverStarted = pid === undefined && Date.now() - Date.parse(s.createdAt ?? '') > 60_000;
      if (neverStarted || (pid !== undefined && !processAlive(pid))) {
        // The supervisor may have written its last status just before exiting; read once more before deciding.
        s = readStatus(dir) ?? s;
        if (!TERMINAL_STATES.has(s.state)) {
          const why =
            pid === undefined
              ? 'never started (the submitting process ended first)'
              : `(pid ${pid}) exited without a result: the machine restarted or the process was killed`;
          s = {
            ...s,
            state: 'failed',
            status: 'Failed',
            endedAt: new Date().toISOString(),
            failureReason: `the local training supervisor ${why}`,
          };
          writeFileAtomicSync(path.join(dir, 'status.json'), JSON.stringify(s));
        }
      }
    }
    const job = readJob(dir);
    return {
      name,
      state: s.state,
      status: s.status,
      failureReason: s.failureReason,
      createdAt: s.createdAt ? new Date(s.createdAt) : undefined,
      startedAt: s.startedAt ? new Date(s.startedAt) : undefined,
      endedAt: s.endedAt ? new Date(s.endedAt) : undefined,
      modelUri: s.state === 'completed' ? job?.outputDir : undefined,
    };
  }

  async cancel(name: string): Promise<void> {
    const dir = this.dir(name);
    const s = readStatus(dir);
    if (!s || TERMINAL_STATES.has(s.state)) return;
    const pid = s.pid ?? readPid(dir);
    if (pid === undefined) return;
    if (process.platform === 'win32') {
      // Windows has no SIGTERM handler to run: end the tree, then record the stop ourselves.
      spawnSync('taskkill', ['/pid', String(pid), '/T', '/F']);
      writeFileAtomicSync(
        path.join(dir, 'status.json'),
        JSON.stringify({ ...s, state: 'stopped', status: 'Stopped', endedAt: new Date().toISOString() }),
      );
      return;
    }
    try {
      process.kill(pid, 'SIGTERM');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  async outputs(name: string): Promise<JobOutputs> {
    const job = readJob(this.dir(name));
    if (!job) throw new StepError(`Local job ${name} has no job.json in ${this.dir(name)}.`);
    let text: string;
    try {
      text = fs.readFileSync(job.metricsFile, 'utf8');
    } catch {
      throw new StepError(`Training job ${name} finished but wrote no metrics file at ${job.metricsFile}.`, {
        hint: 'The training script must write a JSON object of metrics (e.g. {"mAP": 0.51}) to the path in $MLSHIP_METRICS_FILE.',
        file: job.metricsFile,
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new StepError(`The metrics file ${job.metricsFile} of job ${name} is not valid JSON: ${(error as Error).message}`, {
        file: job.metricsFile,
        hint: 'Write a JSON object such as {"mAP": 0.51, "dice": 0.83}.',
      });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new StepError(`The metrics file ${job.metricsFile} of job ${name} must hold a JSON object of metric names to numbers.`, {
        file: job.metricsFile,
      });
    }
    const { history, ...final } = parsed as Record<string, unknown>;
    return { modelUri: job.outputDir, metrics: flattenMetrics(final), history: readHistory(history, job.metricsFile) };
  }

  async logs(name: string, cursor?: string): Promise<LogChunk> {
    const file = path.join(this.dir(name), 'train.log');
    const offset = Number(cursor ?? 0);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return { lines: [], cursor: String(offset) };
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= offset) return { lines: [], cursor: String(offset) };
      const length = Math.min(size - offset, MAX_LOG_CHUNK);
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, offset);
      const text = buffer.toString('utf8');
      const finished = TERMINAL_STATES.has(readStatus(this.dir(name))?.state ?? 'running');
      // Hold back a trailing partial line until it is complete (or the job has ended).
      const end = finished && length === size - offset ? text.length : text.lastIndexOf('\n') + 1;
      const complete = text.slice(0, end);
      const lines = complete.split('\n').map((l) => l.replace(/\r$/, ''));
      if (lines[lines.length - 1] === '') lines.pop();
      return { lines, cursor: String(offset + Buffer.byteLength(complete)) };
    } finally {
      fs.closeSync(fd);
    }
  }

  consoleUrl(name: string): string {
    return pathToFileURL(this.dir(name)).href;
  }
}

/** `{"mAP": 0.5, "perClass": {"cell": 0.7}}` → `{mAP: 0.5, "perClass.cell": 0.7}`; non-numbers are left out. */
/** Bounds a history a script writes: more points than a chart can show are not read. */
const MAX_HISTORY = 10_000;

/**
 * The optional `history` of a local metrics file: `[{"epoch": 1, "loss": 0.52, "dice": 0.61}, …]` (or `step`),
 * one object per epoch. Entries without a number for epoch/step take their position.
 */
export function readHistory(value: unknown, file: string): MetricPoint[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value))
    throw new StepError(`The metrics file ${file} has "history" that is not a list.`, {
      file,
      hint: 'Write "history": [{"epoch": 1, "loss": 0.52}, …], one object per epoch.',
    });
  return value.slice(0, MAX_HISTORY).flatMap((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return [];
    const { epoch, step, ...rest } = entry as Record<string, unknown>;
    const at = typeof epoch === 'number' ? epoch : typeof step === 'number' ? step : i + 1;
    return [{ step: at, values: flattenMetrics(rest) }];
  });
}

export function flattenMetrics(obj: Record<string, unknown>, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
    else if (typeof v === 'object' && v !== null && !Array.isArray(v))
      Object.assign(out, flattenMetrics(v as Record<string, unknown>, key));
  }
  return out;
}

function substitute(command: string, inputs: Record<string, string>, hps: Record<string, unknown>, outputDir: string): string {
  return command.replace(/\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_-]+)\s*\}\}/g, (whole, kind: string, key: string) => {
    if (kind === 'outputs') return outputDir;
    if (key in inputs) return inputs[key];
    if (key in hps) return String(hps[key]);
    throw new StepError(`The command refers to \${{inputs.${key}}}, but the job spec has no input or hyperparameter "${key}".`, {
      hint: `Add "${key}" under inputs: or hyperparameters:, or fix the command.`,
    });
  });
}

function localPath(uri: string, workspace: string, channel: string): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new StepError(`Input "${channel}" is ${uri}, but the local backend reads local folders and files only.`, {
      hint: 'Download the data first, or use the sagemaker or azureml backend for cloud URIs.',
    });
  }
  return path.resolve(workspace, uri);
}

function envName(channel: string): string {
  return channel.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

function readStatus(dir: string): StatusFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as StatusFile;
  } catch {
    return undefined;
  }
}

function readJob(dir: string): JobFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8')) as JobFile;
  } catch {
    return undefined;
  }
}

function readPid(dir: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(path.join(dir, 'supervisor.pid'), 'utf8'));
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
