import type { AnyStep } from '../core/step';
import { steps as shippedSteps } from '../steps';
import { commands as shippedCommands } from './command-list';
import type { CliCommand, CliIo } from './commands';
import { programHelp } from './help';
import { runStepCommand } from './run-step';

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
