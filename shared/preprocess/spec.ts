import { lazySchema } from '../core/lazy-schema';
import * as fs from 'node:fs';
import { StepError } from '../core/errors';
import schema from './spec.schema.json';
import { parseJsonBounded } from '../core/json-depth';

/** TypeScript form of spec.schema.json: how an image becomes the model's input tensor. */
export interface PreprocessSpec {
  version: 1;
  inputName?: string;
  color: 'rgb' | 'bgr' | 'gray';
  bitDepth?: 8 | 16 | 'auto';
  resize?: ResizeSpec;
  maxValue?: number;
  mean?: number[];
  std?: number[];
  layout: 'NCHW' | 'NHWC';
  dtype: 'float32' | 'float16' | 'uint8';
}

export interface ResizeSpec {
  width: number;
  height: number;
  fit?: 'stretch' | 'letterbox' | 'crop';
  interpolation?: 'nearest' | 'linear' | 'cubic' | 'lanczos3';
  padValue?: number;
}

export const preprocessSpecSchema = schema;

const schemaValidator = lazySchema(schema, { allErrors: true, strict: false });

export function channelsOf(spec: Pick<PreprocessSpec, 'color'>): 1 | 3 {
  return spec.color === 'gray' ? 1 : 3;
}

/**
 * Checks a parsed spec against the schema and the rules a schema cannot say (mean/std length per channel).
 * `where` names the file (or input) in messages.
 */
export function validatePreprocessSpec(value: unknown, where: string): PreprocessSpec {
  const validateSchema = schemaValidator();
  if (!validateSchema(value)) {
    const first = validateSchema.errors?.[0];
    const field = first?.instancePath ? first.instancePath.slice(1).replace(/\//g, '.') : '(top level)';
    const detail =
      first?.params && 'allowedValues' in first.params
        ? `${first.message}: ${(first.params.allowedValues as unknown[]).join(', ')}`
        : first?.params && 'additionalProperty' in first.params
          ? `unknown field "${String(first.params.additionalProperty)}"`
          : first?.message;
    throw new StepError(
      `Preprocessing spec ${where}: field ${field} ${detail ?? 'is invalid'} (value ${JSON.stringify(valueAt(value, first?.instancePath ?? ''))}).`,
      {
        hint: 'See shared/preprocess/spec.schema.json for the fields and their allowed values.',
        file: where,
      },
    );
  }
  const spec = value as unknown as PreprocessSpec;
  const channels = channelsOf(spec);
  for (const key of ['mean', 'std'] as const) {
    const list = spec[key];
    if (list && list.length !== 1 && list.length !== channels) {
      throw new StepError(
        `Preprocessing spec ${where}: ${key} has ${list.length} values, but color "${spec.color}" has ${channels} channel(s).`,
        {
          hint: `Give one value for all channels or ${channels} values in tensor channel order.`,
          file: where,
        },
      );
    }
  }
  if (spec.dtype === 'uint8' && (spec.mean || spec.std || spec.maxValue !== undefined)) {
    throw new StepError(`Preprocessing spec ${where}: dtype uint8 feeds raw pixels, so mean, std and maxValue cannot apply.`, {
      hint: 'Use dtype float32 to normalize, or drop mean/std/maxValue.',
      file: where,
    });
  }
  return spec;
}

export function loadPreprocessSpec(file: string): PreprocessSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new StepError(`Cannot read preprocessing spec ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: 'Check the path of the preprocessing input.',
    });
  }
  let value: unknown;
  try {
    value = parseJsonBounded(text);
  } catch (error) {
    throw new StepError(`Preprocessing spec ${file} is not valid JSON: ${(error as Error).message}.`, {
      hint: 'Fix the JSON syntax.',
      file,
    });
  }
  return validatePreprocessSpec(value, file);
}

function valueAt(value: unknown, pointer: string): unknown {
  let current = value;
  for (const part of pointer.split('/').filter(Boolean)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
