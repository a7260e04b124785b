import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Shared plumbing of the fakes: a local HTTP server, a call log, and injected faults. */
export interface RecordedCall {
  service: string;
  action: string;
  status: number;
  /** Error code answered, if any (ThrottlingException, ExpiredTokenException, …). */
  error?: string;
  body: unknown;
  /** Credential the request was made with (access key id or bearer token), to assert refreshes. */
  principal?: string;
  at: number;
}

export type FaultKind = 'throttle' | '5xx' | 'slow';

export interface Fault {
  kind: FaultKind;
  remaining: number;
  /** Only requests for this action (e.g. DescribeTrainingJob, GET job) are hit. */
  action?: string;
  delayMs?: number;
}

export interface RawRequest {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RawResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export abstract class FakeServer {
  readonly calls: RecordedCall[] = [];
  protected faults: Fault[] = [];
  private server?: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw: RawRequest = {
          method: req.method ?? 'GET',
          url: new URL(req.url ?? '/', this.url),
          headers: req.headers,
          body: Buffer.concat(chunks),
        };
        Promise.resolve()
          .then(() => this.handle(raw))
          .then(
            (out) => {
              res.writeHead(out.status, out.headers ?? {});
              res.end(out.body ?? '');
            },
            (error: Error) => {
              res.writeHead(500, { 'content-type': 'text/plain' });
              res.end(`fake crashed: ${error.stack}`);
            },
          );
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The next `count` matching requests get HTTP 400 ThrottlingException (AWS) or 429 (Azure). */
  throttle(count: number, action?: string): void {
    this.faults.push({ kind: 'throttle', remaining: count, action });
  }

  serverErrors(count: number, action?: string): void {
    this.faults.push({ kind: '5xx', remaining: count, action });
  }

  slow(count: number, delayMs: number, action?: string): void {
    this.faults.push({ kind: 'slow', remaining: count, delayMs, action });
  }

  /** Takes one fault that applies to `action`, if any. */
  protected nextFault(action: string): Fault | undefined {
    const f = this.faults.find((x) => x.remaining > 0 && (!x.action || x.action === action));
    if (f) f.remaining--;
    return f;
  }

  callsOf(action: string): RecordedCall[] {
    return this.calls.filter((c) => c.action === action);
  }

  protected abstract handle(req: RawRequest): Promise<RawResponse>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value; for tests waiting on what a fake recorded. */
export async function until<T>(check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}
