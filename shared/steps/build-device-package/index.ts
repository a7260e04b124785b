import * as path from 'node:path';
import { defineStep } from '../../core/step';
import { COMPRESSIONS, buildPackage, type BuiltPackage } from '../../package';
import { parseAllowedMismatches } from '../../package/cross-checks';
import { privateKeyInput } from '../../package/key-inputs';
import { formatBytes, type Summary } from '../../core/summary';

export const buildDevicePackageStep = defineStep({
  name: 'build-device-package',
  title: 'Build device package',
  description:
    'Packs ONNX models, preprocessing spec, class map and optional TensorRT engine caches into a signed, reproducible <name>-<version>.tar.gz whose manifest records every file hash, the model signatures, device compatibility and provenance.',
  azure: { id: '0c14e229-ab1c-4d0c-b9f4-2a81ddaf7fa3', major: 1, minor: 0, patch: 0, category: 'Deploy' },
  branding: { icon: 'package', color: 'green' },
  inputs: {
    models: {
      type: 'list',
      required: true,
      description: 'ONNX model files, one per line (relative to the workspace). External weight files are packaged with them.',
    },
    name: {
      type: 'string',
      required: true,
      description: 'Package name (letters, digits, ".", "_", "-"); the archive is <name>-<version>.tar.gz.',
    },
    version: { type: 'string', required: true, description: 'Semantic version of the release, e.g. 1.4.0 or 2.0.0-rc.1.' },
    preprocessing: { type: 'path', description: 'Preprocessing spec (JSON) written by benchmark-model; packaged as preprocessing.json.' },
    labels: {
      type: 'path',
      description: 'Class map: .txt with one name per line, or .json (array of names, COCO categories, or {"id": "name"}).',
    },
    releaseNotes: { type: 'string', description: 'Release notes shown to the lab; stored in the manifest.' },
    deviceModel: { type: 'list', description: 'Instrument models the package is for, one per line; empty means any.' },
    minDriver: { type: 'string', description: 'Minimum NVIDIA driver version, e.g. 535.104.05.' },
    cuda: { type: 'string', description: 'Minimum CUDA version, e.g. 12.2.' },
    onnxruntime: { type: 'string', description: 'Minimum ONNX Runtime version, e.g. 1.17.0.' },
    computeCapability: { type: 'string', description: 'Minimum GPU compute capability, e.g. 7.5.' },
    gpuMemoryMb: { type: 'number', integer: true, min: 0, description: 'GPU memory the model needs, in MiB.' },
    tensorrtCaches: {
      type: 'list',
      description:
        'TensorRT engine cache folders (each with a tensorrt-cache.json naming gpuModel, computeCapability, tensorrtVersion), one per line.',
    },
    signingKey: {
      type: 'secret',
      required: true,
      description: 'Ed25519 private key (PEM, PKCS#8), or base64 of the PEM; on a laptop also the path of a key file. Keep it in a secret.',
    },
    gitCommit: { type: 'string', description: 'Commit the model was built from; defaults to the commit of this run.' },
    trainingJob: { type: 'string', description: 'Training job id or URL, recorded as provenance.' },
    dataFingerprint: { type: 'string', description: 'Fingerprint of the training/evaluation data, recorded as provenance.' },
    gateReport: { type: 'path', description: 'Metrics gate report (JSON) to embed as provenance.' },
    benchmarkReport: { type: 'path', description: 'Benchmark report (JSON) to embed as provenance.' },
    goldenImages: {
      type: 'path',
      description:
        'Folder of sample images (PNG, JPEG, TIFF): the first golden-count, sorted by name, become golden test vectors (image, preprocessed input, expected ONNX Runtime CPU outputs) that `mlship self-test` and the device check. Needs preprocessing.',
    },
    goldenCount: {
      type: 'number',
      integer: true,
      min: 1,
      max: 64,
      default: 4,
      description: 'How many sample images become golden vectors.',
    },
    goldenAtol: {
      type: 'number',
      min: 0,
      default: 1e-4,
      description:
        'Absolute tolerance of the golden outputs; widened per output to twice the device-vs-reference difference a benchmark report measured.',
    },
    goldenRtol: { type: 'number', min: 0, default: 1e-3, description: 'Relative tolerance of the golden outputs.' },
    allowMismatch: {
      type: 'list',
      description:
        'Cross-checks allowed to find a contradiction, one per line, for a deliberate exception (recorded in the manifest): preprocessing-metadata, preprocessing-input, labels-output, task, report-model, data-fingerprint.',
    },
    compression: {
      type: 'enum',
      options: COMPRESSIONS,
      default: 'none',
      description:
        'none (stored gzip: model weights shrink only ~7 %, so this keeps packaging and verification at hashing speed), fast (Huffman-only deflate: nearly the ratio of best on weights, best for fp16 models and slow links), balanced, or best.',
    },
    outputDir: { type: 'path', default: '.', description: 'Folder the archive is written to.' },
  },
  outputs: {
    archive: { description: 'Path of the package archive.' },
    sha256: { description: 'SHA-256 of the archive file.' },
    size: { description: 'Size of the archive in bytes.' },
    manifestDigest: { description: 'SHA-256 of manifest.json, which the signature covers.' },
    version: { description: 'The package version.' },
    keyId: { description: 'Id of the signing key (SHA-256 of the raw public key).' },
  },
  async run(inputs, ctx) {
    const resolve = (p: string) => path.resolve(ctx.workspace, p);
    const built = await ctx.group(`Package ${inputs.name} ${inputs.version}`, () =>
      buildPackage({
        name: inputs.name,
        version: inputs.version,
        models: inputs.models.map(resolve),
        preprocessing: inputs.preprocessing,
        labels: inputs.labels,
        releaseNotes: inputs.releaseNotes,
        compatibility: {
          deviceModels: inputs.deviceModel,
          minDriverVersion: inputs.minDriver,
          minCudaVersion: inputs.cuda,
          minOnnxRuntimeVersion: inputs.onnxruntime,
          minComputeCapability: inputs.computeCapability,
          minGpuMemoryMb: inputs.gpuMemoryMb,
        },
        provenance: {
          gitCommit: inputs.gitCommit ?? ctx.run.commit,
          repository: ctx.run.repository,
          workflowRun: {
            id: ctx.run.id,
            attempt: ctx.run.attempt,
            url: ctx.run.url ?? null,
            workflow: ctx.run.workflow ?? null,
            job: ctx.run.job ?? null,
          },
          trainingJob: inputs.trainingJob,
          dataFingerprint: inputs.dataFingerprint,
          gateReport: inputs.gateReport,
          benchmarkReport: inputs.benchmarkReport,
        },
        tensorrtCaches: inputs.tensorrtCaches.map(resolve),
        golden: inputs.goldenImages
          ? {
              imagesDir: inputs.goldenImages,
              label: ctx.inputLabel('goldenImages'),
              count: inputs.goldenCount,
              tolerance: { atol: inputs.goldenAtol, rtol: inputs.goldenRtol },
              workDir: path.join(ctx.tempDir, 'golden'),
            }
          : undefined,
        allowMismatch: parseAllowedMismatches(inputs.allowMismatch, ctx.inputLabel('allowMismatch')),
        allowMismatchLabel: ctx.inputLabel('allowMismatch'),
        signingKey: privateKeyInput(inputs.signingKey, ctx.inputLabel('signingKey'), ctx.workspace),
        outputDir: inputs.outputDir,
        compression: inputs.compression,
        signal: ctx.signal,
        onProgress: (done, total) => ctx.progress({ label: `package ${inputs.name}`, done, total, unit: 'bytes' }),
      }),
    );
    for (const m of built.manifest.allowedMismatches ?? [])
      ctx.log.warning(`Allowed mismatch (${m.check}), recorded in the manifest: ${m.message}`);
    ctx.log.info(`Wrote ${built.archivePath} (${built.size} bytes, sha256 ${built.sha256}), signed with key ${built.keyId}.`);
    writeSummary(ctx.summary, built);
    return {
      archive: built.archivePath,
      sha256: built.sha256,
      size: built.size,
      manifestDigest: built.manifestDigest,
      version: built.manifest.version,
      keyId: built.keyId,
    };
  },
});

function shape(dims: (number | string | null)[] | null): string {
  return dims === null ? '?' : `[${dims.map((d) => (d === null ? '?' : d)).join(', ')}]`;
}

function writeSummary(summary: Summary, built: BuiltPackage): void {
  const m = built.manifest;
  summary
    .heading(`Device package ${m.name} ${m.version}`)
    .table(
      ['archive', 'size', 'sha256', 'signing key'],
      [[path.basename(built.archivePath), formatBytes(built.size), built.sha256, built.keyId.slice(0, 16)]],
    )
    .table(
      ['model', 'opsets', 'inputs', 'outputs'],
      m.models.map((model) => [
        model.path,
        model.opsets.map((o) => `${o.domain} ${o.version}`).join(', '),
        model.inputs.map((i) => `${i.name}: ${i.dtype ?? i.kind} ${shape(i.shape)}`).join('; '),
        model.outputs.map((o) => `${o.name}: ${o.dtype ?? o.kind} ${shape(o.shape)}`).join('; '),
      ]),
    );
  if (m.golden)
    summary.paragraph(
      `Golden test vectors: ${m.golden.cases} case(s) in ${m.golden.index}; run \`mlship self-test\` on the package or an installed copy.`,
    );
  if (m.allowedMismatches?.length)
    summary.heading('Allowed mismatches', 3).list(m.allowedMismatches.map((x) => `${x.check}: ${x.message}`));
  if (m.tensorrtCaches.length > 0) {
    summary.table(
      ['TensorRT cache', 'GPU', 'compute capability', 'TensorRT'],
      m.tensorrtCaches.map((t) => [t.path, t.gpuModel, t.computeCapability, t.tensorrtVersion]),
    );
  }
  summary.details(
    `${m.files.length} files`,
    [
      '| path | size | sha256 |',
      '| --- | --- | --- |',
      ...m.files.map((f) => `| ${f.path} | ${formatBytes(f.size)} | \`${f.sha256.slice(0, 16)}…\` |`),
    ].join('\n'),
  );
}
