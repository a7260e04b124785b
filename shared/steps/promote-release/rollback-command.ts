import type { CliCommand, CliIo } from '../../cli/commands';
import { runStepCommand } from '../../cli/run-step';
import { promoteReleaseStep } from './index';

/**
 * `mlship rollback --channel production …`: promote-release in rollback mode, with the channel named the
 * way an operator says it. Every other promote-release option (store, signing key, approvals, registry) applies.
 */
export const rollbackCommand: CliCommand = {
  name: 'rollback',
  summary: 'Point an OTA channel back at its previous release (promote-release --mode rollback).',
  async run(argv: readonly string[], io: CliIo): Promise<number> {
    const translated: string[] = ['--mode', 'rollback'];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i];
      if (arg === '--channel') translated.push('--to', argv[++i] ?? '');
      else if (arg.startsWith('--channel=')) translated.push(`--to=${arg.slice('--channel='.length)}`);
      else if (arg === '--mode' || arg.startsWith('--mode=')) {
        io.stderr('error: "mlship rollback" always runs in rollback mode; leave out --mode.\n');
        return 2;
      } else translated.push(arg);
    }
    return runStepCommand(promoteReleaseStep, translated, io, {
      help: 'mlship rollback --channel <channel> --signing-key <key> [--store … --store-uri …] [--reason …]\n\nRuns promote-release in rollback mode; see "mlship promote-release --help" for every option.',
      usageError: (message) => message.replace(/--to\b/g, '--channel'),
    });
  },
};
