import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { streamToFileVerified } from '../ota/files';

/**
 * What a device fetches from: file:// URLs (a mounted share, tests) and http(s):// URLs (a bucket or container
 * behind a CDN, a SAS-signed container URL). Nothing here trusts the bytes: callers verify signatures and hashes.
 */

const MAX_CHANNEL_BYTES = 1024 * 1024;
/** A stalled download must not hold the device forever; a large package over a slow lab link still fits. */
const DOWNLOAD_TIMEOUT_MS = 2 * 3_600_000;

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
  const response = await fetch(url, { signal: withTimeout(signal, 30_000), headers: { 'Cache-Control': 'no-cache' } });
  if (!response.ok) throw new Error(`GET ${redact(url)} answered ${response.status} ${response.statusText}`);
  const body = Buffer.from(await response.arrayBuffer());
  if (body.length > MAX_CHANNEL_BYTES) throw new Error(`${redact(url)} is ${body.length} bytes, too large for a channel document`);
  return body;
}

/** Streams `url` to `destination` (temp + rename); rejects unless size and sha256 are the expected ones. */
export async function downloadVerified(url: string, destination: string, expected: { sha256: string; size: number }, signal?: AbortSignal): Promise<void> {
  let source: Readable;
  if (url.startsWith('file:')) source = fs.createReadStream(fileURLToPath(url));
  else {
    const response = await fetch(url, { signal: withTimeout(signal, DOWNLOAD_TIMEOUT_MS) });
    if (!response.ok || !response.body) throw new Error(`GET ${redact(url)} answered ${response.status} ${response.statusText}`);
    source = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
  }
  await streamToFileVerified(source, destination, expected);
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
