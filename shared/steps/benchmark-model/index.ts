import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { StepContext } from '../../core/context';
import { InputError, StepError } from '../../core/errors';
import { defineStep } from '../../core/step';
import { type DetectionAccuracy, detectionAccuracy, listImages, type SegmentationAccuracy, segmentationAccuracy } from '../../benchmark/accuracy';
import { type EnvironmentFingerprint, fingerprint, fingerprintRows } from '../../benchmark/environment';
import { latencyHistogramSvg } from '../../benchmark/histogram';
import { batchIsDynamic, type PlannedInput, planInputs } from '../../benchmark/input-shapes';
import { measure, measureInterleaved, timeOnce } from '../../benchmark/latency';
import { judgePlacement, openSession, type Placement, probePlacement, type Provider } from '../../benchmark/providers';
import { regressionVerdict, type RegressionVerdict } from '../../benchmark/regression';
import { analyzeSoak, soak, type SoakAnalysis } from '../../benchmark/soak';
import { latencyStats, type LatencyStats, ms } from '../../benchmark/stats';
import { parseShape } from '../../onnx/export-plan';
import { writeFileAtomic } from '../../core/atomic-write';
import { opsetVersion, readOnnxModelInfo, tensorSignature } from '../../onnx/model-info';
import { formatError, summarizeParity } from '../../onnx/parity';
import { type CaseParity, checkAgainstReference, readReferenceIndex } from '../../onnx/reference';
import { getOnnxRuntime, type LoadedRuntime, ONNXRUNTIME_NODE_VERSION } from '../../onnx/runtime';
import { toOrtTensor } from '../../onnx/session';
import { randomTensor } from '../../onnx/tensors';
import { preprocessImage } from '../../preprocess/image';
import { loadSharp } from '../../preprocess/sharp-loader';
import { loadPreprocessSpec, type PreprocessSpec } from '../../preprocess/spec';

export const benchmarkModelStep = defineStep({
  name: 'benchmark-model',
  title: 'Benchmark ONNX model on the device',
  description:
    'Measures an ONNX model where it will run (a self-hosted GPU runner, or the CPU in CI): proves which execution provider ran it, latency percentiles per batch size with budgets, end-to-end latency with preprocessing, a soak for drift, leaks and throttling, accuracy on a test set, and a statistical latency regression gate against a baseline.',
  azure: { id: '78c3a0ba-c266-4def-9442-11581234d6e9', major: 1, minor: 0, patch: 0, category: 'Test' },
  branding: { icon: 'activity', color: 'green' },
  inputs: {
    model: { type: 'path', required: true, description: 'The ONNX model to benchmark.' },
    provider: { type: 'enum', options: ['auto', 'cuda', 'tensorrt', 'cpu'], default: 'auto', description: 'Execution provider; the step fails if ONNX Runtime falls back from it. auto: the best that loads (tensorrt, cuda, cpu).' },
    deviceId: { type: 'number', integer: true, min: 0, default: 0, description: 'GPU index.' },
    threads: { type: 'number', integer: true, min: 0, default: 0, description: 'Intra-op threads (0: ONNX Runtime default).' },
    allowPartialFallback: { type: 'boolean', default: true, description: 'Accept some nodes on another provider (reported); false fails unless every node runs on the asked one.' },
    inputShape: { type: 'string', description: 'Sizes for dynamic axes of the first input, e.g. 1,3,512,512 (the batch axis follows batch-sizes).' },
    batchSizes: { type: 'list', description: 'Batch sizes to measure, one per line (default 1). Budgets and the regression gate use the first.' },
    warmup: { type: 'number', integer: true, min: 0, default: 10, description: 'Untimed runs before measuring.' },
    iterations: { type: 'number', integer: true, min: 1, default: 100, description: 'Timed runs per batch size.' },
    duration: { type: 'number', min: 0, description: 'Seconds to measure per batch size, instead of iterations.' },
    maxP95Ms: { type: 'number', min: 0, description: 'Fail when p95 latency (first batch size) exceeds this.' },
    maxP99Ms: { type: 'number', min: 0, description: 'Fail when p99 latency (first batch size) exceeds this.' },
    minThroughput: { type: 'number', min: 0, description: 'Fail when throughput (items/s, first batch size) is below this.' },
    preprocessing: { type: 'path', description: 'Preprocessing spec (JSON) the device package carries; with images, measures end-to-end latency.' },
    images: { type: 'path', description: 'Folder of images for end-to-end latency (decode + preprocessing + inference).' },
    referenceDir: { type: 'path', description: 'Reference folder from export-onnx: the device\'s outputs must match PyTorch\'s.' },
    referenceAtol: { type: 'number', min: 0, default: 1e-3, description: 'Absolute tolerance against the reference outputs.' },
    referenceRtol: { type: 'number', min: 0, default: 1e-2, description: 'Relative tolerance against the reference outputs.' },
    testImages: { type: 'path', description: 'Folder of test images for accuracy on the device (with test-masks or test-annotations).' },
    testMasks: { type: 'path', description: 'Segmentation: folder of label masks (same file names as test-images).' },
    testAnnotations: { type: 'path', description: 'Detection: COCO ground truth (JSON) whose images[].file_name are in test-images; scored as mAP.' },
    boxesOutput: { type: 'string', default: 'boxes', description: 'Detection: output with the boxes (N×4, tensor pixels).' },
    scoresOutput: { type: 'string', default: 'scores', description: 'Detection: output with the scores (N).' },
    labelsOutput: { type: 'string', default: 'labels', description: 'Detection: output with the class labels (N).' },
    boxFormat: { type: 'enum', options: ['xyxy', 'xywh', 'cxcywh'], default: 'xyxy', description: 'Detection: box layout of boxes-output.' },
    labelMapping: { type: 'enum', options: ['index', 'id'], default: 'index', description: 'Detection: labels index the ground truth\'s categories sorted by id, or are category ids.' },
    accuracyOutput: { type: 'string', description: 'Output holding the per-pixel prediction (default: the first output).' },
    segmentationMode: { type: 'enum', options: ['argmax', 'threshold'], default: 'argmax', description: 'argmax over classes, or threshold on a 1- or 2-channel output.' },
    threshold: { type: 'number', default: 0.5, description: 'Threshold for segmentation-mode threshold (0 for logits, 0.5 for probabilities).' },
    classes: { type: 'number', integer: true, min: 2, description: 'Number of classes when the output already holds labels.' },
    cloudMetric: { type: 'number', min: 0, max: 1, description: 'The metric the cloud evaluation reported for this model; the device must agree within metric-tolerance.' },
    cloudMetricName: { type: 'enum', options: ['dice', 'iou', 'map'], default: 'dice', description: 'Which metric cloud-metric is: the metrics engine\'s headline dice or iou (segmentation), or COCO mAP@[.5:.95] (detection).' },
    metricTolerance: { type: 'number', min: 0, default: 0.01, description: 'Allowed absolute difference between device and cloud metric.' },
    baselineModel: { type: 'path', description: 'The production model: benchmarked interleaved with this one for the regression gate.' },
    baselineReport: { type: 'path', description: 'A benchmark report (JSON) from the same runner, when the baseline model is not at hand.' },
    regressionMargin: { type: 'number', min: 0, max: 100, default: 5, description: 'Slowdown in percent tolerated before the gate fails.' },
    confidence: { type: 'number', min: 0.5, max: 0.9999, default: 0.95, description: 'Confidence the gate needs to call a slowdown real.' },
    soakDuration: { type: 'number', min: 0, default: 0, description: 'Soak mode: seconds of back-to-back inference (0: off).' },
    soakWindow: { type: 'number', min: 0.1, default: 60, description: 'Seconds of the first and last soak windows compared.' },
    maxDriftPercent: { type: 'number', min: 0, default: 10, description: 'Soak: allowed median latency increase, first to last window.' },
    maxRssGrowthMb: { type: 'number', min: 0, default: 64, description: 'Soak: allowed resident memory growth.' },
    maxGpuMemoryGrowthMb: { type: 'number', min: 0, default: 64, description: 'Soak: allowed GPU memory growth (nvidia-smi).' },
    failOnThrottle: { type: 'boolean', default: true, description: 'Soak: fail when the GPU reports thermal or hardware slowdown.' },
    gpuSampleMs: { type: 'number', integer: true, min: 100, default: 1000, description: 'Soak: nvidia-smi sampling interval.' },
    seed: { type: 'number', integer: true, min: 0, default: 0, description: 'Seed of the random inputs.' },
    onnxruntimePath: { type: 'path', description: 'An onnxruntime-node install to use (e.g. a CUDA-enabled one provisioned on the runner).' },
    installOnnxruntime: { type: 'boolean', default: false, description: 'Install onnxruntime-node (with CUDA providers for cuda/tensorrt) into the runner tool cache when none fits.' },
    onnxruntimeVersion: { type: 'string', default: ONNXRUNTIME_NODE_VERSION, description: 'onnxruntime-node version for the tool cache and install.' },
    report: { type: 'path', default: 'mlship-benchmark.json', description: 'Where to write the full report (JSON; usable as baseline-report later).' },
  },
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
  },
  async run(inputs, ctx) {
    const label = (k: string) => ctx.inputLabel(k);
    const env = { ...process.env, ...ctx.env };
    const nvidiaSmi = env.MLSHIP_NVIDIA_SMI || 'nvidia-smi';
    const batchSizes = inputs.batchSizes.length ? inputs.batchSizes.map((b) => parseBatch(b, label('batchSizes'))) : [1];
    const shapeHint = inputs.inputShape ? parseShape(inputs.inputShape, label('inputShape')) : undefined;
    const spec = inputs.preprocessing ? loadPreprocessSpec(inputs.preprocessing) : undefined;
    if (inputs.images && !spec) throw new InputError(`"${label('images')}" needs "${label('preprocessing')}" for end-to-end latency.`, { hint: 'Give the preprocessing spec the device package carries.' });
    if (inputs.testImages && (!(inputs.testMasks || inputs.testAnnotations) || !spec)) throw new InputError(`"${label('testImages')}" needs "${label('testMasks')}" (segmentation) or "${label('testAnnotations')}" (detection), and "${label('preprocessing')}".`, { hint: 'Give the ground truth and the preprocessing spec.' });
    if (inputs.testMasks && inputs.testAnnotations) throw new InputError(`Give "${label('testMasks')}" or "${label('testAnnotations')}", not both.`, { hint: 'A model is scored as segmentation (masks) or detection (COCO boxes).' });
    if (inputs.cloudMetric !== undefined && (inputs.cloudMetricName === 'map') !== !!inputs.testAnnotations) throw new InputError(`"${label('cloudMetricName')}" ${inputs.cloudMetricName} does not fit the test set (${inputs.testAnnotations ? 'detection' : 'segmentation'}).`, { hint: 'Use map with test-annotations, dice or iou with test-masks.' });
    if (inputs.cloudMetric !== undefined && !inputs.testImages) throw new InputError(`"${label('cloudMetric')}" needs a test set ("${label('testImages')}", "${label('testMasks')}").`, { hint: 'The device metric is computed on that test set.' });
    if (inputs.baselineModel && inputs.baselineReport) throw new InputError(`Give "${label('baselineModel')}" or "${label('baselineReport')}", not both.`, { hint: 'The baseline model is measured interleaved; a report is for when the model is not at hand.' });

    const info = readOnnxModelInfo(inputs.model);
    const signature = { inputs: info.inputs.map(tensorSignature), outputs: info.outputs.map(tensorSignature) };
    const need = inputs.provider === 'auto' ? 'cpu' : inputs.provider;
    const runtime = await getOnnxRuntime({ explicitPath: inputs.onnxruntimePath, env, need, version: inputs.onnxruntimeVersion, install: inputs.installOnnxruntime, log: (m) => ctx.log.info(m) });
    ctx.log.info(`onnxruntime-node ${runtime.version} from ${runtime.packageDir} (${runtime.source}${runtime.providerLibraries.length ? `; ${runtime.providerLibraries.join(', ')}` : '; CPU only'})`);
    if (!batchIsDynamic(signature.inputs) && batchSizes.some((b) => b !== (signature.inputs[0]?.shape?.[0] ?? 1))) {
      throw new InputError(`${inputs.model} has a fixed batch of ${signature.inputs[0]?.shape?.[0]}, but ${label('batchSizes')} asks for ${batchSizes.join(', ')}.`, { hint: 'Export with dynamic-axes batch, or measure the fixed batch only.' });
    }

    const failures: string[] = [];
    const plan = (batch: number) => planInputs(inputs.model, signature.inputs, batch, shapeHint, spec);
    const feedsFor = (planned: PlannedInput[]) => Object.fromEntries(planned.map((p, i) => [p.name, toOrtTensor(runtime.ort, randomTensor(p.type, p.dims, inputs.seed + i))]));

    // 1. Load on the asked provider (fails here, naming the CPU fallback, if the provider cannot be enabled).
    const opened = await openSession(runtime, inputs.model, inputs.provider, inputs.deviceId, inputs.threads);
    for (const s of opened.skipped) ctx.log.info(`auto: ${s.provider} is not available (${s.reason})`);
    const provider = opened.provider;
    const session = opened.session;
    ctx.log.info(`loaded ${path.basename(inputs.model)} on ${provider} in ${ms(opened.loadMs, 1)} ms`);

    try {
      // 2. Prove where the nodes ran.
      let placement: Placement | undefined;
      if (provider !== 'cpu') {
        placement = await probePlacement(runtime, inputs.model, provider, inputs.deviceId, inputs.threads, feedsFor(plan(batchSizes[0])), path.join(ctx.tempDir, 'placement'));
        const verdict = judgePlacement(provider, placement, inputs.allowPartialFallback);
        if (!verdict.ok) {
          throw new StepError(`Provider check failed: ${verdict.message}.`, {
            hint: verdict.share === 0 ? 'The model did not run on the GPU at all: check the CUDA/cuDNN/TensorRT libraries on the runner and the model\'s data types.' : `Set ${label('allowPartialFallback')}: true to accept partial placement, or change the model so these operators run on ${provider}.`,
          });
        }
        if (verdict.message) ctx.log.warning(`Partial fallback: ${verdict.message}.`);
      }
      const environment = await fingerprint(runtime, provider, inputs.deviceId, nvidiaSmi);

      // 3. Latency per batch size.
      const latency: BatchLatency[] = [];
      for (const [i, batch] of batchSizes.entries()) {
        const feeds = feedsFor(plan(batch));
        const run = () => session.run(feeds);
        const firstMs = await timeOnce(run);
        const samples = await measure(run, { warmup: inputs.warmup, iterations: inputs.iterations, durationMs: inputs.duration ? inputs.duration * 1000 : undefined, signal: ctx.signal });
        const stats = latencyStats(samples);
        latency.push({ batch, shapes: Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, [...t.dims]])), firstMs, cold: i === 0, stats, throughput: (batch * 1000) / stats.mean, samples });
        ctx.log.info(`batch ${batch}: ${i === 0 ? 'cold' : 'first'} ${ms(firstMs)} ms, p50 ${ms(stats.p50)} ms, p95 ${ms(stats.p95)} ms, p99 ${ms(stats.p99)} ms over ${stats.count} runs`);
      }
      const head = latency[0];
      if (inputs.maxP95Ms !== undefined && head.stats.p95 > inputs.maxP95Ms) failures.push(`p95 latency ${ms(head.stats.p95)} ms (batch ${head.batch}) exceeds ${label('maxP95Ms')} ${inputs.maxP95Ms} ms`);
      if (inputs.maxP99Ms !== undefined && head.stats.p99 > inputs.maxP99Ms) failures.push(`p99 latency ${ms(head.stats.p99)} ms (batch ${head.batch}) exceeds ${label('maxP99Ms')} ${inputs.maxP99Ms} ms`);
      if (inputs.minThroughput !== undefined && head.throughput < inputs.minThroughput) failures.push(`throughput ${head.throughput.toFixed(1)} items/s (batch ${head.batch}) is below ${label('minThroughput')} ${inputs.minThroughput}`);

      // 4. End to end with preprocessing.
      const endToEnd = inputs.images && spec ? await measureEndToEnd(runtime, session, inputs.images, spec, info.inputs[0].name, inputs.warmup, inputs.iterations, ctx) : undefined;

      // 5. Outputs against PyTorch's reference, on this provider.
      let reference: CaseParity[] | undefined;
      if (inputs.referenceDir) {
        const index = readReferenceIndex(inputs.referenceDir);
        reference = await checkAgainstReference(runtime.ort, session, inputs.referenceDir, index, { atol: inputs.referenceAtol, rtol: inputs.referenceRtol }, `the model on ${provider}`);
        const bad = reference.filter((c) => !c.ok);
        if (bad.length) {
          const o = bad[0].outputs.find((x) => !x.ok)!;
          failures.push(`outputs on ${provider} differ from the PyTorch reference in ${bad.length} of ${reference.length} cases (first: ${bad[0].name}, output ${o.output}, ${o.shape ? `shape [${o.shape.actual.join(', ')}] vs [${o.shape.expected.join(', ')}]` : `max abs ${formatError(o.maxAbs)}, ${o.mismatches} values outside atol ${inputs.referenceAtol}/rtol ${inputs.referenceRtol}`})`);
        }
      }

      // 6. Accuracy on the test set, scored by the core metrics engine.
      let accuracy: SegmentationAccuracy | DetectionAccuracy | undefined;
      let metricCheck: { device: number; cloud: number; difference: number; tolerance: number; name: string } | undefined;
      if (inputs.testImages && spec) {
        const common = { ort: runtime.ort, session, inputName: spec.inputName ?? info.inputs[0].name, imagesDir: inputs.testImages, spec };
        accuracy = await ctx.group<SegmentationAccuracy | DetectionAccuracy>('Accuracy on the test set', () =>
          inputs.testAnnotations
            ? detectionAccuracy({ ...common, annotations: inputs.testAnnotations, boxesOutput: inputs.boxesOutput, scoresOutput: inputs.scoresOutput, labelsOutput: inputs.labelsOutput, boxFormat: inputs.boxFormat, labelMapping: inputs.labelMapping })
            : segmentationAccuracy({ ...common, masksDir: inputs.testMasks!, outputName: inputs.accuracyOutput ?? info.outputs[0].name, mode: inputs.segmentationMode, threshold: inputs.threshold, classes: inputs.classes }),
        );
        ctx.log.info(accuracy.kind === 'detection' ? `device mAP ${accuracy.map.toFixed(4)} (${accuracy.detections} detections on ${accuracy.images} images)` : `device Dice ${fmt(accuracy.dice)}, IoU ${fmt(accuracy.iou)} on ${accuracy.images} images`);
        if (inputs.cloudMetric !== undefined) {
          const device = accuracy.kind === 'detection' ? accuracy.map : (accuracy[inputs.cloudMetricName as 'dice' | 'iou'] ?? NaN);
          const difference = device - inputs.cloudMetric;
          metricCheck = { device, cloud: inputs.cloudMetric, difference, tolerance: inputs.metricTolerance, name: inputs.cloudMetricName };
          if (!(Math.abs(difference) <= inputs.metricTolerance)) {
            failures.push(`${inputs.cloudMetricName} on the device is ${device.toFixed(4)}, the cloud evaluation reported ${inputs.cloudMetric.toFixed(4)}: a difference of ${difference.toFixed(4)}, beyond ${label('metricTolerance')} ${inputs.metricTolerance}`);
          }
        }
      }

      // 7. Latency regression gate.
      let regression: (RegressionVerdict & { baseline: string; interleaved: boolean; baselineStats: LatencyStats; candidateStats: LatencyStats }) | undefined;
      if (inputs.baselineModel || inputs.baselineReport) {
        regression = await ctx.group('Latency regression gate', () => regressionGate(runtime, session, provider, feedsFor, plan, head, inputs, ctx));
        if (regression.slower) failures.push(`latency regression against ${regression.baseline}: ${regression.reasons.join('; ')}`);
      }

      // 8. Soak.
      let soakAnalysis: SoakAnalysis | undefined;
      if (inputs.soakDuration > 0) {
        const feeds = feedsFor(plan(head.batch));
        const gpu = environment.gpu ? { index: inputs.deviceId, command: nvidiaSmi, intervalMs: inputs.gpuSampleMs } : undefined;
        ctx.log.info(`soak: ${inputs.soakDuration} s of back-to-back inference at batch ${head.batch}${gpu ? ', sampling nvidia-smi' : ''}`);
        const raw = await soak(() => session.run(feeds), { durationMs: inputs.soakDuration * 1000, windowMs: inputs.soakWindow * 1000, gpu, signal: ctx.signal });
        soakAnalysis = analyzeSoak(raw, { maxDriftPercent: inputs.maxDriftPercent, maxRssGrowthMb: inputs.maxRssGrowthMb, maxGpuMemoryGrowthMb: inputs.maxGpuMemoryGrowthMb, failOnThrottle: inputs.failOnThrottle });
        for (const w of soakAnalysis.warnings) ctx.log.warning(`Soak: ${w}`);
        failures.push(...soakAnalysis.failures.map((f) => `soak: ${f}`));
      }

      const report = {
        format: 'mlship-benchmark/1',
        model: { path: inputs.model, opset: opsetVersion(info), inputs: signature.inputs, outputs: signature.outputs, metadata: info.metadata },
        provider,
        loadMs: opened.loadMs,
        placement,
        environment,
        latency,
        endToEnd: endToEnd && { stats: endToEnd.stats, decodeMs: endToEnd.decodeMs, normalizeMs: endToEnd.normalizeMs, images: endToEnd.images },
        reference: reference && { cases: reference.length, outputs: summarizeParity(reference) },
        accuracy: accuracy && { ...accuracy, cloud: metricCheck },
        regression: regression && { ...regression },
        soak: soakAnalysis,
        failures,
      };
      await writeFileAtomic(inputs.report, JSON.stringify(report, null, 2) + '\n');
      writeSummary(ctx, inputs.model, provider, opened.loadMs, environment, placement, latency, endToEnd, reference, accuracy, metricCheck, regression, soakAnalysis, failures);

      if (failures.length) {
        throw new StepError(`benchmark-model failed for ${path.basename(inputs.model)} on ${provider}:\n- ${failures.join('\n- ')}`, { hint: `The full report is in ${inputs.report}.` });
      }
      return {
        provider,
        p50Ms: round(head.stats.p50),
        p95Ms: round(head.stats.p95),
        p99Ms: round(head.stats.p99),
        throughput: Math.round(head.throughput * 100) / 100,
        latency: latency.map(({ samples: _samples, ...rest }) => rest),
        environment,
        accuracy: report.accuracy ?? report.reference,
        regression: report.regression,
        soak: soakAnalysis,
        report: inputs.report,
      };
    } finally {
      await session.release();
    }
  },
});

interface BatchLatency {
  batch: number;
  shapes: Record<string, number[]>;
  firstMs: number;
  /** The very first inference of the session (cold); later batch sizes report their first run at that size. */
  cold: boolean;
  stats: LatencyStats;
  throughput: number;
  samples: number[];
}

function parseBatch(text: string, label: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`Input "${label}" has entry "${text}", which is not a positive whole number.`, { hint: 'One batch size per line, e.g. 1 and 8.' });
  return n;
}

function fmt(x: number | null): string {
  return x === null ? '—' : x.toFixed(4);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function measureEndToEnd(runtime: LoadedRuntime, session: InferenceSession, dir: string, spec: PreprocessSpec, defaultInput: string, warmup: number, iterations: number, ctx: StepContext) {
  const images = listImages(dir, ctx.inputLabel('images'));
  const sharp = loadSharp();
  const inputName = spec.inputName ?? defaultInput;
  let decode = 0;
  let normalize = 0;
  let i = 0;
  const run = async () => {
    const prepared = await preprocessImage(images[i++ % images.length], spec, sharp);
    decode += prepared.decodeMs;
    normalize += prepared.normalizeMs;
    await session.run({ [inputName]: toOrtTensor(runtime.ort, prepared.tensor) });
  };
  const samples = await measure(run, { warmup, iterations, signal: ctx.signal });
  const total = warmup + samples.length;
  const stats = latencyStats(samples);
  ctx.log.info(`end to end (decode + preprocess + inference) over ${images.length} image(s): p50 ${ms(stats.p50)} ms, p95 ${ms(stats.p95)} ms`);
  return { stats, decodeMs: decode / total, normalizeMs: normalize / total, images: images.length, samples };
}

async function regressionGate(
  runtime: LoadedRuntime,
  session: InferenceSession,
  provider: Provider,
  feedsFor: (p: PlannedInput[]) => Record<string, Tensor>,
  plan: (batch: number) => PlannedInput[],
  head: BatchLatency,
  inputs: { baselineModel?: string; baselineReport?: string; regressionMargin: number; confidence: number; warmup: number; iterations: number; duration?: number; deviceId: number; threads: number; seed: number },
  ctx: StepContext,
) {
  const margin = inputs.regressionMargin / 100;
  if (inputs.baselineModel) {
    const baselineInfo = readOnnxModelInfo(inputs.baselineModel);
    const baseline = await openSession(runtime, inputs.baselineModel, provider, inputs.deviceId, inputs.threads);
    try {
      const feeds = feedsFor(plan(head.batch));
      const baselineFeeds = Object.fromEntries(baselineInfo.inputs.map((i, n) => [i.name, Object.values(feeds)[n]]));
      const iterations = Math.max(inputs.iterations, 30);
      const { a, b } = await measureInterleaved(
        () => baseline.session.run(baselineFeeds),
        () => session.run(feeds),
        { warmup: inputs.warmup, iterations, durationMs: inputs.duration ? inputs.duration * 1000 : undefined, signal: ctx.signal },
      );
      const verdict = regressionVerdict(b, a, margin, inputs.confidence, inputs.seed + 1);
      ctx.log.info(`baseline p50 ${ms(latencyStats(a).p50)} ms, candidate p50 ${ms(latencyStats(b).p50)} ms over ${a.length} interleaved pairs; p50 ratio ${verdict.p50.ratio.toFixed(3)} (CI ${verdict.p50.low.toFixed(3)}–${verdict.p50.high.toFixed(3)})`);
      return { ...verdict, baseline: inputs.baselineModel, interleaved: true, baselineStats: latencyStats(a), candidateStats: latencyStats(b), samples: { baseline: a, candidate: b } };
    } finally {
      await baseline.session.release();
    }
  }
  const file = inputs.baselineReport!;
  let stored: { format?: string; provider?: string; latency?: { batch: number; samples?: number[] }[] };
  try {
    stored = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new StepError(`Cannot read baseline report ${file}: ${error instanceof SyntaxError ? error.message : ((error as NodeJS.ErrnoException).code ?? String(error))}.`, { hint: 'Use the report file a previous benchmark-model run wrote.', file });
  }
  const entry = stored.latency?.find((l) => l.batch === head.batch);
  if (stored.format !== 'mlship-benchmark/1' || !entry?.samples?.length) {
    throw new StepError(`Baseline report ${file} has no latency samples for batch ${head.batch}.`, { hint: 'Use a report from benchmark-model measured at the same batch size.', file });
  }
  if (stored.provider && stored.provider !== provider) throw new StepError(`Baseline report ${file} was measured on ${stored.provider}, this run is on ${provider}.`, { hint: 'Compare runs on the same provider and runner.', file });
  ctx.log.warning(`Comparing with samples from ${path.basename(file)}, measured in another run: not interleaved, so runner load differences count as slowdown. Prefer baseline-model.`);
  const verdict = regressionVerdict(head.samples, entry.samples, margin, inputs.confidence, inputs.seed + 1);
  return { ...verdict, baseline: file, interleaved: false, baselineStats: latencyStats(entry.samples), candidateStats: head.stats };
}

function writeSummary(
  ctx: StepContext,
  model: string,
  provider: Provider,
  loadMs: number,
  environment: EnvironmentFingerprint,
  placement: Placement | undefined,
  latency: BatchLatency[],
  endToEnd: { stats: LatencyStats; decodeMs: number; normalizeMs: number; images: number; samples: number[] } | undefined,
  reference: CaseParity[] | undefined,
  accuracy: SegmentationAccuracy | DetectionAccuracy | undefined,
  metricCheck: { device: number; cloud: number; difference: number; tolerance: number; name: string } | undefined,
  regression: (RegressionVerdict & { baseline: string; interleaved: boolean; baselineStats: LatencyStats; candidateStats: LatencyStats }) | undefined,
  soakAnalysis: SoakAnalysis | undefined,
  failures: string[],
): void {
  const s = ctx.summary;
  s.heading(`Benchmark: ${path.basename(model)} on ${provider} ${failures.length ? '❌' : '✅'}`);
  s.table(['environment', ''], fingerprintRows(environment));
  if (placement) {
    s.table(['execution provider', 'nodes', 'operators'], Object.entries(placement.providers).map(([p, v]) => [p, v.nodes, Object.entries(v.ops).map(([op, n]) => `${op}×${n}`).join(', ')]));
  }
  s.heading('Latency (ms)', 3);
  s.paragraph(`Model load ${ms(loadMs, 1)} ms.`);
  s.table(
    ['batch', 'first', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'max', 'runs', 'items/s'],
    latency.map((l) => [l.batch, `${ms(l.firstMs)}${l.cold ? ' (cold)' : ''}`, ms(l.stats.mean), ms(l.stats.stddev), ms(l.stats.p50), ms(l.stats.p90), ms(l.stats.p95), ms(l.stats.p99), ms(l.stats.max), l.stats.count, l.throughput.toFixed(1)]),
  );
  const series = latency.map((l) => ({ label: `batch ${l.batch}`, samples: l.samples }));
  if (endToEnd) series.push({ label: 'end to end, batch 1', samples: endToEnd.samples });
  s.image('latency histogram', { svg: latencyHistogramSvg(series, `${path.basename(model)} on ${provider}`) });
  if (endToEnd) {
    s.paragraph(`End to end (decode + preprocessing + inference, ${endToEnd.images} image(s)): p50 ${ms(endToEnd.stats.p50)} ms, p95 ${ms(endToEnd.stats.p95)} ms, p99 ${ms(endToEnd.stats.p99)} ms; of which decode/resize ${ms(endToEnd.decodeMs)} ms and normalize/layout ${ms(endToEnd.normalizeMs)} ms on average.`);
  }
  if (reference) {
    const summary = summarizeParity(reference);
    s.heading('Outputs vs PyTorch reference', 3);
    s.table(['output', 'max abs', 'max rel', 'mismatches', ''], Object.entries(summary).map(([o, v]) => [o, formatError(v.maxAbs), formatError(v.maxRel), v.mismatches, v.ok ? '✅' : '❌']));
  }
  if (accuracy) {
    s.heading(`Accuracy on ${accuracy.images} test images`, 3);
    if (accuracy.kind === 'segmentation') {
      s.table(['class', 'Dice', 'IoU', 'micro Dice', 'micro IoU', 'images'], [...accuracy.perClass.map((c) => [c.label, fmt(c.dice), fmt(c.iou), fmt(c.microDice), fmt(c.microIou), c.images]), ['mean', fmt(accuracy.dice), fmt(accuracy.iou), fmt(accuracy.microDice), fmt(accuracy.microIou), '']]);
    } else {
      s.table(['metric', 'value'], Object.entries(accuracy.metrics).map(([k, v]) => [k, v.toFixed(4)]));
    }
    if (metricCheck) s.paragraph(`${metricCheck.name}: device ${metricCheck.device.toFixed(4)}, cloud ${metricCheck.cloud.toFixed(4)}, difference ${metricCheck.difference.toFixed(4)} (tolerance ${metricCheck.tolerance}) ${Math.abs(metricCheck.difference) <= metricCheck.tolerance ? '✅' : '❌'}`);
  }
  if (regression) {
    s.heading('Latency regression gate', 3);
    s.table(
      ['', 'baseline', 'candidate', 'ratio', `${Math.round(regression.confidence * 100)}% CI`],
      [
        ['p50 (ms)', ms(regression.baselineStats.p50), ms(regression.candidateStats.p50), regression.p50.ratio.toFixed(3), `${regression.p50.low.toFixed(3)}–${regression.p50.high.toFixed(3)}`],
        ['p95 (ms)', ms(regression.baselineStats.p95), ms(regression.candidateStats.p95), regression.p95.ratio.toFixed(3), `${regression.p95.low.toFixed(3)}–${regression.p95.high.toFixed(3)}`],
      ],
    );
    s.paragraph(`Margin ${(regression.margin * 100).toFixed(1)}%, ${regression.interleaved ? 'interleaved' : 'against a stored report'}; Mann–Whitney p(slower beyond margin) = ${regression.pSlower.toExponential(2)}: ${regression.slower ? '❌ slower' : '✅ not slower'}.`);
  }
  if (soakAnalysis) {
    s.heading(`Soak (${soakAnalysis.durationS.toFixed(0)} s, ${soakAnalysis.iterations} runs)`, 3);
    const rows: (string | number)[][] = [
      ['median latency', `${ms(soakAnalysis.first.p50)} ms`, `${ms(soakAnalysis.last.p50)} ms`, `${soakAnalysis.driftPercent.toFixed(1)}%`],
      ['resident memory', `${soakAnalysis.rssStartMb.toFixed(1)} MB`, `${(soakAnalysis.rssStartMb + soakAnalysis.rssGrowthMb).toFixed(1)} MB`, `${soakAnalysis.rssGrowthMb >= 0 ? '+' : ''}${soakAnalysis.rssGrowthMb.toFixed(1)} MB`],
    ];
    const g = soakAnalysis.gpu;
    if (g?.memoryGrowthMb !== undefined) rows.push(['GPU memory', '', '', `${g.memoryGrowthMb >= 0 ? '+' : ''}${g.memoryGrowthMb.toFixed(0)} MiB`]);
    if (g?.temperature) rows.push(['GPU temperature', `${g.temperature.start} °C`, `${g.temperature.end} °C`, `max ${g.temperature.max} °C`]);
    if (g?.smClockMHz) rows.push(['SM clock', `${g.smClockMHz.first} MHz`, `${g.smClockMHz.last} MHz`, '']);
    s.table(['', `first ${soakAnalysis.windowS.toFixed(0)} s`, `last ${soakAnalysis.windowS.toFixed(0)} s`, 'change'], rows);
    if (g?.throttle.length) s.list(g.throttle.map((t) => `${t.reason}: ${t.samples} samples${t.fails ? ' (fails)' : ''}`));
  }
  if (failures.length) s.heading('Failures', 3).list(failures);
}
