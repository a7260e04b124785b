import type { IdentityOptions } from '../../cloud/auth/azure';
import { CloudConnections } from '../../cloud/connections';
import { AbortedError, DEFAULT_RETRY, type RetryPolicy } from '../../core/retry';
import type { StepContext } from '../../core/context';
import { StepError } from '../../core/errors';
import { createBackend } from '../../training';
import { TERMINAL_STATES, type BackendKind, type JobSpec, type TrainingBackend } from '../../training/types';
import { STATE, type SavedConnection } from './state';

/** The inputs that decide whether and how a job is stopped. */
export interface StopInputs {
  wait: boolean;
  keepRunningOnCancel: boolean;
  timeoutMinutes: number;
  roleToAssume?: string;
  awsServiceConnection?: string;
}

/** The run was cancelled or the wait timed out: stop the job first (unless told not to), then fail the step. */
export async function cancelled(
  backend: TrainingBackend,
  name: string,
  values: Pick<StopInputs, 'keepRunningOnCancel' | 'timeoutMinutes'>,
  ctx: StepContext,
  why: 'cancelled' | 'timeout',
): Promise<never> {
  const reason = why === 'timeout' ? `The wait timed out after ${values.timeoutMinutes} minutes` : 'The run was cancelled';
  if (values.keepRunningOnCancel) {
    ctx.log.warning(
      `${reason}; training job ${name} keeps running (keep-running-on-cancel). Attach later with ${ctx.inputLabel('jobName')}: ${name}`,
    );
    throw new StepError(`${reason}; training job ${name} was left running.`, {
      hint: `Attach with ${ctx.inputLabel('jobName')}: ${name}. Console: ${backend.consoleUrl(name)}`,
    });
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
export async function stopOrphanedJob(
  values: StopInputs,
  ctx: StepContext,
  options: { retry?: RetryPolicy; azureIdentityOptions?: IdentityOptions },
): Promise<void> {
  const name = ctx.getState(STATE.job);
  if (!name || ctx.getState(STATE.ended) === '1' || !values.wait || values.keepRunningOnCancel) return;
  const kind = ctx.getState(STATE.backend) as BackendKind | undefined;
  if (!kind) return;
  const saved = JSON.parse(ctx.getState(STATE.connection) ?? '{}') as SavedConnection;
  const connections = new CloudConnections(ctx, {
    region: saved.region,
    roleToAssume: values.roleToAssume,
    awsServiceConnection: values.awsServiceConnection,
    azure: saved.azure,
    identityOptions: options.azureIdentityOptions,
    retry: options.retry ?? DEFAULT_RETRY,
  });
  const spec: Partial<JobSpec> = { local: { jobsDir: saved.jobsDir }, azureml: { modelOutput: saved.modelOutput } };
  const backend = createBackend(kind, spec, connections, { workspace: ctx.workspace, env: ctx.env, log: ctx.log });
  const status = await backend.status(name);
  if (!status || TERMINAL_STATES.has(status.state)) return;
  ctx.log.info(`The run ended before submit-training finished; stopping training job ${name} (${status.status}).`);
  await backend.cancel(name);
  ctx.log.info(`Stop requested for ${name}.`);
}
