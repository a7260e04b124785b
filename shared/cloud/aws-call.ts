import type { Logger } from '../core/context';
import type { AwsAuth } from './auth/aws';
import { awsStepError, classifyAwsError, isExpiredCredentials } from './aws-errors';
import { AbortedError, withRetry, type RetryPolicy } from '../core/retry';

/**
 * One AWS SDK client with the step's retry policy around every call. The SDK's own retries are off
 * (maxAttempts 1 at construction) so backoff lives in one place. When the service says the credentials
 * expired, the credentials and the client (whose identity cache would hold the stale ones) are rebuilt once.
 */
export class AwsCaller<C> {
  private current: C;

  constructor(
    private readonly service: string,
    private readonly make: () => C,
    private readonly auth: AwsAuth,
    private readonly retry: RetryPolicy,
    private readonly log?: Logger,
  ) {
    this.current = make();
  }

  get client(): C {
    return this.current;
  }

  /**
   * Runs `fn` with retries. `expected` may turn a known error (say, "not found") into a value; anything
   * else becomes a StepError naming the operation.
   */
  async call<T>(
    operation: string,
    fn: (client: C) => Promise<T>,
    expected?: (error: unknown) => { value: T } | undefined,
    signal?: AbortSignal,
  ): Promise<T> {
    let refreshed = false;
    try {
      return await withRetry(
        async () => {
          try {
            return await fn(this.current);
          } catch (error) {
            if (isExpiredCredentials(error) && !refreshed) {
              refreshed = true;
              this.log?.info(`${this.service}: credentials expired; fetching new ones.`);
              this.auth.invalidate();
              this.current = this.make();
              throw new RefreshAndRetry();
            }
            throw error;
          }
        },
        {
          policy: this.retry,
          signal,
          classify: (error) =>
            error instanceof RefreshAndRetry ? { retry: true, reason: 'refreshed credentials', afterMs: 0 } : classifyAwsError(error),
          onRetry: ({ attempt, delayMs, reason }) =>
            this.log?.debug(`${this.service} ${operation}: ${reason}; retry ${attempt} in ${Math.round(delayMs)} ms`),
        },
      );
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      const handled = expected?.(error);
      if (handled) return handled.value;
      throw awsStepError(this.service, operation, error);
    }
  }
}

class RefreshAndRetry extends Error {}
