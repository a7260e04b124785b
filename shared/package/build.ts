import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../core/errors';
import { readOnnxModelInfo } from '../onnx/model-info';
import type { Tolerance } from '../onnx/parity';
import { validatePreprocessSpec } from '../preprocess/spec';
import { chunkHash } from './background-hash';
import { ParallelGzipWriter, type Compression } from './block-gzip';
import { stableJson } from './stable-json';
import {
  checkDataFingerprints,
  checkDetectedLabels,
  checkLabelsAgainstOutputs,
  checkReportModels,
  checkSpecAgainstInput,
  checkSpecAgainstMetadata,
  checkTasks,
  type CheckedModel,
  type Mismatch,
  type MismatchCheck,
  settleMismatches,
  type SourcedLabels,
  type SourcedReport,
  type SourcedSpec,
  taskOf,
} from './cross-checks';
import { buildGoldenVectors, GOLDEN_INDEX } from './golden';
import {
  checkArchivePath,
  checkName,
  checkPattern,
  checkVersion,
  COMPUTE_CAPABILITY,
  DOTTED_VERSION,
  listFiles,
  readJsonObject,
  readLabels,
  readReport,
  readTensorRtSidecar,
  slug,
  TENSORRT_SIDECAR,
} from './contents';
import {
  MANIFEST_FILE,
  packageModel,
  SIGNATURE_FILE,
  type FileRole,
  type PackageFile,
  type PackageManifest,
  type PackageModel,
  type TensorRtCache,
  type WorkflowRun,
} from './manifest';
import { sha256Hex } from '../core/sha256';
import { keyIdOf, loadPrivateKey, signManifest } from './signing';
import { BLOCK, fileHeader, padding } from './tar-format';
import { sweepStaleFiles } from '../core/stale-files';

export interface BuildPackageOptions {
  name: string;
  /** Semantic version 2.0.0. */
  version: string;
  /** ONNX model files; each is packaged as models/<file name>, with its external data files beside it. */
  models: string[];
  /** Preprocessing spec (JSON object), packaged as preprocessing.json. */
  preprocessing?: string;
  /** Class map: .txt (one name per line) or .json; packaged as labels.txt / labels.json. */
  labels?: string;
  releaseNotes?: string;
  compatibility?: {
    deviceModels?: string[];
    minDriverVersion?: string;
    minCudaVersion?: string;
    minOnnxRuntimeVersion?: string;
    minComputeCapability?: string;
    minGpuMemoryMb?: number;
  };
  provenance?: {
    gitCommit?: string;
    repository?: string;
    workflowRun?: WorkflowRun;
    trainingJob?: string;
    dataFingerprint?: string;
    /** JSON report files, embedded in the manifest. */
    gateReport?: string;
    benchmarkReport?: string;
  };
  /** Golden test vectors from sample images (needs preprocessing): see golden.ts. */
  golden?: {
    imagesDir: string;
    /** How the input is named in messages (`golden-images`). */
    label?: string;
    count: number;
    tolerance: Tolerance;
    /** Scratch folder for the vector files before they are packaged. */
    workDir: string;
  };
  /** Cross-checks (cross-checks.ts) allowed to mismatch; what they found is recorded in the manifest. */
  allowMismatch?: ReadonlySet<MismatchCheck>;
  /** How the allow-mismatch input is named in messages. */
  allowMismatchLabel?: string;
  /** TensorRT engine cache folders (each with a tensorrt-cache.json), or engine files with a `<file>.tensorrt-cache.json` beside them. */
  tensorrtCaches?: string[];
  /** Ed25519 private key: PEM (PKCS#8), base64 of the PEM, or a KeyObject. */
  signingKey: string | crypto.KeyObject;
  outputDir: string;
  /** Default `none`: see block-gzip.ts for the trade-off. */
  compression?: Compression;
  /** Called as bytes of content are packaged. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface BuiltPackage {
  archivePath: string;
  sha256: string;
  size: number;
  manifest: PackageManifest;
  /** SHA-256 of manifest.json's bytes: what the signature covers. */
  manifestDigest: string;
  keyId: string;
}

interface PlannedFile {
  path: string;
  source: string;
  role: FileRole;
  size: number;
  mtimeMs: number;
}

const READ_CHUNK = 1 << 20;
const SYNC_EVERY = 128 << 20;

/**
 * Builds `<name>-<version>.tar.gz`: every file streamed once (hashed while it is packed), entries sorted
 * with fixed metadata, manifest.json and manifest.sig last. Written to a temporary name and renamed, so
 * the archive either exists whole or not at all.
 */
export async function buildPackage(options: BuildPackageOptions): Promise<BuiltPackage> {
  checkName(options.name);
  checkVersion(options.version);
  const privateKey = loadPrivateKey(options.signingKey);
  if (options.models.length === 0) throw new StepError('No model given.', { hint: 'List at least one .onnx file in "models".' });

  const files = new Map<string, PlannedFile>();
  const add = async (archivePath: string, source: string, role: FileRole): Promise<void> => {
    checkArchivePath(archivePath, source);
    const existing = files.get(archivePath);
    if (existing) {
      if (path.resolve(existing.source) === path.resolve(source)) return;
      throw new StepError(`Two files would be packaged as "${archivePath}": ${existing.source} and ${source}.`, {
        hint: 'Rename one of them.',
      });
    }
    let stat;
    try {
      stat = await fs.stat(source);
    } catch (error) {
      throw new StepError(`Cannot read ${source}: ${(error as Error).message}`, {
        hint: 'Check the path; it is relative to the workspace.',
        cause: error,
      });
    }
    if (!stat.isFile())
      throw new StepError(`${source} is not a regular file.`, { hint: 'Pass files, not folders, for models, labels and preprocessing.' });
    try {
      fileHeader(archivePath, stat.size);
    } catch (error) {
      throw new StepError(`Cannot package ${source} as "${archivePath}": ${(error as Error).message}.`, {
        hint: 'Shorten the file name (at most 100 bytes) or split the file.',
      });
    }
    files.set(archivePath, { path: archivePath, source, role, size: stat.size, mtimeMs: stat.mtimeMs });
  };

  const models: PackageModel[] = [];
  const checked: CheckedModel[] = [];
  for (const modelFile of options.models) {
    const archivePath = `models/${path.basename(modelFile)}`;
    const previous = files.get(archivePath);
    if (previous && path.resolve(previous.source) === path.resolve(modelFile)) {
      throw new StepError(`The model ${modelFile} is listed twice.`, { hint: 'List each model once in "models".' });
    }
    await add(archivePath, modelFile, 'model');
    const info = readOnnxModelInfo(modelFile);
    const externalData: string[] = [];
    for (const location of info.externalData) {
      const target = `models/${location}`;
      if (path.isAbsolute(location) || location.split(/[\\/]/).includes('..')) {
        throw new StepError(`The model ${modelFile} keeps weights in "${location}", outside its own folder.`, {
          hint: 'Save the model with its external data files in the model folder (onnx.save(..., location="weights.bin")).',
        });
      }
      await add(target, path.resolve(path.dirname(modelFile), location), 'external-data');
      externalData.push(target);
    }
    models.push(packageModel(archivePath, info, externalData));
    checked.push({ archivePath, source: modelFile, info });
  }

  let preprocessing: string | null = null;
  let spec: SourcedSpec | undefined;
  if (options.preprocessing) {
    const value = await readJsonObject(options.preprocessing, 'preprocessing spec');
    preprocessing = 'preprocessing.json';
    spec = { spec: validatePreprocessSpec(value, options.preprocessing), source: `the preprocessing spec ${options.preprocessing}` };
    await add(preprocessing, options.preprocessing, 'preprocessing');
  }

  let labels: PackageManifest['labels'] = null;
  let sourcedLabels: SourcedLabels | undefined;
  if (options.labels) {
    const { ids, ...parsed } = await readLabels(options.labels);
    labels = { path: `labels.${parsed.format}`, ...parsed };
    sourcedLabels = { classes: parsed.classes, ids, source: `the labels file ${options.labels}` };
    await add(labels.path, options.labels, 'labels');
  }

  const p = options.provenance ?? {};
  const gateReport = await readReport(p.gateReport, 'gate report');
  const benchmarkReport = await readReport(p.benchmarkReport, 'benchmark report');
  const reports: SourcedReport[] = [];
  if (gateReport) reports.push({ kind: 'gate report', file: p.gateReport!, value: gateReport });
  if (benchmarkReport) reports.push({ kind: 'benchmark report', file: p.benchmarkReport!, value: benchmarkReport });

  // Cross-checks that need only the files' contents; the report-to-model binding is checked once the models are hashed.
  const mismatches: Mismatch[] = [];
  const task = taskOf(checked, reports);
  for (const model of checked) {
    if (spec) mismatches.push(...checkSpecAgainstMetadata(model, spec), ...checkSpecAgainstInput(model, spec));
    if (sourcedLabels) mismatches.push(...checkLabelsAgainstOutputs(model, sourcedLabels, task));
  }
  mismatches.push(...checkTasks(checked, reports), ...checkDataFingerprints(p.dataFingerprint || undefined, checked, reports));
  const allowed = options.allowMismatch ?? new Set<MismatchCheck>();
  const allowLabel = options.allowMismatchLabel ?? 'allowMismatch';
  settleMismatches(mismatches, allowed, allowLabel);

  let golden: PackageManifest['golden'];
  if (options.golden) {
    const g = options.golden;
    if (!spec || !preprocessing)
      throw new StepError(`Golden vectors (${g.label ?? 'golden images'}) need the preprocessing spec.`, {
        hint: 'Give "preprocessing": the vectors are the tensors it makes of the sample images.',
      });
    const measuredAtol = referenceMaxAbs(benchmarkReport);
    const vectors = await buildGoldenVectors({
      models: checked,
      spec: spec.spec,
      specArchivePath: preprocessing,
      imagesDir: g.imagesDir,
      imagesLabel: g.label ?? 'golden images',
      count: g.count,
      tolerance: g.tolerance,
      measuredAtol,
      workDir: g.workDir,
    });
    for (const f of vectors.files) await add(f.archivePath, f.source, 'golden');
    golden = { index: GOLDEN_INDEX, cases: vectors.index.cases.length };
    if (sourcedLabels && task === 'detection') {
      for (const c of vectors.outputs) {
        const model = checked.find((m) => m.archivePath === c.model)!;
        const labelsOutput = Object.keys(c.tensors).find((n) => /^(labels|classes|class_ids)$/i.test(n));
        if (labelsOutput)
          mismatches.push(
            ...checkDetectedLabels(
              model,
              sourcedLabels,
              labelsOutput,
              Array.from(c.tensors[labelsOutput].data as ArrayLike<number | bigint>, Number),
              c.name,
            ),
          );
      }
      settleMismatches(mismatches, allowed, allowLabel);
    }
  }

  const tensorrtCaches: TensorRtCache[] = [];
  for (const item of options.tensorrtCaches ?? []) tensorrtCaches.push(await planTensorRtCache(item, models, add));
  tensorrtCaches.sort((a, b) => (a.path < b.path ? -1 : 1));
  const clash = tensorrtCaches.find((t, i) => i > 0 && tensorrtCaches[i - 1].path === t.path);
  if (clash)
    throw new StepError(`Two TensorRT caches are for the same model and hardware (${clash.path}).`, {
      hint: 'Keep one cache per model, GPU model, compute capability and TensorRT version.',
    });

  const c = options.compatibility ?? {};
  const gitCommit = p.gitCommit ? p.gitCommit.toLowerCase() : null;
  if (gitCommit !== null && !/^[0-9a-f]{7,64}$/.test(gitCommit))
    throw new StepError(`Git commit "${p.gitCommit}" is not a commit hash.`, { hint: 'Pass the full hex SHA (git rev-parse HEAD).' });
  const manifestBase = {
    format: 'mlship-device-package' as const,
    schemaVersion: 1 as const,
    name: options.name,
    version: options.version,
    releaseNotes: options.releaseNotes ?? '',
    models,
    preprocessing,
    labels,
    compatibility: {
      deviceModels: [...(c.deviceModels ?? [])],
      minDriverVersion: checkPattern(c.minDriverVersion, DOTTED_VERSION, 'Minimum driver version', '535.104.05'),
      minCudaVersion: checkPattern(c.minCudaVersion, DOTTED_VERSION, 'CUDA version', '12.2'),
      minOnnxRuntimeVersion: checkPattern(c.minOnnxRuntimeVersion, DOTTED_VERSION, 'ONNX Runtime version', '1.17.0'),
      minComputeCapability: checkPattern(c.minComputeCapability, COMPUTE_CAPABILITY, 'Compute capability', '7.5'),
      minGpuMemoryMb: c.minGpuMemoryMb ?? null,
    },
    tensorrtCaches,
    provenance: {
      gitCommit,
      repository: p.repository ?? null,
      workflowRun: p.workflowRun ?? null,
      trainingJob: p.trainingJob || null,
      dataFingerprint: p.dataFingerprint || null,
      gateReport,
      benchmarkReport,
    },
  };

  const planned = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  await fs.mkdir(options.outputDir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new StepError(
      `Cannot write the package into ${options.outputDir}: ${error.code === 'EEXIST' || error.code === 'ENOTDIR' ? 'it (or a folder above it) is a file, not a folder' : (error.code ?? error.message)}.`,
      { hint: 'Give an output-dir that is a folder (it is created when missing).' },
    );
  });
  const archivePath = path.join(options.outputDir, `${options.name}-${options.version}.tar.gz`);
  // Partial archives of killed builds (up to the size of the package each) go first.
  await sweepStaleFiles(options.outputDir, (name) => name.startsWith('.') && name.endsWith('.partial'));
  const temporary = path.join(
    options.outputDir,
    `.${path.basename(archivePath)}.${process.pid}-${crypto.randomBytes(4).toString('hex')}.partial`,
  );
  const out = await fs.open(temporary, 'wx');
  const total = planned.reduce((sum, f) => sum + f.size, 0);
  const archiveHash = chunkHash(total);
  let archiveSize = 0;
  // Flushing as we go lets the disk work while we compress; one fsync at the end would wait for all of it.
  let syncing: Promise<void> = Promise.resolve();
  let unsynced = 0;
  const writer = new ParallelGzipWriter(async (member) => {
    await archiveHash.update(...member);
    const length = member[0].length + member[1].length;
    archiveSize += length;
    await out.writev(member);
    unsynced += length;
    if (unsynced >= SYNC_EVERY) {
      await syncing;
      syncing = out.datasync();
      syncing.catch(() => undefined); // awaited (and thrown) at the next flush or at the end
      unsynced = 0;
    }
  }, options.compression ?? 'none');

  try {
    let done = 0;
    const packaged: PackageFile[] = [];
    for (const file of planned) {
      await writer.write(fileHeader(file.path, file.size));
      const hash = crypto.createHash('sha256');
      let read = 0;
      for await (const chunk of createReadStream(file.source, { highWaterMark: READ_CHUNK, end: file.size })) {
        options.signal?.throwIfAborted();
        const bytes = chunk as Buffer;
        read += bytes.length;
        if (read > file.size) break;
        hash.update(bytes);
        await writer.write(bytes);
        done += bytes.length;
        options.onProgress?.(done, total);
      }
      const after = await fs.stat(file.source);
      if (read !== file.size || after.size !== file.size || after.mtimeMs !== file.mtimeMs) {
        throw new StepError(`${file.source} changed while it was being packaged.`, {
          hint: 'Package files that no other job is writing; run the step again.',
        });
      }
      await writer.write(Buffer.alloc(padding(file.size)));
      packaged.push({ path: file.path, size: file.size, sha256: hash.digest('hex'), role: file.role });
    }

    const modelHashes = packaged.filter((f) => f.role === 'model').map((f) => ({ path: f.path, sha256: f.sha256 }));
    mismatches.push(...checkReportModels(reports, modelHashes));
    const recorded = settleMismatches(mismatches, allowed, allowLabel);
    // Optional fields appear only when used, so a package without them is byte-identical to one built before they existed.
    const manifest: PackageManifest = {
      ...manifestBase,
      files: packaged,
      ...(golden ? { golden } : {}),
      ...(recorded.length ? { allowedMismatches: recorded } : {}),
    };
    const manifestBytes = Buffer.from(stableJson(manifest));
    const signatureBytes = signManifest(manifestBytes, privateKey);
    for (const [name, bytes] of [
      [MANIFEST_FILE, manifestBytes],
      [SIGNATURE_FILE, signatureBytes],
    ] as const) {
      await writer.write(fileHeader(name, bytes.length));
      await writer.write(bytes);
      await writer.write(Buffer.alloc(padding(bytes.length)));
    }
    await writer.write(Buffer.alloc(2 * BLOCK));
    await writer.end();
    await syncing;
    await out.datasync();
    await out.close();
    const sha256 = await archiveHash.digest();
    await fs.rename(temporary, archivePath);
    return { archivePath, sha256, size: archiveSize, manifest, manifestDigest: sha256Hex(manifestBytes), keyId: keyIdOf(privateKey) };
  } catch (error) {
    await syncing.catch(() => undefined);
    await archiveHash.close();
    await out.close().catch(() => undefined);
    await fs.rm(temporary, { force: true });
    throw error;
  }
}

/** Largest device-vs-reference difference per output a benchmark report measured, to widen the golden tolerances. */
function referenceMaxAbs(report: Record<string, unknown> | null): Record<string, number> | undefined {
  const outputs = (report?.reference as { outputs?: Record<string, { maxAbs?: unknown }> } | undefined)?.outputs;
  if (!outputs) return undefined;
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(outputs)) if (typeof v.maxAbs === 'number' && Number.isFinite(v.maxAbs)) out[name] = v.maxAbs;
  return out;
}

async function planTensorRtCache(
  item: string,
  models: PackageModel[],
  add: (archivePath: string, source: string, role: FileRole) => Promise<void>,
): Promise<TensorRtCache> {
  let stat;
  try {
    stat = await fs.stat(item);
  } catch (error) {
    throw new StepError(`Cannot read the TensorRT cache ${item}: ${(error as Error).message}`, {
      hint: 'List engine cache folders (or engine files) that exist.',
      cause: error,
    });
  }
  const isDir = stat.isDirectory();
  const sidecarPath = isDir ? path.join(item, TENSORRT_SIDECAR) : `${item}.${TENSORRT_SIDECAR}`;
  const sidecar = await readTensorRtSidecar(sidecarPath).catch((error: unknown) => {
    if ((error as { cause?: { code?: string } }).cause?.code === 'ENOENT') {
      throw new StepError(
        `The TensorRT cache ${item} has no ${path.basename(sidecarPath)} saying which GPU and TensorRT version it was built for.`,
        {
          hint: `Write ${sidecarPath} with {"gpuModel": "...", "computeCapability": "8.6", "tensorrtVersion": "10.3.0"} on the runner that built the engines.`,
        },
      );
    }
    throw error;
  });

  let model: PackageModel | undefined;
  if (sidecar.model !== undefined) {
    model = models.find((m) => path.posix.basename(m.path) === sidecar.model);
    if (!model)
      throw new StepError(
        `The TensorRT cache ${item} is for model "${sidecar.model}", which is not among the packaged models (${models.map((m) => path.posix.basename(m.path)).join(', ')}).`,
        { hint: 'Fix "model" in its sidecar, or package that model.', file: sidecarPath },
      );
  } else if (models.length === 1) model = models[0];
  else
    throw new StepError(`The TensorRT cache ${item} does not say which of the ${models.length} models it was built from.`, {
      hint: 'Add "model": "<model file name>" to its sidecar.',
      file: sidecarPath,
    });

  const stem = path.posix.basename(model.path, '.onnx');
  const dir = `tensorrt/${slug(stem)}/${slug(sidecar.gpuModel)}_sm${sidecar.computeCapability.replace('.', '')}_trt${sidecar.tensorrtVersion}`;
  const sources = isDir
    ? await listFiles(item, (rel) => rel === TENSORRT_SIDECAR)
    : [{ relative: path.basename(item), absolute: item, size: stat.size }];
  if (sources.length === 0)
    throw new StepError(`The TensorRT cache folder ${item} holds no engine files.`, {
      hint: 'Run the benchmark with the tensorrt provider and its engine cache enabled first.',
    });
  const files: string[] = [];
  for (const source of sources) {
    const target = `${dir}/${source.relative}`;
    await add(target, source.absolute, 'tensorrt-cache');
    files.push(target);
  }
  return {
    path: dir,
    model: model.path,
    gpuModel: sidecar.gpuModel,
    computeCapability: sidecar.computeCapability,
    tensorrtVersion: sidecar.tensorrtVersion,
    onnxruntimeVersion: sidecar.onnxruntimeVersion ?? null,
    precision: sidecar.precision ?? null,
    files,
  };
}
