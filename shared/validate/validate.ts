import * as path from 'node:path';
import { InputError, isStepError, StepError } from '../core/errors';
import type { Sharp } from '../preprocess/sharp-loader';
import { loadSharp } from '../preprocess/sharp-loader';
import type { ProgressReport } from '../core/host';
import type { CheckId, Severity } from './checks';
import { Findings } from './checks';
import type {
  DataFile,
  DatasetFormat,
  ImageRef,
  LoadedDataset,
  LoadedSplit,
  LoaderContext,
  LoadOptions,
  ProbedImage,
  SplitName,
} from './dataset';
import { parseClassList, SPLITS } from './dataset';
import { checkDistribution } from './distribution';
import type { DriftThresholds, MeasuredImage } from './drift';
import { compareDrift, measureProperties, readBaseline } from './drift';
import { defaultThreads, probeFiles } from './file-pool';
import { displayPath } from './files';
import type { DatasetManifest, HashedFile } from './fingerprint';
import { buildManifest } from './fingerprint';
import { loadCoco } from './formats/coco';
import { loadSegmentation } from './formats/segmentation';
import { loadVoc } from './formats/voc';
import { loadYolo, readDataYaml } from './formats/yolo';
import type { ImageRecord } from './image-checks';
import { checkImages, decodeImages, interpretProbe } from './image-checks';
import { checkLeakage } from './leakage';
import type { FailOn, SplitReport, ValidationReport } from './report';
import { passes, totals } from './report';

export interface ValidateOptions {
  format: DatasetFormat;
  /** Absolute paths: COCO JSON file, YOLO image folder or list, VOC XML folder or list, segmentation split folder. */
  splits: Partial<Record<SplitName, string>>;
  dataYaml?: string;
  imagesRoot?: string;
  classes: string[];
  minBoxSize: number;
  maxImbalance: number;
  maxUnlabeledShare: number;
  maxEmptyMaskShare: number;
  /** Severity of leakage.cross-split. */
  crossSplitSeverity: Severity;
  baseline?: string;
  drift: DriftThresholds;
  sampleSize: number;
  fullDecode: boolean;
  /** Worker threads for hashing; 0 = one per core. */
  threads: number;
  failOn: FailOn;
  /** Findings' file paths are shown relative to it. */
  workspace: string;
  maxExamples?: number;
}

export interface ValidateHooks {
  progress?(report: ProgressReport): void;
  info?(message: string): void;
  warning?(message: string): void;
  signal?: AbortSignal;
}

export interface ValidationResult {
  report: ValidationReport;
  manifest: DatasetManifest;
}

/** Runs every check on a dataset and fingerprints it; pure of any CI platform, so tests and other steps can call it. */
export async function validateDataset(options: ValidateOptions, hooks: ValidateHooks = {}): Promise<ValidationResult> {
  const overrides: Partial<Record<CheckId, Severity>> = { 'leakage.cross-split': options.crossSplitSeverity };
  const findings = new Findings(options.maxExamples ?? 5, overrides);
  const display = (file: string) => displayPath(options.workspace, file);
  const threads = options.threads || defaultThreads();
  const loadOptions: LoadOptions = {
    imagesRoot: options.imagesRoot,
    classes: options.classes,
    minBoxSize: options.minBoxSize,
    maxEmptyMaskShare: options.maxEmptyMaskShare,
  };
  const ctx: LoaderContext = {
    findings,
    options: loadOptions,
    display,
    progress: (label, done, total, unit) => hooks.progress?.({ label, done, total, unit }),
    signal: hooks.signal,
  };

  const dataset = await loadDataset(options, ctx);
  for (const s of dataset.splits)
    hooks.info?.(`${s.split}: ${s.stats.images} images, ${s.stats.annotations} ${dataset.format === 'segmentation' ? 'masks' : 'labels'}`);

  const refs = dataset.splits.flatMap((s) => s.images);
  const { records, digests } = await probeDataset(dataset, refs, threads, hooks, display);

  if (options.fullDecode) {
    await decodeImages(
      refs,
      records,
      threads,
      (done, total) => hooks.progress?.({ label: 'decode images', done, total, unit: 'items' }),
      hooks.signal,
    );
  }
  checkImages(refs, records, findings, display);
  const probed = (file: string): ProbedImage | undefined => {
    const r = records.get(file);
    return r && !r.problem ? r : undefined;
  };
  for (const s of dataset.splits) await s.finish?.({ probed });

  checkLeakage(refs, records, findings, display);
  checkDistribution(
    dataset.splits,
    dataset.classes,
    { maxImbalance: options.maxImbalance, maxUnlabeledShare: options.maxUnlabeledShare, checkUnlabeled: dataset.format !== 'segmentation' },
    findings,
  );

  const sharp = options.sampleSize > 0 ? optionalSharp(hooks) : undefined;
  const splits: Record<string, SplitReport> = {};
  for (const s of dataset.splits) {
    splits[s.split] = {
      ...s.stats,
      properties: await measureProperties(measurable(s, records), options.sampleSize, threads, sharp, hooks.signal),
    };
  }
  let drift: ValidationReport['drift'];
  if (options.baseline) {
    const baseline = await readBaseline(options.baseline, display(options.baseline));
    drift = {
      baseline: display(options.baseline),
      thresholds: options.drift,
      splits: compareDrift({ splits }, baseline, options.drift, findings),
    };
  }

  // Walked twice by buildManifest (common root, then entries) rather than copied into a list per image.
  const hashed: Iterable<HashedFile> = {
    *[Symbol.iterator]() {
      for (const s of dataset.splits) {
        for (const ref of s.images) {
          const r = records.get(ref.path);
          if (r?.sha256 !== undefined && r.size !== undefined)
            yield { split: s.split, role: ref.role, path: ref.path, size: r.size, sha256: r.sha256 };
        }
        for (const f of s.files) yield* digested(s.split, f, digests);
      }
      for (const f of dataset.sharedFiles) yield* digested('shared', f, digests);
    },
  };
  const manifest = buildManifest(hashed);

  const checks = findings.results();
  const { errors, warnings } = totals(checks);
  const report: ValidationReport = {
    version: 1,
    tool: 'mlship validate-data',
    format: dataset.format,
    passed: passes(options.failOn, errors, warnings),
    failOn: options.failOn,
    errors,
    warnings,
    checks,
    classes: dataset.classes,
    classCountUnit: dataset.format === 'segmentation' ? 'images' : 'instances',
    splits,
    drift,
    fingerprint: { digest: manifest.digest, files: manifest.files, bytes: manifest.bytes },
  };
  if (!drift) delete report.drift;
  return { report, manifest };
}

/**
 * One streaming pass over every file: sha256 for leakage and the fingerprint, header checks for images. The
 * job list lives only as long as this call; what is kept per image is its record.
 */
async function probeDataset(
  dataset: LoadedDataset,
  refs: readonly ImageRef[],
  threads: number,
  hooks: ValidateHooks,
  display: (file: string) => string,
) {
  const imagePaths = [...new Set(refs.map((r) => r.path))];
  const dataFiles = [...new Set([...dataset.splits.flatMap((s) => s.files), ...dataset.sharedFiles].map((f) => f.path))];
  const records = new Map<string, ImageRecord>();
  const digests = new Map<string, { size: number; sha256: string }>();
  const jobs = [...imagePaths.map((p) => ({ path: p, head: true })), ...dataFiles.map((p) => ({ path: p, head: false }))];
  const every = Math.max(1, Math.floor(jobs.length / 200));
  const onProgress = (done: number, total: number) => {
    if (done % every === 0 || done === total) hooks.progress?.({ label: 'hash and check headers', done, total, unit: 'items' });
  };
  await probeFiles(jobs, { threads, signal: hooks.signal, onProgress }, (probe, index) => {
    if (jobs[index].head) records.set(probe.path, interpretProbe(probe));
    else if (probe.error)
      throw new StepError(`Cannot read ${display(probe.path)} (${probe.error.code}) while fingerprinting it.`, {
        hint: 'Keep the dataset unchanged while the step runs.',
        file: display(probe.path),
      });
    else digests.set(probe.path, { size: probe.size ?? 0, sha256: probe.sha256 ?? '' });
  });
  return { records, digests };
}

/**
 * Brightness and contrast need pixel decoding (sharp, a native module the bundled actions load at run time).
 * Without it the integrity checks still run in full; only the sampled image statistics are left out, and the
 * log says so.
 */
function optionalSharp(hooks: ValidateHooks): Sharp | undefined {
  try {
    return loadSharp();
  } catch (error) {
    if (!isStepError(error)) throw error;
    hooks.warning?.(
      `Brightness and contrast are not measured (drift.brightness / drift.contrast skipped): ${error.message} ${error.hint ?? ''}`.trim(),
    );
    return undefined;
  }
}

function* digested(split: string, file: DataFile, digests: ReadonlyMap<string, { size: number; sha256: string }>): Generator<HashedFile> {
  const d = digests.get(file.path);
  if (d) yield { split, role: file.role, path: file.path, size: d.size, sha256: d.sha256 };
}

/** A split's measurable images, each file once, made as they are read rather than kept in a list. */
function* measurable(split: LoadedSplit, records: ReadonlyMap<string, ImageRecord>): Generator<MeasuredImage> {
  const seen = new Set<string>();
  for (const r of split.images) {
    const record = records.get(r.path);
    if (r.role !== 'image' || !record?.header || !record.sha256 || record.problem || seen.has(r.path)) continue;
    seen.add(r.path);
    yield { path: r.path, header: record.header, sha256: record.sha256 };
  }
}

async function loadDataset(options: ValidateOptions, ctx: LoaderContext): Promise<LoadedDataset> {
  const given = SPLITS.filter((s) => options.splits[s]);
  const declared = parseClassList(options.classes);
  const values = new Set<number>();
  for (const c of declared) {
    if (values.has(c.value))
      throw new InputError(`The class list gives value ${c.value} twice (second time as "${c.name}").`, {
        hint: 'Give each class once, as "name" or "value: name".',
      });
    values.add(c.value);
  }
  const splits: LoadedSplit[] = [];
  switch (options.format) {
    case 'coco': {
      requireSplits(given, 'a COCO annotation JSON file');
      const names: string[] = [];
      for (const split of given) {
        const { loaded, categories } = await loadCoco(split, options.splits[split] as string, ctx);
        splits.push(loaded);
        for (const c of categories) if (!names.includes(c)) names.push(c);
      }
      return { format: 'coco', classes: names, splits, sharedFiles: [] };
    }
    case 'yolo': {
      const config = options.dataYaml ? await readDataYaml(options.dataYaml, ctx) : undefined;
      const names = declared.length > 0 ? byValue(declared) : config?.names;
      if (!names || names.length === 0) {
        // The reason data.yaml could not be read (a syntax error, an alias bomb) is its parse-error finding.
        const reason = ctx.findings.results().find((r) => r.id === 'structure.parse-error' && r.count > 0)?.examples[0]?.message;
        throw new StepError(
          options.dataYaml && !config
            ? `${ctx.display(options.dataYaml)} could not be read, so the YOLO class names are unknown.${reason ? ` ${reason}.` : ''}`
            : 'The YOLO class names are unknown.',
          {
            hint: 'Give data-yaml with a valid `names` list, or the classes input (one name per line, in class-index order).',
            file: options.dataYaml ? ctx.display(options.dataYaml) : undefined,
          },
        );
      }
      const sources = SPLITS.map((s) => [s, options.splits[s] ? [options.splits[s] as string] : (config?.splits[s] ?? [])] as const).filter(
        ([, list]) => list.length > 0,
      );
      if (sources.length === 0 && options.dataYaml) {
        throw new StepError(
          `No split to validate: ${ctx.display(options.dataYaml)} sets no usable train, val or test path, and none is given as an input.`,
          {
            hint: 'Set train/val/test in data.yaml to image folders (or .txt lists), or give train as an input.',
            file: ctx.display(options.dataYaml),
          },
        );
      }
      if (sources.length === 0) requireSplits([], 'a YOLO images folder (or set train/val/test in data.yaml)');
      for (const [split, list] of sources) splits.push(await loadYolo(split, list, names, ctx));
      return {
        format: 'yolo',
        classes: names.filter((n) => n !== undefined),
        splits,
        sharedFiles: options.dataYaml ? [{ path: options.dataYaml, role: 'config' }] : [],
      };
    }
    case 'voc': {
      requireSplits(given, 'a folder of VOC XML files (or an ImageSets .txt list)');
      const names = declared.map((c) => c.name);
      const seen: string[] = [];
      for (const split of given) {
        const result = await loadVoc(split, options.splits[split] as string, names, ctx);
        splits.push(result.loaded);
        for (const n of result.seen) if (!seen.includes(n)) seen.push(n);
      }
      return { format: 'voc', classes: names.length > 0 ? names : seen, splits, sharedFiles: [] };
    }
    case 'segmentation': {
      requireSplits(given, 'a split folder with images/ and masks/');
      if (declared.length === 0) {
        throw new InputError('Segmentation masks need the class list to know which label values are valid.', {
          hint: 'Set classes, one per line: "0: background", "1: nucleus", … (or names in value order).',
        });
      }
      for (const split of given) splits.push(await loadSegmentation(split, options.splits[split] as string, declared, ctx));
      return { format: 'segmentation', classes: declared.filter((c) => c.value !== 0).map((c) => c.name), splits, sharedFiles: [] };
    }
  }
}

/** YOLO class index = position; "3: name" entries place a name at index 3. */
function byValue(declared: readonly { value: number; name: string }[]): string[] {
  const out: string[] = [];
  for (const c of declared) out[c.value] = c.name;
  return out;
}

function requireSplits(given: readonly SplitName[], what: string): void {
  if (given.length > 0) return;
  throw new InputError(`No split given: set at least one of train, val or test to ${what}.`, {
    hint: `e.g. train: ${path.join('data', 'train')}`,
  });
}
