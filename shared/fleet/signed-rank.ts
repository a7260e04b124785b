import { midRanks, normalSf } from '../benchmark/regression';

export interface SignedRankResult {
  /** Pairs with a non-zero difference. */
  n: number;
  /** Sum of ranks of the positive differences. */
  wPlus: number;
  z: number;
  /** Two-sided p-value. */
  p: number;
}

/**
 * Wilcoxon signed-rank test of paired differences (zeros dropped, ties given mean ranks), normal approximation
 * with tie and continuity correction (scipy's `wilcoxon(..., method="approx", correction=True)`). The same
 * devices ran both releases, so pairing removes the spread between GPU models and lab workloads from the
 * comparison. Undefined below 6 non-zero pairs, where the approximation says nothing useful.
 */
export function wilcoxonSignedRank(differences: readonly number[]): SignedRankResult | undefined {
  const d = differences.filter((x) => x !== 0 && Number.isFinite(x)).map((x) => ({ a: Math.abs(x), pos: x > 0 }));
  const n = d.length;
  if (n < 6) return undefined;
  d.sort((x, y) => x.a - y.a);
  const { ranks, tieTerm } = midRanks(d.map((x) => x.a));
  let wPlus = 0;
  for (let k = 0; k < n; k++) if (d[k].pos) wPlus += ranks[k];
  const mu = (n * (n + 1)) / 4;
  const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24 - tieTerm / 48);
  if (sigma === 0) return { n, wPlus, z: 0, p: 1 };
  const z = (Math.abs(wPlus - mu) - 0.5) / sigma;
  return { n, wPlus, z: Math.sign(wPlus - mu) * Math.max(0, z), p: Math.min(1, 2 * normalSf(Math.max(0, z))) };
}
