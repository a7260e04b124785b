import { stringify } from 'yaml';
import { kebabCase } from '../../shared/core/names';
import { inputsOn, type AnyStep } from '../../shared/core/step';
import { inputHelp } from './describe';

/** `actions/<step>/action.yml`: runs the committed ncc bundle on the runner's Node 24. */
export function actionYml(step: AnyStep): string {
  const inputs: Record<string, Record<string, unknown>> = {};
  for (const [key, spec] of inputsOn(step, 'github')) {
    inputs[kebabCase(key)] = {
      description: literal(inputHelp(spec)),
      required: spec.required === true,
      ...(spec.default !== undefined ? { default: String(spec.default) } : {}),
    };
  }
  const outputs: Record<string, { description: string }> = {};
  for (const [key, spec] of Object.entries(step.outputs as Record<string, { description: string }>))
    outputs[kebabCase(key)] = { description: literal(spec.description) };
  const doc = {
    name: `mlship ${step.title}`,
    description: literal(oneLine(step.description)),
    author: 'mlship',
    branding: step.branding ?? { icon: 'box', color: 'blue' },
    inputs,
    outputs,
    runs: {
      using: 'node24',
      main: 'dist/index.js',
      ...(step.post ? { post: 'dist/index.js', 'post-if': 'always()' } : {}),
    },
  };
  return `# Generated from shared/steps by "npm run generate". Do not edit.\n${stringify(doc, { lineWidth: 0 })}`;
}

/** GitHub parses `${{` anywhere in action.yml and allows no expression in a description, not even an escaped one. */
function literal(text: string): string {
  if (text.includes('${{')) throw new Error(`A description may not contain "\${{" (GitHub rejects it in action.yml): ${text}`);
  return text;
}

function oneLine(text: string): string {
  const s = text.replace(/\s+/g, ' ').trim();
  // The Marketplace cuts descriptions at 125 characters.
  return s.length <= 125 ? s : s.slice(0, 122).replace(/\s+\S*$/, '') + '...';
}
