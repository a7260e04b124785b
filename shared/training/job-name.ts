import { createHash } from 'node:crypto';
import type { RunInfo } from '../core/host';

/**
 * Job names are the idempotency key: the same workflow run, job and step always derive the same name, so a
 * re-run finds the job its first attempt started instead of starting (and paying for) another.
 * The attempt number is deliberately left out. Names fit SageMaker (63 characters, letters, digits,
 * hyphens) and Azure ML.
 */
export interface JobKey {
  repository?: string;
  runId: string;
  job?: string;
  /** Tells two submit-training steps of one job apart (spec name or an explicit key). */
  step: string;
}

export function jobKey(run: RunInfo, step: string): JobKey {
  return { repository: run.repository, runId: run.id, job: run.job, step };
}

export function deriveJobName(key: JobKey, prefix = 'mlship'): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([key.repository ?? '', key.runId, key.job ?? '', key.step]))
    .digest('hex')
    .slice(0, 12);
  return `${slug(prefix, 46)}-${hash}`;
}

/** The n-th job of a chain: a failed job is replaced by `<base>-r2`, then `-r3`, only when asked. */
export function attemptName(base: string, n: number): string {
  return n <= 1 ? base : `${base}-r${n}`;
}

const NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

export function isValidJobName(name: string): boolean {
  return NAME.test(name);
}

function slug(text: string, max: number): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return s || 'mlship';
}
