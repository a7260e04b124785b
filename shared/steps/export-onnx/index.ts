import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StepContext } from '../../core/context';
import { InputError, StepError } from '../../core/errors';
import { defineStep } from '../../core/step';
import { parseDynamicAxes, parseShape, requireFile } from '../../onnx/export-plan';
import { sha256File } from '../../core/sha256';
import { publishDir, publishFile } from '../../onnx/files';
import { formatSignature, type OnnxModelInfo, opsetVersion, readOnnxModelInfo, tensorSignature } from '../../onnx/model-info';
import { writeNpy } from '../../onnx/npy';
import { formatError, summarizeParity, type Tolerance } from '../../onnx/parity';
import { exportScriptPath, runPython } from '../../onnx/python-runner';
import { type CaseParity, checkAgainstReference, readReferenceIndex } from '../../onnx/reference';
import { getOnnxRuntime, type LoadedRuntime } from '../../onnx/runtime';
import { createSession } from '../../onnx/session';
import { preprocessImage } from '../../preprocess/image';
import { loadPreprocessSpec, type PreprocessSpec } from '../../preprocess/spec';

export const exportOnnxStep = defineStep({
  name: 'export-onnx',
  title: 'Export PyTorch model to ONNX (verified)',
  description:
    'Exports a PyTorch model (model factory + checkpoint, or TorchScript) to ONNX and proves the export: ONNX Runtime must reproduce PyTorch on seeded inputs, real sample images and other sizes of every dynamic axis; provenance goes into the model metadata; optional graph optimization and FP16 variant are checked too.',
  azure: { id: 'a7ccfa27-9fe9-4630-8f48-42c4c175be30', major: 1, minor: 0, patch: 0, category: 'Build' },
  branding: { icon: 'package', color: 'blue' },
  inputs: {
    modelFactory: { type: 'string', description: 'Python `module:function` returning the torch.nn.Module, e.g. `models.unet:build` (importable from source-dir).' },
    checkpoint: { type: 'path', description: 'State dict (torch.save) loaded into the model from model-factory.' },
    torchscript: { type: 'path', description: 'A TorchScript file to export instead of model-factory.' },
    sourceDir: { type: 'path', default: '.', description: 'Folder added to the Python path, where model-factory\'s module lives.' },
    inputShape: { type: 'string', required: true, description: 'Example input shape, e.g. `1,3,256,256`.' },
    inputDtype: { type: 'enum', options: ['float32', 'float16', 'uint8', 'int64'], default: 'float32', description: 'Element type of the model input.' },
    inputName: { type: 'string', default: 'input', description: 'Name of the ONNX input.' },
    inputLayout: { type: 'enum', options: ['NCHW', 'NHWC'], default: 'NCHW', description: 'Layout of the input, for axis names in dynamic-axes.' },
    outputNames: { type: 'list', description: 'Names of the ONNX outputs, one per line, in the order the model returns them (default: output, or output_0, output_1, …; dict keys for dict outputs).' },
    dynamicAxes: { type: 'string', description: 'Axes of variable size, e.g. `batch,height,width` (or indices `0,2,3`). Each is verified at two other sizes.' },
    opset: { type: 'number', integer: true, min: 7, max: 21, default: 17, description: 'ONNX opset to export with (torch 1.13 exports up to 17).' },
    python: { type: 'string', default: 'python3', description: 'Python interpreter with torch and onnx.' },
    output: { type: 'path', required: true, description: 'Where to write the ONNX model; the reference folder goes beside it as <name>.reference/.' },
    atol: { type: 'number', min: 0, default: 1e-4, description: 'Absolute tolerance of the parity check.' },
    rtol: { type: 'number', min: 0, default: 1e-3, description: 'Relative tolerance of the parity check.' },
    parityInputs: { type: 'number', integer: true, min: 1, max: 100, default: 3, description: 'Seeded random inputs checked for parity.' },
    seed: { type: 'number', integer: true, min: 0, default: 0, description: 'Seed of the random inputs.' },
    sampleImages: { type: 'list', description: 'Real images (one path per line) checked for parity too, prepared by the preprocessing spec.' },
    preprocessing: { type: 'path', description: 'Preprocessing spec (JSON, shared/preprocess/spec.schema.json): prepares sample-images and is stamped into the model metadata.' },
    optimize: { type: 'enum', options: ['none', 'basic', 'extended', 'all'], default: 'none', description: 'Also write an ONNX Runtime offline-optimized model at this level (`all` is specific to the CPU that built it), parity-checked.' },
    fp16: { type: 'boolean', default: false, description: 'Also write an FP16 variant (FP32 inputs/outputs), parity-checked against PyTorch with fp16-atol/fp16-rtol.' },
    fp16Atol: { type: 'number', min: 0, default: 1e-2, description: 'Absolute tolerance for the FP16 variant.' },
    fp16Rtol: { type: 'number', min: 0, default: 1e-2, description: 'Relative tolerance for the FP16 variant.' },
    modelVersion: { type: 'string', description: 'Model version stamped into the metadata.' },
    gitCommit: { type: 'string', description: 'Commit stamped into the metadata (default: the run\'s commit).' },
    trainingJob: { type: 'string', description: 'Training job id stamped into the metadata.' },
    dataFingerprint: { type: 'string', description: 'Dataset fingerprint (validate-data) stamped into the metadata.' },
    timeoutMinutes: { type: 'number', min: 1, default: 30, description: 'Time limit of the Python export.' },
  },
  outputs: {
    modelPath: { description: 'Path of the exported ONNX model.' },
    sha256: { description: 'SHA-256 of the model file.' },
    size: { description: 'Size of the model file in bytes.' },
    opset: { description: 'Default-domain opset of the model.' },
    irVersion: { description: 'ONNX IR version.' },
    signature: { description: 'Inputs and outputs with types and shapes (JSON).' },
    metadata: { description: 'metadata_props read back from the model (JSON).' },
    parity: { description: 'Worst max abs / max rel error per output and variant (JSON).' },
    referenceDir: { description: 'Folder with the reference inputs and PyTorch outputs, for benchmark-model.' },
    optimizedModelPath: { description: 'The offline-optimized model, when optimize is set.' },
    fp16ModelPath: { description: 'The FP16 variant, when fp16 is set.' },
  },
  async run(inputs, ctx) {
    const label = (k: string) => ctx.inputLabel(k);
    if (!!inputs.modelFactory === !!inputs.torchscript) {
      throw new InputError(`Give exactly one of "${label('modelFactory')}" and "${label('torchscript')}".`, { hint: `Set ${label('modelFactory')} to module:function (with ${label('checkpoint')}), or ${label('torchscript')} to a TorchScript file.` });
    }
    if (inputs.modelFactory && !/^[A-Za-z_][\w.]*:[A-Za-z_]\w*$/.test(inputs.modelFactory)) {
      throw new InputError(`Input "${label('modelFactory')}" has value "${inputs.modelFactory}", which is not module:function.`, { hint: 'Example: models.unet:build' });
    }
    if (inputs.torchscript && inputs.checkpoint) throw new InputError(`"${label('checkpoint')}" applies to ${label('modelFactory')}; a TorchScript file carries its weights.`, { hint: `Remove ${label('checkpoint')}.` });
    requireFile(inputs.checkpoint, label('checkpoint'));
    requireFile(inputs.torchscript, label('torchscript'));
    const shape = parseShape(inputs.inputShape, label('inputShape'));
    const dynamic = parseDynamicAxes(inputs.dynamicAxes, shape.length, inputs.inputLayout, label('dynamicAxes'));
    const spec = inputs.preprocessing ? loadPreprocessSpec(inputs.preprocessing) : undefined;
    if (inputs.sampleImages.length && !spec) throw new InputError(`"${label('sampleImages')}" needs "${label('preprocessing')}" to turn images into input tensors.`, { hint: 'Give the preprocessing spec the device uses.' });
    if (!inputs.output.endsWith('.onnx')) throw new InputError(`Input "${label('output')}" is ${inputs.output}; it must end in .onnx.`, { hint: 'Example: dist/model.onnx' });

    const work = fs.mkdtempSync(path.join(ctx.tempDir, 'export-'));
    const samples = spec ? await prepareSamples(inputs.sampleImages.map((f) => path.resolve(ctx.workspace, f)), spec, shape, dynamic, work, ctx) : [];

    const provenance: Record<string, string | undefined> = {
      'mlship.version': inputs.modelVersion,
      'mlship.git_commit': inputs.gitCommit ?? ctx.run.commit,
      'mlship.training_job': inputs.trainingJob,
      'mlship.data_fingerprint': inputs.dataFingerprint,
      'mlship.preprocessing': spec ? JSON.stringify(spec) : undefined,
      'mlship.run': ctx.run.url ?? ctx.run.id,
    };
    const config = {
      workDir: work,
      factory: inputs.modelFactory,
      checkpoint: inputs.checkpoint,
      torchscript: inputs.torchscript,
      sourceDirs: [inputs.sourceDir],
      input: { name: inputs.inputName, shape, dtype: inputs.inputDtype, dynamicAxes: dynamic },
      outputNames: inputs.outputNames.length ? inputs.outputNames : null,
      opset: inputs.opset,
      parityInputs: inputs.parityInputs,
      seed: inputs.seed,
      samples,
      fp16: inputs.fp16,
      provenance,
    };
    const configFile = path.join(work, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
    await ctx.group(`PyTorch → ONNX (${inputs.python})`, () => exportWithPython(inputs.python, configFile, work, inputs.timeoutMinutes, ctx));

    const result = JSON.parse(fs.readFileSync(path.join(work, 'result.json'), 'utf8')) as { outputNames: string[]; torchVersion: string; onnxVersion: string; warnings: string[]; fp16: null | { path: string; convertedNodes: number; keptNodes: number; clampedValues: number; flushedToZero: number } };
    for (const w of result.warnings) if (/TracerWarning/.test(w)) ctx.log.warning(`PyTorch tracer: ${w.replace(/^TracerWarning: /, '')}`);
    if (result.fp16 && result.fp16.clampedValues > 0) ctx.log.warning(`FP16 variant: ${result.fp16.clampedValues} weights exceed ±65504 and were clamped; the parity check shows what that costs.`);

    const modelFile = path.join(work, 'model.onnx');
    const refDir = path.join(work, 'reference');
    const info = readOnnxModelInfo(modelFile);
    const runtime = await getOnnxRuntime({ env: { ...process.env, ...ctx.env }, need: 'cpu' });
    ctx.log.info(`verifying with onnxruntime-node ${runtime.version} (${runtime.packageDir})`);

    const problems: string[] = [];
    checkSignature(info, inputs.inputName, dynamic, problems);
    checkMetadata(info, provenance, problems, 'model');

    const tol: Tolerance = { atol: inputs.atol, rtol: inputs.rtol };
    const variants: { name: string; file: string; tol: Tolerance; cases: CaseParity[] }[] = [];
    const index = readReferenceIndex(refDir);
    variants.push({ name: 'fp32', file: modelFile, tol, cases: await ctx.group('Parity: ONNX Runtime vs PyTorch', () => parityOf(runtime, modelFile, refDir, index, tol, 'the exported model')) });

    let optimizedFile: string | undefined;
    if (inputs.optimize !== 'none') {
      optimizedFile = path.join(work, 'model.optimized.onnx');
      const sess = await createSession(runtime.ort, modelFile, { executionProviders: ['cpu'], graphOptimizationLevel: inputs.optimize, optimizedModelFilePath: optimizedFile });
      await sess.release();
      checkMetadata(readOnnxModelInfo(optimizedFile), provenance, problems, 'optimized model');
      const file = optimizedFile;
      variants.push({ name: `optimized (${inputs.optimize})`, file, tol, cases: await parityOf(runtime, file, refDir, index, tol, 'the optimized model') });
    }
    if (result.fp16) {
      const fp16Tol = { atol: inputs.fp16Atol, rtol: inputs.fp16Rtol };
      checkMetadata(readOnnxModelInfo(result.fp16.path), provenance, problems, 'FP16 variant');
      variants.push({ name: 'fp16', file: result.fp16.path, tol: fp16Tol, cases: await parityOf(runtime, result.fp16.path, refDir, index, fp16Tol, 'the FP16 variant') });
    }

    writeSummary(ctx, inputs.output, info, variants, provenance, result);
    const failed = variants.filter((v) => v.cases.some((c) => !c.ok));
    for (const v of failed) problems.push(parityProblem(v));
    if (problems.length) {
      throw new StepError(`The ONNX export of ${inputs.modelFactory ?? inputs.torchscript} is not faithful:\n- ${problems.join('\n- ')}\n(The rejected model is at ${modelFile}.)`, {
        hint: failed.length
          ? 'A parity failure means the ONNX graph computes something else than PyTorch: look for operators that trace differently (data-dependent Python branches, torch.onnx.is_in_onnx_export, in-place ops), or loosen atol/rtol only if the differences are numerical noise.'
          : 'Fix the export inputs named above.',
      });
    }

    // Publish: model, variants and reference folder beside the output path.
    const stem = inputs.output.slice(0, -'.onnx'.length);
    await publishFile(modelFile, inputs.output);
    const referenceDir = `${stem}.reference`;
    await publishDir(refDir, referenceDir);
    const outputs: Record<string, string | number | object> = {};
    if (optimizedFile) {
      outputs.optimizedModelPath = `${stem}.optimized.onnx`;
      await publishFile(optimizedFile, outputs.optimizedModelPath as string);
    }
    if (result.fp16) {
      outputs.fp16ModelPath = `${stem}.fp16.onnx`;
      await publishFile(result.fp16.path, outputs.fp16ModelPath as string);
    }
    const sha256 = await sha256File(inputs.output);
    const size = fs.statSync(inputs.output).size;
    ctx.log.info(`wrote ${inputs.output} (${size} bytes, sha256 ${sha256})`);
    const parity: Record<string, unknown> = {};
    for (const v of variants) parity[v.name] = { atol: v.tol.atol, rtol: v.tol.rtol, cases: v.cases.length, outputs: summarizeParity(v.cases) };
    return {
      ...outputs,
      modelPath: inputs.output,
      sha256,
      size,
      opset: opsetVersion(info) ?? 0,
      irVersion: info.irVersion,
      signature: { inputs: info.inputs.map(tensorSignature), outputs: info.outputs.map(tensorSignature) },
      metadata: info.metadata,
      parity,
      referenceDir,
    };
  },
});

async function exportWithPython(python: string, configFile: string, work: string, timeoutMinutes: number, ctx: StepContext): Promise<void> {
  const outcome = await runPython({
    python,
    script: exportScriptPath({ ...process.env, ...ctx.env }),
    args: [configFile],
    cwd: ctx.workspace,
    env: { ...process.env, ...ctx.env },
    onLine: (line) => ctx.log.info(line),
    signal: ctx.signal,
    timeoutMs: timeoutMinutes * 60000,
  });
  if (outcome.code === 0) return;
  const tail = outcome.stderrTail.filter((l) => l.trim() !== '').slice(-12);
  const traceback = tail.length ? `\nLast lines of the Python output:\n  ${tail.join('\n  ')}` : '';
  const errorFile = path.join(work, 'error.json');
  if (fs.existsSync(errorFile)) {
    const e = JSON.parse(fs.readFileSync(errorFile, 'utf8')) as { kind: string; message: string; hint?: string };
    throw new StepError(`Export failed (${e.kind}): ${e.message}${traceback}`, { hint: e.hint ?? undefined });
  }
  if (outcome.signal || outcome.code === null) {
    throw new StepError(`The Python export was stopped (${outcome.signal ?? 'killed'}) before it finished.${traceback}`, { hint: `If it ran out of time, raise timeout-minutes (now ${timeoutMinutes}).` });
  }
  throw new StepError(`The Python export failed with exit code ${outcome.code}.${traceback}`, { hint: 'Read the traceback; a model that fails in forward() or uses unsupported Python constructs under tracing is the usual cause.' });
}

async function prepareSamples(files: string[], spec: PreprocessSpec, shape: number[], dynamic: Record<number, string>, work: string, ctx: StepContext): Promise<{ name: string; file: string }[]> {
  const dir = path.join(work, 'samples');
  fs.mkdirSync(dir, { recursive: true });
  const out: { name: string; file: string }[] = [];
  for (const [i, file] of files.entries()) {
    const { tensor } = await preprocessImage(file, spec);
    const fixedMismatch = tensor.dims.findIndex((d, axis) => dynamic[axis] === undefined && d !== shape[axis]);
    if (tensor.dims.length !== shape.length || fixedMismatch >= 0) {
      throw new StepError(`Sample image ${file} becomes a tensor of shape [${tensor.dims.join(', ')}], but the model input is [${shape.join(', ')}] with fixed axis ${fixedMismatch}.`, {
        hint: 'Make the preprocessing spec resize to the input size, or declare that axis in dynamic-axes.',
        file,
      });
    }
    const npy = path.join(dir, `sample${i}.npy`);
    writeNpy(npy, tensor);
    out.push({ name: path.basename(file), file: npy });
  }
  if (files.length) ctx.log.info(`prepared ${files.length} sample image(s) with the preprocessing spec`);
  return out;
}

async function parityOf(runtime: LoadedRuntime, file: string, refDir: string, index: ReturnType<typeof readReferenceIndex>, tol: Tolerance, what: string): Promise<CaseParity[]> {
  const session = await createSession(runtime.ort, file, { executionProviders: ['cpu'] });
  try {
    return await checkAgainstReference(runtime.ort, session, refDir, index, tol, what);
  } finally {
    await session.release();
  }
}

function checkSignature(info: OnnxModelInfo, inputName: string, dynamic: Record<number, string>, problems: string[]): void {
  const input = info.inputs.find((i) => i.name === inputName);
  if (!input) {
    problems.push(`the model has no input "${inputName}" (inputs: ${info.inputs.map((i) => i.name).join(', ')})`);
    return;
  }
  for (const [axis, name] of Object.entries(dynamic)) {
    const dim = input.shape?.[Number(axis)];
    // A symbolic name or an open (null) size is dynamic; a number or a missing axis is not.
    if (typeof dim === 'number' || dim === undefined) problems.push(`axis ${axis} (${name}) of input ${inputName} was declared dynamic but the exported graph fixes it to ${dim}`);
  }
}

function checkMetadata(info: OnnxModelInfo, provenance: Record<string, string | undefined>, problems: string[], what: string): void {
  for (const [key, value] of Object.entries(provenance)) {
    if (value === undefined || value === '') continue;
    if (info.metadata[key] !== value) problems.push(`${what}: metadata_props ${key} reads back as ${JSON.stringify(info.metadata[key])}, expected ${JSON.stringify(value)}`);
  }
}

function parityProblem(v: { name: string; tol: Tolerance; cases: CaseParity[] }): string {
  const bad = v.cases.filter((c) => !c.ok);
  const details = bad.slice(0, 4).map((c) => {
    const o = c.outputs.find((x) => !x.ok)!;
    if (o.shape) return `${c.name}: output ${o.output} has shape [${o.shape.actual.join(', ')}], PyTorch gave [${o.shape.expected.join(', ')}]`;
    const w = o.worst!;
    return `${c.name}: output ${o.output} differs in ${o.mismatches} of ${o.elements} values (max abs ${formatError(o.maxAbs)}, max rel ${formatError(o.maxRel)}; at [${w.index.join(', ')}] PyTorch ${w.expected.toPrecision(6)}, ONNX Runtime ${w.actual.toPrecision(6)})`;
  });
  return `${v.name} parity fails (atol ${v.tol.atol}, rtol ${v.tol.rtol}) in ${bad.length} of ${v.cases.length} cases: ${details.join('; ')}`;
}

function writeSummary(ctx: StepContext, output: string, info: OnnxModelInfo, variants: { name: string; tol: Tolerance; cases: CaseParity[] }[], provenance: Record<string, string | undefined>, result: { torchVersion: string; onnxVersion: string; fp16: null | { convertedNodes: number; keptNodes: number; clampedValues: number } }): void {
  const s = ctx.summary;
  s.heading(`ONNX export: ${path.basename(output)}`);
  s.table(
    ['property', 'value'],
    [
      ['opset', info.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')],
      ['IR version', info.irVersion],
      ['producer', `${info.producerName} ${info.producerVersion}`],
      ['exporter', `torch ${result.torchVersion}, onnx ${result.onnxVersion}`],
      ['nodes', `${info.nodeCount} (${Object.entries(info.opTypes).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([op, n]) => `${op}×${n}`).join(', ')})`],
      ['parameters', info.parameterCount],
      ...(result.fp16 ? [['FP16 variant', `${result.fp16.convertedNodes} nodes FP16, ${result.fp16.keptNodes} FP32, ${result.fp16.clampedValues} weights clamped`] as [string, string]] : []),
    ],
  );
  s.table(['', 'signature'], [...info.inputs.map((i) => ['input', formatSignature(i)]), ...info.outputs.map((o) => ['output', formatSignature(o)])]);
  const rows: (string | number)[][] = [];
  for (const v of variants) {
    for (const c of v.cases) {
      for (const o of c.outputs) {
        rows.push([v.name, c.name, Object.values(c.inputShapes).map((d) => d.join('×')).join(', '), o.output, formatError(o.maxAbs), formatError(o.maxRel), o.mismatches, o.ok ? '✅' : '❌']);
      }
    }
  }
  s.heading('Parity (ONNX Runtime vs PyTorch)', 3);
  s.table(['variant', 'case', 'input', 'output', 'max abs', 'max rel', 'mismatches', ''], rows);
  const prov = Object.entries(provenance).filter(([, v]) => v);
  if (prov.length) s.details('Provenance in metadata_props', prov.map(([k, v]) => `- \`${k}\`: ${String(v).length > 120 ? `${String(v).slice(0, 117)}…` : v}`).join('\n'));
}
