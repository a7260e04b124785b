import { camelCase } from '../../shared/core/names';
import { azureTaskFolder } from '../../shared/core/names';
import type { AnyStep, InputSpec } from '../../shared/core/step';
import { inputHelp } from './describe';

/** Node 20 agents run `Node20_1`; agents 4.x with Node 24 run `Node24`. Both point at the same bundle. */
const EXECUTION = { target: 'dist/index.js', argumentFormat: '' };

export function taskJson(step: AnyStep, version: string): Record<string, unknown> {
  const [, minor, patch] = version.split('.').map(Number);
  return {
    $schema: 'https://raw.githubusercontent.com/Microsoft/azure-pipelines-task-lib/master/tasks.schema.json',
    id: step.azure.id,
    name: azureTaskFolder(step.name, step.azure.major).replace(/V\d+$/, ''),
    friendlyName: `mlship ${step.title}`.slice(0, 40),
    description: step.description.replace(/\s+/g, ' ').trim(),
    helpMarkDown: `[Reference](https://github.com/mlship/mlship/blob/main/docs/reference/${step.name}.md)`,
    category: step.azure.category,
    author: 'mlship',
    version: { Major: step.azure.major, Minor: minor ?? step.azure.minor, Patch: patch ?? step.azure.patch },
    minimumAgentVersion: '3.232.1',
    instanceNameFormat: `mlship ${step.title}`,
    inputs: Object.entries(step.inputs as Record<string, InputSpec>).map(([key, spec]) => ({
      name: camelCase(key),
      type: azureType(spec),
      label: label(key),
      required: spec.required === true,
      ...(spec.default !== undefined ? { defaultValue: spec.type === 'boolean' ? String(spec.default) : String(spec.default) } : {}),
      helpMarkDown: inputHelp(spec),
      ...(spec.type === 'enum' ? { options: Object.fromEntries((spec.options ?? []).map((o) => [o, o])) } : {}),
    })),
    outputVariables: Object.entries(step.outputs as Record<string, { description: string }>).map(([key, spec]) => ({
      name: camelCase(key),
      description: spec.description,
    })),
    execution: { Node20_1: EXECUTION, Node24: EXECUTION },
  };
}

function azureType(spec: InputSpec): string {
  switch (spec.type) {
    case 'boolean':
      return 'boolean';
    case 'enum':
      return 'pickList';
    case 'list':
      return 'multiLine';
    case 'connection':
      return `connectedService:${spec.connection}`;
    // `filePath` is avoided on purpose: the agent fills an empty filePath input with the sources folder,
    // which would turn "not given" into a directory path.
    default:
      return 'string';
  }
}

/** Words shown in capitals in the task's form labels. */
const ACRONYMS = new Set([
  'aws',
  'arn',
  'gpu',
  'cuda',
  'onnx',
  'ota',
  'iou',
  'url',
  'uri',
  'id',
  'mb',
  'cpu',
  'rss',
  'psi',
  'sas',
  'oidc',
  's3',
  'fp16',
  'ml',
]);

function label(key: string): string {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(' ')
    .map((w) => (ACRONYMS.has(w) ? w.toUpperCase() : w));
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
