import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeOutputFile } from '../../core/output-file';
import { InputError, StepError } from '../../core/errors';
import { sha256File } from '../../core/sha256';
import { accuracyInputs, readoutsFromInputs } from '../../benchmark/accuracy-inputs';
import { mergeInputs } from '../../core/merge-inputs';
import { defineStep } from '../../core/step';
import { copyFileAtomic } from '../../core/atomic-write';
import { readOnnxModelInfo } from '../../onnx/model-info';
import { optimizeScriptPath, runPythonJob } from '../../onnx/python-runner';
import { getOnnxRuntime } from '../../onnx/runtime';
import { loadPreprocessSpec } from '../../preprocess/spec';
import { type CalibrationSet, prepareCalibration } from './calibration';
import { agreement, measure, type Metric, type TestSet } from './measure';
import { gateFailures, optimizeReport, type OptimizeResult, type VariantResult, writeSummary } from './report';

const VARIANTS = ['fp16', 'int8'] as const;
type Variant = (typeof VARIANTS)[number];

interface PythonResult {
  versions: Record<string, string>;
  fp16: null | {
    path: string;
    convertedNodes: number;
    keptNodes: number;
    clampedValues: number;
    flushedToZero: number;
    casts: number;
    keepIoTypes: boolean;
  };
  int8: null | { path: string; quantizeNodes: number; dequantizeNodes: number; calibrationImages: number; method: string };
}

export const optimizeModelStep = defineStep({
  name: 'optimize-model',
  title: 'Optimize ONNX model (FP16/INT8, accuracy-gated)',
  description:
    "Builds FP16 (onnxconverter-common) and INT8 (ONNX Runtime static QDQ quantization, per-channel, calibrated on images through the package's preprocessing spec) variants of an FP32 ONNX model, and gates each on its accuracy against FP32 on a labelled test set in ONNX Runtime (Dice/IoU or COCO mAP), reporting output agreement and size.",
  azure: { id: '943e1a64-b158-48b8-92a8-1081c4fd7c5e', major: 1, minor: 0, patch: 0, category: 'Build' },
  branding: { icon: 'minimize-2', color: 'blue' },
  inputs: mergeInputs(
    {
      model: { type: 'path', required: true, description: 'The FP32 ONNX model (export-onnx output).' },
      variants: { type: 'list', default: 'fp16\nint8', description: 'Variants to build, one per line or comma-separated: fp16, int8.' },
      task: {
        type: 'enum',
        options: ['segmentation', 'detection'],
        required: true,
        description: 'segmentation: scored by Dice/IoU of label masks; detection: by COCO mAP (boxes, scores, labels outputs).',
      },
      preprocessing: {
        type: 'path',
        required: true,
        description: 'Preprocessing spec (JSON) the device uses: prepares the test images and, by default, the calibration images.',
      },
      calibrationImages: {
        type: 'path',
        description: 'Folder of training/validation images for INT8 calibration (PNG, JPEG, TIFF). Required for int8.',
      },
      calibrationCount: {
        type: 'number',
        integer: true,
        min: 1,
        max: 10000,
        default: 64,
        description: 'How many calibration images to use, spread evenly over the sorted folder.',
      },
      calibrationMethod: {
        type: 'enum',
        options: ['minmax', 'entropy', 'percentile'],
        default: 'minmax',
        description:
          'ONNX Runtime calibration: minmax (activation ranges), entropy (KL divergence) or percentile (clips outliers; see calibration-percentile).',
      },
      calibrationPercentile: {
        type: 'number',
        min: 90,
        max: 100,
        default: 99.999,
        description: 'Percentile of activations kept by percentile calibration.',
      },
      calibrationPreprocessing: {
        type: 'path',
        description:
          'Another preprocessing spec for the calibration images only (default: preprocessing). Calibrating with other preprocessing than the device uses ruins INT8 accuracy; the gate catches it.',
      },
      fp16IoTypes: {
        type: 'enum',
        options: ['float32', 'float16'],
        default: 'float32',
        description: 'FP16 variant inputs/outputs: float32 (Casts inside the graph; the device code stays the same) or float16.',
      },
      fp16OpBlockList: {
        type: 'list',
        description: "Operator types kept in FP32 in the FP16 variant, in addition to onnxconverter-common's default list.",
      },
      int8ExcludeNodes: { type: 'list', description: 'Node names left unquantized in the INT8 variant.' },
      testImages: { type: 'path', required: true, description: 'Folder of labelled test images.' },
      metric: {
        type: 'enum',
        options: ['dice', 'iou', 'AP', 'AP50', 'AP75'],
        description: 'Metric gated on: dice or iou (segmentation, default dice), AP, AP50 or AP75 (detection, default AP).',
      },
      fp16MaxDrop: {
        type: 'number',
        min: 0,
        max: 1,
        default: 0.005,
        description: 'Largest allowed drop of the metric from FP32 to FP16 (0.005 = half a point).',
      },
      int8MaxDrop: { type: 'number', min: 0, max: 1, default: 0.02, description: 'Largest allowed drop of the metric from FP32 to INT8.' },
      agreementImages: {
        type: 'number',
        integer: true,
        min: 1,
        max: 1000,
        default: 8,
        description: "Test images on which each variant's outputs are compared with FP32's (max abs/rel difference).",
      },
      outputDir: { type: 'path', description: 'Where to write <model>.fp16.onnx and <model>.int8.onnx (default: beside the model).' },
      python: { type: 'string', default: 'python3', description: 'Python interpreter with onnx, onnxconverter-common and onnxruntime.' },
      reportFile: { type: 'path', default: 'optimize-model-report.json', description: 'Where to write the JSON report.' },
      failOnGate: {
        type: 'boolean',
        default: true,
        description: 'Fail when a variant drops more than its margin; false writes every variant and reports passed=false.',
      },
      timeoutMinutes: { type: 'number', min: 1, default: 30, description: 'Time limit of the Python conversion.' },
    },
    accuracyInputs,
  ),
  outputs: {
    passed: { description: 'true when every variant is within its margin.' },
    fp32Metric: { description: 'The metric of the FP32 model on the test set.' },
    fp16ModelPath: { description: 'The FP16 variant, when built and passed (or fail-on-gate is false).' },
    fp16Metric: { description: 'The metric of the FP16 variant.' },
    int8ModelPath: { description: 'The INT8 variant, when built and passed (or fail-on-gate is false).' },
    int8Metric: { description: 'The metric of the INT8 variant.' },
    variants: { description: 'Per variant: path, sha256, size, metric, drop, agreement (JSON).' },
    report: { description: 'Path of the JSON report.' },
  },
  async run(inputs, ctx) {
    const L = (k: string) => ctx.inputLabel(k);
    const wanted = [
      ...new Set(
        inputs.variants
          .flatMap((v) => v.split(','))
          .map((v) => v.trim().toLowerCase())
          .filter(Boolean),
      ),
    ];
    for (const v of wanted)
      if (!VARIANTS.includes(v as Variant))
        throw new InputError(`Input "${L('variants')}" names "${v}", which is not a variant.`, { hint: `Use ${VARIANTS.join(', ')}.` });
    if (!wanted.length) throw new InputError(`Input "${L('variants')}" is empty.`, { hint: 'Give fp16, int8 or both.' });
    const variants = wanted as Variant[];
    if (!fs.existsSync(inputs.model) || !fs.statSync(inputs.model).isFile())
      throw new StepError(`Input "${L('model')}" points at ${inputs.model}, which is not a file.`, {
        hint: 'Give the FP32 ONNX model export-onnx wrote.',
      });
    if (variants.includes('int8') && !inputs.calibrationImages)
      throw new InputError(`The int8 variant needs "${L('calibrationImages')}".`, {
        hint: 'Point it at a folder of training or validation images (64 or more is typical).',
      });
    const metric: Metric = inputs.metric ?? (inputs.task === 'segmentation' ? 'dice' : 'AP');
    if (inputs.task === 'segmentation' && metric !== 'dice' && metric !== 'iou')
      throw new InputError(`Input "${L('metric')}" is ${metric}, which is not a segmentation metric.`, { hint: 'Use dice or iou.' });
    if (inputs.task === 'detection' && (metric === 'dice' || metric === 'iou'))
      throw new InputError(`Input "${L('metric')}" is ${metric}, which is not a detection metric.`, { hint: 'Use AP, AP50 or AP75.' });
    if (inputs.task === 'segmentation' && !inputs.testMasks)
      throw new InputError(`Segmentation needs "${L('testMasks')}" to score the variants.`, {
        hint: 'Give the folder of label masks of the test images.',
      });
    if (inputs.task === 'detection' && !inputs.testAnnotations)
      throw new InputError(`Detection needs "${L('testAnnotations')}" to score the variants.`, {
        hint: 'Give the COCO JSON of the test images.',
      });

    const info = readOnnxModelInfo(inputs.model);
    const spec = loadPreprocessSpec(inputs.preprocessing);
    const input = info.inputs.find((i) => i.name === (spec.inputName ?? info.inputs[0]?.name));
    if (!input)
      throw new StepError(
        `The preprocessing spec ${inputs.preprocessing} names input ${spec.inputName}, which ${inputs.model} does not have (inputs: ${info.inputs.map((i) => i.name).join(', ')}).`,
        { file: inputs.preprocessing, hint: 'Set inputName in the spec to the model input.' },
      );
    const test: TestSet = {
      task: inputs.task,
      metric,
      images: inputs.testImages,
      masks: inputs.testMasks,
      annotations: inputs.testAnnotations,
      spec,
      inputName: input.name,
      ...readoutsFromInputs(inputs, info.outputs[0].name),
    };

    const runtime = await getOnnxRuntime({ env: { ...process.env, ...ctx.env }, need: 'cpu' });
    // FP32 first: a test set the model cannot be scored on stops the step before any conversion.
    const fp32 = await ctx.group('Accuracy of the FP32 model', () => measure(runtime.ort, 'fp32', inputs.model, test));
    ctx.log.info(`FP32 ${metric} ${fp32.value.toFixed(4)} on ${fp32.accuracy.images} test images`);

    const work = fs.mkdtempSync(path.join(ctx.tempDir, 'optimize-'));
    let calibration: CalibrationSet | undefined;
    if (variants.includes('int8')) {
      const calibSpec = inputs.calibrationPreprocessing ? loadPreprocessSpec(inputs.calibrationPreprocessing) : spec;
      if (inputs.calibrationPreprocessing)
        ctx.log.warning(
          `Calibration images are prepared with ${inputs.calibrationPreprocessing}, not the device's ${inputs.preprocessing}.`,
        );
      calibration = await ctx.group('Calibration set', () =>
        prepareCalibration(
          {
            folder: inputs.calibrationImages!,
            label: L('calibrationImages'),
            count: inputs.calibrationCount,
            spec: calibSpec,
            input,
            method: inputs.calibrationMethod,
            work,
          },
          ctx,
        ),
      );
    }
    const sourceSha = fp32.sha256;
    const names: Record<Variant, string> = { fp16: path.join(work, 'model.fp16.onnx'), int8: path.join(work, 'model.int8.onnx') };
    const config = {
      workDir: work,
      model: path.resolve(inputs.model),
      outputs: Object.fromEntries(variants.map((v) => [v, names[v]])),
      fp16: { keepIoTypes: inputs.fp16IoTypes === 'float32', opBlockList: inputs.fp16OpBlockList },
      int8: calibration
        ? {
            inputName: input.name,
            calibration: calibration.files,
            method: inputs.calibrationMethod,
            percentile: inputs.calibrationPercentile,
            excludeNodes: inputs.int8ExcludeNodes,
            summary: calibration.summary,
          }
        : null,
      provenance: {
        'mlship.source_sha256': sourceSha,
        'mlship.source_model': path.basename(inputs.model),
        'mlship.optimize_run': ctx.run.url ?? ctx.run.id,
      },
    };
    const configFile = path.join(work, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
    const env = { ...process.env, ...ctx.env };
    const python = await ctx.group(`Build ${variants.join(' and ').toUpperCase()} (${inputs.python})`, () =>
      runPythonJob<PythonResult>({
        python: inputs.python,
        script: optimizeScriptPath(env),
        workDir: work,
        configFile,
        cwd: ctx.workspace,
        env,
        onLine: (l) => ctx.log.info(l),
        signal: ctx.signal,
        timeoutMinutes: inputs.timeoutMinutes,
        what: 'Optimization',
        crashHint: 'Read the traceback above.',
      }),
    );

    const results: VariantResult[] = [];
    for (const v of variants) {
      const file = names[v];
      const maxDrop = v === 'fp16' ? inputs.fp16MaxDrop : inputs.int8MaxDrop;
      const m = await ctx.group(`Accuracy of the ${v.toUpperCase()} variant`, () => measure(runtime.ort, v, file, test));
      const agree = await agreement(runtime.ort, inputs.model, file, v, test, inputs.agreementImages);
      const drop = fp32.value - m.value;
      const { path: _p, ...details } = (python[v] ?? {}) as Record<string, number | string | boolean>;
      results.push({ ...m, drop, maxDrop, passed: drop <= maxDrop, agreement: agree, details });
      ctx.log.info(`${v.toUpperCase()} ${metric} ${m.value.toFixed(4)} (drop ${drop.toFixed(4)}, max ${maxDrop}), ${m.size} bytes`);
    }
    const result: OptimizeResult = {
      passed: results.every((r) => r.passed),
      task: inputs.task,
      metric,
      fp32,
      variants: results,
      calibration: calibration?.summary ?? null,
      versions: python.versions,
    };

    writeSummary(ctx.summary, result);
    await writeOutputFile(inputs.reportFile, JSON.stringify(optimizeReport(result), null, 2) + '\n', L('reportFile'));
    const failures = gateFailures(result);
    const stem = path.join(inputs.outputDir ?? path.dirname(inputs.model), path.basename(inputs.model, '.onnx'));
    const outputs: Record<string, string | number | boolean | object | undefined> = {
      passed: result.passed,
      fp32Metric: fp32.value,
      report: inputs.reportFile,
    };
    for (const r of results) outputs[`${r.name}Metric`] = r.value;
    if (failures.length && inputs.failOnGate) {
      throw new StepError(`Accuracy gate failed: ${failures.join(' ')} No variant was written.`, {
        hint: results.some((r) => !r.passed && r.name === 'int8')
          ? 'An INT8 drop this large usually means the calibration images were not prepared like the device input (normalization, size, color); check calibration-images and calibration-preprocessing, try calibration-method entropy or percentile, or exclude sensitive nodes with int8-exclude-nodes.'
          : 'Keep the operators that lose precision in FP32 with fp16-op-block-list, or raise the margin if the drop is acceptable.',
        outputs: outputs as Record<string, string>,
      });
    }
    const published: Record<string, unknown>[] = [];
    for (const r of results) {
      const dest = `${stem}.${r.name}.onnx`;
      await copyFileAtomic(r.file, dest);
      outputs[`${r.name}ModelPath`] = dest;
      published.push({
        name: r.name,
        path: dest,
        sha256: await sha256File(dest),
        size: r.size,
        metric: r.value,
        drop: r.drop,
        passed: r.passed,
        agreement: r.agreement.outputs,
      });
    }
    outputs.variants = published;
    ctx.log.info(`Report: ${path.relative(ctx.workspace, inputs.reportFile) || inputs.reportFile}`);
    return outputs;
  },
});
