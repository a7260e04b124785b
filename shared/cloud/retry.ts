/**
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
      const ceiling = Math.min(options.policy.maxMs, options.policy.baseMs * 2 ** Math.min(attempt - 1, 30));
      const delayMs = Math.max(decision.afterMs ?? 0, Math.random() * ceiling);
      if (Date.now() - started + delayMs > options.policy.budgetMs) throw error;
      options.onRetry?.({ attempt, delayMs, reason: decision.reason });
      await sleep(delayMs, options.signal);
    }
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
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
