import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import type { OnnxModelInfo, OnnxOpset, OnnxValueInfo } from '../onnx/model-info';
import manifestSchema from './manifest.schema.json';
import signatureSchema from './signature.schema.json';

/** Types of manifest.json; manifest.schema.json is the contract for readers in other languages. */

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';

export type FileRole = 'model' | 'external-data' | 'preprocessing' | 'labels' | 'tensorrt-cache' | 'golden';

export interface PackageFile {
  path: string;
  size: number;
  sha256: string;
  role: FileRole;
}

export interface PackageModel {
  path: string;
  format: 'onnx';
  irVersion: number;
  producer: { name: string; version: string };
  graphName: string;
  opsets: OnnxOpset[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Package paths of the model's external data files. */
  externalData: string[];
}

/** The manifest's entry for a model: the fields manifest.schema.json defines, out of all the model reader reports. */
export function packageModel(archivePath: string, info: OnnxModelInfo, externalData: string[]): PackageModel {
  return {
    path: archivePath,
    format: 'onnx',
    irVersion: info.irVersion,
    graphName: info.graphName,
    opsets: info.opsets,
    inputs: info.inputs,
    outputs: info.outputs,
    externalData,
    producer: { name: info.producerName, version: info.producerVersion },
  };
}

export interface PackageLabels {
  path: string;
  format: 'json' | 'txt';
  classes: number;
}

export interface Compatibility {
  deviceModels: string[];
  minDriverVersion: string | null;
  minCudaVersion: string | null;
  minOnnxRuntimeVersion: string | null;
  minComputeCapability: string | null;
  minGpuMemoryMb: number | null;
}

export interface TensorRtCache {
  path: string;
  model: string;
  gpuModel: string;
  computeCapability: string;
  tensorrtVersion: string;
  onnxruntimeVersion: string | null;
  precision: string | null;
  files: string[];
}

export interface WorkflowRun {
  id: string;
  attempt: number;
  url: string | null;
  workflow: string | null;
  job: string | null;
}

export interface Provenance {
  gitCommit: string | null;
  repository: string | null;
  workflowRun: WorkflowRun | null;
  trainingJob: string | null;
  dataFingerprint: string | null;
  gateReport: Record<string, unknown> | null;
  benchmarkReport: Record<string, unknown> | null;
}

export interface PackageManifest {
  format: 'mlship-device-package';
  schemaVersion: 1;
  name: string;
  version: string;
  releaseNotes: string;
  files: PackageFile[];
  models: PackageModel[];
  preprocessing: string | null;
  labels: PackageLabels | null;
  compatibility: Compatibility;
  tensorrtCaches: TensorRtCache[];
  provenance: Provenance;
  /** Golden test vectors (golden/index.json), when the package was built with sample images. */
  golden?: { index: string; cases: number };
  /** Cross-checks the build was told to let through, with what each found. */
  allowedMismatches?: { check: string; message: string }[];
}

export interface SignatureDocument {
  algorithm: 'ed25519';
  keyId: string;
  manifestSha256: string;
  signature: string;
}

export { manifestSchema, signatureSchema };

let validators: { manifest: ValidateFunction; signature: ValidateFunction } | undefined;

function compiled(): { manifest: ValidateFunction; signature: ValidateFunction } {
  if (!validators) {
    // Loaded here, on first use: loading ajv is most of what an idle CLI start would otherwise spend.
    const Ajv2020 = (require('ajv/dist/2020') as typeof import('ajv/dist/2020')).default;
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    validators = { manifest: ajv.compile(manifestSchema), signature: ajv.compile(signatureSchema) };
  }
  return validators;
}

/** Schema problems as short lines (`/files/2/sha256: must match pattern …`), or an empty list. */
export function manifestSchemaErrors(value: unknown): string[] {
  const validate = compiled().manifest;
  return validate(value) ? [] : describe(validate.errors);
}

export function signatureSchemaErrors(value: unknown): string[] {
  const validate = compiled().signature;
  return validate(value) ? [] : describe(validate.errors);
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
    return `${e.instancePath || '/'}: ${e.message ?? e.keyword}${extra}`;
  });
}
