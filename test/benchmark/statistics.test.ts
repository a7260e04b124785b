import { bootstrapQuantileRatio, erfc, mannWhitneyGreater, normalSf, regressionVerdict } from '../../shared/benchmark/regression';
import { latencyStats, quantile } from '../../shared/benchmark/stats';
import { seededRandom } from '../../shared/core/random';

/** Latency-like samples: a base time with right-skewed noise (exponential), as a busy runner produces. */
function samples(n: number, base: number, seed: number, noise = 0.08): number[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: n }, () => base * (1 + noise * -Math.log(1 - rnd())));
}

describe('latency statistics', () => {
  it('computes percentiles by linear interpolation as numpy does, and the sample standard deviation', () => {
    const x = [7, 1, 3, 5, 9, 2, 8, 4, 6, 10];
    // numpy.percentile(x, [50, 90, 95, 99]) = 5.5, 9.1, 9.55, 9.91; numpy.std(x, ddof=1) = 3.0276503540974917
    expect(latencyStats(x)).toEqual({
      count: 10,
      mean: 5.5,
      stddev: expect.closeTo(3.0276503540974917, 12),
      min: 1,
      p50: 5.5,
      p90: expect.closeTo(9.1, 12),
      p95: expect.closeTo(9.55, 12),
      p99: expect.closeTo(9.91, 12),
      max: 10,
    });
    expect(quantile([3], 0.99)).toBe(3);
  });
});

describe('Mann–Whitney U', () => {
  it('computes U, z and the one-sided p with tie and continuity correction (scipy’s asymptotic method), worked by hand', () => {
    // U = 12, mu = 6, sigma = sqrt(8): z = (12 - 6 - 0.5) / sqrt(8), p = 0.5 * erfc(z / sqrt(2)) (Python's math.erfc).
    const r = mannWhitneyGreater([4, 5, 6, 7], [1, 2, 3]);
    expect(r.u).toBe(12);
    expect(r.z).toBeCloseTo(1.9445436482630056, 12);
    expect(r.p).toBeCloseTo(0.025914963608954858, 8);
    // Ties: x ranks 2.5, 5, 5, 7 → U = 9.5; tie groups of 2 and 3 → sigma² = 8 - 30/42.
    const t = mannWhitneyGreater([2, 3, 3, 4], [1, 2, 3]);
    expect(t.u).toBe(9.5);
    expect(t.z).toBeCloseTo(1.1114378604524227, 12);
    expect(t.p).toBeCloseTo(0.1331899616712413, 7);
  });

  it('has an accurate normal tail', () => {
    expect(normalSf(0)).toBeCloseTo(0.5, 7);
    expect(normalSf(1.6448536269514722)).toBeCloseTo(0.05, 6);
    expect(normalSf(-2.3263478740408408)).toBeCloseTo(0.99, 6);
    expect(erfc(3)).toBeCloseTo(2.209049699858544e-5, 9);
  });
});

describe('latency regression gate', () => {
  it('does not fail on noise: the same distribution, measured twice', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const v = regressionVerdict(samples(120, 10, seed), samples(120, 10, seed + 100), 0.05, 0.95, seed);
      expect(v.slower).toBe(false);
    }
  });

  it('fails on a real 10% slowdown with 5% margin, and passes a 3% one', () => {
    const baseline = samples(200, 10, 7);
    const ten = regressionVerdict(samples(200, 11, 8), baseline, 0.05, 0.95);
    expect(ten.slower).toBe(true);
    expect(ten.p50.ratio).toBeGreaterThan(1.08);
    expect(ten.p50.ratio).toBeLessThan(1.12);
    expect(ten.p50.low).toBeGreaterThan(1.05);
    expect(ten.pSlower).toBeLessThan(0.001);
    expect(ten.reasons[0]).toMatch(
      /^typical latency is \d+\.\d% slower \(p50 ratio 1\.\d{3}, 95% CI 1\.\d{3}–1\.\d{3}\); Mann–Whitney p = [\d.]+e-\d+ that it is within the 5\.0% margin$/,
    );
    const three = regressionVerdict(samples(200, 10.3, 9), baseline, 0.05, 0.95);
    expect(three.slower).toBe(false);
  });

  it('fails on a tail regression (p95) even when the median did not move', () => {
    const baseline = samples(300, 10, 21, 0.02);
    const rnd = seededRandom(22);
    // 10% of runs take 60% longer: a stall the median does not show.
    const candidate = samples(300, 10, 23, 0.02).map((v) => (rnd() < 0.1 ? v * 1.6 : v));
    const v = regressionVerdict(candidate, baseline, 0.05, 0.95);
    expect(v.p50.ratio).toBeLessThan(1.03);
    expect(v.slower).toBe(true);
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0]).toMatch(/^p95 is \d+\.\d% slower/);
  });

  it('bootstraps reproducibly', () => {
    const a = samples(100, 10, 1);
    const b = samples(100, 10, 2);
    expect(bootstrapQuantileRatio(a, b, 0.5, 0.95, 500, 42)).toEqual(bootstrapQuantileRatio(a, b, 0.5, 0.95, 500, 42));
  });
});
