import * as fs from 'node:fs';
import type { ErrorObject } from 'ajv';
import { lazySchema } from '../core/lazy-schema';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { yamlValue } from '../core/yaml-value';
import { StepError } from '../core/errors';
import { fromAzureMlJobYaml, isAzureMlJobYaml } from './azureml-yaml';
import { jobSpecSchema } from './spec-schema';
import type { BackendKind, DataInput, JobSpec } from './types';
import { editDistance } from '../core/names';

/** A value set by a direct step input, written into the spec before validation. */
export interface SpecOverride {
  /** Spec path, e.g. ['sagemaker', 'instanceType']. */
  path: string[];
  value: unknown;
  /** The input as the user spells it on this platform, for error messages. */
  label: string;
}

export type SpecMode = 'submit' | 'attach';

export interface LoadedSpec {
  spec: JobSpec;
  /** Backend named inside the file, if any. */
  backend?: BackendKind;
}

const specValidator = lazySchema(jobSpecSchema, { allErrors: true, verbose: true, strict: false });

/**
 * Reads a job spec (YAML or JSON: JSON is YAML), applies direct inputs, and validates the result. Errors name
 * the file, the line, the field and what is allowed there.
 */
export function loadJobSpec(
  file: string | undefined,
  overrides: SpecOverride[] | ((fileBackend: BackendKind | undefined) => SpecOverride[]),
): LoadedSpec {
  const lineCounter = new LineCounter();
  let doc: Document | undefined;
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new StepError(`Cannot read the job spec ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`, {
        hint: 'Check the job-spec path; it is resolved against the workspace.',
        cause: error,
      });
    }
    doc = parseDocument(text, { lineCounter, prettyErrors: true });
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      throw new StepError(`The job spec ${file} is not valid YAML or JSON: ${first.message.split('\n')[0]}`, {
        file,
        line: first.linePos?.[0].line,
        column: first.linePos?.[0].col,
        hint: 'Fix the syntax at that line.',
      });
    }
    const expanded = yamlValue(doc);
    if (!expanded.ok)
      throw new StepError(`The job spec ${file} cannot be read: ${expanded.message}.`, {
        file,
        hint: 'A job spec needs no YAML aliases; write the values out.',
      });
    const value = expanded.value;
    if (value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value))) {
      throw new StepError(
        `The job spec ${file} must be a mapping of fields (name, command, inputs, sagemaker, azureml, …), not a ${Array.isArray(value) ? 'list' : typeof value}.`,
        { file, line: 1 },
      );
    }
    raw = (value as Record<string, unknown>) ?? {};
    // A standard Azure ML command-job YAML (`az ml job create --file`) is read as it is.
    if (isAzureMlJobYaml(raw)) raw = fromAzureMlJobYaml(raw, { file, doc, lineCounter });
  }
  const origins = new Map<string, string>();
  const fileBackend = ['local', 'sagemaker', 'azureml'].includes(raw.backend as string) ? (raw.backend as BackendKind) : undefined;
  for (const o of typeof overrides === 'function' ? overrides(fileBackend) : overrides) {
    if (o.value === undefined) continue;
    setPath(raw, o.path, o.value);
    origins.set(o.path.join('.'), o.label);
  }
  const validate = specValidator();
  if (!validate(raw)) {
    throw specError(validate.errors ?? [], { file, doc, lineCounter, origins });
  }
  return { spec: normalise(raw), backend: fileBackend };
}

/** Fields each backend cannot do without, checked after the merge so an input can supply them. */
const REQUIRED: Record<BackendKind, Record<SpecMode, string[]>> = {
  local: { submit: ['command'], attach: [] },
  sagemaker: { submit: ['sagemaker.image', 'sagemaker.roleArn', 'sagemaker.instanceType', 'outputPath'], attach: [] },
  azureml: {
    submit: ['azureml.subscriptionId', 'azureml.resourceGroup', 'azureml.workspace', 'azureml.compute', 'azureml.environment', 'command'],
    attach: ['azureml.subscriptionId', 'azureml.resourceGroup', 'azureml.workspace'],
  },
};

/**
 * Checks what `backend` needs from the merged spec. `inputFor` maps a spec path to the step input that
 * can also set it, so the hint offers both ways.
 */
export function requireBackendFields(
  spec: JobSpec,
  backend: BackendKind,
  mode: SpecMode,
  file: string | undefined,
  inputFor: (path: string) => string | undefined,
): void {
  const missing = REQUIRED[backend][mode].filter((p) => getPath(spec as unknown as Record<string, unknown>, p.split('.')) === undefined);
  if (missing.length > 0) {
    const ways = missing.map((p) => {
      const input = inputFor(p);
      const [section, field] = p.includes('.') ? p.split('.') : [undefined, p];
      const where = section ? `"${field}" under "${section}:"` : `"${field}"`;
      return input ? `${where} in the job spec or the input "${input}"` : `${where} in the job spec`;
    });
    throw new StepError(
      `The ${backend} backend needs ${missing.map((m) => `"${m}"`).join(', ')} to ${mode === 'submit' ? 'submit a job' : 'find the job'}, but ${missing.length === 1 ? 'it is' : 'they are'} not set${file ? ` in ${file} or the step inputs` : ' (no job spec given)'}.`,
      { hint: `Set ${ways.join('; ')}.`, file },
    );
  }
  if (backend === 'sagemaker' && mode === 'submit') {
    const notS3 = [['outputPath', spec.outputPath], ...Object.entries(spec.inputs).map(([k, v]) => [`inputs.${k}`, v.uri])].filter(
      ([, uri]) => uri !== undefined && !String(uri).startsWith('s3://'),
    );
    if (notS3.length > 0) {
      const [field, uri] = notS3[0];
      throw new StepError(`The job spec field "${field}" is "${uri}", but SageMaker reads and writes only S3 URIs.`, {
        hint: 'Use an s3://bucket/prefix/ URI, or run with backend local for local folders.',
        file,
      });
    }
  }
}

function normalise(raw: Record<string, unknown>): JobSpec {
  const inputs: Record<string, DataInput> = {};
  for (const [name, value] of Object.entries((raw.inputs as Record<string, unknown>) ?? {})) {
    inputs[name] = typeof value === 'string' ? { uri: value } : (value as DataInput);
  }
  return {
    name: raw.name as string | undefined,
    command: raw.command as string | undefined,
    inputs,
    outputPath: raw.outputPath as string | undefined,
    hyperparameters: (raw.hyperparameters as JobSpec['hyperparameters']) ?? {},
    environment: (raw.environment as Record<string, string>) ?? {},
    tags: (raw.tags as Record<string, string>) ?? {},
    maxRuntimeMinutes: raw.maxRuntimeMinutes as number | undefined,
    metricsFile: (raw.metricsFile as string | undefined) ?? 'metrics.json',
    dataFingerprint: raw.dataFingerprint as string | undefined,
    sagemaker: raw.sagemaker as JobSpec['sagemaker'],
    azureml: raw.azureml as JobSpec['azureml'],
    local: raw.local as JobSpec['local'],
  };
}

interface ErrorContext {
  file?: string;
  doc?: Document;
  lineCounter: LineCounter;
  origins: Map<string, string>;
}

function specError(errors: ErrorObject[], ctx: ErrorContext): StepError {
  // anyOf reports every branch's complaint; one line per anyOf is enough.
  const anyOfPaths = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath);
  const relevant = errors.filter((e) => e.keyword === 'anyOf' || !anyOfPaths.some((p) => e.instancePath.startsWith(p)));
  // In file order, so the annotation and the first line point at the first problem a reader meets.
  const described = relevant.map((e) => describe(e, ctx)).sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  const first = described[0];
  const where = ctx.file ? `The job spec ${ctx.file}` : 'The job settings';
  const lines = described
    .slice(0, 5)
    .map((d) => `  - ${d.text}${d.line ? ` (line ${d.line})` : ''}${d.origin ? ` (from input "${d.origin}")` : ''}`);
  const more = described.length > 5 ? `\n  … and ${described.length - 5} more` : '';
  return new StepError(
    `${where} has ${described.length === 1 ? 'an invalid field' : `${described.length} invalid fields`}:\n${lines.join('\n')}${more}`,
    {
      file: ctx.file,
      line: first?.line,
      hint: first?.hint ?? 'See docs/submit-training.md for the job spec format.',
    },
  );
}

function describe(e: ErrorObject, ctx: ErrorContext): { text: string; line?: number; origin?: string; hint?: string } {
  const path = e.instancePath.split('/').slice(1).map(unescapePointer);
  const field = path.join('.');
  const shown = (v: unknown) => JSON.stringify(v);
  const origin = ctx.origins.get(field);
  switch (e.keyword) {
    case 'additionalProperties': {
      const unknown = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys(((e.parentSchema as { properties?: object }) ?? {}).properties ?? {}).filter((k) => k !== '$schema');
      const near = closest(unknown, allowed);
      const full = [...path, unknown].join('.');
      return {
        text: `unknown field "${full}"; allowed fields ${path.length ? `under "${field}"` : 'at the top level'}: ${allowed.join(', ')}${near ? `. Did you mean "${near}"?` : ''}`,
        line: keyLine(ctx, path, unknown),
        hint: near ? `Rename "${unknown}" to "${near}".` : `Remove "${unknown}" or use one of: ${allowed.join(', ')}.`,
      };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      const near = typeof e.data === 'string' ? closest(e.data, allowed.map(String)) : undefined;
      return {
        text: `field "${field}" is ${shown(e.data)}; allowed values: ${allowed.join(', ')}`,
        line: valueLine(ctx, path),
        origin,
        hint: near ? `Did you mean "${near}"?` : `Use one of: ${allowed.join(', ')}.`,
      };
    }
    case 'type':
      return {
        text: `field "${field}" must be ${article((e.params as { type: string | string[] }).type)}, not ${shown(e.data)}`,
        line: valueLine(ctx, path),
        origin,
      };
    case 'pattern': {
      const description = (e.parentSchema as { description?: string })?.description;
      return {
        text: `field "${field}" is ${shown(e.data)}, which is not ${description ?? `matching ${(e.params as { pattern: string }).pattern}`}`,
        line: valueLine(ctx, path),
        origin,
      };
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return {
        text: `field "${[...path, missing].join('.')}" is required${field ? ` in "${field}"` : ''}`,
        line: valueLine(ctx, path),
        origin,
      };
    }
    case 'anyOf':
      return {
        text: `field "${field}" must be a URI string or an object with uri (and optional type, mode), not ${shown(e.data)}`,
        line: valueLine(ctx, path),
        origin,
      };
    case 'propertyNames':
      return { text: `field "${field}" has a name that is not allowed: ${e.message}`, line: valueLine(ctx, path), origin };
    default:
      return { text: `field "${field}" ${e.message} (value ${shown(e.data)})`, line: valueLine(ctx, path), origin };
  }
}

function article(type: string | string[]): string {
  const types = Array.isArray(type) ? type : [type];
  return types
    .map((t) => (t === 'integer' ? 'a whole number' : t === 'object' ? 'a mapping' : t === 'array' ? 'a list' : `a ${t}`))
    .join(' or ');
}

function valueLine(ctx: ErrorContext, path: string[]): number | undefined {
  const node = ctx.doc?.getIn(path, true) as { range?: [number, number, number] } | undefined;
  return node?.range ? ctx.lineCounter.linePos(node.range[0]).line : undefined;
}

function keyLine(ctx: ErrorContext, parent: string[], key: string): number | undefined {
  const map = parent.length ? ctx.doc?.getIn(parent, true) : ctx.doc?.contents;
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
  const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
  return range ? ctx.lineCounter.linePos(range[0]).line : undefined;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let node = obj;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  const existing = node[last];
  // Maps given as inputs (hyperparameters, data inputs) add to the file's entries rather than replace them.
  node[last] = isPlainObject(existing) && isPlainObject(value) ? { ...existing, ...value } : value;
}

export function getPath(obj: Record<string, unknown>, path: string[]): unknown {
  let node: unknown = obj;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The allowed word nearest to `word` when it is a plausible typo (edit distance ≤ 3). */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return bestDistance <= Math.min(3, Math.max(1, Math.floor(word.length / 2))) ? best : undefined;
}
