import * as path from 'node:path';
import type { CliCommand } from '../cli/commands';
import { runCommand, type CommandSpec } from '../cli/options';
import { DemoFailure } from './step-runner';

const DEMO: CommandSpec = {
  command: 'mlship demo',
  summary: 'Runs the whole release chain locally on a generated cell dataset and writes an HTML release report.',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'working folder (default .mlship/demo)' },
    devices: { type: 'string', value: 'N', description: 'simulated instruments that take the release (default 20)' },
  },
};

/** `mlship demo`: the whole chain locally, no cloud account; the README's main-job command. */
export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'Run the whole pipeline locally on a generated example (no cloud account needed)',
  run: (argv, io) =>
    runCommand(DEMO, argv, io, async (values) => {
      const dir = path.resolve(String(values.dir ?? '.mlship/demo'));
      const devices = values.devices === undefined ? 20 : Number(values.devices);
      if (!Number.isInteger(devices) || devices < 1) {
        io.stderr(`error: Option "--devices" has value "${String(values.devices)}"; give a whole number of at least 1.\n`);
        return 2;
      }
      const started = Date.now();
      io.stdout(`mlship demo: the whole release chain, locally, in ${dir}\n`);
      // Loaded here so that `mlship --help` does not pay for every step's dependencies.
      const { runDemo } = require('./pipeline') as typeof import('./pipeline');
      try {
        const { reportPath } = await runDemo({ dir, devices, print: (line) => io.stdout(line + '\n') });
        io.stdout(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s — release report: ${reportPath}\n`);
        return 0;
      } catch (error) {
        if (error instanceof DemoFailure) {
          io.stderr(`\ndemo stopped: ${error.message} (see the log above)\n`);
          return 1;
        }
        throw error;
      }
    }),
};
