import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { repoPath } from '../../support/paths';

/**
 * Starts Azurite's blob service on a free 127.0.0.1 port, in memory, with a throw-away account, and stops it.
 * Telemetry is off: tests must not reach outside the machine.
 */
export class AzuriteBlob {
  private child?: ChildProcess;
  readonly account = 'mlshiptest';
  readonly key = randomBytes(32).toString('base64');
  port = 0;

  get connectionString(): string {
    return `DefaultEndpointsProtocol=http;AccountName=${this.account};AccountKey=${this.key};BlobEndpoint=http://127.0.0.1:${this.port}/${this.account};`;
  }

  get blobEndpoint(): string {
    return `http://127.0.0.1:${this.port}/${this.account}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const bin = repoPath('node_modules/.bin/azurite-blob');
    const args = [
      '--silent',
      '--inMemoryPersistence',
      '--extentMemoryLimit',
      '512',
      '--disableTelemetry',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(this.port),
      '--skipApiVersionCheck',
      '--loose',
    ];
    this.child = spawn(bin, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, AZURITE_ACCOUNTS: `${this.account}:${this.key}` },
    });
    let stderr = '';
    this.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!(await canConnect(this.port))) {
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`Azurite did not start on port ${this.port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
