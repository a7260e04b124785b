import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Header } from 'tar';
import { segmentationModel, writeModel } from './onnx-fixture';

export function tempDir(prefix = 'mlship-pkg-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface RawEntry {
  path: string;
  data?: Buffer;
  /** Tar type code: '0' file, '1' hard link, '2' symlink, '3' char device, '5' directory, '6' FIFO, 'x' pax header. */
  type?: string;
  linkpath?: string;
}

/** A tar stream built by hand, so tests can make archives no honest builder would. */
export function tarBytes(entries: RawEntry[], options: { end?: boolean; trailing?: Buffer } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const block = Buffer.alloc(512);
    new Header({
      path: e.path,
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: data.length,
      mtime: new Date(0),
      type: (e.type ?? '0') as never,
      linkpath: e.linkpath,
      uname: '',
      gname: '',
    }).encode(block);
    blocks.push(block, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (options.end !== false) blocks.push(Buffer.alloc(1024));
  if (options.trailing) blocks.push(options.trailing);
  return Buffer.concat(blocks);
}

/** Plain single-member gzip, as GNU tar or another tool would write it. */
export function gzipTar(entries: RawEntry[], options?: { end?: boolean; trailing?: Buffer }): Buffer {
  return zlib.gzipSync(tarBytes(entries, options));
}

/** The entries of a .tar.gz, in order (regular files only, as packages hold). */
export function readEntries(archive: string): RawEntry[] {
  const tar = zlib.gunzipSync(fs.readFileSync(archive));
  const out: RawEntry[] = [];
  for (let at = 0; at + 512 <= tar.length;) {
    const block = tar.subarray(at, at + 512);
    if (block.every((b) => b === 0)) break;
    const header = new Header(block);
    const size = header.size ?? 0;
    out.push({ path: header.path!, data: Buffer.from(tar.subarray(at + 512, at + 512 + size)) });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function writeArchive(dir: string, name: string, bytes: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** A workspace with a model, labels, preprocessing and reports, as a training job leaves them. */
export async function makeWorkspace(
  dir: string,
): Promise<{ model: string; labels: string; preprocessing: string; gateReport: string; benchmarkReport: string }> {
  fs.mkdirSync(path.join(dir, 'model'), { recursive: true });
  const model = path.join(dir, 'model', 'cellseg.onnx');
  await writeModel(model, segmentationModel());
  const labels = path.join(dir, 'model', 'classes.json');
  // The fixture's output has 3 channels: one class each.
  fs.writeFileSync(
    labels,
    JSON.stringify([
      { id: 0, name: 'background' },
      { id: 1, name: 'cell' },
      { id: 2, name: 'nucleus' },
    ]),
  );
  const preprocessing = path.join(dir, 'model', 'preprocessing.json');
  fs.writeFileSync(
    preprocessing,
    JSON.stringify({
      version: 1,
      color: 'rgb',
      resize: { width: 512, height: 512 },
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      layout: 'NCHW',
      dtype: 'float32',
    }),
  );
  // Reports as gate-metrics and benchmark-model write them: bound to the model file by its sha256.
  const bound = {
    task: 'segmentation',
    model: { path: model, sha256: crypto.createHash('sha256').update(fs.readFileSync(model)).digest('hex') },
  };
  const gateReport = path.join(dir, 'gate.json');
  fs.writeFileSync(gateReport, JSON.stringify({ passed: true, ...bound, metrics: { mAP: 0.612, dice: 0.871 } }));
  const benchmarkReport = path.join(dir, 'bench.json');
  fs.writeFileSync(benchmarkReport, JSON.stringify({ format: 'mlship-benchmark/1', ...bound, provider: 'cuda', p50Ms: 12.5, p95Ms: 14.1 }));
  return { model, labels, preprocessing, gateReport, benchmarkReport };
}

/** Every file under `dir`, relative, sorted. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}
