/**
 * CLI commands that are not pipeline steps (eval, verify-package, rollback, device-agent, demo). Each
 * returns the process exit code: 0 success, 1 failure, 2 bad usage.
 */
export interface CliCommand {
  name: string;
  summary: string;
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}
