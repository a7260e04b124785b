import { StepError } from '../../core/errors';
import { defineStep } from '../../core/step';
import type { SplitName } from '../../validate/dataset';
import { writeFileAtomic } from '../../core/atomic-write';
import { displayPath } from '../../validate/files';
import { writeManifest } from '../../validate/fingerprint';
import { describeExample, failureMessage, writeSummary } from '../../validate/report';
import { validateDataset } from '../../validate/validate';

export const validateDataStep = defineStep({
  name: 'validate-data',
  title: 'Validate dataset',
  description:
    'Checks a vision dataset (COCO, YOLO, Pascal VOC or segmentation masks) for broken annotations, bad images and geometry, leakage between splits, class balance and drift, and writes a dataset fingerprint.',
  azure: { id: '55b64e32-0b0d-4298-acb6-cd0a14bd5a29', major: 1, minor: 0, patch: 0, category: 'Test' },
  branding: { icon: 'check-square', color: 'green' },
  inputs: {
    format: {
      type: 'enum',
      options: ['coco', 'yolo', 'voc', 'segmentation'],
      required: true,
      description: 'Dataset format: coco, yolo, voc or segmentation (image + label-mask folders).',
    },
    train: {
      type: 'path',
      description:
        'Train split: COCO JSON file, YOLO images folder or .txt list, VOC XML folder or ImageSets .txt, or a segmentation folder with images/ and masks/.',
    },
    val: { type: 'path', description: 'Validation split, same kind as train.' },
    test: { type: 'path', description: 'Test split, same kind as train.' },
    dataYaml: { type: 'path', description: 'YOLO data.yaml (class names, and the splits when train/val/test are not given).' },
    imagesRoot: {
      type: 'path',
      description:
        'COCO/VOC: folder image file names are relative to; "{split}" is replaced by the split name. Default: beside the annotation file (VOC: ../JPEGImages).',
    },
    classes: {
      type: 'list',
      description:
        'Class list, one per line: "name" (value = position) or "value: name". Required for segmentation; overrides YOLO names; VOC objects outside it are errors.',
    },
    minBoxSize: {
      type: 'number',
      min: 0,
      default: 1,
      description: 'Boxes narrower or shorter than this many pixels are reported (warning). 0 turns the check off.',
    },
    maxImbalance: {
      type: 'number',
      min: 1,
      default: 100,
      description: 'Largest allowed ratio between the most and least frequent class in a split.',
    },
    maxUnlabeledShare: {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.5,
      description: 'Largest allowed share of images without any label in a split.',
    },
    maxEmptyMaskShare: {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.5,
      description: 'Largest allowed share of segmentation masks holding only background (value 0).',
    },
    crossSplitDuplicates: {
      type: 'enum',
      options: ['error', 'warning'],
      default: 'error',
      description: 'Severity of byte-identical images found in two splits.',
    },
    baseline: {
      type: 'path',
      description: 'report.json of an earlier run: class and image-property distributions are compared with it (drift).',
    },
    maxPsi: {
      type: 'number',
      min: 0,
      default: 0.2,
      description: 'Population stability index above which a distribution counts as drifted.',
    },
    chiSquareAlpha: {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.001,
      description: 'p-value below which the chi-square test flags class drift.',
    },
    sampleSize: {
      type: 'number',
      integer: true,
      min: 0,
      default: 200,
      description: 'Images per split decoded to measure brightness and contrast (chosen by content hash, so stable across runs).',
    },
    fullDecode: {
      type: 'boolean',
      default: false,
      description: 'Decode every image fully instead of reading headers only (slower; finds corrupt pixel data).',
    },
    threads: { type: 'number', integer: true, min: 0, default: 0, description: 'Hashing threads; 0 = one per CPU core.' },
    failOn: {
      type: 'enum',
      options: ['error', 'warning', 'never'],
      default: 'error',
      description: 'Fail the step on any error, on any warning too, or never.',
    },
    reportFile: {
      type: 'path',
      default: '.mlship/validate-data/report.json',
      description: 'Where to write the JSON report (also usable as a later baseline).',
    },
    fingerprintFile: {
      type: 'path',
      default: '.mlship/validate-data/fingerprint.json',
      description: 'Where to write the dataset manifest (path, size, sha256 of every file per split) and its digest.',
    },
  },
  outputs: {
    passed: { description: '"true" when the dataset passed under fail-on.' },
    errors: { description: 'Number of error findings.' },
    warnings: { description: 'Number of warning findings.' },
    fingerprint: { description: 'Dataset digest, "sha256:…": the same for the same files, names and splits.' },
    report: { description: 'Path of the JSON report.' },
    fingerprintFile: { description: 'Path of the fingerprint manifest.' },
  },
  async run(inputs, ctx) {
    const splits: Partial<Record<SplitName, string>> = { train: inputs.train, val: inputs.val, test: inputs.test };
    const { report, manifest } = await ctx.group('Validate dataset', () =>
      validateDataset(
        {
          format: inputs.format,
          splits,
          dataYaml: inputs.dataYaml,
          imagesRoot: inputs.imagesRoot,
          classes: inputs.classes,
          minBoxSize: inputs.minBoxSize,
          maxImbalance: inputs.maxImbalance,
          maxUnlabeledShare: inputs.maxUnlabeledShare,
          maxEmptyMaskShare: inputs.maxEmptyMaskShare,
          crossSplitSeverity: inputs.crossSplitDuplicates,
          baseline: inputs.baseline,
          drift: { maxPsi: inputs.maxPsi, chiSquareAlpha: inputs.chiSquareAlpha },
          sampleSize: inputs.sampleSize,
          fullDecode: inputs.fullDecode,
          threads: inputs.threads,
          failOn: inputs.failOn,
          workspace: ctx.workspace,
        },
        { progress: (r) => ctx.progress(r), info: (m) => ctx.log.info(m), warning: (m) => ctx.log.warning(m), signal: ctx.signal },
      ),
    );
    await writeManifest(inputs.fingerprintFile, manifest);
    await writeFileAtomic(inputs.reportFile, JSON.stringify(report, null, 2) + '\n');
    const shownReport = displayPath(ctx.workspace, inputs.reportFile);
    writeSummary(ctx.summary, report, { report: shownReport, fingerprint: displayPath(ctx.workspace, inputs.fingerprintFile) });

    for (const check of report.checks) {
      if (check.count === 0) continue;
      const first = check.examples[0];
      const text = `${check.id}: ${check.count} finding(s). First: ${first ? describeExample(check.id, first).replace(/^\[[^\]]+\] /, '') : ''}`;
      const annotation = first?.file ? { file: first.file, line: first.line, column: first.column, title: check.id } : undefined;
      if (check.severity === 'error') ctx.log.error(text, annotation);
      else ctx.log.warning(text, annotation);
    }
    ctx.log.info(`Fingerprint ${manifest.digest} (${manifest.files} files).`);
    if (!report.passed) {
      throw new StepError(failureMessage(report), {
        hint: `All findings are in ${shownReport}. Fix the data, raise the limit named in the message, or set ${ctx.inputLabel('failOn')} to never to report without failing.`,
      });
    }
    return {
      passed: String(report.passed),
      errors: report.errors,
      warnings: report.warnings,
      fingerprint: manifest.digest,
      report: inputs.reportFile,
      fingerprintFile: inputs.fingerprintFile,
    };
  },
});
