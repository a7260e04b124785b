import { type ChildProcess, spawn } from 'node:child_process';
import { ROOT } from '../../support/paths';

export { ROOT };

/** A TypeScript child process run through esbuild-register, with its stdout collected line by line. */
export class TsChild {
  readonly process: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<number | null>;
  private readonly waiters: { text: string; resolve: () => void }[] = [];

  constructor(script: string, env: Record<string, string>) {
    this.process = spawn(process.execPath, ['-r', 'esbuild-register', script], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.process.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      for (const w of [...this.waiters]) {
        if (this.stdout.includes(w.text)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    this.process.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.process.on('close', (code) => resolve(code)));
  }

  waitFor(text: string): Promise<void> {
    if (this.stdout.includes(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ text, resolve });
      void this.exited.then((code) => reject(new Error(`child exited (${code}) before printing "${text}": ${this.stderr.slice(-2000)}`)));
    });
  }

  /** Writes one line and closes stdin. */
  send(line: string): void {
    this.process.stdin!.end(line + '\n');
  }

  exit(): Promise<number | null> {
    return this.exited;
  }
}
