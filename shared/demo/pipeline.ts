import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runDeviceAgent } from '../agent';
import { sha256File } from '../core/sha256';
import { Summary } from '../core/summary';
import { generateSigningKeyPair } from '../package';
import { createRegistry } from '../registry';
import { writeReleaseReport } from '../report/release-report';
import { benchmarkModelStep } from '../steps/benchmark-model';
import { buildDevicePackageStep } from '../steps/build-device-package';
import { gateMetricsStep } from '../steps/gate-metrics';
import { promoteReleaseStep } from '../steps/promote-release';
import { stageOtaStep } from '../steps/stage-ota';
import { submitTrainingStep } from '../steps/submit-training';
import { validateDataStep } from '../steps/validate-data';
import { generateCellDataset } from './cells';
import { predictMasks } from './predict';
import { DemoStepRunner } from './step-runner';

export interface DemoOptions {
  /** Everything the demo writes goes here; it is emptied first. */
  dir: string;
  print: (line: string) => void;
  /** Simulated instruments that follow the production channel. */
  devices?: number;
}

const MODEL = 'cellseg';
const CLASSES = '0: background\n1: cell';

/** Preprocessing the instrument applies before the model: raw 8-bit gray intensities (normalization is in the graph). */
const PREPROCESSING = { version: 1, color: 'gray', bitDepth: 8, maxValue: 1, mean: [0], std: [1], layout: 'NCHW', dtype: 'float32' };

/**
 * The whole release chain on embedded defaults, through the same step code CI runs: synthetic microscopy data,
 * validation, local training, the gate against the production model, CPU benchmark, a signed package, OTA
 * staging in a local folder, approved phased promotion, and simulated instruments that install it.
 */
export async function runDemo(options: DemoOptions): Promise<{ reportPath: string }> {
  const dir = path.resolve(options.dir);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const devices = options.devices ?? 20;
  const runner = new DemoStepRunner(dir, options.print, 15);
  const data = path.join(dir, 'data');
  const registryPath = path.join(dir, 'registry');
  const store = path.join(dir, 'ota');
  const keys = generateSigningKeyPair();
  const keyFile = path.join(dir, 'keys', 'release.pem');
  const publicKeyFile = path.join(dir, 'keys', 'release.pub.pem');
  fs.mkdirSync(path.dirname(keyFile), { recursive: true });
  fs.writeFileSync(keyFile, keys.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(publicKeyFile, keys.publicKeyPem);
  const preprocessingFile = path.join(dir, 'preprocessing.json');
  fs.writeFileSync(preprocessingFile, JSON.stringify(PREPROCESSING, null, 2) + '\n');
  const trainCommand = trainingCommand();
  const jobSpec = (name: string, steps: number) => {
    const file = path.join(dir, `${name}.job.yml`);
    fs.writeFileSync(
      file,
      [
        `name: ${name}`,
        'backend: local',
        `command: '${trainCommand}'`,
        'inputs:',
        `  train: ${path.join(data, 'train')}`,
        `  val: ${path.join(data, 'val')}`,
        `hyperparameters: { steps: ${steps}, hidden: 4, seed: 1 }`,
        'local:',
        `  jobsDir: ${path.join(dir, 'jobs')}`,
        '',
      ].join('\n'),
    );
    return file;
  };

  await runner.task('generate-data', 'Synthetic microscopy dataset', async () => {
    const { splits } = generateCellDataset(data);
    const md = new Summary()
      .heading('Synthetic cell images')
      .table(['split', 'images'], Object.entries(splits))
      .paragraph('96×96 8-bit fluorescence-like images with elliptical cells and their label masks (0 background, 1 cell).');
    return {
      value: undefined,
      markdown: md.toMarkdown(),
      detail: `${Object.values(splits).reduce((a, b) => a + b, 0)} images in train/val/test`,
    };
  });

  const validated = await runner.run(validateDataStep, {
    format: 'segmentation',
    train: path.join(data, 'train'),
    val: path.join(data, 'val'),
    test: path.join(data, 'test'),
    classes: CLASSES,
    reportFile: path.join(dir, 'reports', 'data.json'),
    fingerprintFile: path.join(dir, 'reports', 'data-fingerprint.json'),
  });
  const fingerprint = validated.outputs.fingerprint;

  // The release the instruments run today: a weaker model, already in production.
  // Both models are trained by the local backend and registered the same way; only the training length differs.
  const trainAndRegister = (spec: string, steps: number, jobName: string, meta: { label?: string; title: string }) =>
    runner.run(
      submitTrainingStep,
      {
        jobSpec: jobSpec(spec, steps),
        pollInterval: 0.2,
        register: true,
        modelName: MODEL,
        registry: 'local',
        registryPath,
        dataFingerprint: fingerprint,
        jobName,
      },
      meta,
    );
  const production = await trainAndRegister('cellseg-prod', 25, 'cellseg-production-baseline', {
    label: 'train-production',
    title: 'Production model (baseline, trained earlier)',
  });
  const registry = createRegistry('local', { root: registryPath });
  await registry.setStage(MODEL, production.outputs.modelVersion, 'production', {
    approval: 'approved',
    evidence: { approvers: [{ login: 'lab-lead', at: new Date().toISOString() }], source: 'cli' },
  });
  const productionPackage = await runner.run(
    buildDevicePackageStep,
    {
      models: path.join(production.outputs.modelUri, 'model.onnx'),
      name: MODEL,
      version: '1.0.0',
      preprocessing: preprocessingFile,
      labels: path.join(data, 'classes.json'),
      signingKey: keyFile,
      outputDir: path.join(dir, 'packages'),
      dataFingerprint: fingerprint,
    },
    { label: 'package-production', title: 'Production package 1.0.0' },
  );
  await runner.run(
    stageOtaStep,
    { package: productionPackage.outputs.archive, storeUri: store, channel: 'production', signingKey: keyFile },
    { label: 'ship-production', title: 'Production channel at 1.0.0' },
  );
  const fleet = Array.from({ length: devices }, (_, i) => `scope-${String(i + 1).padStart(3, '0')}`);
  const poll = async () => {
    const versions: Record<string, number> = {};
    for (const deviceId of fleet) {
      // The instruments name their model: 1.1.0 is built for biodevice-demo, and the agent checks that before installing.
      const report = await runDeviceAgent({
        channelUrl: `file://${path.join(store, 'channels', 'production.json')}`,
        deviceId,
        deviceModel: 'biodevice-demo',
        publicKey: keys.publicKeyPem,
        root: path.join(dir, 'devices', deviceId),
        once: true,
      });
      const active = report.activeSlot ? report.slots[report.activeSlot]?.version : undefined;
      versions[active ?? 'none'] = (versions[active ?? 'none'] ?? 0) + 1;
    }
    return versions;
  };
  await poll();

  const candidate = await trainAndRegister('cellseg', 300, 'cellseg-candidate', { title: 'Train the candidate (local backend)' });
  const candidateModel = path.join(candidate.outputs.modelUri, 'model.onnx');
  const productionModel = path.join(production.outputs.modelUri, 'model.onnx');

  await runner.task('predict-test-split', 'Predictions on the test split', async () => {
    const n = await predictMasks(candidateModel, path.join(data, 'test', 'images'), path.join(dir, 'predictions', 'candidate'));
    await predictMasks(productionModel, path.join(data, 'test', 'images'), path.join(dir, 'predictions', 'production'));
    return {
      value: n,
      markdown: new Summary()
        .paragraph(`Both models segmented the ${n} test images in ONNX Runtime (CPU); the masks are what the gate compares.`)
        .toMarkdown(),
      detail: `${n} images × 2 models in ONNX Runtime`,
    };
  });

  const gate = await runner.run(gateMetricsStep, {
    task: 'segmentation',
    groundTruth: path.join(data, 'test', 'masks'),
    candidatePredictions: path.join(dir, 'predictions', 'candidate'),
    productionPredictions: path.join(dir, 'predictions', 'production'),
    metric: 'dice',
    minMetric: 0.7,
    maxDrop: 0.02,
    margin: 0.02,
    bootstrapResamples: 500,
    seed: 7,
    model: candidateModel,
    dataFingerprint: fingerprint,
    reportFile: path.join(dir, 'reports', 'gate.json'),
    testImages: path.join(data, 'test', 'images'),
  });

  const benchmark = await runner.run(benchmarkModelStep, {
    model: candidateModel,
    provider: 'cpu',
    // Latency at the instrument's full field of view; a 96×96 tile runs in ~0.1 ms, where scheduler noise on a
    // shared 2-core runner would swamp the regression gate's comparison.
    inputShape: '1,1,512,512',
    warmup: 5,
    iterations: 60,
    preprocessing: preprocessingFile,
    testImages: path.join(data, 'test', 'images'),
    testMasks: path.join(data, 'test', 'masks'),
    segmentationMode: 'threshold',
    threshold: 0.5,
    cloudMetric: gate.outputs.candidateMetric,
    cloudMetricName: 'dice',
    metricTolerance: 0.01,
    baselineModel: productionModel,
    regressionMargin: 25,
    dataFingerprint: fingerprint,
    report: path.join(dir, 'reports', 'benchmark.json'),
  });

  const pkg = await runner.run(buildDevicePackageStep, {
    models: candidateModel,
    name: MODEL,
    version: '1.1.0',
    releaseNotes: 'Candidate trained with 300 steps; better Dice on the test split than 1.0.0.',
    preprocessing: preprocessingFile,
    labels: path.join(data, 'classes.json'),
    deviceModel: 'biodevice-demo',
    signingKey: keyFile,
    trainingJob: candidate.outputs.jobName,
    dataFingerprint: fingerprint,
    gateReport: gate.outputs.report,
    benchmarkReport: benchmark.outputs.report,
    // Golden vectors for the instrument's self-test: four test images, their tensors and the expected outputs.
    goldenImages: path.join(data, 'test', 'images'),
    outputDir: path.join(dir, 'packages'),
  });

  await runner.run(stageOtaStep, {
    package: pkg.outputs.archive,
    storeUri: store,
    channel: 'staging',
    rolloutPercent: 100,
    signingKey: keyFile,
  });

  const promoteInputs = {
    from: 'staging',
    to: 'production',
    storeUri: store,
    signingKey: keyFile,
    requireApproval: true,
    approvedBy: 'grace:reviewed gate and benchmark',
    phases: '10,100',
    registry: 'local',
    registryPath,
    modelName: MODEL,
    modelVersion: candidate.outputs.modelVersion,
  };
  // Each rollout phase, then what the instruments run once they have polled the channel.
  const promotePhase = async (phase: number, percent: string, who: string, fleetLabel: string) => {
    await runner.run(
      promoteReleaseStep,
      { ...promoteInputs, phase },
      { label: `promote-${percent}`, title: `Promote to production: ${who}` },
    );
    return runner.task(`devices-${fleetLabel}`, `Instruments after the ${percent} phase`, async () => {
      const v = await poll();
      return { value: v, markdown: fleetTable(v), detail: describeFleet(v) };
    });
  };
  const canary = await promotePhase(1, '10%', '10% of instruments', 'canary');
  const all = await promotePhase(2, '100%', 'all instruments', 'all');

  const reportPath = path.join(dir, 'release-report.html');
  writeReleaseReport(reportPath, {
    title: `Release ${MODEL} 1.1.0`,
    subtitle: `local demo · gate Dice ${Number(gate.outputs.candidateMetric).toFixed(3)} vs ${Number(gate.outputs.productionMetric).toFixed(3)} · ${canary['1.1.0'] ?? 0}/${devices} then ${all['1.1.0'] ?? 0}/${devices} instruments on 1.1.0`,
    generatedAt: new Date().toISOString(),
    provenance: [
      { label: 'commit', value: gitCommit() },
      { label: 'data fingerprint', value: fingerprint },
      { label: 'candidate model (1.1.0)', value: `sha256:${await sha256File(candidateModel)}` },
      { label: 'production model (1.0.0)', value: `sha256:${await sha256File(productionModel)}` },
      { label: 'package', value: `${path.basename(pkg.outputs.archive)} sha256:${pkg.outputs.sha256}` },
    ],
    sections: runner.sections,
  });
  return { reportPath };
}

/** The commit the demo runs from (GITHUB_SHA in CI, else git), so the report says which code produced it. */
function gitCommit(): string {
  if (process.env.GITHUB_SHA) return process.env.GITHUB_SHA;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'not a git checkout';
  }
}

function fleetTable(versions: Record<string, number>): string {
  return new Summary().heading('Installed versions').table(['version', 'instruments'], Object.entries(versions).sort()).toMarkdown();
}

function describeFleet(versions: Record<string, number>): string {
  return Object.entries(versions)
    .sort()
    .map(([v, n]) => `${n} on ${v}`)
    .join(', ');
}

/**
 * How the local backend starts the demo's training script: the compiled CLI ships it as lib/train-cells.js beside
 * itself; from the sources it is the TypeScript file, transpiled on load.
 */
function trainingCommand(): string {
  const compiled = path.join(__dirname, 'train-cells.js');
  if (!__filename.endsWith('.ts') && fs.existsSync(compiled)) return `"${process.execPath}" "${compiled}"`;
  return `"${process.execPath}" -r "${require.resolve('esbuild-register')}" "${path.resolve(__dirname, 'train-cells.ts')}"`;
}
