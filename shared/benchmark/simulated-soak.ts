import { seededRandom } from '../core/random';
import { analyzeSoak, type SoakAnalysis, type SoakLimits, SoakRecorder } from './soak';

/**
 * A soak's sample stream without running a model: `latencyAt(t, u)` gives each run's latency from its time and a
 * uniform random number. Used to size the report of an hour-long soak (bench/soak-report.ts) and to test the
 * drift gates on shapes a real run cannot be made to produce on purpose.
 */
export function simulateSoak(
  durationS: number,
  windowS: number,
  latencyAt: (tMs: number, u: number) => number,
  limits: SoakLimits,
  seed = 1,
): SoakAnalysis {
  const rnd = seededRandom(seed);
  const recorder = new SoakRecorder(windowS * 1000);
  const rss: { t: number; mb: number }[] = [];
  const end = durationS * 1000;
  let t = 0;
  let nextRss = 0;
  while (t < end) {
    const ms = latencyAt(t, rnd());
    t += ms;
    recorder.add(t, ms);
    if (t >= nextRss) {
      rss.push({ t, mb: 400 });
      nextRss = t + 1000;
    }
  }
  return analyzeSoak({ durationMs: t, windowMs: Math.min(windowS * 1000, t / 3), latency: recorder.finish(), rss, gpu: [] }, limits);
}
