import { parseArgs } from 'node:util';
import { describeStepError, InputError } from '../core/errors';
import { editDistance } from '../core/names';
import type { CliIo } from './commands';

/** One option of a CLI command, declared as data so parsing, help and errors come from one place. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder in the help, e.g. DIR. */
  value?: string;
  description: string;
  required?: boolean;
  multiple?: boolean;
  short?: string;
}

export interface CommandSpec {
  /** `mlship demo`, `mlship eval coco`: how the command is called, for help and messages. */
  command: string;
  /** One line under the usage line. */
  summary: string;
  options: Readonly<Record<string, OptionSpec>>;
  /** Lines after the options (examples, exit codes). */
  footer?: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** `mlship <command> --help`: usage, summary and one line per option, for every non-step command alike. */
export function commandHelp(spec: CommandSpec): string {
  const required = Object.entries(spec.options).filter(([, o]) => o.required);
  const usage = [spec.command, ...required.map(([name, o]) => `--${name} ${o.value ?? 'VALUE'}`), '[options]'].join(' ');
  const rows = Object.entries(spec.options).map(([name, o]) => [
    `  --${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`,
    `${o.description}${o.multiple ? ' (repeatable)' : ''}`,
  ]);
  rows.push(['  --help, -h', 'this help']);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const lines = rows.map(([left, right]) => left.padEnd(width) + right);
  return [`Usage: ${usage}`, '', spec.summary, '', ...lines, ...(spec.footer ? ['', spec.footer] : [])].join('\n');
}

/**
 * Parses `argv` with node:util parseArgs against the declared options. Unknown options, missing values and
 * missing required options are InputErrors that name the option and say where the help is, with a
 * suggestion for a near miss, the same wording as for the steps' options.
 */
export function parseCommandArgs(spec: CommandSpec, argv: readonly string[]): { help: true } | { help: false; values: OptionValues } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    // parseArgs rejects keys present with an undefined value.
    options[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let values: OptionValues;
  try {
    // strict: false so an unknown option is reported in our words, with a suggestion, not parseArgs'.
    const parsed = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
    values = parsed.values as OptionValues;
    for (const token of parsed.tokens ?? []) {
      if (token.kind === 'positional')
        throw new InputError(`Unexpected argument "${token.value}" for "${spec.command}".`, {
          hint: `Options are given as --name value. Run "${spec.command} --help".`,
        });
      if (token.kind !== 'option') continue;
      const declared = options[token.name];
      if (!declared)
        throw new InputError(`Unknown option "${token.rawName}" for "${spec.command}".`, {
          hint: suggestOption(token.name, Object.keys(spec.options), spec.command),
        });
      if (declared.type === 'string' && token.value === undefined)
        throw new InputError(`Option "--${token.name}" needs a value.`, { hint: spec.options[token.name]?.description });
      if (declared.type === 'boolean' && token.inlineValue)
        throw new InputError(`Option "--${token.name}" takes no value.`, { hint: `Run "${spec.command} --help".` });
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`${(error as Error).message}`, { hint: `Run "${spec.command} --help".` });
  }
  if (values.help) return { help: true };
  const missing = Object.entries(spec.options)
    .filter(([name, o]) => o.required && values[name] === undefined)
    .map(([name]) => `--${name}`);
  if (missing.length) throw new InputError(`"${spec.command}" needs ${missing.join(', ')}.`, { hint: `Run "${spec.command} --help".` });
  return { help: false, values };
}

/**
 * The frame of a non-step command: help on --help/-h (exit 0), usage errors on stderr (exit 2), then `body`
 * with the parsed values; `body` returns the exit code.
 */
export async function runCommand(
  spec: CommandSpec,
  argv: readonly string[],
  io: CliIo,
  body: (values: OptionValues) => Promise<number>,
): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandArgs(spec, argv);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    io.stderr(`error: ${describeStepError(error)}\n`);
    return 2;
  }
  if (parsed.help) {
    io.stdout(commandHelp(spec) + '\n');
    return 0;
  }
  return body(parsed.values);
}

/** "Did you mean --x?" for a near miss, else the known options; shared by steps and commands. */
export function suggestOption(name: string, known: readonly string[], command: string): string {
  const close = known.filter((k) => editDistance(k, name) <= Math.max(2, Math.floor(name.length / 4)));
  const list = close.length
    ? `Did you mean ${close.map((c) => `--${c}`).join(' or ')}?`
    : `Known options: ${known.map((k) => `--${k}`).join(', ')}.`;
  return `${list} Run "${command} --help".`;
}
