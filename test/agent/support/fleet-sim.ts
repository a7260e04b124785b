/**
 * A fleet of real device agents (in-process), a real folder OTA store, real promote-release runs through the
 * phases 1% → 10% → 50% → 100% with the health gate and auto-rollback, and devices whose hardware and
 * inference application behave as a scenario says. Used by `npm run bench:fleet -- --scenario …` and by
 * test/agent/fleet-sim.test.ts. The only simulated parts are what a lab would provide: the hardware facts
 * (a hardware file per device instead of nvidia-smi), the application's telemetry file, and a health check that
 * fails on one GPU model; the silent devices send their reports to an endpoint that refuses connections.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { type AgentReport, DeviceAgent } from '../../../shared/agent';
import { HttpsReportSink, StoreReportSink } from '../../../shared/agent/reporter';
import { seededRandom } from '../../../shared/core/random';
import type { Telemetry } from '../../../shared/fleet/report';
import { LocalFolderStore } from '../../../shared/ota/local-store';
import { promoteReleaseStep } from '../../../shared/steps/promote-release';
import { KEYS, makePackage } from '../../ota/support/packages';
import { runInMemory } from '../../ota/support/run-step';
import { ChannelKit, deviceIds } from './fleet';

export const SCENARIOS = ['healthy', 'crash-on-gpu-model', 'latency-regression', 'silent-devices', 'incompatible'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface SimResult {
  devices: number;
  scenario: Scenario;
  /** Largest share of devices that ran the new release at any time. */
  peakShareOnNew: number;
  finalShareOnNew: number;
  rolledBack: boolean;
  /** Phases of the plan the new release reached (published), 0 to 4. */
  phasesCompleted: number;
  /** Devices that lack what the new release needs, yet ran it at some point (must be 0). */
  incompatibleInstalls: number;
  /** Devices that refused the new release as incompatible. */
  incompatibleRefusals: number;
  /** promote-release runs and what each said. */
  promotions: { phase: number | null; percent: number | null; ok: boolean; rolledBack: boolean; message: string }[];
  polls: number;
  wallSeconds: number;
}

const PHASES = '1,10,50,100';
const GPUS = ['RTX A4000', 'RTX A4000', 'RTX 4090', 'Tesla T4'];
const CRASHING_GPU = 'Tesla T4';
const SLOW_DRIVER = '550.54.15';
const OLD_DRIVER = '470.57.02';
const BINS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
/** Foreground fraction of a typical plate: most images 20–50% cells. */
const SHAPE = [2, 6, 14, 22, 24, 16, 9, 4, 2, 1];

interface SimDevice {
  id: string;
  agent: DeviceAgent;
  gpu: string;
  driver: string;
  telemetryFile: string;
  silent: boolean;
  lacksDriver: boolean;
  ranNew: boolean;
}

export async function simulateFleet(options: {
  devices: number;
  scenario: Scenario;
  concurrency?: number;
  log?: (line: string) => void;
}): Promise<SimResult> {
  const started = performance.now();
  const { scenario } = options;
  const log = options.log ?? (() => undefined);
  const kit = new ChannelKit(24 * 30);
  // A port that refuses connections: where the silent devices' reports go.
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadEndpoint = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/reports`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  try {
    const reportsDir = path.join(kit.dir, 'reports', 'production');
    const sink = new StoreReportSink(new LocalFolderStore(reportsDir));
    const v1 = await makePackage(kit.dir, '1.0.0', { gitCommit: 'a1b2c3d', dataFingerprint: 'sha256:1111' });
    const v2 = await makePackage(kit.dir, '2.0.0', {
      gitCommit: 'e4f5a6b',
      dataFingerprint: 'sha256:2222',
      compatibility: scenario === 'incompatible' ? { minDriverVersion: '525.60' } : undefined,
    });
    const fleet: SimDevice[] = deviceIds(options.devices).map((id, i) => {
      const root = path.join(kit.dir, 'devices', id);
      fs.mkdirSync(root, { recursive: true });
      const gpu = GPUS[i % GPUS.length];
      const lacksDriver = scenario === 'incompatible' && i % 5 === 0;
      const driver = lacksDriver ? OLD_DRIVER : i % 2 ? SLOW_DRIVER : '535.104.05';
      const hardwareFile = path.join(root, 'hardware.json');
      fs.writeFileSync(
        hardwareFile,
        JSON.stringify({ gpuModel: gpu, driver, cuda: '12.2', computeCapability: '8.6', gpuMemoryMiB: 16384, deviceModel: 'CellScope 5' }),
      );
      const silent = scenario === 'silent-devices' && i % 5 === 1;
      const telemetryFile = path.join(root, 'telemetry.json');
      const crashes = scenario === 'crash-on-gpu-model' && gpu === CRASHING_GPU;
      const agent = new DeviceAgent({
        channelUrl: kit.channelUrl('production'),
        deviceId: id,
        publicKey: KEYS.publicKeyPem,
        root,
        hardwareFile,
        nvidiaSmi: path.join(root, 'no-nvidia-smi'),
        telemetryFile,
        reportSink: silent ? new HttpsReportSink(deadEndpoint) : sink,
        heartbeatSeconds: 0,
        healthCommand: crashes
          ? 'test "$MLSHIP_MODEL_VERSION" != "2.0.0" || { echo "CUDA error: an illegal memory access was encountered"; exit 134; }'
          : undefined,
        healthTimeoutSeconds: 30,
      });
      return { id, agent, gpu, driver, telemetryFile, silent, lacksDriver, ranNew: false };
    });

    let polls = 0;
    let peak = 0;
    let share = 0;
    const pollAll = async (): Promise<AgentReport[]> => {
      const reports: AgentReport[] = new Array(fleet.length);
      let next = 0;
      const worker = async () => {
        while (next < fleet.length) {
          const i = next++;
          reports[i] = await fleet[i].agent.pollOnce();
          polls++;
        }
      };
      await Promise.all(Array.from({ length: options.concurrency ?? 16 }, worker));
      let onNew = 0;
      reports.forEach((r, i) => {
        const version = r.activeSlot ? r.slots[r.activeSlot]?.version : undefined;
        // A device that switched to the new release and reverted during this poll ran it too, for its health check.
        const triedNow = r.status === 'reverted' && r.message.startsWith('cellseg 2.0.0 failed its health check (');
        if (version === '2.0.0' || triedNow) {
          onNew++;
          fleet[i].ranNew = true;
        }
      });
      share = onNew / fleet.length;
      peak = Math.max(peak, share);
      return reports;
    };
    let round = 0;
    /** The application runs a while on what is installed and writes its telemetry; the next poll reports it. */
    const writeTelemetry = (reports: AgentReport[]) => {
      round++;
      reports.forEach((r, i) => {
        const d = fleet[i];
        const version = r.activeSlot ? r.slots[r.activeSlot]?.version : undefined;
        if (!version) return;
        const random = seededRandom(i * 1000 + round);
        const slow = scenario === 'latency-regression' && version === '2.0.0' && d.driver === SLOW_DRIVER ? 2 : 1;
        const base = d.gpu === 'RTX 4090' ? 18 : d.gpu === 'Tesla T4' ? 45 : 30;
        const p50 = base * slow * (1 + 0.04 * (random() - 0.5));
        const counts = SHAPE.map((w) => Math.round(w * 10 * (0.85 + 0.3 * random())));
        const telemetry: Telemetry = {
          schema: 'mlship.telemetry/v1',
          modelVersion: version,
          windowStart: new Date(Date.now() - 3_600_000).toISOString(),
          windowEnd: new Date().toISOString(),
          images: counts.reduce((s, c) => s + c, 0),
          latencyMs: { p50, p95: p50 * 1.3, p99: p50 * 1.6 },
          fps: 1000 / p50,
          gpu: { utilizationPercent: 40 + 20 * random(), temperatureC: 55 + 10 * random(), memoryUsedMiB: 2100 },
          errors: 0,
          crashes: 0,
          outputs: { foregroundFraction: { edges: BINS, counts } },
        };
        fs.writeFileSync(d.telemetryFile, JSON.stringify(telemetry));
      });
    };
    const cycle = async () => {
      writeTelemetry(await pollAll());
      await pollAll();
    };

    await kit.stage(v1);
    await kit.promote(100);
    await cycle();
    log(`1.0.0 on ${fleet.length} devices (${polls} polls)`);
    await kit.stage(v2);

    const promotions: SimResult['promotions'] = [];
    let rolledBack = false;
    let phasesCompleted = 0;
    const promote = async () => {
      const host = await runInMemory(promoteReleaseStep, {
        from: 'staging',
        to: 'production',
        phases: PHASES,
        store: 'local',
        storeUri: kit.store.root,
        signingKey: KEYS.privateKeyPem,
        reportsUri: reportsDir,
        // Half of what the first phase should hold (1% of the fleet), at least one device.
        minDevicesReporting: Math.max(1, Math.floor(fleet.length * 0.005)),
        minBakeMinutes: 0,
        maxFailureRate: 0.02,
        maxLatencyRatio: 1.3,
        maxOutputDrift: 0.2,
        autoRollback: true,
      });
      const outcome = {
        phase: host.outputs.phase ? Number(host.outputs.phase) : null,
        percent: host.outputs.rolloutPercent ? Number(host.outputs.rolloutPercent) : null,
        ok: !host.failure,
        rolledBack: host.outputs.rolledBack === 'true',
        message: host.failure ?? `phase ${host.outputs.phase} (${host.outputs.rolloutPercent}%)`,
      };
      promotions.push(outcome);
      log(`promote-release: ${outcome.message}`);
      return outcome;
    };

    let waits = 0;
    for (let attempt = 0; attempt < 12; attempt++) {
      const outcome = await promote();
      if (outcome.rolledBack) {
        rolledBack = true;
        await cycle();
        break;
      }
      if (outcome.ok) {
        phasesCompleted = outcome.phase ?? phasesCompleted;
        await cycle();
        if (outcome.percent === 100) break;
        continue;
      }
      // Not enough evidence yet: devices poll and report again, then the gate is asked again.
      if (++waits > 3) break;
      await cycle();
    }
    return {
      devices: fleet.length,
      scenario,
      peakShareOnNew: round3(peak),
      finalShareOnNew: round3(share),
      rolledBack,
      phasesCompleted,
      incompatibleInstalls: fleet.filter((d) => d.lacksDriver && d.ranNew).length,
      incompatibleRefusals: (await Promise.all(fleet.map((d) => d.agent.state()))).filter(
        (s) => Object.keys(s.incompatible ?? {}).length > 0,
      ).length,
      promotions,
      polls,
      wallSeconds: round3((performance.now() - started) / 1000),
    };
  } finally {
    kit.cleanup();
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
