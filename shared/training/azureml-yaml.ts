import * as path from 'node:path';
import { isMap, isPair, isScalar, type Document, type LineCounter } from 'yaml';
import { StepError } from '../core/errors';
import { closest } from './spec';

/**
 * The Azure ML command-job YAML users already have (`az ml job create --file job.yml`, schema
 * https://azuremlschemas.azureedge.net/latest/commandJob.schema.json), turned into an mlship job spec with the
 * azureml backend. Every documented field is either mapped or refused by name with its line; nothing is
 * silently dropped.
 */

const MAPPED = [
  '$schema',
  'type',
  'name',
  'display_name',
  'description',
  'experiment_name',
  'tags',
  'command',
  'code',
  'environment',
  'environment_variables',
  'compute',
  'inputs',
  'outputs',
  'distribution',
  'resources',
  'limits',
];
/** Valid in the Azure ML schema, but nothing mlship submits can express them. */
const NOT_MAPPED: Record<string, string> = {
  services: 'interactive services (SSH, Jupyter, TensorBoard) are set in the studio or with az ml',
  identity: 'the job runs with the compute’s identity; user identity / managed identity selection is not mapped',
  queue_settings: 'serverless queue settings are not mapped',
  properties: 'properties are write-once metadata; use tags',
  parent_job_name: 'pipeline children are submitted by their pipeline',
  is_archived: 'archiving is not a submission setting',
  status: 'status is set by the service',
};

export function isAzureMlJobYaml(raw: Record<string, unknown>): boolean {
  return (
    (typeof raw.$schema === 'string' && /azureml/i.test(raw.$schema)) ||
    raw.type === 'command' ||
    raw.type === 'sweep' ||
    raw.type === 'pipeline'
  );
}

interface Where {
  file?: string;
  doc?: Document;
  lineCounter: LineCounter;
}

/** Translates the YAML (already parsed) into the mlship spec shape, then validated by the spec schema. */
export function fromAzureMlJobYaml(raw: Record<string, unknown>, where: Where): Record<string, unknown> {
  const fail = (path: string[], message: string, hint: string): never => {
    throw new StepError(`${where.file ? `The Azure ML job YAML ${where.file}` : 'The Azure ML job YAML'}: ${message}`, {
      file: where.file,
      line: lineOf(where, path),
      hint,
    });
  };
  if (raw.type !== 'command') {
    fail(
      ['type'],
      `field "type" is ${JSON.stringify(raw.type ?? null)}; mlship submits command jobs only.`,
      'Use type: command (sweep and pipeline jobs: az ml job create).',
    );
  }
  for (const key of Object.keys(raw)) {
    if (key in NOT_MAPPED)
      fail(
        [key],
        `field "${key}" (line ${lineOf(where, [key]) ?? '?'}) is valid Azure ML YAML but mlship cannot map it: ${NOT_MAPPED[key]}.`,
        `Remove "${key}", or submit this job with az ml job create.`,
      );
    if (!MAPPED.includes(key)) {
      const near = closest(key, MAPPED);
      fail(
        [key],
        `unknown field "${key}"${near ? `; did you mean "${near}"?` : ''} (command-job fields: ${MAPPED.filter((k) => k !== '$schema').join(', ')}).`,
        near ? `Rename "${key}" to "${near}".` : `Remove "${key}".`,
      );
    }
  }
  const azureml: Record<string, unknown> = {};
  const spec: Record<string, unknown> = { backend: 'azureml', azureml };
  if (raw.name !== undefined) spec.name = raw.name;
  if (raw.command !== undefined) spec.command = raw.command;
  if (raw.tags !== undefined) spec.tags = stringValues(raw.tags);
  if (raw.environment_variables !== undefined) spec.environment = stringValues(raw.environment_variables);
  if (raw.experiment_name !== undefined) azureml.experimentName = raw.experiment_name;
  if (raw.display_name !== undefined) azureml.displayName = raw.display_name;
  if (raw.description !== undefined) azureml.description = raw.description;
  if (raw.compute !== undefined) azureml.compute = typeof raw.compute === 'string' ? raw.compute.replace(/^azureml:/, '') : raw.compute;
  if (raw.environment !== undefined) {
    if (typeof raw.environment !== 'string') {
      fail(
        ['environment'],
        'field "environment" is an inline environment (image / conda_file); mlship references registered environments only.',
        'Register it (az ml environment create --file env.yml) and write environment: azureml:<name>:<version>.',
      );
    }
    azureml.environment = raw.environment;
  }
  if (raw.code !== undefined) {
    const code = String(raw.code);
    if (/^(azureml:|\/subscriptions\/)/i.test(code)) azureml.code = code;
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(code))
      fail(
        ['code'],
        `field "code" is the remote URI "${code}"; mlship uploads local folders or references code assets.`,
        'Use a local folder (uploaded as a code asset) or azureml:<name>:<version>.',
      );
    // Relative to the YAML file, as az ml resolves it.
    else azureml.codePath = where.file ? path.resolve(path.dirname(where.file), code) : code;
  }
  const inputs: Record<string, unknown> = {};
  const hyperparameters: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(asMap(raw.inputs, ['inputs'], fail))) {
    if (value === null || typeof value !== 'object') {
      hyperparameters[name] = value;
      continue;
    }
    const v = value as Record<string, unknown>;
    for (const k of Object.keys(v))
      if (!['type', 'path', 'mode', 'value', 'description', 'optional', 'default'].includes(k))
        fail(
          ['inputs', name, k],
          `field "inputs.${name}.${k}" is not an input setting mlship maps (type, path, mode, value).`,
          `Remove "${k}".`,
        );
    if ('value' in v) {
      hyperparameters[name] = v.value;
      continue;
    }
    const p = String(v.path ?? '');
    if (!p)
      fail(
        ['inputs', name],
        `input "${name}" has no path.`,
        'Give path: azureml://datastores/<store>/paths/<folder>/, an https:// URL or azureml:<data asset>:<version>.',
      );
    if (!/^(azureml:|https?:|wasbs?:|abfss?:|adl:)/i.test(p)) {
      fail(
        ['inputs', name, 'path'],
        `input "${name}" is the local path "${p}"; mlship does not upload data with the job.`,
        'Register the data (az ml data create) and use azureml:<name>:<version>, or a datastore URI.',
      );
    }
    inputs[name] = { uri: p, ...(v.type ? { type: v.type } : {}), ...(v.mode ? { mode: v.mode } : {}) };
  }
  if (Object.keys(inputs).length) spec.inputs = inputs;
  if (Object.keys(hyperparameters).length) spec.hyperparameters = hyperparameters;
  const outputs: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(asMap(raw.outputs, ['outputs'], fail))) {
    const v = (value ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(v))
      if (!['type', 'path', 'mode', 'description'].includes(k))
        fail(
          ['outputs', name, k],
          `field "outputs.${name}.${k}" is not an output setting mlship maps (type, path, mode).`,
          `Remove "${k}".`,
        );
    outputs[name] = { type: v.type ?? 'uri_folder', ...(v.path ? { uri: v.path } : {}), ...(v.mode ? { mode: v.mode } : {}) };
  }
  if (Object.keys(outputs).length) azureml.outputs = outputs;
  if (raw.distribution !== undefined) {
    const d = asMap(raw.distribution, ['distribution'], fail);
    const known = ['type', 'process_count_per_instance', 'worker_count', 'parameter_server_count'];
    for (const k of Object.keys(d))
      if (!known.includes(k)) fail(['distribution', k], `field "distribution.${k}" is not mapped (${known.join(', ')}).`, `Remove "${k}".`);
    azureml.distribution = {
      type: d.type,
      ...(d.process_count_per_instance !== undefined ? { processCountPerInstance: d.process_count_per_instance } : {}),
      ...(d.worker_count !== undefined ? { workerCount: d.worker_count } : {}),
      ...(d.parameter_server_count !== undefined ? { parameterServerCount: d.parameter_server_count } : {}),
    };
  }
  if (raw.resources !== undefined) {
    const r = asMap(raw.resources, ['resources'], fail);
    const known = ['instance_count', 'instance_type', 'shm_size'];
    for (const k of Object.keys(r))
      if (!known.includes(k)) fail(['resources', k], `field "resources.${k}" is not mapped (${known.join(', ')}).`, `Remove "${k}".`);
    if (r.instance_count !== undefined) azureml.instanceCount = r.instance_count;
    if (r.instance_type !== undefined) azureml.instanceType = r.instance_type;
    if (r.shm_size !== undefined) azureml.shmSize = r.shm_size;
  }
  if (raw.limits !== undefined) {
    const l = asMap(raw.limits, ['limits'], fail);
    for (const k of Object.keys(l))
      if (k !== 'timeout') fail(['limits', k], `field "limits.${k}" is not mapped (timeout).`, `Remove "${k}".`);
    if (typeof l.timeout === 'number') spec.maxRuntimeMinutes = l.timeout / 60;
  }
  return spec;
}

function asMap(v: unknown, path: string[], fail: (path: string[], message: string, hint: string) => never): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    fail(path, `field "${path.join('.')}" must be a mapping.`, 'See the Azure ML command-job schema.');
  return v as Record<string, unknown>;
}

function stringValues(v: unknown): Record<string, string> | unknown {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : String(x)]));
}

function lineOf(where: Where, path: string[]): number | undefined {
  const parent = path.slice(0, -1);
  const map = parent.length ? where.doc?.getIn(parent, true) : where.doc?.contents;
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === path[path.length - 1]);
  const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
  return range ? where.lineCounter.linePos(range[0]).line : undefined;
}
