/**
 * Fleet convergence: N in-process device agents poll one channel (a folder store, file:// URLs) every
 * `interval` seconds with ±10% jitter, as `mlship device-agent` does. For each release event the table shows
 * how long after publishing each device ran its target release (p50 / p95 / max over devices), and how many
 * polls that took. Run: node -r esbuild-register bench/fleet.ts [devices=200] [interval-seconds=1] [payload-MiB=1]
 *
 * Phased rollout with health gate (test/agent/support/fleet-sim.ts): real agents, a real folder store, real
 * promote-release runs through 1% → 10% → 50% → 100% with auto-rollback, under a scenario:
 *   npm run bench:fleet -- --devices 500 --scenario crash-on-gpu-model --json   (one JSON object)
 *   npm run bench:fleet -- --devices 500 --scenario all                         (a markdown table)
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeviceAgent } from '../shared/agent';
import { targetRelease } from '../shared/ota/channel';
import type { ChannelDocument } from '../shared/ota/channel';
import { ChannelKit, Fleet } from '../test/agent/support/fleet';
import { KEYS, makePackage } from '../test/ota/support/packages';
import { parseArgs } from 'node:util';
import { SCENARIOS, type Scenario, simulateFleet } from '../test/agent/support/fleet-sim';

const args = parseArgs({
  options: { devices: { type: 'string' }, scenario: { type: 'string' }, json: { type: 'boolean' } },
  allowPositionals: true,
});
const devices = Number(args.values.devices ?? args.positionals[0] ?? 200);
const intervalMs = Number(args.positionals[1] ?? 1) * 1000;
const payloadMiB = Number(args.positionals[2] ?? 1);

interface Row {
  event: string;
  moving: number;
  p50: number;
  p95: number;
  max: number;
  polls: number;
}

/** Polls every device in a loop until each one runs what `doc` names for it; returns seconds per moving device. */
async function converge(
  agents: DeviceAgent[],
  ids: string[],
  doc: ChannelDocument,
  published: number,
): Promise<{ times: number[]; polls: number }> {
  const times: number[] = [];
  let polls = 0;
  await Promise.all(
    agents.map(async (agent, i) => {
      const target = targetRelease(doc, ids[i]);
      const before = await agent.state();
      const running = (s: typeof before) => (s.activeSlot ? s.slots[s.activeSlot]?.sha256 : undefined);
      if (!target || running(before) === target.sha256) return;
      // Devices poll on their own clocks: the first poll falls anywhere in the interval.
      await sleep(Math.random() * intervalMs);
      for (;;) {
        polls++;
        const report = await agent.pollOnce();
        if (running(report) === target.sha256) {
          times.push((Date.now() - published) / 1000);
          return;
        }
        if (report.status === 'refused' || report.status === 'error') throw new Error(`${ids[i]}: ${report.message}`);
        await sleep(intervalMs * (0.9 + 0.2 * Math.random()));
      }
    }),
  );
  return { times: times.sort((a, b) => a - b), polls };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : 0;
}

async function main(): Promise<void> {
  const kit = new ChannelKit();
  try {
    const v1 = await makePackage(kit.dir, '1.0.0', { payload: randomBytes(payloadMiB * 1024 * 1024) });
    const v2 = await makePackage(kit.dir, '2.0.0', { payload: randomBytes(payloadMiB * 1024 * 1024) });
    const fleet = new Fleet(kit, devices);
    const ids = fleet.agents.map((_, i) => `biodevice-${String(i).padStart(4, '0')}`);
    const rows: Row[] = [];
    const event = async (name: string, publish: () => Promise<ChannelDocument>) => {
      const published = Date.now();
      const doc = await publish();
      const { times, polls } = await converge(fleet.agents, ids, doc, published);
      rows.push({
        event: name,
        moving: times.length,
        p50: quantile(times, 0.5),
        p95: quantile(times, 0.95),
        max: times.at(-1) ?? 0,
        polls,
      });
    };
    await event('first install 1.0.0 (100%)', async () => {
      await kit.stage(v1);
      return (await kit.promote(100)).update.doc;
    });
    await event('canary 2.0.0 (10%)', async () => {
      await kit.stage(v2);
      return (await kit.promote(10)).update.doc;
    });
    await event('promote 2.0.0 to 100%', async () => (await kit.promote(100)).update.doc);
    await event('rollback to 1.0.0', async () => (await kit.rollback()).update.doc);

    // One device alone, for scale: in the simulation every device shares this machine's cores, on a real fleet
    // each has its own, so convergence there is about one poll interval plus this.
    const solo = new DeviceAgent({
      channelUrl: kit.channelUrl(),
      deviceId: 'solo',
      publicKey: KEYS.publicKeyPem,
      root: path.join(kit.dir, 'devices', 'solo'),
    });
    const soloStart = Date.now();
    const soloReport = await solo.pollOnce();
    if (soloReport.status !== 'installed') throw new Error(`solo device: ${soloReport.message}`);
    const soloSeconds = (Date.now() - soloStart) / 1000;

    console.log(
      `Fleet convergence: ${devices} in-process devices, poll every ${intervalMs / 1000} s ±10%, package ${payloadMiB} MiB, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'})`,
    );
    console.log(`One device alone: download, verify, extract, switch in ${soloSeconds.toFixed(3)} s.\n`);
    console.log('| event | devices that move | p50 (s) | p95 (s) | max (s) | polls |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows)
      console.log(`| ${r.event} | ${r.moving} | ${r.p50.toFixed(2)} | ${r.p95.toFixed(2)} | ${r.max.toFixed(2)} | ${r.polls} |`);
  } finally {
    kit.cleanup();
  }
}

async function scenarios(names: readonly Scenario[]): Promise<void> {
  const rows = [];
  for (const scenario of names) {
    const result = await simulateFleet({
      devices,
      scenario,
      log: args.values.json ? undefined : (line) => console.error(`[${scenario}] ${line}`),
    });
    const { promotions: _promotions, ...summary } = result;
    if (args.values.json) console.log(JSON.stringify(summary));
    rows.push(result);
  }
  if (args.values.json) return;
  console.log(
    `Phased rollout 1% → 10% → 50% → 100% with health gate and auto-rollback: ${devices} in-process devices, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'})\n`,
  );
  console.log(
    '| scenario | peak share on new | final share on new | rolled back | phases reached | incompatible installs | incompatible refusals | polls | wall (s) |',
  );
  console.log('| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(
      `| ${r.scenario} | ${r.peakShareOnNew} | ${r.finalShareOnNew} | ${r.rolledBack} | ${r.phasesCompleted} | ${r.incompatibleInstalls} | ${r.incompatibleRefusals} | ${r.polls} | ${r.wallSeconds.toFixed(1)} |`,
    );
}

const run = (): Promise<void> => {
  const scenario = args.values.scenario;
  if (scenario === undefined) return main();
  if (scenario === 'all') return scenarios(SCENARIOS);
  if (!SCENARIOS.includes(scenario as Scenario)) throw new Error(`--scenario "${scenario}" is not one of ${SCENARIOS.join(', ')}, all`);
  return scenarios([scenario as Scenario]);
};

run().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
