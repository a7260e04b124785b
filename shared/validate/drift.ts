import * as fs from 'node:fs/promises';
import { StepError } from '../core/errors';
import type { Sharp } from '../preprocess/sharp-loader';
import type { Findings } from './checks';
import { mapLimit } from './files';
import type { ImageHeader } from './image-header';
import type { ChiSquare, MeanStd } from './statistics';
import { chiSquareHomogeneity, histogram, meanStd, psi } from './statistics';
import { parseJsonBounded } from '../core/json-depth';

/** Image-property distribution of one split, kept in the report so a later run can compare against it. */
export interface SplitProperties {
  images: number;
  width: MeanStd;
  height: MeanStd;
  /** Images per log2(pixel count), in half steps ("20.0" = 1024×1024). */
  sizeBins: Record<string, number>;
  /** Images whose pixels were measured: the `sampleSize` with the smallest sha256, so the sample is stable. */
  sample: number;
  /** Per-image mean luminance in [0, 1]: its mean and std over the sample. */
  brightness: MeanStd;
  /** Per-image luminance standard deviation in [0, 1]. */
  contrast: MeanStd;
  /** 16 bins over [0, 1]. */
  brightnessBins: number[];
  /** 16 bins over [0, 0.5]. */
  contrastBins: number[];
}

export interface MeasuredImage {
  path: string;
  header: ImageHeader;
  sha256: string;
}

/** sharp has no BMP decoder; those images count for size but not for brightness. */
const DECODABLE = new Set(['png', 'jpeg', 'tiff', 'webp']);

/** `sharp` undefined: sizes only (the sample is reported as 0 images). */
export async function measureProperties(
  images: Iterable<MeasuredImage>,
  sampleSize: number,
  concurrency: number,
  sharp: Sharp | undefined,
  signal?: AbortSignal,
): Promise<SplitProperties> {
  const sizeBins: Record<string, number> = {};
  const widths: number[] = [];
  const heights: number[] = [];
  // The sample: distinct decodable images with the smallest sha256, kept sorted while the images go by, so
  // only `sampleSize` of them are held however large the split is.
  const sample: MeasuredImage[] = [];
  const limit = sharp ? sampleSize : 0;
  for (const im of images) {
    const { header } = im;
    const bin = (Math.round(2 * Math.log2(header.width * header.height)) / 2).toFixed(1);
    sizeBins[bin] = (sizeBins[bin] ?? 0) + 1;
    widths.push(header.width);
    heights.push(header.height);
    if (limit === 0 || !DECODABLE.has(header.format) || header.truncated) continue;
    if (sample.length === limit && im.sha256 >= sample[limit - 1].sha256) continue;
    const at = lowerBound(sample, im.sha256);
    if (sample[at]?.sha256 === im.sha256) continue;
    sample.splice(at, 0, im);
    if (sample.length > limit) sample.pop();
  }
  const measured = await mapLimit(sample, concurrency, async (im) => {
    signal?.throwIfAborted();
    return luminance(sharp as Sharp, im.path);
  });
  const ok = measured.filter((m): m is { mean: number; std: number } => m !== undefined);
  const means = ok.map((m) => m.mean);
  const stds = ok.map((m) => m.std);
  return {
    images: widths.length,
    width: round(meanStd(widths)),
    height: round(meanStd(heights)),
    sizeBins,
    sample: ok.length,
    brightness: round(meanStd(means)),
    contrast: round(meanStd(stds)),
    brightnessBins: histogram(means, 16, 0, 1),
    contrastBins: histogram(stds, 16, 0, 0.5),
  };
}

/** First index whose sha256 is not below `sha256`, in a list sorted by it. */
function lowerBound(sorted: readonly MeasuredImage[], sha256: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid].sha256 < sha256) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Mean and std of the 8-bit luminance, scaled to [0, 1]; undefined when sharp cannot decode the file. */
async function luminance(sharp: Sharp, file: string): Promise<{ mean: number; std: number } | undefined> {
  let raw: { data: Buffer; info: { channels: number } };
  try {
    raw = await sharp(file, { limitInputPixels: false }).removeAlpha().greyscale().raw().toBuffer({ resolveWithObject: true });
  } catch {
    // A file sharp cannot decode is reported by the integrity checks (or fullDecode); the sample just skips it.
    return undefined;
  }
  const { data, info } = raw;
  const step = info.channels;
  let sum = 0;
  let sq = 0;
  const n = data.length / step;
  for (let i = 0; i < data.length; i += step) {
    sum += data[i];
    sq += data[i] * data[i];
  }
  const mean = sum / n;
  return { mean: mean / 255, std: Math.sqrt(Math.max(0, sq / n - mean * mean)) / 255 };
}

function round(m: MeanStd): MeanStd {
  return { mean: +m.mean.toFixed(6), std: +m.std.toFixed(6) };
}

/** What drift needs from a report: per split class counts and image properties. */
export interface DriftInput {
  splits: Record<string, { classCounts: Record<string, number>; properties?: SplitProperties }>;
}

export interface DriftSplit {
  classPsi?: number;
  chiSquare?: ChiSquare;
  sizePsi?: number;
  brightnessPsi?: number;
  contrastPsi?: number;
}

export interface DriftThresholds {
  maxPsi: number;
  chiSquareAlpha: number;
}

export async function readBaseline(file: string, shown: string): Promise<DriftInput> {
  let value: unknown;
  try {
    value = parseJsonBounded(await fs.readFile(file, 'utf8'));
  } catch (error) {
    throw new StepError(`The baseline report ${shown} cannot be read as JSON: ${(error as Error).message}`, {
      hint: 'Pass the report.json a previous validate-data run wrote (its report output).',
      file: shown,
      cause: error,
    });
  }
  const splits = (value as { splits?: unknown } | null)?.splits;
  if (!splits || typeof splits !== 'object') {
    throw new StepError(`The baseline report ${shown} has no "splits" object.`, {
      hint: 'Pass the report.json a previous validate-data run wrote.',
      file: shown,
    });
  }
  for (const [split, data] of Object.entries(splits as Record<string, unknown>)) {
    const counts = (data as { classCounts?: unknown } | null)?.classCounts;
    if (!counts || typeof counts !== 'object') {
      throw new StepError(`The baseline report ${shown} has no splits.${split}.classCounts.`, {
        hint: 'Pass the report.json a previous validate-data run wrote.',
        file: shown,
      });
    }
  }
  return value as DriftInput;
}

/** Compares each split present in both reports; warns past the thresholds. */
export function compareDrift(
  current: DriftInput,
  baseline: DriftInput,
  thresholds: DriftThresholds,
  findings: Findings,
): Record<string, DriftSplit> {
  findings.ran('drift.class-psi', 'drift.class-chi-square', 'drift.image-size', 'drift.brightness', 'drift.contrast');
  const out: Record<string, DriftSplit> = {};
  for (const [split, now] of Object.entries(current.splits)) {
    const before = baseline.splits[split];
    if (!before) continue;
    const result: DriftSplit = {};
    const classes = [...new Set([...Object.keys(before.classCounts), ...Object.keys(now.classCounts)])].sort();
    const b = classes.map((c) => before.classCounts[c] ?? 0);
    const a = classes.map((c) => now.classCounts[c] ?? 0);
    if (sum(a) > 0 && sum(b) > 0) {
      result.classPsi = +psi(b, a).toFixed(6);
      const shifts = classes
        .map((c, i) => ({ class: c, baseline: share(b, i), current: share(a, i) }))
        .sort((x, y) => Math.abs(y.current - y.baseline) - Math.abs(x.current - x.baseline));
      if (result.classPsi > thresholds.maxPsi) {
        findings.add('drift.class-psi', {
          split,
          field: 'classCounts',
          value: { psi: result.classPsi, largestShifts: shifts.slice(0, 3) },
          message: `class distribution PSI ${result.classPsi.toFixed(3)} > ${thresholds.maxPsi}; largest shift: "${shifts[0].class}" ${pct(shifts[0].baseline)} → ${pct(shifts[0].current)}`,
        });
      }
      const chi = chiSquareHomogeneity(b, a);
      if (chi) {
        result.chiSquare = { statistic: +chi.statistic.toFixed(4), df: chi.df, pValue: chi.pValue };
        if (chi.pValue < thresholds.chiSquareAlpha) {
          findings.add('drift.class-chi-square', {
            split,
            field: 'classCounts',
            value: result.chiSquare,
            message: `chi-square ${chi.statistic.toFixed(2)} (df ${chi.df}), p = ${chi.pValue.toExponential(2)} < ${thresholds.chiSquareAlpha}`,
          });
        }
      }
    }
    const p = now.properties;
    const q = before.properties;
    if (p && q) {
      const bins = [...new Set([...Object.keys(q.sizeBins), ...Object.keys(p.sizeBins)])].sort();
      if (p.images > 0 && q.images > 0) {
        result.sizePsi = +psi(
          bins.map((k) => q.sizeBins[k] ?? 0),
          bins.map((k) => p.sizeBins[k] ?? 0),
        ).toFixed(6);
        if (result.sizePsi > thresholds.maxPsi) {
          findings.add('drift.image-size', {
            split,
            field: 'sizeBins',
            value: {
              psi: result.sizePsi,
              baseline: { width: q.width.mean, height: q.height.mean },
              current: { width: p.width.mean, height: p.height.mean },
            },
            message: `image size PSI ${result.sizePsi.toFixed(3)} > ${thresholds.maxPsi}; mean size ${fmt(q.width.mean)}×${fmt(q.height.mean)} → ${fmt(p.width.mean)}×${fmt(p.height.mean)}`,
          });
        }
      }
      if (p.sample > 0 && q.sample > 0) {
        // Brightness (mean intensity) and contrast (its spread) drift the same way: one PSI over fixed bins each.
        for (const [field, psiKey, binsKey] of [
          ['brightness', 'brightnessPsi', 'brightnessBins'],
          ['contrast', 'contrastPsi', 'contrastBins'],
        ] as const) {
          const value = +psi(q[binsKey], p[binsKey]).toFixed(6);
          result[psiKey] = value;
          if (value > thresholds.maxPsi) {
            findings.add(`drift.${field}`, {
              split,
              field,
              value: { psi: value, baseline: q[field], current: p[field] },
              message: `${field} PSI ${value.toFixed(3)} > ${thresholds.maxPsi}; mean ${q[field].mean.toFixed(3)} ± ${q[field].std.toFixed(3)} → ${p[field].mean.toFixed(3)} ± ${p[field].std.toFixed(3)}`,
            });
          }
        }
      }
    }
    out[split] = result;
  }
  return out;
}

const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
const share = (xs: number[], i: number) => +(xs[i] / sum(xs)).toFixed(4);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const fmt = (x: number) => String(Math.round(x));
