import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { StepContext } from '../../core/context';
import { StepError } from '../../core/errors';
import { sha256File } from '../../core/sha256';
import {
  type DetectionAccuracy,
  detectionAccuracy,
  listImages,
  type SegmentationAccuracy,
  segmentationAccuracy,
} from '../../benchmark/accuracy';
import { readoutsFromInputs } from '../../benchmark/accuracy-inputs';
import { type EnvironmentFingerprint, fingerprint } from '../../benchmark/environment';
import { type PlannedInput, planInputs } from '../../benchmark/input-shapes';
import { measure, measureInterleaved, timeOnce } from '../../benchmark/latency';
import { judgePlacement, openSession, type Placement, probePlacement, type Provider } from '../../benchmark/providers';
import { regressionVerdict, type RegressionVerdict } from '../../benchmark/regression';
import { analyzeSoak, soak, type SoakAnalysis } from '../../benchmark/soak';
import { latencyStats, type LatencyStats, ms } from '../../benchmark/stats';
import { type OnnxModelInfo, readOnnxModelInfo, type TensorSignature } from '../../onnx/model-info';
import { type CaseParity, checkAgainstReference, readReferenceIndex } from '../../onnx/reference';
import type { LoadedRuntime } from '../../onnx/runtime';
import { toOrtTensor } from '../../onnx/session';
import { modelTask, type TaskKind } from '../../onnx/task-kind';
import { randomTensor } from '../../onnx/tensors';
import { preprocessImage } from '../../preprocess/image';
import { loadSharp } from '../../preprocess/sharp-loader';
import type { PreprocessSpec } from '../../preprocess/spec';
import type { BenchmarkInputs } from './inputs';

/** Everything benchmark-model measured, as one plain object that gates, report and summary read. */
export interface BenchmarkResult {
  model: string;
  /** SHA-256 of the model file measured: what binds the report to one model in a device package. */
  modelSha256: string;
  info: OnnxModelInfo;
  signature: { inputs: TensorSignature[]; outputs: TensorSignature[] };
  /** From the test set scored (masks or COCO boxes), else from the model's metadata or outputs; null when neither tells. */
  task: TaskKind | null;
  provider: Provider;
  loadMs: number;
  placement?: Placement;
  environment: EnvironmentFingerprint;
  latency: BatchLatency[];
  endToEnd?: EndToEnd;
  reference?: CaseParity[];
  accuracy?: SegmentationAccuracy | DetectionAccuracy;
  metricCheck?: MetricCheck;
  regression?: Regression;
  soak?: SoakAnalysis;
}

export interface BatchLatency {
  batch: number;
  shapes: Record<string, number[]>;
  firstMs: number;
  /** The very first inference of the session (cold); later batch sizes report their first run at that size. */
  cold: boolean;
  stats: LatencyStats;
  throughput: number;
  samples: number[];
}

export interface EndToEnd {
  stats: LatencyStats;
  decodeMs: number;
  normalizeMs: number;
  images: number;
  samples: number[];
}

export interface MetricCheck {
  device: number;
  cloud: number;
  difference: number;
  tolerance: number;
  name: string;
}

export type Regression = RegressionVerdict & {
  baseline: string;
  interleaved: boolean;
  baselineStats: LatencyStats;
  candidateStats: LatencyStats;
  /** The raw pairs when measured interleaved; they go to the samples file, not the report. */
  samples?: { baseline: number[]; candidate: number[] };
};

export interface MeasureSetup {
  runtime: LoadedRuntime;
  batchSizes: number[];
  shapeHint?: number[];
  spec?: PreprocessSpec;
  nvidiaSmi: string;
}

/** Runs every measurement the inputs ask for, in order: placement, latency, end to end, reference, accuracy, regression, soak. */
export async function measureModel(
  inputs: BenchmarkInputs,
  setup: MeasureSetup,
  info: OnnxModelInfo,
  signature: BenchmarkResult['signature'],
  ctx: StepContext,
): Promise<BenchmarkResult> {
  const { runtime, batchSizes, shapeHint, spec } = setup;
  const label = (k: string) => ctx.inputLabel(k);
  const plan = (batch: number) => planInputs(inputs.model, signature.inputs, batch, shapeHint, spec);
  const feedsFor = (planned: PlannedInput[]) =>
    Object.fromEntries(planned.map((p, i) => [p.name, toOrtTensor(runtime.ort, randomTensor(p.type, p.dims, inputs.seed + i))]));
  const modelSha256 = await sha256File(inputs.model);

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
      placement = await probePlacement(
        runtime,
        inputs.model,
        provider,
        inputs.deviceId,
        inputs.threads,
        feedsFor(plan(batchSizes[0])),
        path.join(ctx.tempDir, 'placement'),
      );
      const verdict = judgePlacement(provider, placement, inputs.allowPartialFallback);
      if (!verdict.ok) {
        throw new StepError(`Provider check failed: ${verdict.message}.`, {
          hint:
            verdict.share === 0
              ? "The model did not run on the GPU at all: check the CUDA/cuDNN/TensorRT libraries on the runner and the model's data types."
              : `Set ${label('allowPartialFallback')}: true to accept partial placement, or change the model so these operators run on ${provider}.`,
        });
      }
      if (verdict.message) ctx.log.warning(`Partial fallback: ${verdict.message}.`);
    }
    const environment = await fingerprint(runtime, provider, inputs.deviceId, setup.nvidiaSmi);

    // 3. Latency per batch size.
    const latency: BatchLatency[] = [];
    for (const [i, batch] of batchSizes.entries()) {
      const feeds = feedsFor(plan(batch));
      const run = () => session.run(feeds);
      const firstMs = await timeOnce(run);
      const samples = await measure(run, {
        warmup: inputs.warmup,
        iterations: inputs.iterations,
        durationMs: inputs.duration ? inputs.duration * 1000 : undefined,
        signal: ctx.signal,
      });
      const stats = latencyStats(samples);
      latency.push({
        batch,
        shapes: Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, [...t.dims]])),
        firstMs,
        cold: i === 0,
        stats,
        throughput: (batch * 1000) / stats.mean,
        samples,
      });
      ctx.log.info(
        `batch ${batch}: ${i === 0 ? 'cold' : 'first'} ${ms(firstMs)} ms, p50 ${ms(stats.p50)} ms, p95 ${ms(stats.p95)} ms, p99 ${ms(stats.p99)} ms over ${stats.count} runs`,
      );
    }
    const head = latency[0];

    // 4. End to end with preprocessing.
    const endToEnd =
      inputs.images && spec
        ? await measureEndToEnd(runtime, session, inputs.images, spec, info.inputs[0].name, inputs.warmup, inputs.iterations, ctx)
        : undefined;

    // 5. Outputs against PyTorch's reference, on this provider.
    let reference: CaseParity[] | undefined;
    if (inputs.referenceDir) {
      const index = readReferenceIndex(inputs.referenceDir);
      reference = await checkAgainstReference(
        runtime.ort,
        session,
        inputs.referenceDir,
        index,
        { atol: inputs.referenceAtol, rtol: inputs.referenceRtol },
        `the model on ${provider}`,
      );
    }

    // 6. Accuracy on the test set, scored by the core metrics engine.
    let accuracy: SegmentationAccuracy | DetectionAccuracy | undefined;
    let metricCheck: MetricCheck | undefined;
    if (inputs.testImages && spec) {
      const common = { ort: runtime.ort, session, inputName: spec.inputName ?? info.inputs[0].name, imagesDir: inputs.testImages, spec };
      const readouts = readoutsFromInputs(inputs, info.outputs[0].name);
      accuracy = await ctx.group<SegmentationAccuracy | DetectionAccuracy>('Accuracy on the test set', () =>
        inputs.testAnnotations
          ? detectionAccuracy({ ...common, ...readouts.detection, annotations: inputs.testAnnotations })
          : segmentationAccuracy({
              ...common,
              ...readouts.segmentation,
              masksDir: inputs.testMasks!,
              // The device's masks, for the prediction gallery the step draws (index.ts); removed once drawn.
              predictionsDir: inputs.galleryMax > 0 ? fs.mkdtempSync(path.join(ctx.tempDir, 'mlship-device-masks-')) : undefined,
            }),
      );
      ctx.log.info(
        accuracy.kind === 'detection'
          ? `device mAP ${accuracy.map.toFixed(4)} (${accuracy.detections} detections on ${accuracy.images} images)`
          : `device Dice ${fmt(accuracy.dice)}, IoU ${fmt(accuracy.iou)} on ${accuracy.images} images`,
      );
      if (inputs.cloudMetric !== undefined) {
        const device = accuracy.kind === 'detection' ? accuracy.map : (accuracy[inputs.cloudMetricName as 'dice' | 'iou'] ?? NaN);
        metricCheck = {
          device,
          cloud: inputs.cloudMetric,
          difference: device - inputs.cloudMetric,
          tolerance: inputs.metricTolerance,
          name: inputs.cloudMetricName,
        };
      }
    }

    // 7. Latency regression against a baseline.
    let regression: Regression | undefined;
    if (inputs.baselineModel || inputs.baselineReport) {
      regression = await ctx.group('Latency regression gate', () =>
        regressionGate(runtime, session, provider, feedsFor, plan, head, inputs, ctx),
      );
    }

    // 8. Soak.
    let soakAnalysis: SoakAnalysis | undefined;
    if (inputs.soakDuration > 0) {
      const feeds = feedsFor(plan(head.batch));
      const gpu = environment.gpu ? { index: inputs.deviceId, command: setup.nvidiaSmi, intervalMs: inputs.gpuSampleMs } : undefined;
      ctx.log.info(`soak: ${inputs.soakDuration} s of back-to-back inference at batch ${head.batch}${gpu ? ', sampling nvidia-smi' : ''}`);
      const raw = await soak(() => session.run(feeds), {
        durationMs: inputs.soakDuration * 1000,
        windowMs: inputs.soakWindow * 1000,
        gpu,
        signal: ctx.signal,
      });
      soakAnalysis = analyzeSoak(raw, {
        maxDriftPercent: inputs.maxDriftPercent,
        maxTailDriftPercent: inputs.maxTailDriftPercent,
        maxRssGrowthMb: inputs.maxRssGrowthMb,
        maxGpuMemoryGrowthMb: inputs.maxGpuMemoryGrowthMb,
        failOnThrottle: inputs.failOnThrottle,
      });
      for (const w of soakAnalysis.warnings) ctx.log.warning(`Soak: ${w}`);
    }

    const task = accuracy?.kind ?? modelTask(info)?.task ?? null;
    return {
      model: inputs.model,
      modelSha256,
      info,
      signature,
      task,
      provider,
      loadMs: opened.loadMs,
      placement,
      environment,
      latency,
      endToEnd,
      reference,
      accuracy,
      metricCheck,
      regression,
      soak: soakAnalysis,
    };
  } finally {
    await session.release();
  }
}

export function fmt(x: number | null): string {
  return x === null ? '—' : x.toFixed(4);
}

async function measureEndToEnd(
  runtime: LoadedRuntime,
  session: InferenceSession,
  dir: string,
  spec: PreprocessSpec,
  defaultInput: string,
  warmup: number,
  iterations: number,
  ctx: StepContext,
): Promise<EndToEnd> {
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
  ctx.log.info(
    `end to end (decode + preprocess + inference) over ${images.length} image(s): p50 ${ms(stats.p50)} ms, p95 ${ms(stats.p95)} ms`,
  );
  return { stats, decodeMs: decode / total, normalizeMs: normalize / total, images: images.length, samples };
}

async function regressionGate(
  runtime: LoadedRuntime,
  session: InferenceSession,
  provider: Provider,
  feedsFor: (p: PlannedInput[]) => Record<string, Tensor>,
  plan: (batch: number) => PlannedInput[],
  head: BatchLatency,
  inputs: BenchmarkInputs,
  ctx: StepContext,
): Promise<Regression> {
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
      ctx.log.info(
        `baseline p50 ${ms(latencyStats(a).p50)} ms, candidate p50 ${ms(latencyStats(b).p50)} ms over ${a.length} interleaved pairs; p50 ratio ${verdict.p50.ratio.toFixed(3)} (CI ${verdict.p50.low.toFixed(3)}–${verdict.p50.high.toFixed(3)})`,
      );
      return {
        ...verdict,
        baseline: inputs.baselineModel,
        interleaved: true,
        baselineStats: latencyStats(a),
        candidateStats: latencyStats(b),
        samples: { baseline: a, candidate: b },
      };
    } finally {
      await baseline.session.release();
    }
  }
  const file = inputs.baselineReport!;
  const baselineSamples = readBaselineSamples(file, head.batch, provider);
  ctx.log.warning(
    `Comparing with samples from ${path.basename(file)}, measured in another run: not interleaved, so runner load differences count as slowdown. Prefer baseline-model.`,
  );
  const verdict = regressionVerdict(head.samples, baselineSamples, margin, inputs.confidence, inputs.seed + 1);
  return { ...verdict, baseline: file, interleaved: false, baselineStats: latencyStats(baselineSamples), candidateStats: head.stats };
}

/**
 * The raw samples of a stored benchmark at one batch size: from the samples file its report names (compact
 * reports), or from the report itself (reports written before reports became compact).
 */
function readBaselineSamples(file: string, batch: number, provider: Provider): number[] {
  const stored = readJson(file, 'baseline report') as {
    format?: string;
    provider?: string;
    samplesFile?: string;
    latency?: { batch: number; samples?: number[] }[];
  };
  if (stored.format !== 'mlship-benchmark/1')
    throw new StepError(`Baseline report ${file} is not a benchmark-model report (format ${JSON.stringify(stored.format)}).`, {
      hint: 'Use the report file a previous benchmark-model run wrote.',
      file,
    });
  if (stored.provider && stored.provider !== provider)
    throw new StepError(`Baseline report ${file} was measured on ${stored.provider}, this run is on ${provider}.`, {
      hint: 'Compare runs on the same provider and runner.',
      file,
    });
  let samples = stored.latency?.find((l) => l.batch === batch)?.samples;
  if (!samples && stored.samplesFile) {
    const samplesFile = path.resolve(path.dirname(file), stored.samplesFile);
    if (!fs.existsSync(samplesFile)) {
      throw new StepError(
        `Baseline report ${file} keeps its raw samples in ${stored.samplesFile}, which does not exist (${samplesFile}).`,
        {
          hint: 'Keep the .samples.json file benchmark-model wrote beside the report (it is never embedded in a package), or pass baseline-model.',
          file,
        },
      );
    }
    const raw = readJson(samplesFile, 'baseline samples file') as { latency?: { batch: number; samples?: number[] }[] };
    samples = raw.latency?.find((l) => l.batch === batch)?.samples;
  }
  if (!samples?.length) {
    throw new StepError(
      `Baseline report ${file} has no latency samples for batch ${batch}${stored.samplesFile ? ` (nor its samples file ${stored.samplesFile})` : ''}.`,
      { hint: 'Use a report from benchmark-model measured at the same batch size, with its .samples.json file beside it.', file },
    );
  }
  return samples;
}

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new StepError(
      `Cannot read ${what} ${file}: ${error instanceof SyntaxError ? error.message : ((error as NodeJS.ErrnoException).code ?? String(error))}.`,
      { hint: 'Use the report file a previous benchmark-model run wrote.', file },
    );
  }
}
