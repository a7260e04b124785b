import * as path from 'node:path';
import type { CliCommand } from '../cli/commands';
import { DemoFailure } from './step-runner';

/** `mlship demo`: the whole chain locally, no cloud account; the README's main-job command. */
export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'Run the whole pipeline locally on a generated example (no cloud account needed)',
  async run(argv, io) {
    let dir = path.resolve('.mlship/demo');
    let devices = 20;
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--dir' && argv[i + 1]) dir = path.resolve(argv[++i]);
      else if (argv[i] === '--devices' && argv[i + 1]) devices = Number(argv[++i]);
      else if (argv[i] === '--help') {
        io.stdout('Usage: mlship demo [--dir .mlship/demo] [--devices 20]\n');
        return 0;
      } else {
        io.stderr(`error: unknown option "${argv[i]}" for "mlship demo". Usage: mlship demo [--dir DIR] [--devices N]\n`);
        return 2;
      }
    }
    if (!Number.isInteger(devices) || devices < 1) {
      io.stderr('error: --devices must be a whole number of at least 1.\n');
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
  },
};
