/**
 * Source of the hashing worker, run with `new Worker(source, { eval: true })`. It is plain JavaScript in a
 * string so it runs unchanged from TypeScript tests, esbuild-register and single-file ncc bundles, none of
 * which can hand a worker a module path that exists on disk.
 *
 * One pass per file: stream it through sha256 in 1 MiB blocks (a reused buffer, so memory does not depend on
 * file size), keep the first 64 KiB for the header readers and the last 64 bytes for JPEG's EOI, and walk the
 * PNG chunk list as the bytes go by to learn whether IEND is inside the file.
 */
export const PROBE_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');

const BLOCK = 1 << 20;
const HEAD = 64 * 1024;
const TAIL = 64;
const block = Buffer.allocUnsafe(BLOCK);

class PngWalker {
  constructor() { this.next = 8; this.header = Buffer.alloc(8); this.got = 0; this.status = null; this.end = 0; }
  feed(chunk, start) {
    while (this.status === null) {
      const rel = this.next + this.got - start;
      if (rel >= chunk.length) return;
      const take = Math.min(8 - this.got, chunk.length - rel);
      chunk.copy(this.header, this.got, rel, rel + take);
      this.got += take;
      if (this.got < 8) return;
      this.got = 0;
      const length = this.header.readUInt32BE(0);
      const type = this.header.toString('latin1', 4, 8);
      if (length > 0x7fffffff || !/^[A-Za-z]{4}$/.test(type)) { this.status = 'corrupt'; return; }
      this.next += 12 + length;
      if (type === 'IEND') { this.status = 'iend'; this.end = this.next; }
    }
  }
  result(size) {
    if (this.status === 'corrupt') return 'corrupt';
    return this.status === 'iend' && this.end <= size ? 'complete' : 'truncated';
  }
}

function probe(path, wantHead) {
  let fd;
  try {
    fd = fs.openSync(path, 'r');
  } catch (error) {
    return { error: { code: error.code || 'EIO', message: error.message } };
  }
  try {
    const hash = crypto.createHash('sha256');
    const tail = Buffer.alloc(TAIL);
    let tailLength = 0;
    let head = null;
    let png = null;
    let size = 0;
    for (;;) {
      const n = fs.readSync(fd, block, 0, BLOCK, null);
      if (n === 0) break;
      const chunk = block.subarray(0, n);
      hash.update(chunk);
      if (size === 0 && wantHead) {
        // An own ArrayBuffer (never Node's shared pool), so it can be transferred without a copy.
        head = new Uint8Array(Math.min(n, HEAD));
        head.set(chunk.subarray(0, head.length));
        if (n >= 8 && chunk.readUInt32BE(0) === 0x89504e47 && chunk.readUInt32BE(4) === 0x0d0a1a0a) png = new PngWalker();
      }
      if (png) png.feed(chunk, size);
      if (n >= TAIL) { chunk.copy(tail, 0, n - TAIL, n); tailLength = TAIL; }
      else {
        const keep = Math.min(tailLength, TAIL - n);
        tail.copy(tail, 0, tailLength - keep, tailLength);
        chunk.copy(tail, keep, 0, n);
        tailLength = keep + n;
      }
      size += n;
    }
    const result = { size, sha256: hash.digest('hex') };
    if (wantHead) {
      result.head = head || new Uint8Array(0);
      result.tail = new Uint8Array(tail.subarray(0, tailLength));
      if (png) result.png = png.result(size);
    }
    return result;
  } catch (error) {
    return { error: { code: error.code || 'EIO', message: error.message } };
  } finally {
    fs.closeSync(fd);
  }
}

parentPort.on('message', (job) => {
  const result = probe(job.path, job.head);
  result.id = job.id;
  const transfer = [];
  if (result.head) transfer.push(result.head.buffer);
  parentPort.postMessage(result, transfer);
});
`;
