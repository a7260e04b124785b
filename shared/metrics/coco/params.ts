import { linspace } from './numeric';

/** COCOeval's detection parameters (Params.setDetParams), after evaluate() has sorted maxDets. */
export interface CocoParams {
  /** np.linspace(.5, 0.95, 10) by default: 0.5, 0.55, ... with numpy's exact float values. */
  readonly iouThrs: Float64Array;
  /** np.linspace(0, 1, 101). */
  readonly recThrs: Float64Array;
  /** Ascending, as COCOeval.evaluate() sorts them; the last one caps detections per image and category. */
  readonly maxDets: readonly number[];
  readonly areaRng: readonly (readonly [number, number])[];
  readonly areaRngLbl: readonly string[];
  readonly useCats: boolean;
}

/** The parameters a user may set; anything left out keeps COCOeval's default. */
export interface CocoParamsInput {
  readonly maxDets?: readonly number[];
  readonly iouThrs?: ArrayLike<number>;
  readonly areaRng?: readonly (readonly [number, number])[];
  readonly areaRngLbl?: readonly string[];
  readonly useCats?: boolean;
}

export const DEFAULT_MAX_DETS: readonly number[] = [1, 10, 100];
export const DEFAULT_AREA_RNG: readonly (readonly [number, number])[] = [
  [0 ** 2, 1e5 ** 2],
  [0 ** 2, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e5 ** 2],
];
export const DEFAULT_AREA_LBL: readonly string[] = ['all', 'small', 'medium', 'large'];

/** A parameter set COCOeval would not run with (or would run into an IndexError with). */
export class CocoParamsError extends Error {
  constructor(
    readonly param: 'maxDets' | 'iouThrs' | 'areaRng',
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export function defaultParams(useCats = true): CocoParams {
  return cocoParams({ useCats });
}

/** COCOeval's Params with the given overrides, checked: maxDets sorted as evaluate() does, ranges paired with labels. */
export function cocoParams(input: CocoParamsInput = {}): CocoParams {
  const maxDets = [...(input.maxDets ?? DEFAULT_MAX_DETS)].sort((a, b) => a - b);
  // summarize() reads maxDets[0], [1] and [2]: fewer than three is an IndexError in pycocotools
  if (maxDets.length < 3)
    throw new CocoParamsError(
      'maxDets',
      `maxDets has ${maxDets.length} value(s); COCOeval.summarize() reads the first three (AR1, AR10 and AR100 positions).`,
      'Give at least three increasing limits, e.g. 1,10,300.',
    );
  for (const m of maxDets)
    if (!Number.isInteger(m) || m < 1)
      throw new CocoParamsError(
        'maxDets',
        `maxDets value ${m} is not a positive whole number.`,
        'Give detection limits per image such as 1,10,100.',
      );
  for (let i = 1; i < maxDets.length; i++)
    if (maxDets[i] === maxDets[i - 1]) throw new CocoParamsError('maxDets', `maxDets repeats ${maxDets[i]}.`, 'Give each limit once.');
  const iouThrs = input.iouThrs ? Float64Array.from(input.iouThrs) : linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
  if (iouThrs.length === 0)
    throw new CocoParamsError('iouThrs', 'iouThrs is empty.', 'Give IoU thresholds such as 0.5:0.95:0.05 or 0.5,0.75.');
  for (const t of iouThrs)
    if (!(t >= 0 && t <= 1))
      throw new CocoParamsError('iouThrs', `IoU threshold ${t} is outside [0, 1].`, 'IoU thresholds are numbers from 0 to 1.');
  const areaRng = input.areaRng ?? DEFAULT_AREA_RNG;
  const areaRngLbl = input.areaRngLbl ?? (input.areaRng ? undefined : DEFAULT_AREA_LBL);
  if (!areaRngLbl || areaRngLbl.length !== areaRng.length)
    throw new CocoParamsError(
      'areaRng',
      `areaRng has ${areaRng.length} range(s) but ${areaRngLbl?.length ?? 0} label(s).`,
      'Name every area range, e.g. all=0:1e10,small=0:1024.',
    );
  if (areaRng.length === 0) throw new CocoParamsError('areaRng', 'areaRng is empty.', 'Give at least the range "all", e.g. all=0:1e10.');
  areaRng.forEach(([lo, hi], a) => {
    if (!(lo >= 0) || !(hi >= lo))
      throw new CocoParamsError(
        'areaRng',
        `area range "${areaRngLbl[a]}" is ${lo}:${hi}; a range is low:high with 0 <= low <= high.`,
        'Areas are in square pixels, e.g. small=0:1024 (32²).',
      );
  });
  const seen = new Set<string>();
  for (const l of areaRngLbl) {
    if (seen.has(l))
      throw new CocoParamsError(
        'areaRng',
        `area label "${l}" is used twice.`,
        'summarize() selects a range by its label: give each label once.',
      );
    seen.add(l);
  }
  return {
    iouThrs,
    recThrs: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
    maxDets,
    areaRng: areaRng.map(([lo, hi]) => [lo, hi] as const),
    areaRngLbl: [...areaRngLbl],
    useCats: input.useCats ?? true,
  };
}

/**
 * Parses the text form users give in a CLI option or a step input:
 * - maxDets: "1,10,300";
 * - iouThrs: "0.5,0.75" or "start:stop:step" = np.linspace(start, stop, round((stop-start)/step)+1), which is how
 *   Params builds the default, so "0.5:0.95:0.05" gives the default thresholds bit for bit;
 * - areaRng: "label=low:high,..." in square pixels, e.g. "all=0:1e10,small=0:1024,medium=1024:9216,large=9216:1e10".
 * Throws CocoParamsError naming the parameter; callers add the option or input name.
 */
export function parseCocoParams(text: { maxDets?: string; iouThrs?: string; areaRng?: string; useCats?: boolean }): CocoParams {
  const input: {
    maxDets?: number[];
    iouThrs?: Float64Array | number[];
    areaRng?: [number, number][];
    areaRngLbl?: string[];
    useCats?: boolean;
  } = { useCats: text.useCats };
  if (text.maxDets !== undefined && text.maxDets.trim() !== '') input.maxDets = numbers(text.maxDets, 'maxDets', 'e.g. 1,10,300');
  if (text.iouThrs !== undefined && text.iouThrs.trim() !== '') {
    const s = text.iouThrs.trim();
    if (s.includes(':')) {
      const parts = numbers(s.replace(/:/g, ','), 'iouThrs', 'start:stop:step, e.g. 0.5:0.95:0.05');
      if (parts.length !== 3 || !(parts[2] > 0) || parts[1] < parts[0])
        throw new CocoParamsError(
          'iouThrs',
          `iouThrs "${s}" is not start:stop:step with step > 0 and stop >= start.`,
          'Use e.g. 0.5:0.95:0.05, or a list 0.5,0.75.',
        );
      input.iouThrs = linspace(parts[0], parts[1], Math.round((parts[1] - parts[0]) / parts[2]) + 1);
    } else input.iouThrs = numbers(s, 'iouThrs', 'e.g. 0.5,0.75');
  }
  if (text.areaRng !== undefined && text.areaRng.trim() !== '') {
    input.areaRng = [];
    input.areaRngLbl = [];
    for (const item of text.areaRng.split(',').map((x) => x.trim())) {
      const m = /^([^=\s]+)=([^:]+):(.+)$/.exec(item);
      const lo = m ? Number(m[2]) : NaN;
      const hi = m ? Number(m[3]) : NaN;
      if (!m || !Number.isFinite(lo) || !Number.isFinite(hi))
        throw new CocoParamsError(
          'areaRng',
          `area range "${item}" is not label=low:high.`,
          'Use e.g. all=0:1e10,small=0:1024,medium=1024:9216,large=9216:1e10 (square pixels).',
        );
      input.areaRngLbl.push(m[1]);
      input.areaRng.push([lo, hi]);
    }
  }
  return cocoParams(input);
}

function numbers(text: string, param: 'maxDets' | 'iouThrs', example: string): number[] {
  return text.split(',').map((x) => {
    const v = x.trim() === '' ? NaN : Number(x);
    if (!Number.isFinite(v))
      throw new CocoParamsError(
        param,
        `${param} "${text}" has "${x.trim()}", which is not a number.`,
        `Give comma-separated numbers, ${example}.`,
      );
    return v;
  });
}

/** Text form of parameters (the inverse of parseCocoParams), for reports. */
export function describeParams(p: CocoParams): {
  maxDets: number[];
  iouThrs: number[];
  areaRng: Record<string, [number, number]>;
  useCats: boolean;
} {
  return {
    maxDets: [...p.maxDets],
    iouThrs: Array.from(p.iouThrs),
    areaRng: Object.fromEntries(p.areaRngLbl.map((l, a) => [l, [p.areaRng[a][0], p.areaRng[a][1]]])),
    useCats: p.useCats,
  };
}

/** summarize()'s 12 numbers, named by their place: AR1, AR10 and AR100 read maxDets[0], [1] and [2]. */
export const STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;
export type StatName = (typeof STAT_NAMES)[number];

/** What each of the 12 summarize() numbers averages: AP or AR, one IoU threshold or all, area label, maxDets. */
export interface StatSpec {
  readonly ap: boolean;
  readonly iouThr?: number;
  readonly area: string;
  readonly maxDets: number;
}

/**
 * _summarizeDets() as pycocotools writes it: stats[0] calls _summarize(1) with the default maxDets=100 while the
 * others read params.maxDets[0..2], so with maxDets [1, 10, 300] AP is -1 (no 100 to select) and prints
 * "maxDets=100"; the IoU and area arguments are literals that select nothing when the thresholds or labels lack them.
 */
export function statSpecs(p: Pick<CocoParams, 'maxDets'>): Readonly<Record<StatName, StatSpec>> {
  const [m0, m1, m2] = p.maxDets;
  return {
    AP: { ap: true, area: 'all', maxDets: 100 },
    AP50: { ap: true, iouThr: 0.5, area: 'all', maxDets: m2 },
    AP75: { ap: true, iouThr: 0.75, area: 'all', maxDets: m2 },
    APs: { ap: true, area: 'small', maxDets: m2 },
    APm: { ap: true, area: 'medium', maxDets: m2 },
    APl: { ap: true, area: 'large', maxDets: m2 },
    AR1: { ap: false, area: 'all', maxDets: m0 },
    AR10: { ap: false, area: 'all', maxDets: m1 },
    AR100: { ap: false, area: 'all', maxDets: m2 },
    ARs: { ap: false, area: 'small', maxDets: m2 },
    ARm: { ap: false, area: 'medium', maxDets: m2 },
    ARl: { ap: false, area: 'large', maxDets: m2 },
  };
}

/** The specs with the default maxDets [1, 10, 100]. */
export const STAT_SPECS: Readonly<Record<StatName, StatSpec>> = statSpecs({ maxDets: DEFAULT_MAX_DETS });

/** Indices of the thresholds a stat averages: all, or those equal to iouThr (np.where(iouThr == p.iouThrs)). */
export function thresholdIndices(p: CocoParams, iouThr: number | undefined): number[] {
  const out: number[] = [];
  for (let t = 0; t < p.iouThrs.length; t++) if (iouThr === undefined || p.iouThrs[t] === iouThr) out.push(t);
  return out;
}

/** Python's '{:0.Nf}'.format(x): like toFixed, but an exact binary tie rounds half to even (0.0625 → "0.062"). */
export function pyFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x !== x ? 'nan' : x > 0 ? 'inf' : '-inf';
  const scale = 2 * 10 ** digits;
  const y = x * scale;
  if (Number.isInteger(y) && Math.abs(y) % 2 === 1 && y / scale === x) {
    const lo = (y - 1) / 2;
    const n = lo % 2 === 0 ? lo : lo + 1;
    return (n / 10 ** digits).toFixed(digits);
  }
  return x.toFixed(digits);
}

/** The 12 lines summarize() prints, character for character. */
export function summaryLines(p: CocoParams, stats: readonly number[]): string[] {
  const specs = statSpecs(p);
  return STAT_NAMES.map((name, i) => {
    const s = specs[name];
    const title = (s.ap ? 'Average Precision' : 'Average Recall').padEnd(18);
    const type = s.ap ? '(AP)' : '(AR)';
    const iou = (
      s.iouThr === undefined ? `${pyFixed(p.iouThrs[0], 2)}:${pyFixed(p.iouThrs[p.iouThrs.length - 1], 2)}` : pyFixed(s.iouThr, 2)
    ).padEnd(9);
    return ` ${title} ${type} @[ IoU=${iou} | area=${s.area.padStart(6)} | maxDets=${String(s.maxDets).padStart(3)} ] = ${pyFixed(stats[i], 3)}`;
  });
}
