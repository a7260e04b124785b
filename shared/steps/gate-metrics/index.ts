import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeOutputFile } from '../../core/output-file';
import type { StepContext } from '../../core/context';
import { InputError, StepError } from '../../core/errors';
import { sha256File } from '../../core/sha256';
import { defineStep } from '../../core/step';
import { pairedBootstrapParallel, type BootstrapResult } from '../../metrics/bootstrap';
import { loadGroundTruth, readJsonFile, type CocoGroundTruth } from '../../metrics/coco/load';
import {
  CocoParamsError,
  describeParams,
  parseCocoParams,
  STAT_NAMES,
  statSpecs,
  type CocoParams,
  type StatName,
} from '../../metrics/coco/params';
import { parseClassList, type ClassEntry } from '../../metrics/masks/classes';
import { countMaskFiles, pairMaskFolders } from '../../metrics/masks/evaluate';
import { EMPTY_RULES } from '../../metrics/masks/scores';
import {
  type Gallery,
  type GalleryBox,
  galleryParts,
  imageScore,
  writeDetectionGallery,
  writeSegmentationGallery,
} from '../../report/gallery';
import { cloudInputs, registryInputs } from '../../cloud/inputs';
import type { ModelRegistry } from '../../registry/types';
import { parseStoredMetrics } from './production-metrics';
import { registryProductionMetrics } from './production-registry';
import { writeSummary } from './report';
import { applyRules, fmt } from './rules';
import { scoreDetections, scoreMasks, sharedClasses, type ModelScores } from './scores';

const METRICS = [...STAT_NAMES, 'dice', 'iou'] as const;

export interface GateMetricsOptions {
  /** Opens the model registry for production-model (default: from the step's registry and cloud inputs); tests pass one bound to their servers. */
  openRegistry?: (ctx: StepContext) => ModelRegistry;
}

export const gateMetricsStep = createGateMetricsStep();

export function createGateMetricsStep(options: GateMetricsOptions = {}) {
  return defineStep({
    name: 'gate-metrics',
    title: 'Gate on model metrics',
    description:
      'Compares a candidate model with the production model on a test set (COCO mAP identical to pycocotools, or Dice/IoU of label masks) and fails on a metric floor, a maximum drop, a per-class drop, or a paired-bootstrap non-inferiority test.',
    azure: { id: '987f5977-8b13-470d-a5a4-8e467f237ead', major: 1, minor: 0, patch: 0, category: 'Test' },
    branding: { icon: 'check-circle', color: 'green' },
    inputs: {
      task: {
        type: 'enum',
        options: ['detection', 'segmentation'],
        default: 'detection',
        description: 'detection: COCO boxes or instance masks; segmentation: semantic label masks.',
      },
      groundTruth: {
        type: 'path',
        required: true,
        description: 'COCO instances JSON (detection) or folder of PNG/TIFF label masks (segmentation).',
      },
      candidatePredictions: {
        type: 'path',
        required: true,
        description: 'Candidate model output on the test set: COCO results JSON, or a folder of label masks named like the ground truth.',
      },
      productionPredictions: {
        type: 'path',
        description: 'Production model output on the same test set, same format. Needed for the bootstrap (margin).',
      },
      productionMetrics: {
        type: 'path',
        description:
          "Production model's stored metrics (this step's report, or `mlship eval --json` output), used when its predictions are not given.",
      },
      productionModel: {
        type: 'string',
        description:
          'Registry model name: gate against the stored metrics of its production version (registry and its inputs below), when predictions and a metrics file are not given.',
      },
      iouType: {
        type: 'enum',
        options: ['bbox', 'segm'],
        default: 'bbox',
        description: 'Detection: evaluate boxes (bbox) or instance masks (segm).',
      },
      maxDets: {
        type: 'string',
        default: '1,10,100',
        description:
          'Detection: COCOeval params.maxDets, at least three limits per image (sorted). AR1/AR10/AR100 and AP50..APl read the first three; AP reads 100, as pycocotools does, so it is -1 without a 100.',
      },
      iouThrs: {
        type: 'string',
        default: '0.5:0.95:0.05',
        description:
          'Detection: COCOeval params.iouThrs, start:stop:step (np.linspace, as pycocotools builds the default) or a list such as 0.5,0.75.',
      },
      areaRng: {
        type: 'string',
        default: 'all=0:1e10,small=0:1024,medium=1024:9216,large=9216:1e10',
        description:
          'Detection: COCOeval params.areaRng with its labels, label=low:high in square pixels. APs/APm/APl and ARs/ARm/ARl read the labels small, medium, large; the others read all.',
      },
      useCats: {
        type: 'boolean',
        default: true,
        description: 'Detection: COCOeval params.useCats; false matches detections to ground truth of any category (no per-class values).',
      },
      metric: {
        type: 'enum',
        options: METRICS,
        description:
          'Headline metric: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (detection; default AP) or dice, iou (segmentation; default dice).',
      },
      minMetric: { type: 'number', min: 0, max: 1, description: 'Floor: the candidate headline metric must be at least this (0..1).' },
      maxDrop: {
        type: 'number',
        min: 0,
        max: 1,
        description: 'Largest allowed drop of the headline metric from production to candidate (0.02 = 2 points).',
      },
      maxClassDrop: { type: 'number', min: 0, max: 1, description: 'Largest allowed drop of any single class (same scale).' },
      margin: {
        type: 'number',
        min: 0,
        max: 1,
        description:
          'Non-inferiority margin: fail when the lower bound of the bootstrap interval of (candidate − production) is below −margin.',
      },
      bootstrapResamples: {
        type: 'number',
        integer: true,
        min: 0,
        max: 100000,
        default: 1000,
        description: 'Paired bootstrap resamples of the test images (0 = no interval).',
      },
      confidence: { type: 'number', min: 0.5, max: 0.9999, default: 0.95, description: 'Two-sided level of the bootstrap interval.' },
      seed: {
        type: 'number',
        integer: true,
        min: 0,
        max: 4294967295,
        default: 1,
        description: 'Seed of the bootstrap generator (xoshiro128**); the same seed gives the same interval, whatever the thread count.',
      },
      threads: {
        type: 'number',
        integer: true,
        min: 0,
        max: 256,
        default: 0,
        description:
          'Worker threads for the bootstrap resamples; 0 = one per CPU core when the run is large (about half a second of work or more), 1 = no workers. The interval is the same either way.',
      },
      emptyRule: {
        type: 'enum',
        options: EMPTY_RULES,
        default: 'skip',
        description:
          "Segmentation: score of a class absent from an image's ground truth: skip (both empty → left out), one, zero, skip-empty-truth.",
      },
      classes: {
        type: 'list',
        description:
          'Segmentation: the labels to score, one per line, "value: name" or "name" (value = line position), as validate-data reads them. A listed label absent from every image is scored under the empty rule, as MONAI does. Default: every label in a ground truth or prediction.',
      },
      classesFile: {
        type: 'path',
        description:
          'Segmentation: a labels file giving the classes (one "name" or "value: name" per line; line position = value, as in the package labels.txt).',
      },
      binary: { type: 'boolean', default: false, description: 'Segmentation: any non-zero pixel is foreground (one class).' },
      includeBackground: { type: 'boolean', default: false, description: 'Segmentation: also score label 0.' },
      model: {
        type: 'path',
        description:
          'The candidate model file (ONNX) the candidate predictions came from; its sha256 goes into the report, so a device package can prove it ships the model that passed.',
      },
      dataFingerprint: {
        type: 'string',
        description: 'Fingerprint of the data the candidate was trained and tested on (validate-data), recorded in the report.',
      },
      reportFile: { type: 'path', default: 'gate-metrics-report.json', description: 'Where to write the JSON report.' },
      testImages: {
        type: 'path',
        description:
          "Folder of the test images (segmentation: same names as the masks; detection: the ground truth's images[].file_name); with it the step writes a gallery of ground truth / candidate / production overlays, worst regressions first, next to the report.",
      },
      galleryMax: { type: 'number', integer: true, min: 1, max: 200, default: 12, description: 'Most images in the gallery.' },
      failOnGate: {
        type: 'boolean',
        default: true,
        description: 'Fail the step when a rule fails; false only reports (output passed=false).',
      },
      ...cloudInputs,
      ...registryInputs,
    },
    outputs: {
      passed: { description: 'true when every rule that was set passed.' },
      candidateMetric: { description: 'Headline metric of the candidate.' },
      productionMetric: { description: 'Headline metric of production (empty without production).' },
      difference: { description: 'candidate − production.' },
      ciLower: { description: 'Lower bound of the bootstrap interval of the difference.' },
      ciUpper: { description: 'Upper bound of the bootstrap interval of the difference.' },
      report: { description: 'Path of the JSON report.' },
      gallery: { description: 'Folder of the prediction gallery (PNG overlays and gallery.json), when test-images is given.' },
    },
    async run(inputs, ctx) {
      const task = inputs.task;
      const metric = inputs.metric ?? (task === 'detection' ? 'AP' : 'dice');
      const L = (k: string) => ctx.inputLabel(k);
      if (task === 'detection' && !STAT_NAMES.includes(metric as StatName))
        throw new InputError(`Input "${L('metric')}" is "${metric}", which is not a detection metric.`, {
          hint: `Use one of ${STAT_NAMES.join(', ')}.`,
        });
      if (task === 'segmentation' && metric !== 'dice' && metric !== 'iou')
        throw new InputError(`Input "${L('metric')}" is "${metric}", which is not a segmentation metric.`, { hint: 'Use dice or iou.' });
      const hasProduction =
        inputs.productionPredictions !== undefined || inputs.productionMetrics !== undefined || inputs.productionModel !== undefined;
      for (const key of ['maxDrop', 'maxClassDrop'] as const) {
        if (inputs[key] !== undefined && !hasProduction)
          throw new InputError(
            `Input "${L(key)}" compares with production, but none of "${L('productionPredictions')}", "${L('productionMetrics')}" or "${L('productionModel')}" is given.`,
            { hint: "Give the production model's predictions on the test set, its stored metrics, or its name in the model registry." },
          );
      }
      if (inputs.margin !== undefined && inputs.productionPredictions === undefined) {
        throw new InputError(
          `Input "${L('margin')}" needs "${L('productionPredictions')}": the bootstrap resamples test images, so it needs both models' predictions on them.`,
          { hint: `Give the production predictions, or drop "${L('margin')}" and use "${L('maxDrop')}" with stored metrics.` },
        );
      }
      if (inputs.margin !== undefined && inputs.bootstrapResamples === 0)
        throw new InputError(`Input "${L('margin')}" needs a bootstrap, but "${L('bootstrapResamples')}" is 0.`, {
          hint: 'Use e.g. 1000 resamples.',
        });
      if (inputs.productionPredictions !== undefined && inputs.productionMetrics !== undefined)
        ctx.log.warning(`Both "${L('productionPredictions')}" and "${L('productionMetrics')}" are given; the predictions are used.`);
      if (inputs.productionModel !== undefined && (inputs.productionPredictions ?? inputs.productionMetrics) !== undefined)
        ctx.log.warning(
          `"${L('productionModel')}" is given with "${L(inputs.productionPredictions ? 'productionPredictions' : 'productionMetrics')}"; the registry is not read.`,
        );
      if ([inputs.minMetric, inputs.maxDrop, inputs.maxClassDrop, inputs.margin].every((v) => v === undefined))
        ctx.log.warning('No gate rule is set (min-metric, max-drop, max-class-drop, margin): the step only reports.');

      let candidate: ModelScores;
      let production: ModelScores | undefined;
      let params: CocoParams | undefined;
      let gallery: { dir: string; value: Gallery } | undefined;
      if (task === 'detection') {
        const iouType = inputs.iouType;
        const p = cocoParamsFromInputs(inputs, L);
        params = p;
        const specAt = statSpecs(p)[metric as StatName];
        if (specAt.maxDets === 100 && !p.maxDets.includes(100)) {
          throw new InputError(
            `Input "${L('metric')}" is ${metric}, which pycocotools' summarize() reads at maxDets=100, but "${L('maxDets')}" is ${p.maxDets.join(',')}: it would be -1.`,
            {
              hint: `Add 100 to "${L('maxDets')}" (e.g. 1,10,100,300), or gate on AP50, AP75 or AR100, which read maxDets[2] = ${p.maxDets[2]}.`,
            },
          );
        }
        const gtJson = readJsonFile(inputs.groundTruth, 'Ground-truth');
        const gt: CocoGroundTruth = await ctx.group('Load ground truth', async () => loadGroundTruth(gtJson, inputs.groundTruth, iouType));
        ctx.log.info(`Ground truth: ${gt.imgIds.length} images, ${gt.n} annotations, ${gt.catIds.length} categories (${iouType}).`);
        const candJson = readJsonFile(inputs.candidatePredictions, 'Candidate predictions');
        candidate = await ctx.group('Evaluate candidate', async () =>
          scoreDetections(gt, inputs.candidatePredictions, candJson, iouType, metric as StatName, p),
        );
        let prodJson: unknown;
        if (inputs.productionPredictions) {
          const file = inputs.productionPredictions;
          prodJson = readJsonFile(file, 'Production predictions');
          production = await ctx.group('Evaluate production', async () =>
            scoreDetections(gt, file, prodJson, iouType, metric as StatName, p),
          );
        }
        if (inputs.testImages) {
          // The JSON files are valid here: loadGroundTruth and scoreDetections checked every field they read.
          const raw = gtJson as {
            images: { id: number | string; file_name?: string }[];
            annotations: (GalleryBox & { image_id: number | string; category_id: number | string; iscrowd?: number })[];
            categories: { id: number | string; name?: string }[];
          };
          const byImage = (
            list: readonly {
              image_id: number | string;
              category_id: number | string;
              bbox: readonly number[];
              score?: number;
              iscrowd?: number;
            }[],
          ) => {
            const m = new Map<number | string, GalleryBox[]>();
            for (const d of list)
              if (!d.iscrowd) m.set(d.image_id, [...(m.get(d.image_id) ?? []), { bbox: d.bbox, category: d.category_id, score: d.score }]);
            return m;
          };
          const missing = raw.images.find((im) => !im.file_name);
          if (missing)
            throw new StepError(
              `${inputs.groundTruth}: image ${missing.id} has no file_name, so the gallery cannot find it in "${L('testImages')}".`,
              { file: inputs.groundTruth, hint: 'Give every images[] entry its file_name, or drop test-images.' },
            );
          const dir = inputs.reportFile.replace(/\.json$/i, '') + '-gallery';
          const images = inputs.testImages;
          const value = await ctx.group('Prediction gallery', () =>
            writeDetectionGallery({
              dir,
              imagesDir: images,
              images: raw.images.map((im) => ({ id: im.id, file: im.file_name! })),
              categories: new Map(raw.categories.map((c) => [c.id, c.name ?? String(c.id)])),
              groundTruth: byImage(raw.annotations),
              candidate: byImage(candJson as never),
              production: prodJson === undefined ? undefined : byImage(prodJson as never),
              max: inputs.galleryMax,
            }),
          );
          ctx.log.info(`Gallery: ${value.items.length} of ${value.total} images in ${path.relative(ctx.workspace, dir) || dir}`);
          gallery = { dir, value };
        }
      } else {
        const opts = { binary: inputs.binary, includeBackground: inputs.includeBackground, emptyRule: inputs.emptyRule };
        const candPairs = await pairMaskFolders(inputs.groundTruth, inputs.candidatePredictions);
        const prodPairs = inputs.productionPredictions
          ? await pairMaskFolders(inputs.groundTruth, inputs.productionPredictions)
          : undefined;
        const progress = (label: string) => (done: number, total: number) => ctx.progress({ label, done, total, unit: 'items' });
        const candCounts = await ctx.group('Score candidate masks', () =>
          countMaskFiles(candPairs, inputs.binary, progress('candidate masks')),
        );
        const prodCounts = prodPairs
          ? await ctx.group('Score production masks', () => countMaskFiles(prodPairs, inputs.binary, progress('production masks')))
          : undefined;
        const declared = await declaredClasses(inputs.classes, inputs.classesFile, L);
        const classes = declared
          ? declared.map((c) => c.index).filter((c) => inputs.includeBackground || c !== 0)
          : sharedClasses(prodCounts ? [candCounts, prodCounts] : [candCounts], inputs.includeBackground);
        const classNames = new Map(declared?.map((c) => [c.index, c.name]));
        const names = candPairs.map((p) => p.name);
        candidate = scoreMasks(names, candCounts, metric as 'dice' | 'iou', { ...opts, classes, classNames });
        if (prodCounts) production = scoreMasks(names, prodCounts, metric as 'dice' | 'iou', { ...opts, classes, classNames });
        if (inputs.testImages) {
          const m = metric as 'dice' | 'iou';
          const scores = names.map((name, i) => ({
            name,
            candidate: imageScore(candCounts[i], m, inputs.includeBackground),
            production: prodCounts ? imageScore(prodCounts[i], m, inputs.includeBackground) : null,
          }));
          const dir = inputs.reportFile.replace(/\.json$/i, '') + '-gallery';
          const byName = (pairs: { name: string; truth: string; prediction: string }[], key: 'truth' | 'prediction') =>
            new Map(pairs.map((p) => [p.name, p[key]]));
          const images = inputs.testImages;
          const value = await ctx.group('Prediction gallery', () =>
            writeSegmentationGallery({
              dir,
              imagesDir: images,
              groundTruth: byName(candPairs, 'truth'),
              candidate: byName(candPairs, 'prediction'),
              production: prodPairs && byName(prodPairs, 'prediction'),
              scores,
              metric,
              max: inputs.galleryMax,
            }),
          );
          ctx.log.info(`Gallery: ${value.items.length} of ${value.total} images in ${path.relative(ctx.workspace, dir) || dir}`);
          gallery = { dir, value };
        }
      }
      if (candidate.value < 0)
        throw new StepError(`The candidate's ${metric} is undefined: the ground truth ${inputs.groundTruth} has nothing to score for it.`, {
          hint: 'Check the test set has annotations in the area range/classes the metric uses.',
        });

      let productionValue: number | undefined = production?.value;
      let productionClasses = production?.perClass ?? null;
      let productionSource = production ? inputs.productionPredictions : undefined;
      if (!production && inputs.productionMetrics) {
        const file = inputs.productionMetrics;
        const stored = parseStoredMetrics(readJsonFile(file, 'Production metrics'), file, metric);
        const fp = stored.testSet?.fingerprint;
        if (fp !== undefined && fp !== candidate.testSet.fingerprint) {
          throw new StepError(
            `Production metrics ${file} were computed on a different test set (${stored.testSet?.images ?? '?'} images, fingerprint ${fp}) than ${inputs.groundTruth} (${candidate.testSet.images} images, fingerprint ${candidate.testSet.fingerprint}).`,
            {
              file,
              hint: 'Compare both models on the same test set: re-evaluate production on it, or pass its predictions.',
            },
          );
        }
        if (fp === undefined)
          ctx.log.warning(
            `Production metrics ${file} do not record their test set; make sure they were computed on ${inputs.groundTruth}.`,
          );
        productionValue = stored.value;
        productionClasses = stored.perClass;
        productionSource = file;
      } else if (!production && inputs.productionModel) {
        const model = inputs.productionModel;
        const open = options.openRegistry;
        const fromRegistry = await ctx.group('Production metrics from the model registry', () =>
          registryProductionMetrics(model, metric, inputs, ctx, open && (() => open(ctx))),
        );
        ctx.log.warning(
          `Production metrics from the registry do not record their test set; make sure ${fromRegistry.source} was evaluated on ${inputs.groundTruth}.`,
        );
        productionValue = fromRegistry.stored.value;
        productionClasses = fromRegistry.stored.perClass;
        productionSource = fromRegistry.source;
      }

      let bootstrap: BootstrapResult | undefined;
      if (production && inputs.bootstrapResamples > 0) {
        bootstrap = await ctx.group('Paired bootstrap', async () =>
          pairedBootstrapParallel(candidate.images!, candidate.weighted!, production!.weighted!, {
            resamples: inputs.bootstrapResamples,
            confidence: inputs.confidence,
            seed: inputs.seed,
            threads: inputs.threads,
          }),
        );
        ctx.log.info(
          `Bootstrap: ${metric} difference ${fmt(bootstrap.difference)}, ${Math.round(inputs.confidence * 1000) / 10}% interval [${fmt(bootstrap.lower)}, ${fmt(bootstrap.upper)}] over ${bootstrap.resamples} resamples (seed ${inputs.seed}, ${bootstrap.threads} thread${bootstrap.threads === 1 ? '' : 's'}).`,
        );
        if (bootstrap.dropped > 0) ctx.log.warning(`${bootstrap.dropped} resamples had no defined ${metric} and were left out.`);
      }

      const outcome = applyRules({
        metric,
        candidate: candidate.value,
        production: productionValue,
        candidateClasses: candidate.perClass,
        productionClasses,
        bootstrap,
        rules: { minMetric: inputs.minMetric, maxDrop: inputs.maxDrop, maxClassDrop: inputs.maxClassDrop, margin: inputs.margin },
        label: L,
      });
      ctx.log.info(
        `Candidate ${metric} ${fmt(candidate.value)}${productionValue !== undefined ? `, production ${fmt(productionValue)}` : ''}: gate ${outcome.passed ? 'passed' : 'failed'}.`,
      );

      const reportPath = inputs.reportFile;
      const modelSha256 = inputs.model
        ? await sha256File(inputs.model).catch((error: NodeJS.ErrnoException) => {
            throw new InputError(`Cannot read the model ${inputs.model} given in "${L('model')}": ${error.code ?? error.message}.`, {
              hint: 'Give the ONNX file the candidate predictions were made with.',
            });
          })
        : undefined;
      if (!inputs.model)
        ctx.log.warning(
          `"${L('model')}" is not given: the report does not name the model it gated, and build-device-package refuses to embed it unless that check is allowed to mismatch.`,
        );
      const report = {
        passed: outcome.passed,
        task,
        model: inputs.model ? { path: inputs.model, sha256: modelSha256 } : null,
        dataFingerprint: inputs.dataFingerprint ?? null,
        metric,
        iouType: task === 'detection' ? inputs.iouType : undefined,
        params: params ? describeParams(params) : undefined,
        candidate: {
          source: inputs.candidatePredictions,
          metric,
          value: candidate.value,
          perClass: candidate.perClass,
          testSet: candidate.testSet,
          details: candidate.details,
        },
        production:
          productionValue === undefined
            ? null
            : { source: productionSource, metric, value: productionValue, perClass: productionClasses, details: production?.details },
        difference: productionValue === undefined ? null : candidate.value - productionValue,
        bootstrap: bootstrap ?? null,
        rules: outcome.results,
        classes: outcome.classes,
        groundTruth: inputs.groundTruth,
        emptyRule: task === 'segmentation' ? inputs.emptyRule : undefined,
      };
      await writeOutputFile(reportPath, JSON.stringify(report, null, 2) + '\n', ctx.inputLabel('reportFile'));
      writeSummary(ctx.summary, { metric, candidate, production, productionValue, outcome, bootstrap, task });
      if (gallery) {
        const parts = galleryParts(gallery.value, gallery.dir, path.relative(ctx.workspace, gallery.dir) || gallery.dir);
        ctx.summary.rich(parts.html, parts.markdown);
      }
      ctx.log.info(`Report: ${path.relative(ctx.workspace, reportPath) || reportPath}`);

      const outputs = {
        passed: outcome.passed,
        candidateMetric: candidate.value,
        productionMetric: productionValue,
        difference: productionValue === undefined ? undefined : candidate.value - productionValue,
        ciLower: bootstrap?.lower,
        ciUpper: bootstrap?.upper,
        report: reportPath,
        gallery: gallery?.dir,
      };
      if (!outcome.passed && inputs.failOnGate) {
        const failures = outcome.results.filter((r) => !r.passed).map((r) => r.failure);
        throw new StepError(`Metrics gate failed: ${failures.join(' ')}`, {
          hint: `See the job summary and ${reportPath}; set "${L('failOnGate')}" to false to report without failing.`,
          outputs,
        });
      }
      return outputs;
    },
  });
}

/** COCOeval parameters from the step's inputs; an impossible set names the input and its value. */
function cocoParamsFromInputs(
  inputs: { maxDets: string; iouThrs: string; areaRng: string; useCats: boolean },
  L: (k: string) => string,
): CocoParams {
  try {
    return parseCocoParams({ maxDets: inputs.maxDets, iouThrs: inputs.iouThrs, areaRng: inputs.areaRng, useCats: inputs.useCats });
  } catch (error) {
    if (!(error instanceof CocoParamsError)) throw error;
    throw new InputError(`Input "${L(error.param)}" has value "${inputs[error.param]}": ${error.message}`, { hint: error.hint });
  }
}

/** The classes the user declared (input list, or a labels file), or undefined to score the labels present. */
async function declaredClasses(
  list: readonly string[],
  file: string | undefined,
  L: (k: string) => string,
): Promise<ClassEntry[] | undefined> {
  if (list.length && file)
    throw new InputError(`Inputs "${L('classes')}" and "${L('classesFile')}" are both given.`, { hint: 'Give the classes one way.' });
  let entries: ClassEntry[] | undefined;
  if (list.length) entries = parseClassList({ lines: list }, `input "${L('classes')}"`);
  else if (file) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      throw new StepError(
        `The labels file ${file} (input "${L('classesFile')}") cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}).`,
        { file, hint: 'Check the path; relative paths are resolved against the workspace.' },
      );
    }
    entries = parseClassList({ file, text }, `input "${L('classesFile')}"`);
  }
  return entries?.slice().sort((a, b) => a.index - b.index);
}
