import * as fs from 'node:fs';
import { describeStepError, isStepError } from '../core/errors';
import { kebabCase } from '../core/names';
import { runStep } from '../core/runtime';
import type { AnyStep } from '../core/step';
import { LocalHost } from '../hosts/local-host';
import { parseStepArgs } from './args';
import type { CliIo } from './commands';
import { stepHelp } from './help';

export interface StepCommandOptions {
  /** Help text instead of the step's (a command built on a step, like rollback). */
  help?: string;
  /** Rewrites a usage error, e.g. to name the command's own spelling of an option. */
  usageError?: (message: string) => string;
}

/**
 * Runs `step` from command-line arguments: the one path from argv to a step, for `mlship <step>` and for
 * commands built on a step (rollback). Exit codes 0 success, 1 step failure, 2 bad usage; `--json` prints the
 * outputs (and the error on failure) as one JSON object.
 */
export async function runStepCommand(step: AnyStep, argv: readonly string[], io: CliIo, options: StepCommandOptions = {}): Promise<number> {
  let args;
  try {
    args = parseStepArgs(step, argv);
  } catch (error) {
    if (!isStepError(error)) throw error;
    const message = describeStepError(error);
    io.stderr(`error: ${options.usageError ? options.usageError(message) : message}\n`);
    return 2;
  }
  if (args.help) {
    io.stdout((options.help ?? stepHelp(step)) + '\n');
    return 0;
  }
  const host = new LocalHost({
    inputs: args.inputs,
    summaryFile: args.summaryFile,
    verbose: args.verbose,
    write: (line) => io.stderr(line + '\n'),
  });
  const outcome = await runStep(step, host);
  fs.rmSync(host.tempDir, { recursive: true, force: true });
  const named: Record<string, unknown> = Object.fromEntries(Object.entries(outcome.values).map(([k, v]) => [kebabCase(k), v]));
  // A script reading --json gets what the runners get on failure too: the outputs set so far, and the error.
  if (!outcome.ok) named.error = outcome.message;
  if (args.json) io.stdout(JSON.stringify(named, null, 2) + '\n');
  else for (const [k, v] of Object.entries(outcome.outputs)) io.stdout(`${kebabCase(k)}=${v}\n`);
  return outcome.ok ? 0 : outcome.usage ? 2 : 1;
}
