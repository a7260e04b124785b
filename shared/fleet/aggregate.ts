import { median, quantile } from '../benchmark/stats';
import type { ReleaseRef, RolloutPlan } from '../ota/channel';
import { chiSquareHomogeneity, psi } from '../validate/statistics';
import type { RejectedReport } from './read-reports';
import type { DeviceReport, Histogram, Telemetry } from './report';
import { wilcoxonSignedRank } from './signed-rank';

export const FLEET_STATUS_SCHEMA = 'mlship.fleet-status/v1';

export interface DeviceRow {
  deviceId: string;
  groups: string[];
  version: string | null;
  sha256: string | null;
  slot: string | null;
  status: string;
  event: string;
  reason: string;
  lastSeen: string;
  silent: boolean;
  gpuModel: string | null;
  driver: string | null;
  gitCommit: string | null;
  dataFingerprint: string | null;
  trainingJob: string | null;
  /** This device tried the current release and it failed here (health check, crash), was refused as incompatible, or runs it. */
  onCurrent: 'runs' | 'failed' | 'incompatible' | 'not yet';
}

export interface LatencyGroup {
  group: string;
  devices: number;
  /** Median over the group's devices of p50(new) / p50(previous) on the same device. */
  ratio: number;
}

export interface OutputDrift {
  statistic: string;
  devices: number;
  psi: number;
  chiSquareP: number | null;
  significant: boolean;
}

export interface FleetStatus {
  schema: typeof FLEET_STATUS_SCHEMA;
  channel: string;
  generatedAt: string;
  current: { name: string; version: string; sha256: string } | null;
  previous: { name: string; version: string; sha256: string } | null;
  rollout: { percent: number; phase: number | null; phases: number[] | null; startedAt: string | null } | null;
  devices: { reporting: number; silent: string[]; neverReported: string[]; total: number };
  byRelease: { version: string; devices: number }[];
  byStatus: Record<string, number>;
  cohort: {
    attempted: number;
    runs: number;
    runsReporting: number;
    failed: number;
    incompatible: number;
    reverts: number;
    failureRate: number;
  };
  latency: {
    current: { p50: number | null; p95: number | null; devices: number };
    previous: { p50: number | null; p95: number | null; devices: number };
    pairedDevices: number;
    ratio: number | null;
    worstGroup: LatencyGroup | null;
    groups: LatencyGroup[];
    test: { name: string; n: number; p: number; significant: boolean } | null;
  };
  fps: { current: number | null; previous: number | null };
  drift: OutputDrift[];
  rejected: RejectedReport[];
  rejectedCounts: Record<string, number>;
  otherChannel: number;
  table: DeviceRow[];
}

export interface AggregateOptions {
  channel: string;
  current?: ReleaseRef | null;
  previous?: ReleaseRef | null;
  rollout?: (RolloutPlan & { startedAt?: string }) | null;
  /** When the phase started (falls back to the channel document's issue time). */
  phaseStartedAt?: string | null;
  now: Date;
  silentAfterHours: number;
  /** Devices expected to report (an inventory), to name the ones that never did. */
  inventory?: string[];
  significance?: number;
}

const ref = (r: ReleaseRef | null | undefined) => (r ? { name: r.name, version: r.version, sha256: r.sha256 } : null);

/** Telemetry of `release` from this device's newest report that ran it. */
function telemetryFor(reports: DeviceReport[], sha256: string, version: string): Telemetry | undefined {
  for (let i = reports.length - 1; i >= 0; i--) {
    const r = reports[i];
    if (r.installed?.sha256 === sha256 && r.telemetry && r.telemetry.modelVersion === version) return r.telemetry;
  }
  return undefined;
}

function sumHistograms(histograms: Histogram[]): Histogram | undefined {
  const first = histograms[0];
  if (!first) return undefined;
  const counts = first.counts.map(() => 0);
  for (const h of histograms) {
    // Only histograms over the same bins add up; the application keeps its edges fixed per statistic.
    if (h.edges.length !== first.edges.length || h.edges.some((e, i) => e !== first.edges[i]) || h.counts.length !== counts.length)
      continue;
    h.counts.forEach((c, i) => (counts[i] += c));
  }
  return { edges: first.edges, counts };
}

/**
 * One channel's fleet from its devices' reports: what runs where, what happened to the current release on the
 * devices that tried it, and how it behaves against the previous release on the same devices.
 */
export function aggregate(reports: DeviceReport[], rejected: RejectedReport[], options: AggregateOptions): FleetStatus {
  const now = options.now.getTime();
  const current = options.current ?? null;
  const previous = options.previous ?? null;
  const alpha = options.significance ?? 0.05;
  const byDevice = new Map<string, DeviceReport[]>();
  let otherChannel = 0;
  for (const r of reports) {
    if (r.channel !== options.channel) {
      otherChannel++;
      continue;
    }
    const list = byDevice.get(r.deviceId) ?? [];
    list.push(r);
    byDevice.set(r.deviceId, list);
  }
  const table: DeviceRow[] = [];
  const byRelease = new Map<string, number>();
  const byStatus: Record<string, number> = {};
  const cohort = { attempted: 0, runs: 0, runsReporting: 0, failed: 0, incompatible: 0, reverts: 0, failureRate: 0 };
  const silent: string[] = [];
  const paired: { device: string; group: string; ratio: number; diff: number }[] = [];
  const latCur: Telemetry[] = [];
  const latPrev: Telemetry[] = [];
  const outputs = new Map<string, { cur: Histogram[]; prev: Histogram[] }>();

  for (const [deviceId, list] of [...byDevice.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    list.sort((a, b) => (a.reportId < b.reportId ? -1 : 1));
    const latest = list[list.length - 1];
    const isSilent = now - Date.parse(latest.createdAt) > options.silentAfterHours * 3_600_000;
    if (isSilent) silent.push(deviceId);
    const version = latest.installed?.version ?? null;
    byRelease.set(version ?? 'none', (byRelease.get(version ?? 'none') ?? 0) + 1);
    byStatus[latest.status] = (byStatus[latest.status] ?? 0) + 1;
    if (list.some((r) => r.event === 'revert')) cohort.reverts++;

    let onCurrent: DeviceRow['onCurrent'] = 'not yet';
    if (current) {
      const about = list.filter((r) => r.target?.sha256 === current.sha256 || r.installed?.sha256 === current.sha256);
      const failedHere =
        about.some((r) => r.status === 'reverted' && r.target?.sha256 === current.sha256) ||
        about.some((r) => r.installed?.sha256 === current.sha256 && (r.telemetry?.crashes ?? 0) > 0);
      const incompatible = about.some((r) => r.status === 'incompatible');
      if (about.length) cohort.attempted++;
      if (failedHere) {
        onCurrent = 'failed';
        cohort.failed++;
      } else if (incompatible) {
        onCurrent = 'incompatible';
        cohort.incompatible++;
      } else if (latest.installed?.sha256 === current.sha256) {
        onCurrent = 'runs';
        cohort.runs++;
        if (!isSilent) cohort.runsReporting++;
      }
      const cur = telemetryFor(list, current.sha256, current.version);
      if (cur) latCur.push(cur);
      const prev = previous ? telemetryFor(list, previous.sha256, previous.version) : undefined;
      if (prev) latPrev.push(prev);
      if (cur && prev) {
        const group = `${latest.hardware.gpuModel ?? 'unknown GPU'} / driver ${latest.hardware.driver ?? 'unknown'}`;
        const a = cur.latencyMs?.p50;
        const b = prev.latencyMs?.p50;
        if (a !== undefined && b !== undefined && b > 0 && a > 0)
          paired.push({ device: deviceId, group, ratio: a / b, diff: Math.log(a / b) });
        for (const [name, h] of Object.entries(cur.outputs ?? {})) {
          const p = prev.outputs?.[name];
          if (!p) continue;
          const entry = outputs.get(name) ?? { cur: [], prev: [] };
          entry.cur.push(h);
          entry.prev.push(p);
          outputs.set(name, entry);
        }
      }
    }
    const hw = latest.hardware;
    table.push({
      deviceId,
      groups: latest.groups,
      version,
      sha256: latest.installed?.sha256 ?? null,
      slot: latest.installed?.slot ?? null,
      status: latest.status,
      event: latest.event,
      reason: latest.reason,
      lastSeen: latest.createdAt,
      silent: isSilent,
      gpuModel: hw.gpuModel ?? null,
      driver: hw.driver ?? null,
      gitCommit: latest.installed?.gitCommit ?? null,
      dataFingerprint: latest.installed?.dataFingerprint ?? null,
      trainingJob: latest.installed?.trainingJob ?? null,
      onCurrent,
    });
  }
  cohort.failureRate = cohort.failed + cohort.runs > 0 ? cohort.failed / (cohort.failed + cohort.runs) : 0;

  const groups = new Map<string, number[]>();
  for (const p of paired) groups.set(p.group, [...(groups.get(p.group) ?? []), p.ratio]);
  const latencyGroups = [...groups.entries()]
    .map(([group, ratios]) => ({ group, devices: ratios.length, ratio: median(ratios) }))
    .sort((a, b) => b.ratio - a.ratio);
  const test = wilcoxonSignedRank(paired.map((p) => p.diff));
  const pct = (list: Telemetry[], pick: (t: Telemetry) => number | undefined, q: number) => {
    const values = list.map(pick).filter((v): v is number => v !== undefined);
    return values.length ? quantile(values, q) : null;
  };

  const drift: OutputDrift[] = [];
  for (const [statistic, { cur, prev }] of outputs) {
    const a = sumHistograms(prev);
    const b = sumHistograms(cur);
    if (!a || !b || a.counts.length !== b.counts.length) continue;
    const chi = chiSquareHomogeneity(a.counts, b.counts);
    drift.push({
      statistic,
      devices: cur.length,
      psi: psi(a.counts, b.counts),
      chiSquareP: chi?.pValue ?? null,
      significant: chi !== undefined && chi.pValue < alpha,
    });
  }

  const seen = new Set(byDevice.keys());
  const neverReported = (options.inventory ?? []).filter((d) => !seen.has(d));
  const rejectedCounts: Record<string, number> = {};
  for (const r of rejected) rejectedCounts[r.problem] = (rejectedCounts[r.problem] ?? 0) + 1;
  const rollout = options.rollout;
  return {
    schema: FLEET_STATUS_SCHEMA,
    channel: options.channel,
    generatedAt: options.now.toISOString(),
    current: ref(current),
    previous: ref(previous),
    rollout: rollout
      ? {
          percent: rollout.percent,
          phase: rollout.phase ?? null,
          phases: rollout.phases ?? null,
          startedAt: options.phaseStartedAt ?? rollout.startedAt ?? null,
        }
      : null,
    devices: { reporting: byDevice.size - silent.length, silent, neverReported, total: byDevice.size + neverReported.length },
    byRelease: [...byRelease.entries()].map(([version, devices]) => ({ version, devices })).sort((a, b) => b.devices - a.devices),
    byStatus,
    cohort,
    latency: {
      current: { p50: pct(latCur, (t) => t.latencyMs?.p50, 0.5), p95: pct(latCur, (t) => t.latencyMs?.p95, 0.5), devices: latCur.length },
      previous: {
        p50: pct(latPrev, (t) => t.latencyMs?.p50, 0.5),
        p95: pct(latPrev, (t) => t.latencyMs?.p95, 0.5),
        devices: latPrev.length,
      },
      pairedDevices: paired.length,
      ratio: paired.length ? median(paired.map((p) => p.ratio)) : null,
      worstGroup: latencyGroups[0] ?? null,
      groups: latencyGroups,
      test: test
        ? { name: 'Wilcoxon signed-rank on log(p50 new / p50 previous), same devices', n: test.n, p: test.p, significant: test.p < alpha }
        : null,
    },
    fps: { current: pct(latCur, (t) => t.fps, 0.5), previous: pct(latPrev, (t) => t.fps, 0.5) },
    drift,
    rejected,
    rejectedCounts,
    otherChannel,
    table,
  };
}
