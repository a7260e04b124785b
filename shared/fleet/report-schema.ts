/**
 * JSON Schemas (draft-07) of what a device sends back: the device report (`mlship.device-report/v1`) and the
 * telemetry file the instrument's inference application writes (`mlship.telemetry/v1`), which the agent copies
 * into its reports. docs/fleet-status.md explains every field. Both are closed (no additional properties) and
 * every string and array has a bound, so a hostile report cannot make the aggregation allocate without limit.
 */
export const REPORT_SCHEMA = 'mlship.device-report/v1';
export const TELEMETRY_SCHEMA = 'mlship.telemetry/v1';
/** A report above this is refused by the agent and by the aggregation. */
export const MAX_REPORT_BYTES = 64 * 1024;
export const DEVICE_ID = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';

const text = (max: number) => ({ type: 'string', maxLength: max }) as const;
const nullableText = (max: number) => ({ type: ['string', 'null'], maxLength: max }) as const;
const count = { type: 'integer', minimum: 0 } as const;
const nonNegative = { type: 'number', minimum: 0 } as const;
const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;

const histogram = {
  type: 'object',
  additionalProperties: false,
  required: ['edges', 'counts'],
  properties: {
    /** Bin edges, increasing; counts[i] is the number of values in [edges[i], edges[i+1]). */
    edges: { type: 'array', minItems: 2, maxItems: 65, items: { type: 'number' } },
    counts: { type: 'array', minItems: 1, maxItems: 64, items: count },
  },
} as const;

const telemetryBody = {
  type: 'object',
  additionalProperties: false,
  required: ['schema', 'modelVersion', 'windowStart', 'windowEnd'],
  properties: {
    schema: { const: TELEMETRY_SCHEMA },
    /** The model the figures are about; figures for another version than the one installed are not used. */
    modelVersion: text(128),
    modelSha256: sha256,
    windowStart: text(40),
    windowEnd: text(40),
    images: count,
    latencyMs: {
      type: 'object',
      additionalProperties: false,
      properties: { p50: nonNegative, p95: nonNegative, p99: nonNegative, mean: nonNegative },
    },
    fps: nonNegative,
    gpu: {
      type: 'object',
      additionalProperties: false,
      properties: {
        utilizationPercent: { type: 'number', minimum: 0, maximum: 100 },
        temperatureC: { type: 'number' },
        memoryUsedMiB: nonNegative,
      },
    },
    cpuPercent: nonNegative,
    memoryMiB: nonNegative,
    errors: count,
    crashes: count,
    /** Output statistics as histograms, e.g. foregroundFraction, objectsPerImage, meanScore. */
    outputs: {
      type: 'object',
      maxProperties: 8,
      propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$' },
      additionalProperties: histogram,
    },
  },
} as const;

export const telemetrySchema = {
  $id: 'https://mlship.dev/schemas/telemetry-v1.json',
  title: 'mlship inference telemetry (written by the instrument application)',
  ...telemetryBody,
} as const;

const release = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'version', 'sha256'],
  properties: {
    name: text(128),
    version: text(128),
    sha256,
    slot: { enum: ['a', 'b'] },
    /** From the installed package's manifest: which commit, data and training job it came from. */
    gitCommit: nullableText(80),
    dataFingerprint: nullableText(200),
    trainingJob: nullableText(300),
  },
} as const;

export const deviceReportSchema = {
  $id: 'https://mlship.dev/schemas/device-report-v1.json',
  title: 'mlship device report',
  type: 'object',
  additionalProperties: false,
  required: [
    'schema',
    'reportId',
    'deviceId',
    'groups',
    'agentVersion',
    'createdAt',
    'channel',
    'sequence',
    'event',
    'status',
    'reason',
    'installed',
    'target',
    'health',
    'hardware',
    'telemetry',
    'buffer',
  ],
  properties: {
    schema: { const: REPORT_SCHEMA },
    /** Also the object name: <createdAt as yyyymmddThhmmssmmmZ>-<counter>; sorts in the order the device wrote them. */
    reportId: { type: 'string', pattern: '^[0-9]{8}T[0-9]{9}Z-[0-9]{6}$' },
    deviceId: { type: 'string', pattern: DEVICE_ID },
    groups: { type: 'array', maxItems: 32, items: text(64) },
    agentVersion: text(40),
    createdAt: text(40),
    channel: text(64),
    /** Highest channel sequence the device accepted. */
    sequence: count,
    event: { enum: ['install', 'revert', 'refusal', 'incompatible', 'error', 'heartbeat'] },
    status: { enum: ['installed', 'up-to-date', 'not-in-rollout', 'deferred', 'reverted', 'refused', 'incompatible', 'error'] },
    reason: text(2000),
    installed: { oneOf: [{ type: 'null' }, release] },
    /** The release the channel names for this device, when it differs from what runs (failed, refused, deferred). */
    target: { oneOf: [{ type: 'null' }, release] },
    health: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['passed', 'reason'],
          properties: { passed: { type: 'boolean' }, reason: nullableText(2000) },
        },
      ],
    },
    hardware: {
      type: 'object',
      additionalProperties: false,
      required: ['source'],
      properties: {
        source: { enum: ['nvidia-smi', 'file', 'none'] },
        deviceModel: nullableText(128),
        gpuModel: nullableText(128),
        driver: nullableText(40),
        cuda: nullableText(40),
        computeCapability: nullableText(16),
        gpuMemoryMiB: { type: ['number', 'null'], minimum: 0 },
        onnxruntime: nullableText(40),
      },
    },
    telemetry: { oneOf: [{ type: 'null' }, telemetryBody] },
    buffer: {
      type: 'object',
      additionalProperties: false,
      required: ['pending', 'dropped'],
      properties: { pending: count, dropped: count },
    },
    signature: {
      type: 'object',
      additionalProperties: false,
      required: ['algorithm', 'keyId', 'value'],
      properties: { algorithm: { const: 'ed25519' }, keyId: sha256, value: { type: 'string', maxLength: 200 } },
    },
  },
} as const;
