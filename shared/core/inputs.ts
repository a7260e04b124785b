import * as path from 'node:path';
import { InputError } from './errors';
import type { Host } from './host';
import type { AnyStep, InputSpec } from './step';

const TRUE = new Set(['true', 'True', 'TRUE', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'False', 'FALSE', 'no', 'off', '0']);

/**
 * Reads and validates every input of a step before `run` starts, so a typo fails in seconds with a
 * message naming the input as the user spelled it, the value, and what is allowed.
 */
export function parseInputs(
  step: AnyStep,
  host: Pick<Host, 'getInput' | 'inputLabel' | 'setSecret' | 'workspace'>,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(step.inputs as Record<string, InputSpec>)) {
    const raw = host.getInput(key, { secret: spec.type === 'secret' });
    const label = host.inputLabel(key);
    if (spec.type === 'secret' && raw) host.setSecret(raw);
    if (raw === undefined || raw.trim() === '') {
      if (spec.required)
        throw new InputError(`Input "${label}" is required but was not given.`, { hint: `Set "${label}": ${spec.description}` });
      values[key] = spec.default === undefined ? emptyValue(spec) : convert(String(spec.default), spec, label, host.workspace);
      continue;
    }
    values[key] = convert(raw, spec, label, host.workspace);
  }
  return values;
}

function emptyValue(spec: InputSpec): unknown {
  if (spec.type === 'boolean') return false;
  if (spec.type === 'list') return [];
  return undefined;
}

function convert(raw: string, spec: InputSpec, label: string, workspace: string): unknown {
  const value = spec.type === 'secret' || spec.type === 'list' ? raw : raw.trim();
  switch (spec.type) {
    case 'string':
    case 'secret':
    // A service connection's id, as the agent fills a connectedService input; its credentials come from the host.
    case 'connection':
      return value;
    case 'path':
      return path.resolve(workspace, value);
    case 'list':
      return value
        .split(/\r?\n/)
        .map((s) => s.trim())
        .filter((s) => s !== '' && !s.startsWith('#'));
    case 'boolean':
      if (TRUE.has(value)) return true;
      if (FALSE.has(value)) return false;
      throw new InputError(`Input "${label}" has value "${value}", which is not a boolean.`, { hint: `Use true or false.` });
    case 'number': {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n))
        throw new InputError(`Input "${label}" has value "${value}", which is not a number.`, { hint: describeRange(spec) });
      if (spec.integer && !Number.isInteger(n))
        throw new InputError(`Input "${label}" has value "${value}", which is not a whole number.`, { hint: describeRange(spec) });
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new InputError(`Input "${label}" has value "${value}", which is out of range.`, { hint: describeRange(spec) });
      }
      return n;
    }
    case 'enum': {
      const options = spec.options ?? [];
      if (options.includes(value)) return value;
      const near = options.find((o) => o.toLowerCase() === value.toLowerCase());
      throw new InputError(`Input "${label}" has value "${value}", which is not one of the allowed values: ${options.join(', ')}.`, {
        hint: near ? `Did you mean "${near}"?` : `Use one of: ${options.join(', ')}.`,
      });
    }
  }
}

function describeRange(spec: InputSpec): string {
  const kind = spec.integer ? 'a whole number' : 'a number';
  if (spec.min !== undefined && spec.max !== undefined) return `Use ${kind} from ${spec.min} to ${spec.max}.`;
  if (spec.min !== undefined) return `Use ${kind} of at least ${spec.min}.`;
  if (spec.max !== undefined) return `Use ${kind} of at most ${spec.max}.`;
  return `Use ${kind}.`;
}
