import { describeStepError, isStepError } from '../core/errors';
import { kebabCase } from '../core/names';
import { runStep } from '../core/runtime';
import type { AnyStep } from '../core/step';
import { LocalHost } from '../hosts/local-host';
import { steps as shippedSteps } from '../steps';
import { parseStepArgs } from './args';
import { commands as shippedCommands } from './command-list';
import type { CliCommand, CliIo } from './commands';
import { programHelp, stepHelp } from './help';

export interface CliOptions {
  steps?: readonly AnyStep[];
  commands?: readonly CliCommand[];
  io?: CliIo;
}

const defaultIo: CliIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

/** `mlship …`: resolves to an exit code (0 success, 1 step failure, 2 bad usage). */
export async function main(argv: readonly string[], options: CliOptions = {}): Promise<number> {
  const steps = options.steps ?? shippedSteps;
  const commands = options.commands ?? shippedCommands;
  const io = options.io ?? defaultIo;
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(programHelp(steps, commands) + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version') {
    io.stdout(`${require('../../package.json').version}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (command) return command.run(rest, io);
  const step = steps.find((s) => s.name === name);
  if (!step) {
    io.stderr(`error: unknown step or command "${name}".\n\n${programHelp(steps, commands)}\n`);
    return 2;
  }
  return runStepCommand(step, rest, io);
}

async function runStepCommand(step: AnyStep, argv: readonly string[], io: CliIo): Promise<number> {
  let args;
  try {
    args = parseStepArgs(step, argv);
  } catch (error) {
    if (!isStepError(error)) throw error;
    io.stderr(`error: ${describeStepError(error)}\n`);
    return 2;
  }
  if (args.help) {
    io.stdout(stepHelp(step) + '\n');
    return 0;
  }
  const host = new LocalHost({ inputs: args.inputs, summaryFile: args.summaryFile, verbose: args.verbose, write: (line) => io.stderr(line + '\n') });
  const outcome = await runStep(step, host);
  const named: Record<string, unknown> = Object.fromEntries(Object.entries(outcome.values).map(([k, v]) => [kebabCase(k), v]));
  // A script reading --json gets what the runners get on failure too: the outputs set so far, and the error.
  if (!outcome.ok) named.error = outcome.message;
  if (args.json) io.stdout(JSON.stringify(named, null, 2) + '\n');
  else for (const [k, v] of Object.entries(outcome.outputs)) io.stdout(`${kebabCase(k)}=${v}\n`);
  return outcome.ok ? 0 : outcome.usage ? 2 : 1;
}
