import { type ChildProcess, spawn } from 'node:child_process';

/**
 * A third-party server run as a child process for a test file (moto_server, mlflow server): started on
 * 127.0.0.1 with port 0, its real address read from what it prints, and stopped (SIGTERM, then SIGKILL) when
 * the tests are done. A server that does not come up fails the test with its own output, never a skip.
 */
export class ServerProcess {
  private child?: ChildProcess;
  private output = '';
  url = '';

  constructor(
    private readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    /** Matches the line announcing the listening address; group 1 is the URL. */
    private readonly ready: RegExp,
    private readonly options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
  ) {}

  async start(): Promise<string> {
    const child = spawn(this.command, this.args, {
      cwd: this.options.cwd,
      env: { ...process.env, ...this.options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    const timeoutMs = this.options.timeoutMs ?? 90_000;
    this.url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => fail(new Error(`${this.name} did not announce its address within ${timeoutMs / 1000} s:\n${this.tail()}`)),
        timeoutMs,
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        this.signal('SIGKILL');
        reject(error);
      };
      const onData = (d: Buffer) => {
        this.output = (this.output + d.toString()).slice(-64 * 1024);
        const m = this.ready.exec(this.output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (error) => fail(new Error(`${this.name} could not be started (${this.command}): ${error.message}`)));
      child.once('exit', (code, signal) => fail(new Error(`${this.name} exited (${code ?? signal}) before it was ready:\n${this.tail()}`)));
    });
    return this.url;
  }

  /** The last lines the server printed, for failure messages. */
  tail(lines = 40): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => this.signal('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      this.signal('SIGTERM');
    });
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  /** Signals the server's own process group: `mlflow server` runs uvicorn as a child, which must stop too. */
  private signal(name: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, name);
    } catch {
      this.child?.kill(name);
    }
  }
}
