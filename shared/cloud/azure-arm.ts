import { StepError } from '../core/errors';
import type { AzureAuth } from './auth/azure';
import { isTransientNetworkError, sleep, withRetry, type RetryPolicy } from '../core/retry';

export const ARM_PUBLIC = 'https://management.azure.com';

/** An ARM or Azure ML data-plane call that failed; 429 and 5xx are retried before one is ever thrown. */
export class AzureServiceError extends StepError {
  readonly status: number;
  readonly code: string;
  readonly retryAfterMs?: number;
  constructor(method: string, url: string, status: number, code: string, message: string, retryAfterMs?: number) {
    super(`Azure ${method} ${shortPath(url)} failed: ${status} ${code}: ${message}`, { hint: hintFor(status, code) });
    this.name = 'AzureServiceError';
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
  get retryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

export interface ArmResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface ArmClientOptions {
  auth: AzureAuth;
  /** ARM endpoint; the public cloud's unless a sovereign cloud (or a test fake) is named. */
  endpoint?: string;
  apiVersion: string;
  retry: RetryPolicy;
  onRetry?(message: string): void;
}

/**
 * Minimal ARM REST client over fetch: bearer tokens from @azure/identity, api-version on every call, backoff
 * with jitter on 429/5xx (honouring Retry-After), one token refresh on 401, and long-running operations.
 */
export class ArmClient {
  readonly endpoint: string;
  readonly scope: string;
  constructor(private readonly options: ArmClientOptions) {
    this.endpoint = (options.endpoint ?? ARM_PUBLIC).replace(/\/+$/, '');
    this.scope = `${this.endpoint}/.default`;
  }

  url(path: string, query: Record<string, string> = {}): string {
    const u = new URL(path.startsWith('http') ? path : `${this.endpoint}${path}`);
    if (!u.searchParams.has('api-version')) u.searchParams.set('api-version', this.options.apiVersion);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u.toString();
  }

  /** GET that maps 404 to undefined. */
  async get<T>(path: string, query?: Record<string, string>, signal?: AbortSignal): Promise<T | undefined> {
    const res = await this.send<T>('GET', this.url(path, query), undefined, { allowNotFound: true, signal });
    return res.status === 404 ? undefined : res.body;
  }

  async put<T>(path: string, body: unknown): Promise<ArmResponse<T>> {
    return this.send<T>('PUT', this.url(path), body);
  }

  /** POST that follows a 202 long-running operation until it finishes or `maxWaitMs` passes. */
  async postAndWait(path: string, body: unknown, maxWaitMs: number): Promise<{ done: boolean }> {
    const res = await this.send<unknown>('POST', this.url(path), body);
    if (res.status !== 202) return { done: true };
    const started = Date.now();
    const monitor = res.headers.get('azure-asyncoperation') ?? res.headers.get('location');
    if (!monitor) return { done: true };
    let delay = retryAfterMs(res.headers) ?? 1000;
    while (Date.now() - started < maxWaitMs) {
      await sleep(Math.min(delay, 10_000));
      const poll = await this.send<{ status?: string; error?: { code?: string; message?: string } }>('GET', monitor, undefined);
      if (poll.status === 202) {
        delay = retryAfterMs(poll.headers) ?? delay;
        continue;
      }
      const status = poll.body?.status;
      if (status === undefined || /^(succeeded|failed|canceled|cancelled)$/i.test(status)) {
        if (status && /^failed$/i.test(status))
          throw new AzureServiceError(
            'POST',
            path,
            200,
            poll.body.error?.code ?? 'OperationFailed',
            poll.body.error?.message ?? 'the operation failed',
          );
        return { done: true };
      }
    }
    return { done: false };
  }

  /** Any call against ARM or the Azure ML data plane (absolute URL), with the same auth and retries. */
  async send<T>(
    method: string,
    url: string,
    body: unknown,
    options: { allowNotFound?: boolean; signal?: AbortSignal } = {},
  ): Promise<ArmResponse<T>> {
    let refreshed = false;
    return withRetry(
      async () => {
        const token = await this.options.auth.token(this.scope);
        const res = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        const parsed = text ? safeJson(text) : undefined;
        if (res.status === 401 && !refreshed) {
          // A token revoked or expired early: start over with a fresh credential once, then believe the 401.
          refreshed = true;
          this.options.auth.invalidate();
          throw new RetryNow();
        }
        if (res.ok || (res.status === 404 && options.allowNotFound)) return { status: res.status, body: parsed as T, headers: res.headers };
        const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
        throw new AzureServiceError(
          method,
          url,
          res.status,
          err?.code ?? res.statusText,
          err?.message ?? text.slice(0, 300),
          retryAfterMs(res.headers),
        );
      },
      {
        policy: this.options.retry,
        signal: options.signal,
        classify: (error) => {
          if (error instanceof RetryNow) return { retry: true, reason: 'token refresh after 401', afterMs: 0 };
          if (error instanceof AzureServiceError && error.retryable)
            return { retry: true, reason: `${error.status} ${error.code}`, afterMs: error.retryAfterMs };
          const status = (error as { statusCode?: number }).statusCode;
          if (status === 429 || (status !== undefined && status >= 500)) return { retry: true, reason: `identity endpoint ${status}` };
          if (isTransientNetworkError(error)) return { retry: true, reason: (error as Error).message };
          return { retry: false };
        },
        onRetry: ({ attempt, delayMs, reason }) =>
          this.options.onRetry?.(`Azure ${method} ${shortPath(url)}: ${reason}; retry ${attempt} in ${Math.round(delayMs)} ms`),
      },
    );
  }
}

class RetryNow extends Error {}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: { message: text.slice(0, 300) } };
  }
}

function retryAfterMs(headers: Headers): number | undefined {
  const ms = headers.get('x-ms-retry-after-ms') ?? headers.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const s = headers.get('retry-after');
  if (s && Number.isFinite(Number(s))) return Number(s) * 1000;
  if (s) {
    const at = Date.parse(s);
    if (Number.isFinite(at)) return Math.max(0, at - Date.now());
  }
  return undefined;
}

function shortPath(url: string): string {
  try {
    const u = new URL(url, 'http://x');
    const i = u.pathname.indexOf('/workspaces/');
    return i >= 0 ? u.pathname.slice(i + 1) : u.pathname;
  } catch {
    return url;
  }
}

function hintFor(status: number, code: string): string | undefined {
  if (status === 401) return 'The token was rejected; check the tenant and that the identity exists. See docs/permissions.md.';
  if (status === 403)
    return 'The identity lacks an Azure role on the workspace: assign "AzureML Data Scientist" (or the custom role in docs/permissions.md).';
  if (status === 404) return 'Check the subscription, resource group and workspace names.';
  if (status === 429 || status >= 500) return 'Azure kept throttling or failing for the whole retry budget; try again later.';
  if (/UserError|BadRequest|Validation/i.test(code))
    return 'Azure ML rejected the job definition; check the compute, environment and inputs in the job spec.';
  return undefined;
}
