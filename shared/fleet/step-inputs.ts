import { createPublicKey, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectionsFromInputs, type CloudConnections, type CloudInputValues } from '../cloud/connections';
import type { StepContext } from '../core/context';
import { InputError } from '../core/errors';
import type { ChannelDocument } from '../ota/channel';
import { openStore } from '../ota/open-store';
import type { OtaStore, StoreKind } from '../ota/store';
import { aggregate, type FleetStatus } from './aggregate';
import { readReports } from './read-reports';

/** Where device reports are read, shared by fleet-status and promote-release's health gate. */
export const reportInputs = {
  reportsStore: {
    type: 'enum',
    options: ['same', 'local', 's3', 'azure-blob'],
    default: 'same',
    description:
      'Kind of store the device reports are in; same: the kind of the OTA store (endpoint, region and credentials are shared too).',
  },
  reportsUri: {
    type: 'string',
    description:
      'Where the reports of this channel are: a folder, s3://bucket/prefix or an Azure container (URL or container/prefix), holding <device-id>/<report-id>.json.',
  },
  silentAfterHours: {
    type: 'number',
    min: 0.01,
    max: 8760,
    default: 24,
    description: 'A device with no report for this many hours is silent.',
  },
  deviceKeys: {
    type: 'path',
    description:
      'JSON file {"<device id>": "<Ed25519 public key PEM>"}: reports must then be signed by their device, others count as forged.',
  },
  inventory: {
    type: 'path',
    description: 'Text file with the ids of the devices expected to report, one per line, to name the ones that never did.',
  },
} as const;

export interface ReportInputValues extends CloudInputValues {
  store: string;
  reportsStore: string;
  reportsUri?: string;
  endpoint?: string;
  storeRegion?: string;
  azureConnectionString?: string;
  silentAfterHours: number;
  deviceKeys?: string;
  inventory?: string;
}

/** The reports store, reached with the OTA store's endpoint, bucket region and credentials (`connections`). */
export function reportsStoreFromInputs(
  inputs: ReportInputValues,
  ctx: StepContext,
  why: string,
  connections: CloudConnections = connectionsFromInputs(inputs, ctx),
): OtaStore {
  if (!inputs.reportsUri) {
    throw new InputError(`Input "${ctx.inputLabel('reportsUri')}" is required ${why}.`, {
      hint: 'Give the folder, s3://bucket/prefix or Azure container the devices of this channel send their reports to.',
    });
  }
  const kind = (inputs.reportsStore === 'same' ? inputs.store : inputs.reportsStore) as StoreKind;
  return openStore(
    {
      kind,
      uri: inputs.reportsUri,
      endpoint: inputs.endpoint,
      region: inputs.storeRegion,
      azureConnectionString: inputs.azureConnectionString,
      connections,
      log: ctx.log,
      workspace: ctx.workspace,
    },
    (key) => ctx.inputLabel(key === 'storeUri' ? 'reportsUri' : key),
  );
}

export function parseDeviceKeys(file: string | undefined, label: string): Map<string, KeyObject> | undefined {
  if (!file) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`Input "${label}" names ${file}, which is not readable JSON (${(error as Error).message}).`, {
      hint: 'Write {"<device id>": "-----BEGIN PUBLIC KEY-----…"} for each device.',
    });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new InputError(`Input "${label}": ${file} is not a JSON object of device id → public key.`);
  const keys = new Map<string, KeyObject>();
  for (const [device, pem] of Object.entries(value as Record<string, unknown>)) {
    try {
      keys.set(device, createPublicKey(String(pem)));
    } catch (error) {
      throw new InputError(
        `Input "${label}": the key of device "${device}" in ${file} is not a public key (${(error as Error).message}).`,
        { hint: "Give the PEM (SPKI) text of the device's Ed25519 public key." },
      );
    }
  }
  return keys;
}

function readInventory(file: string | undefined): string[] | undefined {
  if (!file) return undefined;
  return fs
    .readFileSync(path.resolve(file), 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** Reads and aggregates the reports of `channel`, judged against the channel document when there is one. */
export async function loadFleetStatus(
  inputs: ReportInputValues,
  ctx: StepContext,
  channel: string,
  doc: ChannelDocument | undefined,
  why: string,
  connections?: CloudConnections,
): Promise<FleetStatus> {
  const store = reportsStoreFromInputs(inputs, ctx, why, connections);
  const deviceKeys = parseDeviceKeys(inputs.deviceKeys, ctx.inputLabel('deviceKeys'));
  const { reports, rejected, listed } = await readReports(store, {
    deviceKeys,
    onProgress: (done, total) => ctx.progress({ label: 'device reports', done, total, unit: 'items' }),
  });
  ctx.log.info(`Read ${reports.length} device reports from ${store.location} (${listed} objects listed, ${rejected.length} rejected).`);
  for (const r of rejected.slice(0, 20)) ctx.log.warning(`Report ${r.key} ${r.problem}: ${r.detail}`);
  if (rejected.length > 20) ctx.log.warning(`… and ${rejected.length - 20} more rejected reports (all listed in the JSON).`);
  return aggregate(reports, rejected, {
    channel,
    current: doc?.current,
    previous: doc?.origin.event === 'rollback' ? doc.origin.rolledBack : doc?.previous,
    rollout: doc?.rollout,
    phaseStartedAt: doc ? (doc.rollout.startedAt ?? doc.issuedAt) : null,
    now: new Date(),
    silentAfterHours: inputs.silentAfterHours,
    inventory: readInventory(inputs.inventory),
  });
}
