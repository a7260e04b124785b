import type { Logger } from '../core/context';
import { StepError } from '../core/errors';
import type { ProgressReport } from '../core/host';
import { AbortedError, sleep } from '../core/retry';
import { TERMINAL_STATES, type JobStatus, type TrainingBackend } from './types';

export type WaitResult = { kind: 'finished'; status: JobStatus } | { kind: 'cancelled'; status?: JobStatus } | { kind: 'timeout'; status?: JobStatus };

export interface WaitOptions {
  pollMs: number;
  /** 0 or undefined: wait as long as the job runs. */
  timeoutMs?: number;
  signal: AbortSignal;
  log: Logger;
  progress(report: ProgressReport): void;
}

/**
 * Polls a job until it ends, the step is cancelled or the wait times out. Status transitions, the
 * secondary status and billable time go to the log; training logs stream where the backend has them.
 * Throttling and 5xx are absorbed by each backend call's retry budget, so a poll either succeeds or the
 * service has been failing for long enough that the step should say so.
 */
export async function waitForJob(backend: TrainingBackend, name: string, options: WaitOptions): Promise<WaitResult> {
  const started = Date.now();
  let lastKey = '';
  let cursor: string | undefined;
  let status: JobStatus | undefined;
  const label = `training ${name}`;
  const streamLogs = async () => {
    if (!backend.logs) return;
    for (;;) {
      const chunk = await backend.logs(name, cursor);
      cursor = chunk.cursor;
      for (const line of chunk.lines) options.log.info(`  | ${line}`);
      if (chunk.lines.length === 0) return;
    }
  };
  try {
    for (;;) {
      status = await backend.status(name);
      if (!status) throw new StepError(`Training job ${name} disappeared while the step was waiting for it.`, { hint: 'Someone deleted it, or the region/workspace changed between attempts.' });
      await streamLogs();
      const elapsed = Date.now() - started;
      const key = `${status.status}/${status.secondaryStatus ?? ''}`;
      if (key !== lastKey) {
        lastKey = key;
        options.log.info(`[${formatDuration(elapsed)}] ${name}: ${describeStatus(status)}`);
      }
      options.progress({ label, done: Math.round(elapsed / 1000), message: describeStatus(status) });
      if (TERMINAL_STATES.has(status.state)) return { kind: 'finished', status };
      if (options.timeoutMs && elapsed >= options.timeoutMs) return { kind: 'timeout', status };
      const remaining = options.timeoutMs ? Math.max(0, options.timeoutMs - elapsed) : Infinity;
      await sleep(Math.min(options.pollMs, remaining), options.signal);
    }
  } catch (error) {
    if (error instanceof AbortedError || options.signal.aborted) return { kind: 'cancelled', status };
    throw error;
  }
}

export function describeStatus(s: JobStatus): string {
  const parts = [s.secondaryStatus && s.secondaryStatus !== s.status ? `${s.status} / ${s.secondaryStatus}` : s.status];
  if (s.billableSeconds !== undefined) parts.push(`billable ${s.billableSeconds} s`);
  if (s.message) parts.push(s.message);
  return parts.join(' — ');
}

export function formatDuration(ms: number): string {
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h}h ${String(m).padStart(2, '0')}m` : m ? `${m}m ${String(s).padStart(2, '0')}s` : `${s}s`;
}
