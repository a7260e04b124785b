import { setTimeout as delay } from 'node:timers/promises';

/**
 * The one backoff of the code base: cloud calls (withRetry), conditional-write conflicts, lock waits.
 * Backoff with full jitter for throttled and flaky cloud APIs. Retries are bounded by time, not by count:
 * a burst of 20 throttles must not fail a job that will train for hours, but a service that stays down
 * for the whole budget must.
 */
export interface RetryPolicy {
  /** First backoff ceiling; doubles on each retry up to maxMs. */
  baseMs: number;
  maxMs: number;
  /** Give up once retrying has taken this long. */
  budgetMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 500, maxMs: 20_000, budgetMs: 15 * 60_000 };

export type RetryDecision = { retry: false } | { retry: true; reason: string; afterMs?: number };

export interface RetryOptions {
  policy: RetryPolicy;
  classify(error: unknown): RetryDecision;
  signal?: AbortSignal;
  onRetry?(info: { attempt: number; delayMs: number; reason: string }): void;
}

export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const decision = options.classify(error);
      if (!decision.retry) throw error;
      const delayMs = Math.max(decision.afterMs ?? 0, backoffDelay(attempt, options.policy));
      if (Date.now() - started + delayMs > options.policy.budgetMs) throw error;
      options.onRetry?.({ attempt, delayMs, reason: decision.reason });
      await sleep(delayMs, options.signal);
    }
  }
}

/**
 * Full-jitter delay before retry `attempt` (1-based): uniform in [0, min(maxMs, baseMs · 2^(attempt-1))), so
 * writers that collided spread out instead of retrying in lock-step.
 */
export function backoffDelay(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>): number {
  return Math.random() * Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}

/** Resolves after `ms`, or rejects with an AbortedError carrying the signal's reason as soon as it aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    throw error;
  }
}

export class AbortedError extends Error {
  constructor(reason: unknown) {
    super(reason instanceof Error ? reason.message : 'aborted');
    this.name = 'AbortedError';
  }
}

function abortError(signal: AbortSignal): AbortedError {
  return new AbortedError(signal.reason);
}

/** Network failures worth another try; a refused connection or unknown host is a configuration error, not a blip. */
export function isTransientNetworkError(error: unknown): boolean {
  const code = (error as { code?: string; cause?: { code?: string } })?.code ?? (error as { cause?: { code?: string } })?.cause?.code;
  const name = (error as { name?: string })?.name;
  return (
    ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'].includes(code ?? '') ||
    name === 'TimeoutError'
  );
}
