import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP proxy in front of an emulator (moto) that answers the first `n` requests matching a filter
 * with a throttling or 5xx error in the AWS JSON protocol's own shape, and forwards everything else untouched.
 * The emulator stays the source of truth; only the faults are injected here.
 */
export class FaultProxy {
  private server?: http.Server;
  private faults: { left: number; status: number; type: string; match: (target: string) => boolean }[] = [];
  injected = 0;
  url = '';

  constructor(private readonly upstream: string) {}

  /** The next `n` requests whose X-Amz-Target (or method + path) matches get `status` with error `type`. */
  inject(n: number, options: { status?: number; type?: string; match?: (target: string) => boolean } = {}): void {
    this.faults.push({
      left: n,
      status: options.status ?? 400,
      type: options.type ?? 'ThrottlingException',
      match: options.match ?? (() => true),
    });
  }

  async start(): Promise<string> {
    const upstream = new URL(this.upstream);
    this.server = http.createServer((req, res) => {
      const target = String(req.headers['x-amz-target'] ?? `${req.method} ${req.url}`);
      const fault = this.faults.find((f) => f.left > 0 && f.match(target));
      if (fault) {
        fault.left--;
        this.injected++;
        req.resume();
        const body = JSON.stringify({
          __type: fault.type,
          message: fault.status === 400 ? 'Rate exceeded' : 'We encountered an internal error. Please try again.',
        });
        res.writeHead(fault.status, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-errortype': fault.type,
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502);
        res.end(error.message);
      });
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
