import type { KeyObject } from 'node:crypto';
import type { OtaStore } from '../ota/store';
import { type DeviceReport, parseReport, reportSignatureValid } from './report';
import { DEVICE_ID, MAX_REPORT_BYTES } from './report-schema';

export interface RejectedReport {
  key: string;
  /** The device folder it was found in. */
  deviceId: string;
  problem: 'malformed' | 'oversized' | 'forged';
  detail: string;
}

export interface ReadReportsOptions {
  /** Devices whose reports must carry a valid signature by this key; a device missing here, when given, is forged. */
  deviceKeys?: Map<string, KeyObject>;
  /** Newest reports read per device (older ones are history the status does not need). */
  perDevice?: number;
  /** Keys listed at most: a bound on one run's work whatever the bucket holds. */
  maxKeys?: number;
  onProgress?: (done: number, total: number) => void;
}

const KEY = new RegExp(`^(${DEVICE_ID.slice(1, -1)})/([0-9]{8}T[0-9]{9}Z-[0-9]{6})\\.json$`);

/**
 * Reads device reports from a store (folder, S3 prefix, Azure container): `<deviceId>/<reportId>.json`. Nothing a
 * device wrote can stop the read: each object is size-checked before it is read, parsed, schema-checked, and must
 * sit in the folder of the device it names (and, with device keys, carry that device's signature); anything else
 * is returned in `rejected` with its key and why, and never counts for a device.
 */
export async function readReports(
  store: OtaStore,
  options: ReadReportsOptions = {},
): Promise<{ reports: DeviceReport[]; rejected: RejectedReport[]; listed: number }> {
  const keys = await store.listKeys('', options.maxKeys ?? 200_000);
  const rejected: RejectedReport[] = [];
  const byDevice = new Map<string, string[]>();
  for (const key of keys) {
    const match = KEY.exec(key);
    if (!match) {
      rejected.push({ key, deviceId: key.split('/')[0] ?? '', problem: 'malformed', detail: 'not named <device id>/<report id>.json' });
      continue;
    }
    const list = byDevice.get(match[1]) ?? [];
    list.push(key);
    byDevice.set(match[1], list);
  }
  const wanted = [...byDevice.values()].flatMap((list) => list.sort().slice(-(options.perDevice ?? 50)));
  const reports: DeviceReport[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < wanted.length) {
      const key = wanted[next++];
      const deviceId = key.slice(0, key.indexOf('/'));
      const outcome = await readOne(store, key, deviceId, options.deviceKeys);
      if ('problem' in outcome) rejected.push(outcome);
      else reports.push(outcome);
      options.onProgress?.(++done, wanted.length);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  reports.sort((a, b) => (a.deviceId === b.deviceId ? (a.reportId < b.reportId ? -1 : 1) : a.deviceId < b.deviceId ? -1 : 1));
  rejected.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { reports, rejected, listed: keys.length };
}

async function readOne(
  store: OtaStore,
  key: string,
  deviceId: string,
  deviceKeys?: Map<string, KeyObject>,
): Promise<DeviceReport | RejectedReport> {
  const reject = (problem: RejectedReport['problem'], detail: string): RejectedReport => ({ key, deviceId, problem, detail });
  const head = await store.headBlob(key).catch(() => undefined);
  if (head && head.size > MAX_REPORT_BYTES) return reject('oversized', `${head.size} bytes, above the ${MAX_REPORT_BYTES}-byte limit`);
  const stored = await store.readDocument(key).catch((error: Error) => error);
  if (stored instanceof Error || !stored)
    return reject('malformed', `could not be read (${stored instanceof Error ? stored.message : 'gone'})`);
  const parsed = parseReport(stored.body);
  if (!parsed.ok) return reject(parsed.problem, parsed.detail);
  const report = parsed.report;
  if (report.deviceId !== deviceId)
    return reject('forged', `claims to be from device ${report.deviceId} but was written under ${deviceId}/`);
  if (`${deviceId}/${report.reportId}.json` !== key) return reject('forged', `report id ${report.reportId} does not match its name`);
  if (deviceKeys) {
    const publicKey = deviceKeys.get(deviceId);
    if (!publicKey) return reject('forged', `device ${deviceId} has no key in the device keys, so its reports cannot be trusted`);
    if (!reportSignatureValid(report, publicKey))
      return reject('forged', report.signature ? `signature does not verify with the key of device ${deviceId}` : 'not signed');
  }
  return report;
}
