import { spawn } from 'node:child_process';
// `import x = require()` of 'fs'/'path' (not node:fs, not import * as) is the form @vercel/ncc's asset relocator
// follows, so the bundle ships export_onnx.py next to index.js.
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
        reject(new StepError(`Python interpreter "${options.python}" was not found.`, { hint: 'Set the python input to an interpreter with PyTorch and onnx installed (e.g. /usr/bin/python3 or .venv/bin/python).' }));
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
 * Where the export script is: MLSHIP_EXPORT_SCRIPT, else beside this module. The literal
 * path.join(__dirname, ...) lets @vercel/ncc see the file and ship it with the bundle as an asset.
 */
export function exportScriptPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MLSHIP_EXPORT_SCRIPT) {
    if (!fs.existsSync(env.MLSHIP_EXPORT_SCRIPT)) throw new StepError(`MLSHIP_EXPORT_SCRIPT is ${env.MLSHIP_EXPORT_SCRIPT}, which does not exist.`, { hint: 'Point it at shared/onnx/python/export_onnx.py, or unset it.' });
    return env.MLSHIP_EXPORT_SCRIPT;
  }
  const script = path.join(__dirname, 'python', 'export_onnx.py');
  if (!fs.existsSync(script)) throw new StepError(`The export script is missing at ${script}.`, { hint: 'Reinstall mlship, or set MLSHIP_EXPORT_SCRIPT to shared/onnx/python/export_onnx.py.' });
  return script;
}
