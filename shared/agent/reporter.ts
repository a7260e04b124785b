import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write';
import { openStore, type StoreConfig } from '../ota/open-store';
import { isWriteConflict, type OtaStore } from '../ota/store';
import { causeOf, NetworkError, redact } from './fetch';

/**
 * Where a device's reports go. Each report is one object, `<deviceId>/<reportId>.json` under the sink's root,
 * written create-only: a retry after a lost answer finds it there and counts it as delivered.
 * `put` resolves 'stored', resolves 'rejected' when the receiver refuses it for good (a 4xx of an HTTPS
 * endpoint: retrying the same bytes cannot help), and throws NetworkError when it should be tried again later.
 */
export interface ReportSink {
  readonly description: string;
  put(deviceId: string, reportId: string, body: Buffer): Promise<'stored' | 'rejected'>;
}

/** A folder, an S3 prefix or an Azure Blob container through the OTA store classes (same clients, same auth). */
export class StoreReportSink implements ReportSink {
  constructor(private readonly store: OtaStore) {}

  get description(): string {
    return redact(this.store.location);
  }

  async put(deviceId: string, reportId: string, body: Buffer): Promise<'stored' | 'rejected'> {
    try {
      await this.store.writeDocument(`${deviceId}/${reportId}.json`, body, { ifNoneMatch: '*' });
    } catch (error) {
      if (isWriteConflict(error)) return 'stored';
      throw new NetworkError(`sending report ${reportId} to ${this.description} failed: ${causeOf(error)}`);
    }
    return 'stored';
  }
}

/**
 * The user's own endpoint (docs/fleet-status.md, "HTTPS endpoint contract"): PUT <base>/<deviceId>/<reportId>.json
 * with the report as body, `If-None-Match: *`, and `Authorization: Bearer <device token>` when a token is set.
 * 2xx, 409 and 412 mean stored; other 4xx rejected; 5xx, 429 and network errors are retried later.
 */
export class HttpsReportSink implements ReportSink {
  constructor(
    private readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  get description(): string {
    return redact(this.baseUrl);
  }

  async put(deviceId: string, reportId: string, body: Buffer): Promise<'stored' | 'rejected'> {
    const url = new URL(this.baseUrl);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/${encodeURIComponent(deviceId)}/${reportId}.json`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'PUT',
        body,
        headers: {
          'Content-Type': 'application/json',
          'If-None-Match': '*',
          ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
        },
        signal: AbortSignal.timeout(15_000),
      });
    } catch (error) {
      throw new NetworkError(`PUT ${redact(url.href)} failed: ${causeOf(error)}`);
    }
    await response.body?.cancel().catch(() => undefined);
    if (response.ok || response.status === 409 || response.status === 412) return 'stored';
    if (response.status >= 400 && response.status < 500 && response.status !== 429 && response.status !== 408) return 'rejected';
    throw new NetworkError(`PUT ${redact(url.href)} answered ${response.status} ${response.statusText}`.trim());
  }
}

export interface ReportSinkConfig {
  kind: 'folder' | 's3' | 'azure-blob' | 'https';
  /** Folder, s3://bucket/prefix, container URL with a SAS (or container/prefix with a connection string), https URL. */
  uri: string;
  endpoint?: string;
  region?: string;
  azureConnectionString?: string;
  /** Bearer token for an HTTPS endpoint (one per device). */
  token?: string;
  env?: NodeJS.ProcessEnv;
}

export function openReportSink(config: ReportSinkConfig): ReportSink {
  if (config.kind === 'https') return new HttpsReportSink(config.uri, config.token);
  const kind = config.kind === 'folder' ? 'local' : config.kind;
  // The cloud clients come from the one cloud layer (credentials from the device's environment, one retry policy).
  const connections =
    kind === 'local'
      ? undefined
      : (require('../cloud/connections') as typeof import('../cloud/connections')).connectionsFromEnv(config.env ?? process.env);
  const store: StoreConfig = {
    kind,
    uri: config.uri,
    endpoint: config.endpoint,
    region: config.region,
    azureConnectionString: config.azureConnectionString,
    connections,
  };
  return new StoreReportSink(openStore(store, (key) => `report-${key === 'storeUri' ? 'uri' : key}`));
}

export interface OutboxLimits {
  /** Reports kept while offline; the oldest go first beyond this. */
  maxReports: number;
  maxBytes: number;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { maxReports: 500, maxBytes: 8 * 1024 * 1024 };

/**
 * Reports waiting to be sent, one file each in <root>/reports/outbox, named by report id so they sort oldest
 * first. Bounded: beyond the limits the oldest are dropped (and counted in the next report), so a device that
 * is offline for months does not fill its disk.
 */
export class ReportOutbox {
  constructor(
    readonly dir: string,
    private readonly limits: OutboxLimits = DEFAULT_OUTBOX_LIMITS,
  ) {}

  private async entries(): Promise<{ name: string; size: number }[]> {
    const names = (await fsp.readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
    return Promise.all(
      names.map(async (name) => ({ name, size: (await fsp.stat(path.join(this.dir, name)).catch(() => ({ size: 0 }))).size })),
    );
  }

  async pending(): Promise<number> {
    return (await this.entries()).length;
  }

  /** Adds one report; returns how many old ones were dropped to stay within the limits. */
  async add(reportId: string, body: Buffer): Promise<number> {
    await writeFileAtomic(path.join(this.dir, `${reportId}.json`), body);
    const entries = await this.entries();
    let bytes = entries.reduce((s, e) => s + e.size, 0);
    let dropped = 0;
    while (entries.length - dropped > this.limits.maxReports || (bytes > this.limits.maxBytes && entries.length - dropped > 1)) {
      await fsp.rm(path.join(this.dir, entries[dropped].name), { force: true });
      bytes -= entries[dropped].size;
      dropped++;
    }
    return dropped;
  }

  /** Sends oldest first and stops at the first failure, so order is kept; returns what happened. */
  async flush(sink: ReportSink, deviceId: string): Promise<{ sent: number; rejected: string[]; pending: number; error?: string }> {
    const entries = await this.entries();
    let sent = 0;
    const rejected: string[] = [];
    for (const [i, entry] of entries.entries()) {
      const file = path.join(this.dir, entry.name);
      const body = await fsp.readFile(file).catch(() => undefined);
      if (!body) continue;
      try {
        const outcome = await sink.put(deviceId, entry.name.slice(0, -'.json'.length), body);
        if (outcome === 'rejected') rejected.push(entry.name);
        else sent++;
      } catch (error) {
        return { sent, rejected, pending: entries.length - i, error: (error as Error).message };
      }
      await fsp.rm(file, { force: true });
    }
    return { sent, rejected, pending: 0 };
  }
}
