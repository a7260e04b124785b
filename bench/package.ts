/**
 * Packaging and verifying a large model: throughput against `sha256sum` over the same file, and peak memory.
 *
 *   node -r esbuild-register bench/package.ts
 *   MLSHIP_BENCH_PACKAGE_BYTES=500000000 MLSHIP_BENCH_COMPRESSIONS=fast node -r esbuild-register bench/package.ts
 *
 * Each measured phase runs in its own process so its peak RSS is its own.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPackage, generateSigningKeyPair, verifyPackage, type Compression } from '../shared/package';
import { writeModel, segmentationModel, type Big } from '../test/package/onnx-fixture';

const MODEL_BYTES = Number(process.env.MLSHIP_BENCH_PACKAGE_BYTES ?? 2_000_000_000);
const COMPRESSIONS = (process.env.MLSHIP_BENCH_COMPRESSIONS ?? 'fast,none').split(',') as Compression[];

interface PhaseResult {
  seconds: number;
  maxRssMb: number;
  archive?: string;
  archiveBytes?: number;
}

/** Weight-like float32 values (normal, sd 0.02) in a 16 MiB pool, repeated: LZ windows are 32 KiB, so repeats far apart do not help compression. */
function weights(bytes: number): Big {
  const pool = Buffer.alloc(16 << 20);
  for (let i = 0; i < pool.length / 4; i++) {
    const u = Math.random() || 1e-12;
    const v = Math.random();
    pool.writeFloatLE(0.02 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v), i * 4);
  }
  return {
    length: bytes,
    async fill(write) {
      for (let done = 0; done < bytes; done += pool.length) await write(pool.subarray(0, Math.min(pool.length, bytes - done)));
    },
  };
}

async function phase(): Promise<void> {
  const [, , , name, ...args] = process.argv;
  const started = process.hrtime.bigint();
  const result: PhaseResult = { seconds: 0, maxRssMb: 0 };
  if (name === 'build') {
    const [model, outDir, compression, keyFile] = args;
    const built = await buildPackage({
      name: 'bench',
      version: '1.0.0',
      models: [model],
      signingKey: fs.readFileSync(keyFile, 'utf8'),
      outputDir: outDir,
      compression: compression as Compression,
    });
    result.archive = built.archivePath;
    result.archiveBytes = built.size;
  } else if (name === 'verify') {
    const [archive, publicKeyFile] = args;
    await verifyPackage(archive, { publicKey: fs.readFileSync(publicKeyFile, 'utf8') });
  }
  result.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  result.maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify(result));
}

function runPhase(...args: string[]): PhaseResult {
  const child = spawnSync(process.execPath, ['-r', 'esbuild-register', __filename, '--phase', ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (child.status !== 0) throw new Error(`phase ${args[0]} failed:\n${child.stderr}`);
  return JSON.parse(child.stdout) as PhaseResult;
}

function timeSha256sum(file: string): number {
  const started = process.hrtime.bigint();
  execFileSync('sha256sum', [file], { stdio: ['ignore', 'ignore', 'inherit'] });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-bench-package-'));
  try {
    const model = path.join(dir, 'model.onnx');
    const bias = Buffer.alloc(4);
    await writeModel(
      model,
      segmentationModel({
        initializers: [
          { name: 'bias', dims: [1], raw: bias },
          { name: 'weights', dims: [Math.floor(MODEL_BYTES / 4)], raw: weights(MODEL_BYTES) },
        ],
      }),
    );
    const modelBytes = fs.statSync(model).size;
    const keys = generateSigningKeyPair();
    fs.writeFileSync(path.join(dir, 'key.pem'), keys.privateKeyPem);
    fs.writeFileSync(path.join(dir, 'key.pub.pem'), keys.publicKeyPem);

    timeSha256sum(model); // warm the page cache, as the phases below see it warm too
    const mbps = (seconds: number) => modelBytes / 1e6 / seconds;
    const baseline = runPhase('idle');

    // sha256sum runs right before each phase, so a busy machine slows both alike.
    const rows: string[][] = [];
    const measure = (label: string, run: () => PhaseResult, archiveBytes?: number): PhaseResult => {
      const sha = timeSha256sum(model);
      const result = run();
      const ratio = ((((archiveBytes ?? result.archiveBytes) as number) / modelBytes) * 100).toFixed(1) + ' %';
      rows.push([
        label,
        ratio,
        result.seconds.toFixed(2),
        mbps(result.seconds).toFixed(0),
        `${sha.toFixed(2)} s (${mbps(sha).toFixed(0)} MB/s)`,
        (sha / result.seconds).toFixed(2),
        result.maxRssMb.toFixed(0),
      ]);
      return result;
    };
    rows.push(['node + esbuild-register, idle', '-', '-', '-', '-', '-', baseline.maxRssMb.toFixed(0)]);
    for (const compression of COMPRESSIONS) {
      const out = path.join(dir, `out-${compression}`);
      const build = measure(`build, compression \`${compression}\``, () =>
        runPhase('build', model, out, compression, path.join(dir, 'key.pem')),
      );
      measure(
        `verify, compression \`${compression}\``,
        () => runPhase('verify', build.archive!, path.join(dir, 'key.pub.pem')),
        build.archiveBytes,
      );
      fs.rmSync(out, { recursive: true, force: true });
    }

    console.log(
      `### Package and verify a ${(modelBytes / 1e9).toFixed(2)} GB ONNX model (${os.availableParallelism()} cores, Node ${process.version})\n`,
    );
    console.log('| phase | archive / model | seconds | MB/s | sha256sum just before | vs sha256sum | peak RSS (MB) |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
    console.log('\nTargets: throughput >= 0.8x sha256sum, peak RSS < 200 MB. Build includes fsync of the archive.');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(process.argv[2] === '--phase' ? phase() : main()).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
