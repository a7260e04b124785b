import { InputError } from '../../core/errors';
import type { SpecOverride } from '../../training/spec';
import type { BackendKind } from '../../training/types';

/** The direct inputs that write into the job spec, with the spec path each one sets. */
export interface DirectInputs {
  command?: string;
  image?: string;
  roleArn?: string;
  instanceType?: string;
  instanceCount?: number;
  dataInputs: string[];
  outputPath?: string;
  hyperparameters: string[];
  compute?: string;
  azureEnvironment?: string;
  maxRuntimeMinutes?: number;
  region?: string;
  azureSubscriptionId?: string;
  azureResourceGroup?: string;
  azureWorkspace?: string;
  azureArmEndpoint?: string;
  dataFingerprint?: string;
}

/** Spec path → input key, for inputs whose target does not depend on the backend. */
const FIXED: Record<string, keyof DirectInputs> = {
  command: 'command',
  'sagemaker.image': 'image',
  'sagemaker.roleArn': 'roleArn',
  inputs: 'dataInputs',
  outputPath: 'outputPath',
  hyperparameters: 'hyperparameters',
  'azureml.compute': 'compute',
  'azureml.environment': 'azureEnvironment',
  maxRuntimeMinutes: 'maxRuntimeMinutes',
  'sagemaker.region': 'region',
  'azureml.subscriptionId': 'azureSubscriptionId',
  'azureml.resourceGroup': 'azureResourceGroup',
  'azureml.workspace': 'azureWorkspace',
  'azureml.armEndpoint': 'azureArmEndpoint',
  dataFingerprint: 'dataFingerprint',
};

/** The input that can set a spec field, for hints ("… or the input instance-type"). */
export function inputForPath(specPath: string, label: (key: string) => string): string | undefined {
  if (specPath === 'sagemaker.instanceType' || specPath === 'azureml.instanceType') return label('instanceType');
  if (specPath === 'sagemaker.instanceCount' || specPath === 'azureml.instanceCount') return label('instanceCount');
  const key = FIXED[specPath];
  return key ? label(key) : undefined;
}

/** Turns the direct inputs into spec overrides; list inputs (`name=value` per line) are parsed here. */
export function overridesFrom(inputs: DirectInputs, backend: BackendKind, label: (key: string) => string): SpecOverride[] {
  const out: SpecOverride[] = [];
  for (const [specPath, key] of Object.entries(FIXED)) {
    let value: unknown = inputs[key];
    if (key === 'dataInputs') value = pairs(inputs.dataInputs, label(key), (v) => v);
    if (key === 'hyperparameters') value = pairs(inputs.hyperparameters, label(key), scalar);
    if (value === undefined) continue;
    out.push({ path: specPath.split('.'), value, label: label(key) });
  }
  const section = backend === 'azureml' ? 'azureml' : 'sagemaker';
  if (inputs.instanceType !== undefined && backend !== 'local')
    out.push({ path: [section, 'instanceType'], value: inputs.instanceType, label: label('instanceType') });
  if (inputs.instanceCount !== undefined && backend !== 'local')
    out.push({ path: [section, 'instanceCount'], value: inputs.instanceCount, label: label('instanceCount') });
  return out;
}

function pairs(lines: string[], label: string, convert: (v: string) => unknown): Record<string, unknown> | undefined {
  if (lines.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const line of lines) {
    const i = line.indexOf('=');
    if (i <= 0)
      throw new InputError(`Input "${label}" has the entry "${line}", which is not name=value.`, {
        hint: `Write one name=value per line, e.g. train=s3://bucket/data/train/.`,
      });
    out[line.slice(0, i).trim()] = convert(line.slice(i + 1).trim());
  }
  return out;
}

/** `10` → 10, `true` → true, anything else stays text, so hyperparameters keep their JSON type. */
function scalar(v: string): string | number | boolean {
  if (v === 'true' || v === 'false') return v === 'true';
  if (v !== '' && Number.isFinite(Number(v))) return Number(v);
  return v;
}
