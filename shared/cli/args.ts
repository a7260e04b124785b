import { InputError } from '../core/errors';
import { camelCase, kebabCase } from '../core/names';
import { inputsOn, type AnyStep, type InputSpec } from '../core/step';
import { suggestOption } from './options';

export interface ParsedStepArgs {
  /** Raw input values keyed by camelCase input key. */
  inputs: Record<string, string>;
  json: boolean;
  help: boolean;
  verbose: boolean;
  summaryFile?: string;
}

const GLOBAL_FLAGS = new Set(['json', 'help', 'verbose']);

/**
 * `--ground-truth gt.json`, `--ground-truth=gt.json`, `--shout`, `--no-shout`; a list input may be repeated.
 * Unknown flags are usage errors with a suggestion, because a silently ignored typo would run the step with a
 * default the user did not mean.
 */
export function parseStepArgs(step: AnyStep, argv: readonly string[]): ParsedStepArgs {
  const specs: Record<string, InputSpec> = Object.fromEntries(inputsOn(step, 'cli'));
  const parsed: ParsedStepArgs = { inputs: {}, json: false, help: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      parsed.help = true;
      continue;
    }
    if (!arg.startsWith('--') && step.cliPositional && parsed.inputs[step.cliPositional] === undefined) {
      parsed.inputs[step.cliPositional] = arg;
      continue;
    }
    if (!arg.startsWith('--'))
      throw new InputError(`Unexpected argument "${arg}".`, {
        hint: `Inputs are given as --name value. Run "mlship ${step.name} --help".`,
      });
    const eq = arg.indexOf('=');
    let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (GLOBAL_FLAGS.has(name) && value === undefined) {
      if (name === 'json') parsed.json = true;
      if (name === 'help') parsed.help = true;
      if (name === 'verbose') parsed.verbose = true;
      continue;
    }
    if (name === 'summary') {
      parsed.summaryFile = value ?? argv[++i];
      continue;
    }
    let negated = false;
    if (name.startsWith('no-') && !specs[camelCase(name)] && specs[camelCase(name.slice(3))]?.type === 'boolean') {
      name = name.slice(3);
      negated = true;
    }
    const key = camelCase(name);
    const spec = specs[key];
    if (!spec || kebabCase(key) !== name)
      throw new InputError(`Unknown option "--${name}" for "mlship ${step.name}".`, {
        hint: suggestOption(name, Object.keys(specs).map(kebabCase), `mlship ${step.name}`),
      });
    if (spec.type === 'boolean' && value === undefined) {
      const next = argv[i + 1];
      value = next !== undefined && /^(true|false|yes|no|on|off|1|0)$/i.test(next) && !negated ? argv[++i] : String(!negated);
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new InputError(`Option "--${name}" needs a value.`, { hint: spec.description });
      value = argv[++i];
    }
    parsed.inputs[key] = spec.type === 'list' && parsed.inputs[key] !== undefined ? `${parsed.inputs[key]}\n${value}` : value;
  }
  return parsed;
}
