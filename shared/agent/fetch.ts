import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { IntegrityError, streamToFileVerified } from '../ota/files';

/**
 * What a device fetches from: file:// URLs (a mounted share, tests) and http(s):// URLs (a bucket or container
 * behind a CDN, a SAS-signed container URL). Nothing here trusts the bytes: callers verify signatures and hashes.
 */

const MAX_CHANNEL_BYTES = 1024 * 1024;
/** A stalled download must not hold the device forever; a large package over a slow lab link still fits. */
const DOWNLOAD_TIMEOUT_MS = 2 * 3_600_000;

/**
 * An ordinary failure to reach the store or the reports endpoint (refused, reset, timed out, 404, 500): one line
 * naming the URL (without its query) and the status or cause, never a stack trace.
 */
export class NetworkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetworkError';
  }
}

/** "connect ECONNREFUSED 127.0.0.1:9", "other side closed", "The operation was aborted due to timeout". */
export function causeOf(error: unknown): string {
  const e = error as { cause?: unknown; code?: string; message?: string };
  if (e?.cause && e.cause !== error) return causeOf(e.cause);
  return e?.message || e?.code || String(error);
}

async function get(url: string, signal: AbortSignal, headers: Record<string, string> = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal, headers });
  } catch (error) {
    throw new NetworkError(`GET ${redact(url)} failed: ${causeOf(error)}`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    throw new NetworkError(`GET ${redact(url)} answered ${response.status} ${response.statusText}`.trim());
  }
  return response;
}

function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  return signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
}

export async function fetchSmall(url: string, signal?: AbortSignal): Promise<Buffer> {
  if (url.startsWith('file:')) {
    const file = fileURLToPath(url);
    const stat = await fsp.stat(file);
    if (stat.size > MAX_CHANNEL_BYTES) throw new Error(`${url} is ${stat.size} bytes, too large for a channel document`);
    return fsp.readFile(file);
  }
  const response = await get(url, withTimeout(signal, 30_000), { 'Cache-Control': 'no-cache' });
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_CHANNEL_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new NetworkError(`${redact(url)} is ${declared} bytes, too large for a channel document`);
  }
  const body = Buffer.from(
    await response.arrayBuffer().catch((error: unknown) => {
      throw new NetworkError(`GET ${redact(url)} broke off: ${causeOf(error)}`);
    }),
  );
  if (body.length > MAX_CHANNEL_BYTES) throw new Error(`${redact(url)} is ${body.length} bytes, too large for a channel document`);
  return body;
}

/** Streams `url` to `destination` (temp + rename); rejects unless size and sha256 are the expected ones. */
export async function downloadVerified(
  url: string,
  destination: string,
  expected: { sha256: string; size: number },
  signal?: AbortSignal,
): Promise<void> {
  let source: Readable;
  if (url.startsWith('file:')) source = fs.createReadStream(fileURLToPath(url));
  else {
    const response = await get(url, withTimeout(signal, DOWNLOAD_TIMEOUT_MS));
    if (!response.body) throw new NetworkError(`GET ${redact(url)} answered ${response.status} with no body`);
    source = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
  }
  try {
    await streamToFileVerified(source, destination, expected);
  } catch (error) {
    // A connection cut mid-body surfaces as a stream error; the temp file is already gone.
    if (error instanceof IntegrityError || (error as NodeJS.ErrnoException).code === 'ENOSPC') throw error;
    if (url.startsWith('file:')) throw error;
    throw new NetworkError(`GET ${redact(url)} broke off after the headers: ${causeOf(error)}`);
  }
}

/**
 * A package key resolved against the channel URL: the channel sits at <root>/channels/<name>.json and the
 * package at <root>/<key>, on the same server. The query (a SAS token for the container) is kept.
 */
export function packageUrl(channelUrl: string, key: string): string {
  const channel = new URL(channelUrl);
  const resolved = new URL(`../${key}`, channel);
  resolved.search = channel.search;
  return resolved.href;
}

/** URLs in messages without their query, which may hold a SAS token. */
export function redact(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?…`;
}
