import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { lazySchema } from '../core/lazy-schema';
import { keyIdOf } from '../ota/channel';
import { canonicalJson } from '../core/canonical-json';
import { deviceReportSchema, MAX_REPORT_BYTES, REPORT_SCHEMA, telemetrySchema } from './report-schema';

export type ReportEvent = 'install' | 'revert' | 'refusal' | 'incompatible' | 'error' | 'heartbeat';
export type ReportStatus = 'installed' | 'up-to-date' | 'not-in-rollout' | 'deferred' | 'reverted' | 'refused' | 'incompatible' | 'error';

export interface Histogram {
  edges: number[];
  counts: number[];
}

/** What the instrument's inference application writes for the agent to pass on (docs/fleet-status.md). */
export interface Telemetry {
  schema: 'mlship.telemetry/v1';
  modelVersion: string;
  modelSha256?: string;
  windowStart: string;
  windowEnd: string;
  images?: number;
  latencyMs?: { p50?: number; p95?: number; p99?: number; mean?: number };
  fps?: number;
  gpu?: { utilizationPercent?: number; temperatureC?: number; memoryUsedMiB?: number };
  cpuPercent?: number;
  memoryMiB?: number;
  errors?: number;
  crashes?: number;
  outputs?: Record<string, Histogram>;
}

export interface ReportedRelease {
  name: string;
  version: string;
  sha256: string;
  slot?: 'a' | 'b';
  gitCommit?: string | null;
  dataFingerprint?: string | null;
  trainingJob?: string | null;
}

export interface HardwareFacts {
  source: 'nvidia-smi' | 'file' | 'none';
  deviceModel?: string | null;
  gpuModel?: string | null;
  driver?: string | null;
  cuda?: string | null;
  computeCapability?: string | null;
  gpuMemoryMiB?: number | null;
  onnxruntime?: string | null;
}

export interface DeviceReport {
  schema: typeof REPORT_SCHEMA;
  reportId: string;
  deviceId: string;
  groups: string[];
  agentVersion: string;
  createdAt: string;
  channel: string;
  sequence: number;
  event: ReportEvent;
  status: ReportStatus;
  reason: string;
  installed: ReportedRelease | null;
  target: ReportedRelease | null;
  health: { passed: boolean; reason: string | null } | null;
  hardware: HardwareFacts;
  telemetry: Telemetry | null;
  buffer: { pending: number; dropped: number };
  signature?: { algorithm: 'ed25519'; keyId: string; value: string };
}

const reportValidator = lazySchema(deviceReportSchema, { allErrors: false, strict: false });
const telemetryValidator = lazySchema(telemetrySchema, { allErrors: false, strict: false });

/** First schema problem as "/field: message", or undefined when the value is a valid report. */
export function reportSchemaError(value: unknown): string | undefined {
  const validateReport = reportValidator();
  if (validateReport(value)) return undefined;
  const first = validateReport.errors?.[0];
  return `${first?.instancePath || '/'}: ${first?.message ?? 'invalid'}${first?.params && 'additionalProperty' in first.params ? ` (${String(first.params.additionalProperty)})` : ''}`;
}

export function telemetrySchemaError(value: unknown): string | undefined {
  const validateTelemetry = telemetryValidator();
  if (validateTelemetry(value)) return undefined;
  const first = validateTelemetry.errors?.[0];
  return `${first?.instancePath || '/'}: ${first?.message ?? 'invalid'}${first?.params && 'additionalProperty' in first.params ? ` (${String(first.params.additionalProperty)})` : ''}`;
}

/** "20261201T224501123Z-000042": sortable, one per report, also the object name. */
export function reportIdOf(at: Date, counter: number): string {
  return `${at.toISOString().replace(/[-:.]/g, '')}-${String(counter % 1_000_000).padStart(6, '0')}`;
}

/** Signs with the device's own Ed25519 key (docs/fleet-status.md, trust model). */
export function signReport(report: DeviceReport, deviceKey: KeyObject): DeviceReport {
  const { signature: _old, ...unsigned } = report;
  const value = sign(null, Buffer.from(canonicalJson(unsigned)), deviceKey).toString('base64');
  return { ...unsigned, signature: { algorithm: 'ed25519', keyId: keyIdOf(createPublicKey(deviceKey)), value } };
}

export function reportSignatureValid(report: DeviceReport, publicKey: KeyObject): boolean {
  const { signature, ...unsigned } = report;
  if (!signature || signature.keyId !== keyIdOf(publicKey)) return false;
  try {
    return verify(null, Buffer.from(canonicalJson(unsigned)), publicKey, Buffer.from(signature.value, 'base64'));
  } catch {
    return false;
  }
}

export type ParsedReport = { ok: true; report: DeviceReport } | { ok: false; problem: 'oversized' | 'malformed'; detail: string };

/** Bytes from a device: bounded, parsed and schema-checked; never throws. */
export function parseReport(bytes: Buffer): ParsedReport {
  if (bytes.length > MAX_REPORT_BYTES)
    return { ok: false, problem: 'oversized', detail: `${bytes.length} bytes, above the ${MAX_REPORT_BYTES}-byte limit` };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { ok: false, problem: 'malformed', detail: `not JSON (${(error as Error).message})` };
  }
  const problem = reportSchemaError(value);
  if (problem) return { ok: false, problem: 'malformed', detail: `does not match ${REPORT_SCHEMA}: ${problem}` };
  return { ok: true, report: value as DeviceReport };
}
