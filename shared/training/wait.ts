import type { Logger } from '../core/context';
import { StepError } from '../core/errors';
import type { ProgressReport } from '../core/host';
import { AbortedError, sleep } from '../core/retry';
import { TERMINAL_STATES, type JobStatus, type TrainingBackend } from './types';

export type WaitResult =
  { kind: 'finished'; status: JobStatus } | { kind: 'cancelled'; status?: JobStatus } | { kind: 'timeout'; status?: JobStatus };

export interface WaitOptions {
  pollMs: number;
  /** 0 or undefined: wait as long as the job runs. */
  timeoutMs?: number;
  signal: AbortSignal;
  log: Logger;
  progress(report: ProgressReport): void;
  /** Training log streaming; default on, 200 lines per poll, no groups. */
  logs?: LogStreaming;
}

export interface LogStreaming {
  enabled: boolean;
  /** At most this many lines go to the CI log per poll; the rest wait for the next poll, so nothing is lost. */
  maxLinesPerPoll: number;
  /** Prints each poll's lines inside a collapsible group (GitHub ::group::, Azure DevOps ##[group]). */
  group?(title: string, fn: () => Promise<void>): Promise<void>;
}

/** After the job ends, this many polls' worth of lines are still printed before pointing at the full log. */
const FINAL_DRAIN_POLLS = 5;

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
  const streaming = { ...(options.logs ?? { enabled: true, maxLinesPerPoll: 200 }) };
  // Lines read past a poll's cap are kept here and printed first on the next poll.
  let pending: string[] = [];
  let printed = 0;
  const streamLogs = async (final: boolean) => {
    if (!backend.logs || !streaming.enabled) return;
    const cap = streaming.maxLinesPerPoll * (final ? FINAL_DRAIN_POLLS : 1);
    let exhausted = false;
    while (pending.length < cap) {
      const chunk = await backend.logs(name, cursor);
      cursor = chunk.cursor;
      pending.push(...chunk.lines);
      if (chunk.lines.length === 0) {
        exhausted = true;
        break;
      }
    }
    const batch = pending.slice(0, cap);
    pending = pending.slice(cap);
    if (batch.length === 0) return;
    const behind = !exhausted || pending.length > 0;
    const first = printed + 1;
    printed += batch.length;
    const print = async () => {
      for (const line of batch) options.log.info(`  | ${line}`);
      if (behind && !final)
        options.log.info(`  | … more lines waiting; the next poll continues (at most ${streaming.maxLinesPerPoll} lines per poll)`);
      if (behind && final)
        options.log.info(`  | … the log goes on; read it in full at ${backend.logsUrl?.(name) ?? backend.consoleUrl(name)}`);
    };
    const title = `Training log ${name}: lines ${first}–${printed} (${formatDuration(Date.now() - started)})`;
    if (streaming.group) await streaming.group(title, print);
    else await print();
  };
  try {
    for (;;) {
      status = await backend.status(name);
      if (!status)
        throw new StepError(`Training job ${name} disappeared while the step was waiting for it.`, {
          hint: 'Someone deleted it, or the region/workspace changed between attempts.',
        });
      try {
        await streamLogs(TERMINAL_STATES.has(status.state));
      } catch (error) {
        if (error instanceof AbortedError || options.signal.aborted) throw error;
        // Logs are a convenience: a role without logs:GetLogEvents must not fail a training that is running fine.
        streaming.enabled = false;
        options.log.warning(
          `Cannot stream the training log any more (${(error as Error).message.split('\n')[0]}); the wait goes on. Logs: ${backend.logsUrl?.(name) ?? backend.consoleUrl(name)}`,
        );
      }
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
