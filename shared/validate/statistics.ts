/** Distribution comparisons for drift: population stability index and the chi-square test of homogeneity. */

/** Proportions of empty bins are floored so one vanished class gives a large, finite PSI. */
const PSI_FLOOR = 1e-4;

/**
 * Population stability index of `actual` against `expected` (counts over the same bins):
 * Σ (a − e) · ln(a / e) over proportions. Rule of thumb: < 0.1 stable, 0.1–0.2 moderate, > 0.2 shifted.
 */
export function psi(expected: readonly number[], actual: readonly number[]): number {
  const e = proportions(expected);
  const a = proportions(actual);
  let sum = 0;
  for (let i = 0; i < e.length; i++) {
    const pe = Math.max(e[i], PSI_FLOOR);
    const pa = Math.max(a[i], PSI_FLOOR);
    sum += (pa - pe) * Math.log(pa / pe);
  }
  return sum;
}

function proportions(counts: readonly number[]): number[] {
  const total = counts.reduce((s, c) => s + c, 0);
  return counts.map((c) => (total > 0 ? c / total : 0));
}

export interface ChiSquare {
  statistic: number;
  df: number;
  pValue: number;
}

/**
 * Chi-square test that two count vectors come from one distribution (2 × k contingency table). Bins empty
 * in both are dropped. Returns undefined when fewer than two bins or an empty side leave nothing to test.
 */
export function chiSquareHomogeneity(a: readonly number[], b: readonly number[]): ChiSquare | undefined {
  const bins: [number, number][] = [];
  for (let i = 0; i < a.length; i++) if (a[i] + b[i] > 0) bins.push([a[i], b[i]]);
  const na = bins.reduce((s, [x]) => s + x, 0);
  const nb = bins.reduce((s, [, y]) => s + y, 0);
  if (bins.length < 2 || na === 0 || nb === 0) return undefined;
  const n = na + nb;
  let statistic = 0;
  for (const [x, y] of bins) {
    const col = x + y;
    const ea = (na * col) / n;
    const eb = (nb * col) / n;
    statistic += (x - ea) ** 2 / ea + (y - eb) ** 2 / eb;
  }
  const df = bins.length - 1;
  return { statistic, df, pValue: chiSquareSurvival(statistic, df) };
}

/** P(X ≥ x) for X ~ χ²(df). */
export function chiSquareSurvival(x: number, df: number): number {
  if (x <= 0) return 1;
  return gammaQ(df / 2, x / 2);
}

/** Regularized upper incomplete gamma Q(a, x): series below a + 1, continued fraction above (Numerical Recipes). */
function gammaQ(a: number, x: number): number {
  const lnPrefix = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 1000; n++) {
      ap++;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(lnPrefix));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.exp(lnPrefix) * h;
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

function lnGamma(z: number): number {
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  const x = z - 1;
  let sum = LANCZOS[0];
  for (let i = 1; i < 9; i++) sum += LANCZOS[i] / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(sum);
}

export interface MeanStd {
  mean: number;
  std: number;
}

export function meanStd(values: readonly number[]): MeanStd {
  if (values.length === 0) return { mean: 0, std: 0 };
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Counts of values in `bins` equal-width bins over [lo, hi]; values outside land in the end bins. */
export function histogram(values: readonly number[], bins: number, lo: number, hi: number): number[] {
  const out = new Array<number>(bins).fill(0);
  for (const v of values) out[Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)))]++;
  return out;
}
