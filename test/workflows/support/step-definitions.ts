import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseInputs } from '../../../shared/core/inputs';
import { kebabCase, pascalCase } from '../../../shared/core/names';
import type { AnyStep, InputSpec } from '../../../shared/core/step';
import { repoPath } from '../../support/paths';

// Read from the step modules themselves, not from shared/steps/index.ts or the generated action.yml/task.json:
// the examples may use a step before it is registered and generated.
const STEPS_DIR = repoPath('shared/steps');
/** The steps the examples compose; any other step folder (e.g. verify-package) is loaded too. */
export const PIPELINE_STEPS = [
  'validate-data',
  'submit-training',
  'gate-metrics',
  'export-onnx',
  'benchmark-model',
  'build-device-package',
  'stage-ota',
  'promote-release',
];

export interface StepCatalog {
  /** By kebab-case name: `gate-metrics` (GitHub action folder, CLI command). */
  byName: ReadonlyMap<string, AnyStep>;
  /** By Azure task name: `GateMetrics`. */
  byTaskName: ReadonlyMap<string, AnyStep>;
}

function isStep(value: unknown): value is AnyStep {
  const v = value as Partial<AnyStep> | null;
  return (
    !!v && typeof v === 'object' && typeof v.name === 'string' && typeof v.run === 'function' && !!v.inputs && !!v.outputs && !!v.azure
  );
}

export function loadStepCatalog(): StepCatalog {
  const byName = new Map<string, AnyStep>();
  const folders = fs.readdirSync(STEPS_DIR).filter((f) => fs.existsSync(path.join(STEPS_DIR, f, 'index.ts')));
  for (const folder of folders) {
    const exports = require(path.join(STEPS_DIR, folder)) as Record<string, unknown>;
    for (const value of Object.values(exports)) if (isStep(value)) byName.set(value.name, value);
  }
  for (const name of PIPELINE_STEPS) if (!byName.has(name)) throw new Error(`shared/steps/${name} exports no step named "${name}".`);
  const byTaskName = new Map([...byName.values()].map((s) => [pascalCase(s.name), s] as const));
  return { byName, byTaskName };
}

/** Inputs a caller must give: required and without a default. */
export function requiredInputs(step: AnyStep): string[] {
  return Object.entries(step.inputs as Record<string, InputSpec>)
    .filter(([, spec]) => spec.required && spec.default === undefined)
    .map(([key]) => key);
}

/**
 * Checks a literal input value (no expression, macro or variable in it) with the runtime's own parser, so the
 * message is the one the step would fail with at run time. Returns the message, or undefined when valid.
 */
export function literalValueError(step: AnyStep, key: string, raw: string, platform: 'github' | 'azure'): string | undefined {
  const spec = (step.inputs as Record<string, InputSpec>)[key];
  if (!spec) throw new Error(`${step.name} has no input ${key}`);
  const single = { ...step, inputs: { [key]: { ...spec, required: false } } } as AnyStep;
  try {
    parseInputs(single, {
      getInput: () => raw,
      inputLabel: (k) => (platform === 'github' ? kebabCase(k) : k),
      setSecret: () => undefined,
      workspace: '/workspace',
    });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The closest known name, for "did you mean" hints. */
export function nearest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}
