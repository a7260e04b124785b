import type { FleetStatus } from './aggregate';

export interface HealthPolicy {
  minDevicesReporting?: number;
  minBakeMinutes?: number;
  maxFailureRate?: number;
  maxLatencyRatio?: number;
  maxOutputDrift?: number;
}

export interface HealthCheck {
  rule: string;
  limit: string;
  observed: string;
  passed: boolean;
  /** wait: not enough evidence yet (try again later); breach: the evidence says the release is bad. */
  kind: 'wait' | 'breach';
}

export interface HealthVerdict {
  passed: boolean;
  /** At least one breach: roll back. */
  breached: boolean;
  checks: HealthCheck[];
}

export function hasHealthPolicy(policy: HealthPolicy): boolean {
  return Object.values(policy).some((v) => v !== undefined);
}

const fmt = (v: number | null, digits = 3) => (v === null ? 'n/a' : Number(v.toFixed(digits)).toString());

/**
 * The gate of a phase: enough devices run the release and report, it baked long enough (wait otherwise), and
 * on the devices that tried it the failure/revert rate, the latency against the previous release on the same
 * hardware, and the drift of the output statistics stay within limits (breach otherwise). Missing evidence is
 * never a pass: a latency or drift limit with no paired device to measure it waits.
 */
export function evaluateHealth(status: FleetStatus, policy: HealthPolicy, now: Date): HealthVerdict {
  const checks: HealthCheck[] = [];
  if (policy.minDevicesReporting !== undefined) {
    const n = status.cohort.runsReporting;
    checks.push({
      rule: 'devices reporting the new release',
      limit: `≥ ${policy.minDevicesReporting}`,
      observed: String(n),
      passed: n >= policy.minDevicesReporting,
      kind: 'wait',
    });
  }
  if (policy.minBakeMinutes !== undefined) {
    const started = status.rollout?.startedAt ? Date.parse(status.rollout.startedAt) : NaN;
    const minutes = Number.isFinite(started) ? (now.getTime() - started) / 60_000 : 0;
    checks.push({
      rule: 'bake time since the phase started (minutes)',
      limit: `≥ ${policy.minBakeMinutes}`,
      observed: fmt(minutes, 1),
      passed: minutes >= policy.minBakeMinutes,
      kind: 'wait',
    });
  }
  if (policy.maxFailureRate !== undefined) {
    const { failed, runs, failureRate } = status.cohort;
    const enough = failed + runs > 0;
    checks.push({
      rule: 'failure/revert rate on devices that tried it',
      limit: `≤ ${policy.maxFailureRate}`,
      observed: enough ? `${fmt(failureRate)} (${failed} of ${failed + runs})` : 'no device tried it yet',
      passed: enough && failureRate <= policy.maxFailureRate,
      kind: enough ? 'breach' : 'wait',
    });
  }
  if (policy.maxLatencyRatio !== undefined && status.previous) {
    const worst = status.latency.worstGroup;
    checks.push({
      rule: 'latency p50 new/previous, same devices, worst hardware group',
      limit: `≤ ${policy.maxLatencyRatio}`,
      observed: worst ? `${fmt(worst.ratio)} (${worst.group}, ${worst.devices} devices)` : 'no device reported latency for both releases',
      passed: worst !== null && worst.ratio <= policy.maxLatencyRatio,
      kind: worst ? 'breach' : 'wait',
    });
  }
  if (policy.maxOutputDrift !== undefined && status.previous) {
    const worst = [...status.drift].sort((a, b) => b.psi - a.psi)[0];
    checks.push({
      rule: 'output drift (PSI) vs previous release, same devices',
      limit: `≤ ${policy.maxOutputDrift}`,
      observed: worst
        ? `${fmt(worst.psi)} (${worst.statistic}, ${worst.devices} devices)`
        : 'no device reported output statistics for both releases',
      passed: worst !== undefined && worst.psi <= policy.maxOutputDrift,
      kind: worst ? 'breach' : 'wait',
    });
  }
  const breached = checks.some((c) => !c.passed && c.kind === 'breach');
  return { passed: checks.every((c) => c.passed), breached, checks };
}
