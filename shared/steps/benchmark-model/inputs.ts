import { accuracyInputs } from '../../benchmark/accuracy-inputs';
import { mergeInputs } from '../../core/merge-inputs';
import { ONNXRUNTIME_NODE_VERSION } from '../../onnx/runtime';
import type { InputValues } from '../../core/step';

/** benchmark-model's inputs: kept apart from the definition so measure, gates and report can be typed by them. */
export const benchmarkInputs = mergeInputs(
  {
    model: { type: 'path', required: true, description: 'The ONNX model to benchmark.' },
    provider: {
      type: 'enum',
      options: ['auto', 'cuda', 'tensorrt', 'cpu'],
      default: 'auto',
      description:
        'Execution provider; the step fails if ONNX Runtime falls back from it. auto: the best that loads (tensorrt, cuda, cpu).',
    },
    deviceId: { type: 'number', integer: true, min: 0, default: 0, description: 'GPU index.' },
    threads: { type: 'number', integer: true, min: 0, default: 0, description: 'Intra-op threads (0: ONNX Runtime default).' },
    allowPartialFallback: {
      type: 'boolean',
      default: true,
      description: 'Accept some nodes on another provider (reported); false fails unless every node runs on the asked one.',
    },
    inputShape: {
      type: 'string',
      description: 'Sizes for dynamic axes of the first input, e.g. 1,3,512,512 (the batch axis follows batch-sizes).',
    },
    batchSizes: {
      type: 'list',
      description: 'Batch sizes to measure, one per line (default 1). Budgets and the regression gate use the first.',
    },
    warmup: { type: 'number', integer: true, min: 0, default: 10, description: 'Untimed runs before measuring.' },
    iterations: { type: 'number', integer: true, min: 1, default: 100, description: 'Timed runs per batch size.' },
    duration: { type: 'number', min: 0, description: 'Seconds to measure per batch size, instead of iterations.' },
    maxP95Ms: { type: 'number', min: 0, description: 'Fail when p95 latency (first batch size) exceeds this.' },
    maxP99Ms: { type: 'number', min: 0, description: 'Fail when p99 latency (first batch size) exceeds this.' },
    minThroughput: { type: 'number', min: 0, description: 'Fail when throughput (items/s, first batch size) is below this.' },
    preprocessing: {
      type: 'path',
      description: 'Preprocessing spec (JSON) the device package carries; with images, measures end-to-end latency.',
    },
    images: { type: 'path', description: 'Folder of images for end-to-end latency (decode + preprocessing + inference).' },
    referenceDir: { type: 'path', description: "Reference folder from export-onnx: the device's outputs must match PyTorch's." },
    referenceAtol: { type: 'number', min: 0, default: 1e-3, description: 'Absolute tolerance against the reference outputs.' },
    referenceRtol: { type: 'number', min: 0, default: 1e-2, description: 'Relative tolerance against the reference outputs.' },
    testImages: { type: 'path', description: 'Folder of test images for accuracy on the device (with test-masks or test-annotations).' },
  },
  accuracyInputs,
  {
    cloudMetric: {
      type: 'number',
      min: 0,
      max: 1,
      description: 'The metric the cloud evaluation reported for this model; the device must agree within metric-tolerance.',
    },
    cloudMetricName: {
      type: 'enum',
      options: ['dice', 'iou', 'map'],
      default: 'dice',
      description:
        "Which metric cloud-metric is: the metrics engine's headline dice or iou (segmentation), or COCO mAP@[.5:.95] (detection).",
    },
    metricTolerance: { type: 'number', min: 0, default: 0.01, description: 'Allowed absolute difference between device and cloud metric.' },
    baselineModel: { type: 'path', description: 'The production model: benchmarked interleaved with this one for the regression gate.' },
    baselineReport: {
      type: 'path',
      description: 'A benchmark report (JSON) from the same runner, when the baseline model is not at hand.',
    },
    regressionMargin: { type: 'number', min: 0, max: 100, default: 5, description: 'Slowdown in percent tolerated before the gate fails.' },
    confidence: { type: 'number', min: 0.5, max: 0.9999, default: 0.95, description: 'Confidence the gate needs to call a slowdown real.' },
    soakDuration: { type: 'number', min: 0, default: 0, description: 'Soak mode: seconds of back-to-back inference (0: off).' },
    soakWindow: { type: 'number', min: 0.1, default: 60, description: 'Seconds of the first and last soak windows compared.' },
    maxDriftPercent: { type: 'number', min: 0, default: 10, description: 'Soak: allowed median latency increase, first to last window.' },
    maxTailDriftPercent: {
      type: 'number',
      min: 0,
      default: 30,
      description:
        'Soak: allowed p95 and p99 latency increase, first to last window (gated when a window holds enough samples: 100 for p95, 500 for p99).',
    },
    maxRssGrowthMb: { type: 'number', min: 0, default: 64, description: 'Soak: allowed resident memory growth.' },
    maxGpuMemoryGrowthMb: { type: 'number', min: 0, default: 64, description: 'Soak: allowed GPU memory growth (nvidia-smi).' },
    failOnThrottle: { type: 'boolean', default: true, description: 'Soak: fail when the GPU reports thermal or hardware slowdown.' },
    gpuSampleMs: { type: 'number', integer: true, min: 100, default: 1000, description: 'Soak: nvidia-smi sampling interval.' },
    seed: { type: 'number', integer: true, min: 0, default: 0, description: 'Seed of the random inputs.' },
    onnxruntimePath: {
      type: 'path',
      description: 'An onnxruntime-node install to use (e.g. a CUDA-enabled one provisioned on the runner).',
    },
    installOnnxruntime: {
      type: 'boolean',
      default: false,
      description: 'Install onnxruntime-node (with CUDA providers for cuda/tensorrt) into the runner tool cache when none fits.',
    },
    onnxruntimeVersion: {
      type: 'string',
      default: ONNXRUNTIME_NODE_VERSION,
      description: 'onnxruntime-node version for the tool cache and install.',
    },
    dataFingerprint: {
      type: 'string',
      description:
        'Fingerprint of the data the model was trained and tested on (validate-data), recorded in the report so a device package can check it matches.',
    },
    report: {
      type: 'path',
      default: 'mlship-benchmark.json',
      description:
        'Where to write the report (JSON; compact: percentiles, fixed-bin histograms, summary statistics; usable as baseline-report later).',
    },
    galleryMax: {
      type: 'number',
      integer: true,
      min: 0,
      max: 200,
      default: 12,
      description:
        'Segmentation accuracy: most test images in the gallery of ground truth / device overlays written next to the report, worst first (0: no gallery).',
    },
    samplesFile: {
      type: 'path',
      description:
        'Where to write every raw latency sample (JSON, not embedded in device packages; baseline-report reads it). Default: the report path with .samples.json.',
    },
  },
);

export type BenchmarkInputs = InputValues<typeof benchmarkInputs>;
