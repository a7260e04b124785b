import { kebabCase } from '../core/names';
import { inputsOn, type AnyStep, type InputSpec } from '../core/step';
import type { CliCommand } from './commands';

export function programHelp(steps: readonly AnyStep[], commands: readonly CliCommand[]): string {
  const width = Math.max(...[...steps.map((s) => s.name), ...commands.map((c) => c.name)].map((n) => n.length), 8) + 2;
  const lines = ['Usage: mlship <step> [--input value ...] [--json] [--summary FILE] [--verbose]', '       mlship <command> [...]', ''];
  if (steps.length)
    lines.push(
      'Steps (the same as the GitHub Actions and Azure DevOps tasks):',
      ...steps.map((s) => `  ${s.name.padEnd(width)}${s.title}`),
      '',
    );
  if (commands.length) lines.push('Commands:', ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`), '');
  lines.push('Run "mlship <step> --help" for a step\'s inputs and outputs.');
  return lines.join('\n');
}

export function stepHelp(step: AnyStep): string {
  const lines = [`mlship ${step.name}: ${step.title}`, '', step.description, '', 'Inputs:'];
  for (const [key, spec] of inputsOn(step, 'cli')) {
    lines.push(
      `  --${kebabCase(key)} <${typeLabel(spec)}>${spec.required ? ' (required)' : ''}${spec.default !== undefined ? ` (default: ${spec.default})` : ''}`,
    );
    lines.push(`      ${spec.description}`);
  }
  lines.push('', 'Outputs:');
  for (const [key, spec] of Object.entries(step.outputs as Record<string, { description: string }>))
    lines.push(`  ${kebabCase(key)}: ${spec.description}`);
  lines.push(
    '',
    'Global options:',
    '  --json            print the outputs as one JSON object on stdout',
    '  --summary FILE    append the job summary (markdown) to FILE',
    '  --verbose         print debug messages',
  );
  return lines.join('\n');
}

function typeLabel(spec: InputSpec): string {
  if (spec.type === 'enum') return (spec.options ?? []).join('|');
  if (spec.type === 'list') return 'value, repeatable';
  return spec.type;
}
