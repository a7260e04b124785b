import { azureTaskFolder, camelCase, kebabCase } from '../../shared/core/names';
import { inputsOn, type AnyStep, type InputSpec } from '../../shared/core/step';
import { inputHelp } from './describe';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The README's table of steps (between markers), one row per step. */
export function stepsTable(steps: readonly AnyStep[]): string {
  const rows = steps.map((s) => {
    const task = `${azureTaskFolder(s.name, s.azure.major).replace(/V(\d+)$/, '@$1')}`;
    return `| [\`${s.name}\`](docs/reference/${s.name}.md) | ${cell(s.title)} | \`mlship/mlship/actions/${s.name}@v1\` | \`${task}\` | \`npx mlship ${s.name}\` |`;
  });
  const inputs = steps.map(
    (s) =>
      `- **${s.name}**: ${inputsOn(s, 'github')
        .map(([k]) => `\`${kebabCase(k)}\``)
        .join(', ')}`,
  );
  return [
    '| step | what it does | GitHub Action | Azure DevOps task | CLI |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'Inputs of each step (GitHub and CLI spelling; Azure DevOps uses the camelCase form):',
    '',
    ...inputs,
  ].join('\n');
}

/** `docs/reference/<step>.md`: the generated reference for one step on all three platforms. */
export function referenceDoc(step: AnyStep): string {
  const specs = Object.entries(step.inputs as Record<string, InputSpec>);
  const required = specs.filter(([, s]) => s.required);
  const task = azureTaskFolder(step.name, step.azure.major).replace(/V(\d+)$/, '@$1');
  const lines = [
    `<!-- Generated from shared/steps by "npm run generate". Do not edit. -->`,
    `# ${step.name}: ${step.title}`,
    '',
    step.description,
    '',
    '## Inputs',
    '',
    '| GitHub / CLI | Azure DevOps | type | required | default | description |',
    '| --- | --- | --- | --- | --- | --- |',
    ...specs.map(
      ([k, s]) =>
        `| ${s.type === 'connection' ? '—' : `\`${kebabCase(k)}\``} | \`${camelCase(kebabCase(k))}\` | ${s.type === 'connection' ? `service connection (${s.connection})` : s.type} | ${s.required ? 'yes' : 'no'} | ${s.default === undefined ? '' : `\`${s.default}\``} | ${cell(inputHelp(s))} |`,
    ),
    '',
    '## Outputs',
    '',
    '| GitHub / CLI | Azure DevOps | description |',
    '| --- | --- | --- |',
    ...Object.entries(step.outputs as Record<string, { description: string }>).map(
      ([k, s]) => `| \`${kebabCase(k)}\` | \`${k}\` | ${cell(s.description)} |`,
    ),
    '',
    '## Use it',
    '',
    'GitHub Actions:',
    '',
    '```yaml',
    `- uses: mlship/mlship/actions/${step.name}@v1`,
    `  id: ${camelCase(step.name)}`,
    ...(required.length ? ['  with:', ...required.map(([k, s]) => `    ${kebabCase(k)}: ${placeholder(k, s, 'github')}`)] : []),
    '```',
    '',
    'Azure DevOps:',
    '',
    '```yaml',
    `- task: ${task}`,
    `  name: ${camelCase(step.name)}`,
    ...(required.length ? ['  inputs:', ...required.map(([k, s]) => `    ${k}: ${placeholder(k, s, 'azure')}`)] : []),
    '```',
    '',
    'CLI:',
    '',
    '```sh',
    `npx mlship ${step.name}${required.map(([k]) => ` --${kebabCase(k)} ...`).join('')} --json`,
    '```',
    '',
  ];
  return lines.join('\n');
}

/** A value the snippet can be copied with: secrets read from the platform's secret store, an enum's first option. */
function placeholder(key: string, spec: InputSpec, platform: 'github' | 'azure'): string {
  if (spec.type === 'secret')
    return platform === 'github' ? `\${{ secrets.${kebabCase(key).replace(/-/g, '_').toUpperCase()} }}` : `$(${key})`;
  if (spec.type === 'enum' && spec.options?.length) return String(spec.options[0]);
  return '...';
}
