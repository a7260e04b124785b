/** Public surface of the dataset validator, for the validate-data step and any step that fingerprints data. */
export { CHECKS, Findings } from './checks';
export type { CheckId, CheckResult, Example, Severity } from './checks';
export type { DatasetFormat, SplitName } from './dataset';
export { probeFiles, hashFiles, defaultThreads } from './file-pool';
export type { FileDigest, FileProbe, PoolOptions } from './file-pool';
export { buildManifest, commonRoot, fingerprintDataset, manifestDigest, writeManifest } from './fingerprint';
export type { DatasetManifest, ManifestFile } from './fingerprint';
export { readImageHeader, readImageHeaderFromBuffer, sniffFormat } from './image-header';
export type { ImageHeader, ImageFormat } from './image-header';
export { failureMessage, writeSummary } from './report';
export type { FailOn, ValidationReport } from './report';
export { chiSquareHomogeneity, psi } from './statistics';
export { validateDataset } from './validate';
export type { ValidateOptions, ValidationResult } from './validate';
