/**
 * A fixed-bin latency histogram: bin edges are log-spaced on one grid shared by every report (20 bins per decade
 * from 1 µs), so two reports' histograms line up bin for bin and a chart can overlay them without re-binning.
 * A bin spans ~12 %, so a percentile read back from it is within ~6 % of the exact one; the exact percentiles are
 * stored beside it. Adding a sample is O(1) and the state is one count per occupied bin, which is what lets an
 * hour-long soak be reported in a few kilobytes instead of every sample.
 */

export const BINS_PER_DECADE = 20;
/** Lower edge of bin 0, in milliseconds; faster samples count in bin 0. */
export const FIRST_EDGE_MS = 0.001;

export interface LatencyHistogramData {
  scale: 'log10';
  binsPerDecade: number;
  /** Edges of the stored bins in ms (counts.length + 1 values): counts[i] holds samples in [edgesMs[i], edgesMs[i+1]). */
  edgesMs: number[];
  counts: number[];
}

export function binOf(ms: number): number {
  if (!(ms > FIRST_EDGE_MS)) return 0;
  return Math.floor(Math.log10(ms / FIRST_EDGE_MS) * BINS_PER_DECADE + 1e-9);
}

export function edgeOf(bin: number): number {
  return Number((FIRST_EDGE_MS * 10 ** (bin / BINS_PER_DECADE)).toPrecision(6));
}

export class LatencyHistogram {
  private readonly bins = new Map<number, number>();

  add(ms: number): void {
    const b = binOf(ms);
    this.bins.set(b, (this.bins.get(b) ?? 0) + 1);
  }

  addAll(samples: Iterable<number>): this {
    for (const s of samples) this.add(s);
    return this;
  }

  /** The occupied span of the grid, empty bins inside it included (so edges stay contiguous). */
  toJSON(): LatencyHistogramData {
    if (this.bins.size === 0) return { scale: 'log10', binsPerDecade: BINS_PER_DECADE, edgesMs: [], counts: [] };
    let lo = Infinity;
    let hi = -Infinity;
    for (const b of this.bins.keys()) {
      lo = Math.min(lo, b);
      hi = Math.max(hi, b);
    }
    const counts: number[] = [];
    const edgesMs: number[] = [];
    for (let b = lo; b <= hi; b++) {
      counts.push(this.bins.get(b) ?? 0);
      edgesMs.push(edgeOf(b));
    }
    edgesMs.push(edgeOf(hi + 1));
    return { scale: 'log10', binsPerDecade: BINS_PER_DECADE, edgesMs, counts };
  }
}

export function latencyHistogram(samples: Iterable<number>): LatencyHistogramData {
  return new LatencyHistogram().addAll(samples).toJSON();
}
