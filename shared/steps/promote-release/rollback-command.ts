import * as fs from 'node:fs';
import { parseStepArgs } from '../../cli/args';
import type { CliCommand, CliIo } from '../../cli/commands';
import { describeStepError, isStepError } from '../../core/errors';
import { kebabCase } from '../../core/names';
import { runStep } from '../../core/runtime';
import { LocalHost } from '../../hosts/local-host';
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
    let args;
    try {
      args = parseStepArgs(promoteReleaseStep, translated);
    } catch (error) {
      if (!isStepError(error)) throw error;
      io.stderr(`error: ${describeStepError(error).replace(/--to\b/g, '--channel')}\n`);
      return 2;
    }
    if (args.help) {
      io.stdout('mlship rollback --channel <channel> --signing-key <key> [--store … --store-uri …] [--reason …]\n\nRuns promote-release in rollback mode; see "mlship promote-release --help" for every option.\n');
      return 0;
    }
    const host = new LocalHost({ inputs: args.inputs, summaryFile: args.summaryFile, verbose: args.verbose, write: (line) => io.stderr(line + '\n') });
    const outcome = await runStep(promoteReleaseStep, host);
    fs.rmSync(host.tempDir, { recursive: true, force: true });
    if (!outcome.ok) return outcome.usage ? 2 : 1;
    if (args.json) io.stdout(JSON.stringify(Object.fromEntries(Object.entries(outcome.values).map(([k, v]) => [kebabCase(k), v])), null, 2) + '\n');
    else for (const [k, v] of Object.entries(outcome.outputs)) io.stdout(`${kebabCase(k)}=${v}\n`);
    return 0;
  },
};
