import { spawn } from 'node:child_process';
// `import x = require()` of 'fs'/'path' (not node:fs, not import * as) is the form @vercel/ncc's asset relocator
// follows, so the bundle ships the Python scripts next to index.js.
import fs = require('fs');
import path = require('path');
import { StepError } from '../core/errors';

/** Runs a Python script as a child process, streaming its lines to the log and keeping the last ones for errors. */

export interface PythonRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines of stderr (tracebacks go there). */
  stderrTail: string[];
}

export interface PythonOptions {
  python: string;
  script: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  timeoutMs?: number;
  tailLines?: number;
}

export function runPython(options: PythonOptions): Promise<PythonRun> {
  const tailLines = options.tailLines ?? 40;
  return new Promise((resolve, reject) => {
    const child = spawn(options.python, ['-u', options.script, ...options.args], {
      cwd: options.cwd,
      // Unbuffered output, so the log streams while a long export runs.
      env: { ...(options.env ?? process.env), PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const pending = { stdout: '', stderr: '' };
    const take = (stream: 'stdout' | 'stderr', chunk: Buffer, flush = false) => {
      pending[stream] += chunk.toString('utf8');
      const lines = pending[stream].split(/\r?\n/);
      pending[stream] = flush ? '' : (lines.pop() ?? '');
      for (const line of lines) {
        if (flush && line === '') continue;
        options.onLine(line, stream);
        if (stream === 'stderr') {
          tail.push(line);
          if (tail.length > tailLines) tail.shift();
        }
      }
    };
    child.stdout.on('data', (c: Buffer) => take('stdout', c));
    child.stderr.on('data', (c: Buffer) => take('stderr', c));
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    const onAbort = () => child.kill('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error.code === 'ENOENT') {
        reject(
          new StepError(`Python interpreter "${options.python}" was not found.`, {
            hint: 'Set the python input to an interpreter with PyTorch and onnx installed (e.g. /usr/bin/python3 or .venv/bin/python).',
          }),
        );
      } else reject(error);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      take('stdout', Buffer.alloc(0), true);
      take('stderr', Buffer.alloc(0), true);
      resolve({ code, signal, stderrTail: tail });
    });
  });
}

/**
 * Where a bundled Python script is: the MLSHIP_*_SCRIPT override, else beside this module. The literal
 * path.join(__dirname, 'python', '<file>') calls let @vercel/ncc see each file and ship it with every bundle that
 * uses this module: both scripts import mlship_script.py from their own folder, and export_onnx.py imports
 * optimize_model.py for its FP16 variant, so all three always travel together. A script without the modules it
 * imports beside it is refused here, with the fix, rather than failing in Python with an ImportError.
 */
// ncc's asset relocator sees path.join(__dirname, ...) as a call argument or an initializer, not inside an array
// literal: measured, an array element dropped mlship_script.py from every bundle.
const HELPERS = path.join(__dirname, 'python', 'mlship_script.py');
const OPTIMIZE_SCRIPT = path.join(__dirname, 'python', 'optimize_model.py');

function scriptPath(file: string, envName: string, bundled: string, env: NodeJS.ProcessEnv, bundledSiblings: readonly string[]): string {
  const override = env[envName];
  const siblings = bundledSiblings.map((f) => path.basename(f));
  if (override) {
    if (!fs.existsSync(override))
      throw new StepError(`${envName} is ${override}, which does not exist.`, {
        hint: `Point it at shared/onnx/python/${file}, or unset it.`,
      });
    for (const sibling of siblings) {
      if (!fs.existsSync(path.join(path.dirname(override), sibling)))
        throw new StepError(`${envName} is ${override}, but ${sibling}, which it imports, is not beside it.`, {
          hint: `Copy shared/onnx/python/${sibling} next to it, or point ${envName} at shared/onnx/python/${file}.`,
        });
    }
    return override;
  }
  for (const bundledFile of [bundled, ...bundledSiblings]) {
    if (!fs.existsSync(bundledFile))
      throw new StepError(`The Python script is missing at ${bundledFile}.`, {
        hint: `Reinstall mlship, or set ${envName} to shared/onnx/python/${file}.`,
      });
  }
  return bundled;
}

export function exportScriptPath(env: NodeJS.ProcessEnv = process.env): string {
  return scriptPath('export_onnx.py', 'MLSHIP_EXPORT_SCRIPT', path.join(__dirname, 'python', 'export_onnx.py'), env, [
    HELPERS,
    OPTIMIZE_SCRIPT,
  ]);
}

export function optimizeScriptPath(env: NodeJS.ProcessEnv = process.env): string {
  return scriptPath('optimize_model.py', 'MLSHIP_OPTIMIZE_SCRIPT', OPTIMIZE_SCRIPT, env, [HELPERS]);
}

export interface PythonJob {
  python: string;
  script: string;
  /** The folder the script writes result.json or error.json ({kind, message, hint}) into. */
  workDir: string;
  configFile: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  onLine: (line: string) => void;
  signal?: AbortSignal;
  timeoutMinutes: number;
  /** What failed, for messages: "Export", "Optimization". */
  what: string;
  /** Hint when the script died without explaining itself. */
  crashHint: string;
}

/**
 * Runs one of the bundled scripts on its config file and reads result.json. An expected failure (error.json)
 * becomes a StepError with the script's own message and hint, plus the last lines of its output.
 */
export async function runPythonJob<T>(job: PythonJob): Promise<T> {
  const outcome = await runPython({
    python: job.python,
    script: job.script,
    args: [job.configFile],
    cwd: job.cwd,
    env: job.env,
    onLine: (line) => job.onLine(line),
    signal: job.signal,
    timeoutMs: job.timeoutMinutes * 60000,
  });
  if (outcome.code === 0) return JSON.parse(fs.readFileSync(path.join(job.workDir, 'result.json'), 'utf8')) as T;
  const tail = outcome.stderrTail.filter((l) => l.trim() !== '').slice(-12);
  const traceback = tail.length ? `\nLast lines of the Python output:\n  ${tail.join('\n  ')}` : '';
  const errorFile = path.join(job.workDir, 'error.json');
  if (fs.existsSync(errorFile)) {
    const e = JSON.parse(fs.readFileSync(errorFile, 'utf8')) as { kind: string; message: string; hint?: string };
    throw new StepError(`${job.what} failed (${e.kind}): ${e.message}${traceback}`, { hint: e.hint ?? undefined });
  }
  if (outcome.signal || outcome.code === null) {
    throw new StepError(
      `The Python ${job.what.toLowerCase()} was stopped (${outcome.signal ?? 'killed'}) before it finished.${traceback}`,
      { hint: `If it ran out of time, raise timeout-minutes (now ${job.timeoutMinutes}).` },
    );
  }
  throw new StepError(`The Python ${job.what.toLowerCase()} failed with exit code ${outcome.code}.${traceback}`, { hint: job.crashHint });
}
