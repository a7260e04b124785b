import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { requirePython, VENV_BIN } from './python-env';
import * as path from 'node:path';

/**
 * moto_server (the moto project's emulator of the AWS wire protocols) from the pinned Python environment, on a free
 * loopback port, for the real @aws-sdk clients. Stopped with `stop()`; jest's afterAll must call it.
 */
export interface Moto {
  url: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startMoto(): Promise<Moto> {
  requirePython(['moto']);
  const port = await freePort();
  const child: ChildProcess = spawn(path.join(VENV_BIN, 'moto_server'), ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}):\n${log}`);
    const up = await fetch(`${url}/moto-api/`).then((r) => r.ok, () => false);
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not answer on ${url} within 60 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
