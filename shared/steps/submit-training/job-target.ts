import type { StepContext } from '../../core/context';
import { StepError } from '../../core/errors';
import { attemptName } from '../../training/job-name';
import type { JobStatus, TrainingBackend } from '../../training/types';

/** The job this run works on: one to submit, or one to attach to with its current status. */
export interface Target {
  name: string;
  submit: boolean;
  status?: JobStatus;
}

export async function attachTarget(backend: TrainingBackend, name: string): Promise<Target> {
  const status = await backend.status(name);
  if (!status)
    throw new StepError(`There is no ${backend.kind} training job named ${name} to attach to.`, {
      hint: 'Check the job name (the jobName output of the step that submitted it) and the region or workspace.',
    });
  return { name, submit: false, status };
}

/**
 * Finds where this run stands: no job yet → submit; a job running or done → attach; the latest job failed or
 * stopped → fail, or start `<name>-rN` when asked. Only one job per run is ever started without asking.
 */
export async function chooseJob(backend: TrainingBackend, base: string, rerunFailed: boolean, ctx: StepContext): Promise<Target> {
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
    throw new StepError(
      `Training job ${name} of this run already ${latest.status.state === 'failed' ? 'failed' : 'was stopped'} (${latest.status.status}): ${latest.status.failureReason ?? 'no reason given'}. A re-run does not start a new paid job by itself.`,
      {
        hint: `Set ${ctx.inputLabel('rerunFailed')}: true to start ${attemptName(base, latest.n + 1)}, or fix the cause first. Details: ${backend.consoleUrl(name)}`,
      },
    );
  }
  ctx.log.info(
    `Job ${name} ${latest.status.state}; starting ${attemptName(base, latest.n + 1)} because ${ctx.inputLabel('rerunFailed')} is true.`,
  );
  return { name: attemptName(base, latest.n + 1), submit: true };
}
