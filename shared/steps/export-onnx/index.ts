import * as fs from 'node:fs';
import type { StepContext } from '../../core/context';
import { defineStep } from '../../core/step';
import { sha256File } from '../../core/sha256';
import { copyFileAtomic } from '../../core/atomic-write';
import { publishDir } from '../../onnx/files';
import { opsetVersion, tensorSignature } from '../../onnx/model-info';
import { summarizeParity } from '../../onnx/parity';
import { exportScriptPath, runPythonJob } from '../../onnx/python-runner';
import { getOnnxRuntime } from '../../onnx/runtime';
import { planExport } from './plan';
import { exportFailure, writeSummary } from './report';
import { type PythonExportResult, verifyExport } from './verify';

export const exportOnnxStep = defineStep({
  name: 'export-onnx',
  title: 'Export PyTorch model to ONNX (verified)',
  description:
    'Exports a PyTorch model (model factory + checkpoint, or TorchScript) to ONNX and proves the export: ONNX Runtime must reproduce PyTorch on seeded inputs, real sample images and other sizes of every dynamic axis; provenance goes into the model metadata; optional graph optimization and FP16 variant are checked too.',
  azure: { id: 'a7ccfa27-9fe9-4630-8f48-42c4c175be30', major: 1, minor: 0, patch: 0, category: 'Build' },
  branding: { icon: 'package', color: 'blue' },
  inputs: {
    modelFactory: {
      type: 'string',
      description: 'Python `module:function` returning the torch.nn.Module, e.g. `models.unet:build` (importable from source-dir).',
    },
    checkpoint: { type: 'path', description: 'State dict (torch.save) loaded into the model from model-factory.' },
    torchscript: { type: 'path', description: 'A TorchScript file to export instead of model-factory.' },
    sourceDir: { type: 'path', default: '.', description: "Folder added to the Python path, where model-factory's module lives." },
    inputShape: { type: 'string', required: true, description: 'Example input shape, e.g. `1,3,256,256`.' },
    inputDtype: {
      type: 'enum',
      options: ['float32', 'float16', 'uint8', 'int64'],
      default: 'float32',
      description: 'Element type of the model input.',
    },
    inputName: { type: 'string', default: 'input', description: 'Name of the ONNX input.' },
    inputLayout: {
      type: 'enum',
      options: ['NCHW', 'NHWC'],
      default: 'NCHW',
      description: 'Layout of the input, for axis names in dynamic-axes.',
    },
    outputNames: {
      type: 'list',
      description:
        'Names of the ONNX outputs, one per line, in the order the model returns them (default: output, or output_0, output_1, …; dict keys for dict outputs).',
    },
    dynamicAxes: {
      type: 'string',
      description: 'Axes of variable size, e.g. `batch,height,width` (or indices `0,2,3`). Each is verified at two other sizes.',
    },
    exporter: {
      type: 'enum',
      options: ['auto', 'dynamo', 'torchscript'],
      default: 'auto',
      description:
        'torch.onnx exporter: dynamo (torch.export-based, torch >= 2.5, needs onnxscript), torchscript (tracing), or auto: what the installed torch defaults to (dynamo from torch 2.9 on; torchscript for a TorchScript file or an older torch).',
    },
    opset: {
      type: 'number',
      integer: true,
      min: 7,
      max: 23,
      description: 'ONNX opset to export with (default: 18 with dynamo, the lowest it emits; 17 with torchscript).',
    },
    python: { type: 'string', default: 'python3', description: 'Python interpreter with torch and onnx.' },
    output: {
      type: 'path',
      required: true,
      description: 'Where to write the ONNX model; the reference folder goes beside it as <name>.reference/.',
    },
    atol: { type: 'number', min: 0, default: 1e-4, description: 'Absolute tolerance of the parity check.' },
    rtol: { type: 'number', min: 0, default: 1e-3, description: 'Relative tolerance of the parity check.' },
    parityInputs: { type: 'number', integer: true, min: 1, max: 100, default: 3, description: 'Seeded random inputs checked for parity.' },
    seed: { type: 'number', integer: true, min: 0, default: 0, description: 'Seed of the random inputs.' },
    sampleImages: {
      type: 'list',
      description: 'Real images (one path per line) checked for parity too, prepared by the preprocessing spec.',
    },
    preprocessing: {
      type: 'path',
      description:
        'Preprocessing spec (JSON, shared/preprocess/spec.schema.json): prepares sample-images and is stamped into the model metadata.',
    },
    optimize: {
      type: 'enum',
      options: ['none', 'basic', 'extended', 'all'],
      default: 'none',
      description:
        'Also write an ONNX Runtime offline-optimized model at this level (`all` is specific to the CPU that built it), parity-checked.',
    },
    fp16: {
      type: 'boolean',
      default: false,
      description:
        "Also write an FP16 variant (onnxconverter-common's float16 conversion, FP32 inputs/outputs), parity-checked against PyTorch with fp16-atol/fp16-rtol. For FP16/INT8 variants gated on accuracy use optimize-model.",
    },
    fp16Atol: { type: 'number', min: 0, default: 1e-2, description: 'Absolute tolerance for the FP16 variant.' },
    fp16Rtol: { type: 'number', min: 0, default: 1e-2, description: 'Relative tolerance for the FP16 variant.' },
    modelVersion: { type: 'string', description: 'Model version stamped into the metadata.' },
    gitCommit: { type: 'string', description: "Commit stamped into the metadata (default: the run's commit)." },
    trainingJob: { type: 'string', description: 'Training job id stamped into the metadata.' },
    dataFingerprint: { type: 'string', description: 'Dataset fingerprint (validate-data) stamped into the metadata.' },
    timeoutMinutes: { type: 'number', min: 1, default: 30, description: 'Time limit of the Python export.' },
  },
  outputs: {
    modelPath: { description: 'Path of the exported ONNX model.' },
    sha256: { description: 'SHA-256 of the model file.' },
    size: { description: 'Size of the model file in bytes.' },
    opset: { description: 'Default-domain opset of the model.' },
    exporter: { description: 'The exporter that was used: dynamo or torchscript.' },
    irVersion: { description: 'ONNX IR version.' },
    signature: { description: 'Inputs and outputs with types and shapes (JSON).' },
    metadata: { description: 'metadata_props read back from the model (JSON).' },
    parity: { description: 'Worst max abs / max rel error per output and variant (JSON).' },
    referenceDir: { description: 'Folder with the reference inputs and PyTorch outputs, for benchmark-model.' },
    optimizedModelPath: { description: 'The offline-optimized model, when optimize is set.' },
    fp16ModelPath: { description: 'The FP16 variant, when fp16 is set.' },
  },
  async run(inputs, ctx) {
    const plan = await planExport(inputs, ctx);
    const env = { ...process.env, ...ctx.env };
    const python = await ctx.group(`PyTorch → ONNX (${inputs.python})`, () =>
      exportWithPython(inputs.python, plan.configFile, plan.work, inputs.timeoutMinutes, ctx),
    );
    for (const w of python.warnings) if (/TracerWarning/.test(w)) ctx.log.warning(`PyTorch tracer: ${w.replace(/^TracerWarning: /, '')}`);
    if (python.fp16 && python.fp16.clampedValues > 0)
      ctx.log.warning(
        `FP16 variant: ${python.fp16.clampedValues} weights exceed ±65504 and were clamped; the parity check shows what that costs.`,
      );

    const runtime = await getOnnxRuntime({ env, need: 'cpu' });
    ctx.log.info(`verifying with onnxruntime-node ${runtime.version} (${runtime.packageDir})`);
    const result = await verifyExport(
      runtime,
      plan.work,
      { output: inputs.output, source: inputs.modelFactory ?? inputs.torchscript ?? '', python, provenance: plan.provenance },
      {
        inputName: inputs.inputName,
        dynamic: plan.dynamic,
        tol: { atol: inputs.atol, rtol: inputs.rtol },
        fp16Tol: { atol: inputs.fp16Atol, rtol: inputs.fp16Rtol },
        optimize: inputs.optimize,
      },
      ctx,
    );
    writeSummary(ctx.summary, result);
    const failure = exportFailure(result);
    if (failure) throw failure;

    // Publish: model, variants and reference folder beside the output path.
    const stem = inputs.output.slice(0, -'.onnx'.length);
    await copyFileAtomic(result.modelFile, inputs.output);
    const referenceDir = `${stem}.reference`;
    await publishDir(result.refDir, referenceDir);
    const outputs: Record<string, string | number | object> = {};
    if (result.optimizedFile) {
      outputs.optimizedModelPath = `${stem}.optimized.onnx`;
      await copyFileAtomic(result.optimizedFile, outputs.optimizedModelPath as string);
    }
    if (python.fp16) {
      outputs.fp16ModelPath = `${stem}.fp16.onnx`;
      await copyFileAtomic(python.fp16.path, outputs.fp16ModelPath as string);
    }
    const sha256 = await sha256File(inputs.output);
    const size = fs.statSync(inputs.output).size;
    ctx.log.info(`wrote ${inputs.output} (${size} bytes, sha256 ${sha256})`);
    const parity: Record<string, unknown> = {};
    for (const v of result.variants)
      parity[v.name] = { atol: v.tol.atol, rtol: v.tol.rtol, cases: v.cases.length, outputs: summarizeParity(v.cases) };
    const { info } = result;
    return {
      ...outputs,
      modelPath: inputs.output,
      sha256,
      size,
      opset: opsetVersion(info) ?? 0,
      exporter: python.exporter,
      irVersion: info.irVersion,
      signature: { inputs: info.inputs.map(tensorSignature), outputs: info.outputs.map(tensorSignature) },
      metadata: info.metadata,
      parity,
      referenceDir,
    };
  },
});

function exportWithPython(
  python: string,
  configFile: string,
  work: string,
  timeoutMinutes: number,
  ctx: StepContext,
): Promise<PythonExportResult> {
  const env = { ...process.env, ...ctx.env };
  return runPythonJob<PythonExportResult>({
    python,
    script: exportScriptPath(env),
    workDir: work,
    configFile,
    cwd: ctx.workspace,
    env,
    onLine: (line) => ctx.log.info(line),
    signal: ctx.signal,
    timeoutMinutes,
    what: 'Export',
    crashHint:
      'Read the traceback; a model that fails in forward() or uses unsupported Python constructs under tracing is the usual cause.',
  });
}
