import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, StepError } from '../../core/errors';
import { defineStep } from '../../core/step';
import { batchIsDynamic } from '../../benchmark/input-shapes';
import { parseShape } from '../../onnx/export-plan';
import { readOnnxModelInfo, tensorSignature } from '../../onnx/model-info';
import { getOnnxRuntime } from '../../onnx/runtime';
import { loadPreprocessSpec } from '../../preprocess/spec';
import { benchmarkFailures } from './gates';
import { type Gallery, galleryParts, imageScore, writeSegmentationGallery } from '../../report/gallery';
import { benchmarkInputs } from './inputs';
import { measureModel } from './measure';
import { benchmarkReport, defaultSamplesFile, samplesDocument, writeBenchmarkFiles, writeSummary } from './report';

/** The step: inputs (inputs.ts) → measurements (measure.ts) → verdict (gates.ts) → report and summary (report.ts). */
export const benchmarkModelStep = defineStep({
  name: 'benchmark-model',
  title: 'Benchmark ONNX model on the device',
  description:
    'Measures an ONNX model where it will run (a self-hosted GPU runner, or the CPU in CI): proves which execution provider ran it, latency percentiles per batch size with budgets, end-to-end latency with preprocessing, a soak for drift, leaks and throttling, accuracy on a test set, and a statistical latency regression gate against a baseline.',
  azure: { id: '78c3a0ba-c266-4def-9442-11581234d6e9', major: 1, minor: 0, patch: 0, category: 'Test' },
  branding: { icon: 'activity', color: 'green' },
  inputs: benchmarkInputs,
  outputs: {
    provider: { description: 'Execution provider that ran the model.' },
    p50Ms: { description: 'Median latency (first batch size).' },
    p95Ms: { description: 'p95 latency (first batch size).' },
    p99Ms: { description: 'p99 latency (first batch size).' },
    throughput: { description: 'Items per second (first batch size).' },
    latency: { description: 'Latency statistics per batch size (JSON).' },
    environment: { description: 'Environment fingerprint (JSON).' },
    accuracy: { description: 'Accuracy results (JSON), when a test set or reference was given.' },
    regression: { description: 'Regression gate verdict (JSON), when a baseline was given.' },
    soak: { description: 'Soak analysis (JSON), when soak-duration > 0.' },
    report: { description: 'Path of the JSON report.' },
    gallery: { description: 'Folder of the prediction gallery (segmentation accuracy), when one was written.' },
  },
  async run(inputs, ctx) {
    const label = (k: string) => ctx.inputLabel(k);
    const env = { ...process.env, ...ctx.env };
    const nvidiaSmi = env.MLSHIP_NVIDIA_SMI || 'nvidia-smi';
    const batchSizes = inputs.batchSizes.length ? inputs.batchSizes.map((b) => parseBatch(b, label('batchSizes'))) : [1];
    const shapeHint = inputs.inputShape ? parseShape(inputs.inputShape, label('inputShape')) : undefined;
    const spec = inputs.preprocessing ? loadPreprocessSpec(inputs.preprocessing) : undefined;
    if (inputs.images && !spec)
      throw new InputError(`"${label('images')}" needs "${label('preprocessing')}" for end-to-end latency.`, {
        hint: 'Give the preprocessing spec the device package carries.',
      });
    if (inputs.testImages && (!(inputs.testMasks || inputs.testAnnotations) || !spec))
      throw new InputError(
        `"${label('testImages')}" needs "${label('testMasks')}" (segmentation) or "${label('testAnnotations')}" (detection), and "${label('preprocessing')}".`,
        { hint: 'Give the ground truth and the preprocessing spec.' },
      );
    if (inputs.testMasks && inputs.testAnnotations)
      throw new InputError(`Give "${label('testMasks')}" or "${label('testAnnotations')}", not both.`, {
        hint: 'A model is scored as segmentation (masks) or detection (COCO boxes).',
      });
    if (inputs.cloudMetric !== undefined && (inputs.cloudMetricName === 'map') !== !!inputs.testAnnotations)
      throw new InputError(
        `"${label('cloudMetricName')}" ${inputs.cloudMetricName} does not fit the test set (${inputs.testAnnotations ? 'detection' : 'segmentation'}).`,
        { hint: 'Use map with test-annotations, dice or iou with test-masks.' },
      );
    if (inputs.cloudMetric !== undefined && !inputs.testImages)
      throw new InputError(`"${label('cloudMetric')}" needs a test set ("${label('testImages')}", "${label('testMasks')}").`, {
        hint: 'The device metric is computed on that test set.',
      });
    if (inputs.baselineModel && inputs.baselineReport)
      throw new InputError(`Give "${label('baselineModel')}" or "${label('baselineReport')}", not both.`, {
        hint: 'The baseline model is measured interleaved; a report is for when the model is not at hand.',
      });

    const info = readOnnxModelInfo(inputs.model);
    const signature = { inputs: info.inputs.map(tensorSignature), outputs: info.outputs.map(tensorSignature) };
    const need = inputs.provider === 'auto' ? 'cpu' : inputs.provider;
    const runtime = await getOnnxRuntime({
      explicitPath: inputs.onnxruntimePath,
      env,
      need,
      version: inputs.onnxruntimeVersion,
      install: inputs.installOnnxruntime,
      log: (m) => ctx.log.info(m),
    });
    ctx.log.info(
      `onnxruntime-node ${runtime.version} from ${runtime.packageDir} (${runtime.source}${runtime.providerLibraries.length ? `; ${runtime.providerLibraries.join(', ')}` : '; CPU only'})`,
    );
    if (!batchIsDynamic(signature.inputs) && batchSizes.some((b) => b !== (signature.inputs[0]?.shape?.[0] ?? 1))) {
      throw new InputError(
        `${inputs.model} has a fixed batch of ${signature.inputs[0]?.shape?.[0]}, but ${label('batchSizes')} asks for ${batchSizes.join(', ')}.`,
        { hint: 'Export with dynamic-axes batch, or measure the fixed batch only.' },
      );
    }

    const result = await measureModel(inputs, { runtime, batchSizes, shapeHint, spec, nvidiaSmi }, info, signature, ctx);
    let gallery: { dir: string; value: Gallery } | undefined;
    if (result.accuracy?.kind === 'segmentation' && result.accuracy.perImage) {
      const { perImage, ...accuracy } = result.accuracy;
      result.accuracy = accuracy;
      const dir = inputs.report.replace(/\.json$/i, '') + '-gallery';
      const images = inputs.testImages!;
      try {
        const value = await ctx.group('Prediction gallery', () =>
          writeSegmentationGallery({
            dir,
            imagesDir: images,
            groundTruth: new Map(perImage.map((p) => [p.name, p.truth])),
            candidate: new Map(perImage.map((p) => [p.name, p.mask])),
            candidateName: 'device',
            scores: perImage.map((p) => ({ name: p.name, candidate: imageScore(p.counts, 'dice', false), production: null })),
            metric: 'dice',
            max: inputs.galleryMax,
          }),
        );
        gallery = { dir, value };
      } finally {
        if (perImage[0]) fs.rmSync(path.dirname(perImage[0].mask), { recursive: true, force: true });
      }
    }
    const failures = benchmarkFailures(result, inputs, label);
    const samplesFile = inputs.samplesFile ?? defaultSamplesFile(inputs.report);
    const report = benchmarkReport(result, failures, { dataFingerprint: inputs.dataFingerprint, samplesFile, report: inputs.report });
    await writeBenchmarkFiles(inputs.report, report, samplesFile, samplesDocument(result), `${label('report')} / ${label('samplesFile')}`);
    writeSummary(ctx.summary, result, failures);
    if (gallery) {
      const parts = galleryParts(gallery.value, gallery.dir, path.relative(ctx.workspace, gallery.dir) || gallery.dir);
      ctx.summary.rich(parts.html, parts.markdown);
    }

    if (failures.length) {
      throw new StepError(`benchmark-model failed for ${path.basename(inputs.model)} on ${result.provider}:\n- ${failures.join('\n- ')}`, {
        hint: `The full report is in ${inputs.report}.`,
      });
    }
    const head = result.latency[0];
    return {
      provider: result.provider,
      p50Ms: round(head.stats.p50),
      p95Ms: round(head.stats.p95),
      p99Ms: round(head.stats.p99),
      throughput: Math.round(head.throughput * 100) / 100,
      latency: report.latency.map(({ histogram: _histogram, ...rest }) => rest),
      environment: result.environment,
      accuracy: report.accuracy ?? report.reference,
      regression: report.regression,
      soak: result.soak,
      report: inputs.report,
      gallery: gallery?.dir,
    };
  },
});

function parseBatch(text: string, label: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new InputError(`Input "${label}" has entry "${text}", which is not a positive whole number.`, {
      hint: 'One batch size per line, e.g. 1 and 8.',
    });
  return n;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
