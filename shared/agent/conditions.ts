import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

/**
 * When an instrument may change its model: not while it analyses samples (a busy command or a lock file the
 * analysis software holds) and, when a maintenance window is set, only inside it.
 */
export interface InstallWindow {
  /** Shell command; exit status 0 means "busy, do not install now". */
  busyCommand?: string;
  /** The instrument is busy while this file exists. */
  busyFile?: string;
  /** "HH:MM-HH:MM" in the device's local time; may wrap midnight ("22:00-06:00"). */
  maintenanceWindow?: string;
}

export interface CommandResult {
  code: number | null;
  output: string;
  timedOut: boolean;
}

/**
 * Runs a shell command with a time limit, keeping the last few KB of its output for the report. The command
 * gets a process group of its own, and at the timeout the whole group is killed: a health check that started
 * a server or a `sleep` in the background must not keep the device on an unverified release. The result comes
 * when the shell exits, not when every pipe closes, since a surviving grandchild elsewhere may hold them open.
 */
export function runCommand(command: string, options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<CommandResult> {
  return new Promise((resolve) => {
    const detached = process.platform !== 'win32';
    const child = spawn(command, {
      shell: true,
      detached,
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-4096);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const killGroup = () => {
      try {
        if (detached && child.pid) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    let settled = false;
    const finish = (result: CommandResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    child.on('error', (error) => finish({ code: null, output: error.message, timedOut }));
    child.on('exit', (code) => {
      // Whatever the shell left behind in its group goes with it, then the pipes get a moment to drain.
      if (timedOut) killGroup();
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish({ code, output: output.trim(), timedOut });
      }, 50);
    });
  });
}

export function parseWindow(text: string): { start: number; end: number } {
  const match = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(text.trim());
  const minutes = (h: string, m: string) => Number(h) * 60 + Number(m);
  if (!match || Number(match[1]) > 23 || Number(match[3]) > 24 || Number(match[2]) > 59 || Number(match[4]) > 59) {
    throw new Error(`maintenance window "${text}" is not HH:MM-HH:MM (e.g. 22:00-06:00)`);
  }
  return { start: minutes(match[1], match[2]), end: minutes(match[3], match[4]) };
}

export function insideWindow(text: string, now: Date): boolean {
  const { start, end } = parseWindow(text);
  const t = now.getHours() * 60 + now.getMinutes();
  return start <= end ? t >= start && t < end : t >= start || t < end;
}

/** Why installing must wait, or undefined when it may go ahead now. */
export async function deferReason(window: InstallWindow, now: Date): Promise<string | undefined> {
  if (window.maintenanceWindow && !insideWindow(window.maintenanceWindow, now))
    return `outside the maintenance window ${window.maintenanceWindow}`;
  if (window.busyFile && fs.existsSync(window.busyFile)) return `busy: ${window.busyFile} exists`;
  if (window.busyCommand) {
    const result = await runCommand(window.busyCommand, { timeoutMs: 30_000 });
    if (result.code === 0) return `busy: "${window.busyCommand}" says so${result.output ? ` (${result.output.split('\n').at(-1)})` : ''}`;
  }
  return undefined;
}
