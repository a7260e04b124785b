import { createHash, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';

/**
 * A small S3-compatible server for tests, speaking the REST protocol of the operations the OTA store uses,
 * driven by the real @aws-sdk/client-s3 and @aws-sdk/lib-storage. It exists because s3rver 3.7 (the npm S3
 * emulator) ignores If-Match / If-None-Match on PutObject and stores aws-chunked request bodies with their
 * chunk framing, so neither conditional channel writes nor the SDK's default streaming uploads can be tested
 * against it. What it implements, as S3 does:
 *   CreateBucket, HeadBucket, PutObject (If-Match, If-None-Match: *, Content-MD5 and x-amz-checksum-sha256 /
 *   crc32 verification, aws-chunked bodies with trailing checksums), HeadObject, GetObject, DeleteObject,
 *   CreateMultipartUpload, UploadPart (per-part checksums), CompleteMultipartUpload (If-None-Match), Abort,
 *   ListObjectsV2 (prefix, max-keys, continuation token; keys in UTF-8 binary order).
 * Requests are not authenticated (signatures are not checked), but the access key each request was signed
 * with is recorded, so a test can tell which credentials a client used. Listens on 127.0.0.1 only.
 */
interface StoredObject {
  body: Buffer;
  etag: string;
  contentType?: string;
  metadata: Record<string, string>;
  checksumSha256?: string;
  lastModified: Date;
}

interface Upload {
  bucket: string;
  key: string;
  metadata: Record<string, string>;
  contentType?: string;
  parts: Map<number, { body: Buffer; etag: string; sha256?: Buffer }>;
}

export interface S3ServerStats {
  /** Object bytes received by PutObject and UploadPart. */
  bytesReceived: number;
  putObjects: number;
  uploadParts: number;
  completedMultipart: number;
  preconditionFailures: number;
}

export class TestS3Server {
  private server?: http.Server;
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  private readonly uploads = new Map<string, Upload>();
  readonly stats: S3ServerStats = { bytesReceived: 0, putObjects: 0, uploadParts: 0, completedMultipart: 0, preconditionFailures: 0 };
  /** Access key ids of the SigV4 signatures seen (`Credential=<key>/<date>/…`), in order of first use. */
  readonly accessKeys = new Set<string>();
  /** Regions of those signatures' credential scopes (`Credential=<key>/<date>/<region>/s3/…`). */
  readonly signingRegions = new Set<string>();
  endpoint = '';

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => {
        if (!res.headersSent) sendError(res, 500, 'InternalError', error.message);
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, new Map());
  }

  /** Direct access for tests that tamper with or inspect stored bytes. */
  object(bucket: string, key: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.get(key);
  }

  keys(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.keys() ?? [])].sort();
  }

  private listObjects(res: http.ServerResponse, bucket: string, q: URLSearchParams): void {
    const objects = this.buckets.get(bucket);
    if (!objects) return sendError(res, 404, 'NoSuchBucket', `The specified bucket does not exist: ${bucket}`);
    const prefix = q.get('prefix') ?? '';
    const max = Math.min(1000, Number(q.get('max-keys') ?? 1000));
    const after = q.get('continuation-token')
      ? Buffer.from(q.get('continuation-token')!, 'base64').toString()
      : (q.get('start-after') ?? '');
    const keys = [...objects.keys()]
      .filter((k) => k.startsWith(prefix) && k > after)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const page = keys.slice(0, max);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const o = objects.get(k)!;
        return `<Contents><Key>${escapeXml(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>${escapeXml(o.etag)}</ETag><Size>${o.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join('');
    const token = truncated ? `<NextContinuationToken>${Buffer.from(page.at(-1)!).toString('base64')}</NextContinuationToken>` : '';
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${escapeXml(bucket)}</Name><Prefix>${escapeXml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${token}</ListBucketResult>`;
    res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) }).end(body);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization ?? ''));
    if (scope) {
      this.accessKeys.add(scope[1]);
      this.signingRegions.add(scope[2]);
    }
    const [bucketName, ...keyParts] = url.pathname.slice(1).split('/');
    const bucket = decodeURIComponent(bucketName ?? '');
    const key = keyParts.map(decodeURIComponent).join('/');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    if (!key) {
      if (method === 'PUT') {
        await readBody(req);
        this.createBucket(bucket);
        res.writeHead(200, { Location: `/${bucket}` }).end();
        return;
      }
      if (method === 'HEAD') {
        res.writeHead(this.buckets.has(bucket) ? 200 : 404).end();
        return;
      }
      if (method === 'GET' && q.get('list-type') === '2') return this.listObjects(res, bucket, q);
      return sendError(res, 501, 'NotImplemented', `${method} on a bucket is not implemented by the test server`);
    }
    const objects = this.buckets.get(bucket);
    if (!objects) return sendError(res, 404, 'NoSuchBucket', `The specified bucket does not exist: ${bucket}`, method === 'HEAD');
    if (method === 'PUT' && q.has('uploadId')) return this.uploadPart(req, res, q.get('uploadId')!, Number(q.get('partNumber')));
    if (method === 'PUT') return this.putObject(req, res, objects, key);
    if (method === 'POST' && q.has('uploads')) return this.createMultipart(req, res, bucket, key);
    if (method === 'POST' && q.has('uploadId')) return this.completeMultipart(req, res, objects, q.get('uploadId')!);
    if (method === 'DELETE' && q.has('uploadId')) {
      this.uploads.delete(q.get('uploadId')!);
      res.writeHead(204).end();
      return;
    }
    if (method === 'DELETE') {
      objects.delete(key);
      res.writeHead(204).end();
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      const object = objects.get(key);
      if (!object) return sendError(res, 404, 'NoSuchKey', 'The specified key does not exist.', method === 'HEAD');
      const headers: http.OutgoingHttpHeaders = {
        ETag: object.etag,
        'Content-Length': object.body.length,
        'Content-Type': object.contentType ?? 'application/octet-stream',
        'Last-Modified': object.lastModified.toUTCString(),
        'Accept-Ranges': 'bytes',
      };
      for (const [name, value] of Object.entries(object.metadata)) headers[`x-amz-meta-${name}`] = value;
      if (object.checksumSha256 && req.headers['x-amz-checksum-mode'] === 'ENABLED')
        headers['x-amz-checksum-sha256'] = object.checksumSha256;
      res.writeHead(200, headers);
      res.end(method === 'GET' ? object.body : undefined);
      return;
    }
    return sendError(res, 501, 'NotImplemented', `${method} ${url.pathname} is not implemented by the test server`);
  }

  private async putObject(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    objects: Map<string, StoredObject>,
    key: string,
  ): Promise<void> {
    if (req.headers['x-amz-copy-source']) return sendError(res, 501, 'NotImplemented', 'CopyObject is not implemented by the test server');
    const payload = await readPayload(req);
    if ('error' in payload) return sendError(res, 400, payload.error.code, payload.error.message);
    // Check and write happen in one synchronous turn, which is what makes conditional writes atomic here.
    const existing = objects.get(key);
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch !== '*')
      return sendError(res, 501, 'NotImplemented', 'If-None-Match on PutObject accepts only "*"');
    if (ifNoneMatch === '*' && existing) return this.preconditionFailed(res, 'If-None-Match');
    if (ifMatch !== undefined) {
      if (!existing) return sendError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      if (ifMatch !== existing.etag) return this.preconditionFailed(res, 'If-Match');
    }
    this.stats.bytesReceived += payload.body.length;
    this.stats.putObjects++;
    const etag = `"${createHash('md5').update(payload.body).digest('hex')}"`;
    const checksumSha256 = createHash('sha256').update(payload.body).digest('base64');
    objects.set(key, {
      body: payload.body,
      etag,
      contentType: req.headers['content-type'],
      metadata: metadataOf(req),
      checksumSha256,
      lastModified: new Date(),
    });
    res.writeHead(200, { ETag: etag, ...(req.headers['x-amz-checksum-sha256'] ? { 'x-amz-checksum-sha256': checksumSha256 } : {}) }).end();
  }

  private preconditionFailed(res: http.ServerResponse, condition: string): void {
    this.stats.preconditionFailures++;
    sendError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', false, {
      Condition: condition,
    });
  }

  private async createMultipart(req: http.IncomingMessage, res: http.ServerResponse, bucket: string, key: string): Promise<void> {
    await readBody(req);
    const uploadId = randomUUID();
    this.uploads.set(uploadId, { bucket, key, metadata: metadataOf(req), contentType: req.headers['content-type'], parts: new Map() });
    sendXml(
      res,
      `<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${bucket}</Bucket><Key>${escapeXml(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
    );
  }

  private async uploadPart(req: http.IncomingMessage, res: http.ServerResponse, uploadId: string, partNumber: number): Promise<void> {
    const upload = this.uploads.get(uploadId);
    const payload = await readPayload(req);
    if (!upload) return sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    if ('error' in payload) return sendError(res, 400, payload.error.code, payload.error.message);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10000)
      return sendError(res, 400, 'InvalidArgument', `Part number must be an integer between 1 and 10000, got ${partNumber}`);
    this.stats.bytesReceived += payload.body.length;
    this.stats.uploadParts++;
    const etag = `"${createHash('md5').update(payload.body).digest('hex')}"`;
    const sha256 = createHash('sha256').update(payload.body).digest();
    upload.parts.set(partNumber, { body: payload.body, etag, sha256 });
    res
      .writeHead(200, {
        ETag: etag,
        ...(req.headers['x-amz-checksum-sha256'] ? { 'x-amz-checksum-sha256': sha256.toString('base64') } : {}),
      })
      .end();
  }

  private async completeMultipart(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    objects: Map<string, StoredObject>,
    uploadId: string,
  ): Promise<void> {
    const xml = (await readBody(req)).toString();
    const upload = this.uploads.get(uploadId);
    if (!upload) return sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    const parsed = new XMLParser({ isArray: (name) => name === 'Part' }).parse(xml) as {
      CompleteMultipartUpload?: { Part?: { PartNumber: number; ETag: string; ChecksumSHA256?: string }[] };
    };
    const listed = parsed.CompleteMultipartUpload?.Part ?? [];
    if (!listed.length) return sendError(res, 400, 'MalformedXML', 'The XML you provided did not list any part');
    const bodies: Buffer[] = [];
    const md5s: Buffer[] = [];
    const shas: Buffer[] = [];
    let last = 0;
    for (const part of listed) {
      const stored = upload.parts.get(Number(part.PartNumber));
      if (Number(part.PartNumber) <= last) return sendError(res, 400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
      last = Number(part.PartNumber);
      if (!stored || stored.etag !== String(part.ETag))
        return sendError(res, 400, 'InvalidPart', `Part ${part.PartNumber} was not uploaded or its ETag does not match.`);
      if (part.ChecksumSHA256 && part.ChecksumSHA256 !== stored.sha256?.toString('base64'))
        return sendError(res, 400, 'InvalidPart', `Part ${part.PartNumber} checksum does not match.`);
      bodies.push(stored.body);
      md5s.push(Buffer.from(stored.etag.slice(1, -1), 'hex'));
      if (stored.sha256) shas.push(stored.sha256);
    }
    if (req.headers['if-none-match'] === '*' && objects.has(upload.key)) return this.preconditionFailed(res, 'If-None-Match');
    const etag = `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${listed.length}"`;
    const checksumSha256 =
      shas.length === listed.length ? `${createHash('sha256').update(Buffer.concat(shas)).digest('base64')}-${listed.length}` : undefined;
    objects.set(upload.key, {
      body: Buffer.concat(bodies),
      etag,
      contentType: upload.contentType,
      metadata: upload.metadata,
      checksumSha256,
      lastModified: new Date(),
    });
    this.uploads.delete(uploadId);
    this.stats.completedMultipart++;
    sendXml(
      res,
      `<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>${this.endpoint}/${upload.bucket}/${escapeXml(upload.key)}</Location><Bucket>${upload.bucket}</Bucket><Key>${escapeXml(upload.key)}</Key><ETag>${escapeXml(etag)}</ETag>${checksumSha256 ? `<ChecksumSHA256>${checksumSha256}</ChecksumSHA256>` : ''}</CompleteMultipartUploadResult>`,
    );
  }
}

function metadataOf(req: http.IncomingMessage): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers))
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') metadata[name.slice('x-amz-meta-'.length)] = value;
  return metadata;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

type Payload = { body: Buffer } | { error: { code: string; message: string } };

/** The object bytes of a PUT: aws-chunked framing removed, every checksum the client sent verified. */
async function readPayload(req: http.IncomingMessage): Promise<Payload> {
  const raw = await readBody(req);
  const sha = req.headers['x-amz-content-sha256'];
  const chunked =
    (typeof sha === 'string' && sha.startsWith('STREAMING-')) || /aws-chunked/.test(String(req.headers['content-encoding'] ?? ''));
  const checksums: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers))
    if (
      name.startsWith('x-amz-checksum-') &&
      name !== 'x-amz-checksum-algorithm' &&
      name !== 'x-amz-checksum-type' &&
      typeof value === 'string'
    )
      checksums[name] = value;
  let body = raw;
  if (chunked) {
    const decoded = decodeAwsChunked(raw);
    if (!decoded) return { error: { code: 'IncompleteBody', message: 'The aws-chunked request body is malformed' } };
    body = decoded.body;
    Object.assign(checksums, decoded.trailers);
    const declared = Number(req.headers['x-amz-decoded-content-length']);
    if (Number.isFinite(declared) && declared !== body.length)
      return {
        error: { code: 'IncompleteBody', message: `Decoded length ${body.length} differs from x-amz-decoded-content-length ${declared}` },
      };
  }
  const md5 = req.headers['content-md5'];
  if (typeof md5 === 'string' && md5 !== createHash('md5').update(body).digest('base64'))
    return { error: { code: 'BadDigest', message: 'The Content-MD5 you specified did not match what we received.' } };
  for (const [name, expected] of Object.entries(checksums)) {
    const actual = computeChecksum(name.slice('x-amz-checksum-'.length), body);
    if (actual === undefined) return { error: { code: 'InvalidRequest', message: `The test server cannot verify ${name}` } };
    if (actual !== expected)
      return {
        error: {
          code: 'BadDigest',
          message: `The ${name.slice('x-amz-checksum-'.length).toUpperCase()} you specified did not match the calculated checksum.`,
        },
      };
  }
  return { body };
}

function computeChecksum(algorithm: string, body: Buffer): string | undefined {
  if (algorithm === 'sha256') return createHash('sha256').update(body).digest('base64');
  if (algorithm === 'sha1') return createHash('sha1').update(body).digest('base64');
  if (algorithm === 'crc32') {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(crc32(body) >>> 0);
    return b.toString('base64');
  }
  return undefined;
}

/** `<hex size>[;chunk-signature=…]\r\n<data>\r\n` … `0\r\n<trailer: value>\r\n\r\n` */
function decodeAwsChunked(raw: Buffer): { body: Buffer; trailers: Record<string, string> } | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', offset);
    if (lineEnd === -1) return undefined;
    const size = parseInt(raw.subarray(offset, lineEnd).toString().split(';')[0], 16);
    if (!Number.isFinite(size)) return undefined;
    offset = lineEnd + 2;
    if (size === 0) break;
    parts.push(raw.subarray(offset, offset + size));
    offset += size + 2;
  }
  const trailers: Record<string, string> = {};
  for (const line of raw.subarray(offset).toString().split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name.startsWith('x-amz-checksum-')) trailers[name] = line.slice(colon + 1).trim();
    }
  }
  return { body: Buffer.concat(parts), trailers };
}

function sendXml(res: http.ServerResponse, xml: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function sendError(
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  noBody = false,
  extra: Record<string, string> = {},
): void {
  if (noBody) {
    res.writeHead(status).end();
    return;
  }
  const fields = Object.entries(extra)
    .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
    .join('');
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message>${fields}<RequestId>${randomUUID()}</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
