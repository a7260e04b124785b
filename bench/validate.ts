/**
 * Benchmark of validate-data on a generated COCO dataset of 1024×1024 PNGs (~15 boxes each):
 *   node -r esbuild-register bench/validate.ts [--images 20000] [--size 1024] [--annotations-mb 200] [--threads 0] [--keep]
 * (or MLSHIP_BENCH_IMAGES / MLSHIP_BENCH_SIZE / MLSHIP_BENCH_ANNOTATIONS_MB). A small --size (e.g. 64) makes a
 * quick run that isolates the per-image and per-annotation costs from the image bytes. Prints a markdown table:
 *   - header checks + hashing (validate-data's probe pass) on the full set and on a quarter of it, with images/s,
 *     MB/s and the peak RSS of a fresh process each, to show memory does not grow with the image bytes;
 *   - sha256sum over the same image files, one process and one per core, as the disk + sha256 reference;
 *   - parsing and checking one large COCO annotation file (default 200 MB).
 * Data goes under os.tmpdir() and is removed at the end (unless --keep).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { Findings } from '../shared/validate/checks';
import { loadCoco } from '../shared/validate/formats/coco';
import { validateDataset } from '../shared/validate/validate';

function arg(name: string, env: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i !== -1 ? process.argv[i + 1] : process.env[env];
  return raw === undefined ? fallback : Number(raw);
}

const SIZE = arg('size', 'MLSHIP_BENCH_SIZE', 1024);
const BOXES = 15;
/** Box sides up to 208 px on a 1024 px image, scaled with --size. */
const MAX_BOX = Math.round((SIZE * 200) / 1024);
const CATEGORIES = 10;
const DISTINCT = 8;

/** Deterministic pseudo-random numbers, so every run generates the same dataset. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function pngChunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A few distinct grey 1024×1024 PNGs (smooth texture plus noise, ~300 KB); each file gets its own tEXt chunk. */
function basePngs(): { head: Buffer; rest: Buffer }[] {
  const out: { head: Buffer; rest: Buffer }[] = [];
  for (let k = 0; k < DISTINCT; k++) {
    const rnd = lcg(k + 1);
    const png = new PNG({ width: SIZE, height: SIZE });
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const v = Math.floor(120 + 70 * Math.sin(x / (40 + k)) * Math.cos(y / (60 + k)) + rnd() * 4);
        const i = (y * SIZE + x) * 4;
        png.data[i] = png.data[i + 1] = png.data[i + 2] = v;
        png.data[i + 3] = 255;
      }
    }
    const encoded = PNG.sync.write(png, { colorType: 0 });
    // Signature (8) + IHDR chunk (25): the tEXt chunk goes right after.
    out.push({ head: encoded.subarray(0, 33), rest: encoded.subarray(33) });
  }
  return out;
}

function generate(dir: string, images: number): { bytes: number; files: string[] } {
  const imagesDir = path.join(dir, 'images');
  fs.mkdirSync(imagesDir, { recursive: true });
  const bases = basePngs();
  const rnd = lcg(42);
  let bytes = 0;
  const files: string[] = [];
  const docs = { full: emptyDoc(), quarter: emptyDoc() };
  let annId = 1;
  for (let i = 0; i < images; i++) {
    const name = `img_${String(i).padStart(6, '0')}.png`;
    const base = bases[i % DISTINCT];
    const text = pngChunk('tEXt', Buffer.from(`mlship-bench\0image ${i}`, 'latin1'));
    const file = path.join(imagesDir, name);
    const fd = fs.openSync(file, 'w');
    fs.writevSync(fd, [base.head, text, base.rest]);
    fs.closeSync(fd);
    bytes += base.head.length + text.length + base.rest.length;
    files.push(file);
    const image = { id: i + 1, file_name: name, width: SIZE, height: SIZE };
    const annotations = [];
    for (let b = 0; b < BOXES; b++) {
      const w = 8 + Math.floor(rnd() * MAX_BOX);
      const h = 8 + Math.floor(rnd() * MAX_BOX);
      const x = Math.floor(rnd() * (SIZE - w));
      const y = Math.floor(rnd() * (SIZE - h));
      annotations.push({
        id: annId++,
        image_id: i + 1,
        category_id: 1 + ((i + b) % CATEGORIES),
        bbox: [x, y, w, h],
        area: w * h,
        iscrowd: 0,
      });
    }
    docs.full.images.push(image);
    docs.full.annotations.push(...annotations);
    if (i < images / 4) {
      docs.quarter.images.push(image);
      docs.quarter.annotations.push(...annotations);
    }
  }
  fs.writeFileSync(path.join(dir, 'full.json'), JSON.stringify(docs.full));
  fs.writeFileSync(path.join(dir, 'quarter.json'), JSON.stringify(docs.quarter));
  return { bytes, files };
}

function emptyDoc() {
  return {
    images: [] as object[],
    annotations: [] as object[],
    categories: Array.from({ length: CATEGORIES }, (_, c) => ({ id: c + 1, name: `class_${c + 1}` })),
  };
}

/** A COCO file of about `mb` MB: polygon instance segmentation, which is what makes real files this large. */
function generateLargeAnnotations(file: string, mb: number): number {
  const fd = fs.openSync(file, 'w');
  const rnd = lcg(7);
  const images = Math.max(1000, Math.round(mb * 300));
  let written = 0;
  const put = (s: string) => (written += fs.writeSync(fd, s));
  put('{"categories":' + JSON.stringify(emptyDoc().categories) + ',"images":[');
  for (let i = 0; i < images; i++)
    put((i ? ',' : '') + JSON.stringify({ id: i + 1, file_name: `img_${String(i).padStart(6, '0')}.png`, width: 1024, height: 1024 }));
  put('],"annotations":[');
  let id = 1;
  while (written < mb * 1e6) {
    const chunk: string[] = [];
    for (let k = 0; k < 1000; k++, id++) {
      const cx = 100 + rnd() * 800;
      const cy = 100 + rnd() * 800;
      const poly: number[] = [];
      for (let p = 0; p < 24; p++) poly.push(+(cx + 60 * Math.cos(p / 3.8)).toFixed(2), +(cy + 60 * Math.sin(p / 3.8)).toFixed(2));
      chunk.push(
        JSON.stringify({
          id,
          image_id: 1 + (id % images),
          category_id: 1 + (id % CATEGORIES),
          bbox: [cx - 60, cy - 60, 120, 120],
          area: 11000,
          iscrowd: 0,
          segmentation: [poly],
        }),
      );
    }
    put((id > 1001 ? ',' : '') + chunk.join(','));
  }
  put(']}');
  fs.closeSync(fd);
  return id - 1;
}

interface Measured {
  seconds: number;
  probeSeconds: number;
  images: number;
  bytes: number;
  peakRssMb: number;
  errors: number;
  warnings: number;
  threads: number;
  progressReports?: number;
  annotations?: number;
}

/** Child process: one measurement in a fresh process, so maxRSS is this run's alone. */
async function measure(mode: string, dir: string, file: string, threads: number): Promise<void> {
  const started = performance.now();
  let probeStart = 0;
  let probeEnd = 0;
  let progressReports = 0;
  if (mode === 'validate') {
    const { report } = await validateDataset(
      {
        format: 'coco',
        splits: { train: file },
        imagesRoot: path.join(dir, 'images'),
        classes: [],
        minBoxSize: 1,
        maxImbalance: 100,
        maxUnlabeledShare: 0.5,
        maxEmptyMaskShare: 0.5,
        crossSplitSeverity: 'error',
        drift: { maxPsi: 0.2, chiSquareAlpha: 0.001 },
        sampleSize: 200,
        fullDecode: false,
        threads,
        failOn: 'error',
        workspace: dir,
      },
      {
        // The probe pass starts when the annotation walk ends, so worker start-up is inside the measurement.
        progress: (r) => {
          if (r.label.endsWith(' annotations') && r.done === r.total) probeStart = performance.now();
          if (r.label === 'hash and check headers' && r.done === r.total) probeEnd = performance.now();
        },
      },
    );
    const result: Measured = {
      seconds: (performance.now() - started) / 1000,
      probeSeconds: (probeEnd - probeStart) / 1000,
      images: report.splits.train.images,
      bytes: report.fingerprint.bytes,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      errors: report.errors,
      warnings: report.warnings,
      threads: threads || os.availableParallelism(),
    };
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const findings = new Findings();
  const { loaded } = await loadCoco('train', file, {
    findings,
    options: { classes: [], minBoxSize: 1, maxEmptyMaskShare: 0.5 },
    display: (f) => path.basename(f),
    progress: () => progressReports++,
  });
  const result: Measured = {
    seconds: (performance.now() - started) / 1000,
    probeSeconds: 0,
    images: loaded.images.length,
    bytes: fs.statSync(file).size,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    errors: findings.results().reduce((s, c) => s + (c.severity === 'error' ? c.count : 0), 0),
    warnings: 0,
    threads: 1,
    progressReports,
    annotations: loaded.stats.annotations,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

function child(mode: string, dir: string, file: string, threads: number): Measured {
  const run = spawnSync(process.execPath, ['-r', 'esbuild-register', __filename, '--measure', mode, dir, file, String(threads)], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (run.status !== 0) throw new Error(`measurement failed:\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() as string) as Measured;
}

function timeCommand(script: string): number {
  const started = performance.now();
  execFileSync('bash', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const images = arg('images', 'MLSHIP_BENCH_IMAGES', 20000);
  const annotationsMb = arg('annotations-mb', 'MLSHIP_BENCH_ANNOTATIONS_MB', 200);
  const threads = arg('threads', 'MLSHIP_BENCH_THREADS', 0);
  const keep = process.argv.includes('--keep');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-validate-'));
  const mb = (n: number) => n / 1048576;
  try {
    let t = performance.now();
    const { bytes, files } = generate(dir, images);
    console.error(
      `generated ${images} PNGs (${mb(bytes).toFixed(0)} MiB) in ${((performance.now() - t) / 1000).toFixed(1)} s under ${dir}`,
    );
    const list = path.join(dir, 'files.txt');
    fs.writeFileSync(list, files.join('\0'));

    // Warm the page cache equally for everyone, then measure.
    timeCommand(`xargs -0 cat < '${list}' > /dev/null`);
    const quarter = child('validate', dir, path.join(dir, 'quarter.json'), threads);
    const full = child('validate', dir, path.join(dir, 'full.json'), threads);
    const cores = os.availableParallelism();
    const sumOne = timeCommand(`xargs -0 sha256sum < '${list}' > /dev/null`);
    const sumAll = timeCommand(`xargs -0 -n 256 -P ${cores} sha256sum < '${list}' > /dev/null`);

    let large: Measured | undefined;
    if (annotationsMb > 0) {
      t = performance.now();
      const file = path.join(dir, 'large.json');
      const count = generateLargeAnnotations(file, annotationsMb);
      console.error(
        `generated ${(fs.statSync(file).size / 1e6).toFixed(0)} MB COCO file with ${count} polygon annotations in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
      large = child('annotations', dir, file, 1);
    }

    const row = (name: string, n: number, b: number, s: number, rss?: number) =>
      `| ${name} | ${n.toLocaleString('en-US')} | ${mb(b).toFixed(0)} MiB | ${s.toFixed(2)} s | ${Math.round(n / s).toLocaleString('en-US')} | ${Math.round(mb(b) / s)} | ${rss ? `${Math.round(rss)} MiB` : '–'} |`;
    const lines = [
      `validate-data benchmark: ${images.toLocaleString('en-US')} × ${SIZE}×${SIZE} PNG, ${BOXES} boxes each; ${os.cpus()[0].model}, ${cores} cores, Node ${process.version}`,
      '',
      '| run | images | data | time | images/s | MiB/s | peak RSS |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      row(
        `header checks + sha256, ${quarter.threads} threads (¼ set)`,
        quarter.images,
        quarter.bytes,
        quarter.probeSeconds,
        quarter.peakRssMb,
      ),
      row(`header checks + sha256, ${full.threads} threads`, full.images, full.bytes, full.probeSeconds, full.peakRssMb),
      row(
        'whole validate-data run (parse, checks, 200-image brightness sample, fingerprint)',
        full.images,
        full.bytes,
        full.seconds,
        full.peakRssMb,
      ),
      row('sha256sum, 1 process', images, bytes, sumOne),
      row(`sha256sum, ${cores} processes (xargs -P)`, images, bytes, sumAll),
      '',
      `Hashing + header checks reach ${Math.round((100 * mb(full.bytes)) / full.probeSeconds / (mb(bytes) / sumOne))}% of single-process sha256sum throughput and ${Math.round((100 * mb(full.bytes)) / full.probeSeconds / (mb(bytes) / sumAll))}% of ${cores}-process sha256sum (target ≥ 80% of sha256sum). Findings on the generated set: ${full.errors} errors, ${full.warnings} warnings.`,
    ];
    if (large) {
      lines.push(
        '',
        '| annotation file | size | annotations | parse + checks | peak RSS | progress reports |',
        '| --- | --- | --- | --- | --- | --- |',
        `| COCO polygons | ${(large.bytes / 1e6).toFixed(0)} MB | ${(large.annotations ?? 0).toLocaleString('en-US')} | ${large.seconds.toFixed(1)} s | ${Math.round(large.peakRssMb)} MiB | ${large.progressReports} |`,
      );
    }
    console.log(lines.join('\n'));
  } finally {
    if (keep) console.error(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

const measureAt = process.argv.indexOf('--measure');
if (measureAt !== -1) {
  const [mode, dir, file, threads] = process.argv.slice(measureAt + 1);
  measure(mode, dir, file, Number(threads)).catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
