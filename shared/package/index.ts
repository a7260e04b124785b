/**
 * Signed, reproducible device packages: build one, verify one, extract one safely.
 * The manifest format is specified by manifest.schema.json and signature.schema.json (see docs/build-device-package.md).
 */
export { buildPackage, type BuildPackageOptions, type BuiltPackage } from './build';
export { verifyPackage, extractVerifiedPackage, type VerifiedPackage, type VerifyOptions } from './verify';
export { generateSigningKeyPair, loadPrivateKey, loadPublicKey, keyIdOf } from './signing';
export { sha256Hex } from '../core/sha256';
export { readOnnxModelInfo, type OnnxModelInfo, type OnnxValueInfo, type OnnxOpset, type OnnxDim } from '../onnx/model-info';
export { stableJson } from './stable-json';
export { COMPRESSIONS, type Compression } from './block-gzip';
export {
  MANIFEST_FILE,
  SIGNATURE_FILE,
  manifestSchema,
  signatureSchema,
  manifestSchemaErrors,
  type PackageManifest,
  type PackageFile,
  type PackageModel,
  type PackageLabels,
  type Compatibility,
  type TensorRtCache,
  type Provenance,
  type WorkflowRun,
  type SignatureDocument,
  type FileRole,
} from './manifest';
