import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { StepError } from '../core/errors';
import { isTransientNetworkError, withRetry, type RetryPolicy } from '../core/retry';

/** How the MLflow server is reached; the secrets are never part of an error message or a log line. */
export interface MlflowAuth {
  /** Bearer token (MLFLOW_TRACKING_TOKEN, a Databricks PAT, an Azure ML ARM token). */
  token?: string | (() => Promise<string>);
  /** Basic auth (MLflow's own basic-auth app: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD). */
  username?: string;
  password?: string;
}

export interface MlflowClientOptions extends MlflowAuth {
  /** http(s)://host[:port][/prefix]: the tracking server, which also serves the model registry. */
  trackingUri: string;
  retry: RetryPolicy;
  onRetry?(message: string): void;
  /** The input that set the URI, for hints (mlflow-tracking-uri, mlflowTrackingUri). */
  uriLabel?: string;
}

/** An MLflow REST error: `error_code` (RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE, …) and message. */
export class MlflowError extends StepError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    hint?: string,
  ) {
    super(message, { hint });
    this.name = 'MlflowError';
  }
  get retryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

/**
 * The MLflow REST API 2.0 over fetch (tracking, model registry and proxied artifacts), with backoff on 429/5xx
 * and transient network errors. One small client instead of the Python SDK: the steps run in Node.
 */
export class MlflowClient {
  /** The tracking URI as shown to people: no user:password part. */
  readonly location: string;
  private readonly base: string;
  private readonly userinfo?: { username: string; password: string };

  constructor(private readonly options: MlflowClientOptions) {
    const label = options.uriLabel ?? 'mlflow-tracking-uri';
    let url: URL;
    try {
      url = new URL(options.trackingUri);
    } catch {
      throw new StepError(`The MLflow tracking URI "${options.trackingUri}" is not a URL.`, {
        hint: `Set ${label} to the server's address, e.g. https://mlflow.example.com or http://127.0.0.1:5000.`,
      });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new StepError(`The MLflow tracking URI "${url.protocol}//${url.host}${url.pathname}" is not an http(s) server.`, {
        hint: `Set ${label} to the server's http(s):// address (file: and sqlite: stores are not reachable from CI steps; run \`mlflow server\` in front of them).`,
      });
    }
    if (url.username) this.userinfo = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    url.username = '';
    url.password = '';
    this.base = url.toString().replace(/\/+$/, '');
    this.location = this.base;
  }

  get<T>(path: string, query: Record<string, string | number> = {}): Promise<T> {
    const u = new URL(`${this.base}/api/2.0/mlflow/${path}`);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, String(v));
    return this.send<T>('GET', u.toString(), undefined);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('POST', `${this.base}/api/2.0/mlflow/${path}`, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('PATCH', `${this.base}/api/2.0/mlflow/${path}`, body);
  }

  /** DELETE with a JSON body, as the MLflow REST API reads its parameters. */
  delete<T>(path: string, body: Record<string, string>): Promise<T> {
    return this.send<T>('DELETE', `${this.base}/api/2.0/mlflow/${path}`, body);
  }

  /** Streams a local file to the server's proxied artifact store (`mlflow server --serve-artifacts`, the default). */
  async uploadArtifact(artifactPath: string, file: string): Promise<void> {
    const url = `${this.base}/api/2.0/mlflow-artifacts/artifacts/${artifactPath.split('/').map(encodeURIComponent).join('/')}`;
    await this.send('PUT', url, { file });
  }

  /** Reads a proxied artifact (tests and verification read back what was uploaded). */
  async downloadArtifact(artifactPath: string): Promise<Buffer> {
    const url = `${this.base}/api/2.0/mlflow-artifacts/artifacts/${artifactPath.split('/').map(encodeURIComponent).join('/')}`;
    return this.send<Buffer>('GET', url, undefined, true);
  }

  private async headers(): Promise<Record<string, string>> {
    const o = this.options;
    const token = typeof o.token === 'function' ? await o.token() : o.token;
    if (token) return { authorization: `Bearer ${token}` };
    const basic = o.username ? { username: o.username, password: o.password ?? '' } : this.userinfo;
    if (basic) return { authorization: `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}` };
    return {};
  }

  private async send<T>(method: string, url: string, body: unknown | { file: string } | undefined, raw = false): Promise<T> {
    const label = this.options.uriLabel ?? 'mlflow-tracking-uri';
    const what = `${method} ${new URL(url).pathname}`;
    return withRetry(
      async () => {
        const headers: Record<string, string> = { accept: 'application/json', ...(await this.headers()) };
        let payload: RequestInit['body'];
        const file =
          body && typeof body === 'object' && 'file' in body && Object.keys(body).length === 1
            ? (body as { file: string }).file
            : undefined;
        if (file) {
          headers['content-type'] = 'application/octet-stream';
          headers['content-length'] = String(fs.statSync(file).size);
          payload = Readable.toWeb(fs.createReadStream(file)) as unknown as RequestInit['body'];
        } else if (body !== undefined) {
          headers['content-type'] = 'application/json';
          payload = JSON.stringify(body);
        }
        let res: Response;
        try {
          res = await fetch(url, { method, headers, body: payload, ...(file ? { duplex: 'half' } : {}) } as RequestInit);
        } catch (error) {
          if (isTransientNetworkError(error)) throw error;
          const cause = (error as { cause?: { code?: string; message?: string } }).cause;
          const code = cause?.code ?? cause?.message ?? (error as Error).message;
          throw new StepError(`Cannot reach the MLflow tracking server at ${this.location} (${code}).`, {
            hint: `Check ${label} (or MLFLOW_TRACKING_URI): the server must be running and reachable from the runner.`,
            cause: error,
          });
        }
        if (raw && res.ok) return Buffer.from(await res.arrayBuffer()) as T;
        const text = await res.text();
        let parsed: { error_code?: string; message?: string } | undefined;
        try {
          parsed = text ? (JSON.parse(text) as typeof parsed) : undefined;
        } catch {
          parsed = undefined;
        }
        if (res.ok) return (parsed ?? {}) as T;
        if (res.status === 401 || res.status === 403) {
          throw new MlflowError(
            res.status,
            'UNAUTHENTICATED',
            `The MLflow server at ${this.location} refused the request (${res.status}${res.status === 401 ? ', not authenticated' : ', not permitted'}) for ${what}.`,
            'Set mlflow-token (MLFLOW_TRACKING_TOKEN), or mlflow-username and mlflow-password (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD), for a user who may edit the model registry.',
          );
        }
        const code = parsed?.error_code ?? `HTTP_${res.status}`;
        const message = parsed?.message ?? text.slice(0, 300);
        throw new MlflowError(res.status, code, `MLflow ${what} at ${this.location} failed: ${res.status} ${code}: ${message}`);
      },
      {
        policy: this.options.retry,
        classify: (error) => {
          if (error instanceof MlflowError && error.retryable) return { retry: true, reason: `${error.status} ${error.code}` };
          if (isTransientNetworkError(error)) return { retry: true, reason: (error as Error).message };
          return { retry: false };
        },
        onRetry: ({ attempt, delayMs, reason }) =>
          this.options.onRetry?.(`MLflow ${what}: ${reason}; retry ${attempt} in ${Math.round(delayMs)} ms`),
      },
    );
  }
}

export function isMlflowCode(error: unknown, ...codes: string[]): boolean {
  return error instanceof MlflowError && codes.includes(error.code);
}
