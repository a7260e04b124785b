import * as fs from 'node:fs';
import * as path from 'node:path';
import MarkdownIt from 'markdown-it';
import { openReportSink } from '../../../shared/agent/reporter';
import type { FleetStatus } from '../../../shared/fleet/aggregate';
import type { Telemetry } from '../../../shared/fleet/report';
import { fleetStatusStep } from '../../../shared/steps/fleet-status';
import { ChannelKit, Fleet } from '../../agent/support/fleet';
import { KEYS, makePackage } from '../../ota/support/packages';
import { runInMemory } from '../../ota/support/run-step';
import { launchChromium, renderPage, summaryRenders } from '../../support/chromium';

let kit: ChannelKit;
let out: string;
let status: FleetStatus;
let host: Awaited<ReturnType<typeof runInMemory>>;

/** 12 devices on 1.0.0, then 2.0.0 for all; 2.0.0 is 1.5× slower on driver 550 and finds more foreground. */
beforeAll(async () => {
  kit = new ChannelKit();
  out = path.join(kit.dir, 'out');
  const reports = path.join(kit.dir, 'reports');
  const telemetry = (i: number) => path.join(kit.dir, `telemetry-${i}.json`);
  const sink = openReportSink({ kind: 'folder', uri: reports });
  const fleet = new Fleet(kit, 12, (_, i) => ({
    reportSink: sink,
    heartbeatSeconds: 0,
    telemetryFile: telemetry(i),
    hardwareFile: hardware(i),
    nvidiaSmi: '/nonexistent/nvidia-smi',
  }));
  function hardware(i: number): string {
    const file = path.join(kit.dir, `hw-${i}.json`);
    fs.writeFileSync(file, JSON.stringify({ gpuModel: 'RTX A4000', driver: i % 2 ? '550.54.15' : '535.104.05' }));
    return file;
  }
  const write = (version: string) =>
    fleet.agents.forEach((_, i) => {
      const slow = version === '2.0.0' && i % 2 ? 1.5 : 1;
      const shift = version === '2.0.0' ? 1 : 0;
      const t: Telemetry = {
        schema: 'mlship.telemetry/v1',
        modelVersion: version,
        windowStart: '2026-12-01T10:00:00.000Z',
        windowEnd: '2026-12-01T11:00:00.000Z',
        latencyMs: { p50: 30 * slow * (1 + i / 100), p95: 40 * slow },
        fps: 33 / slow,
        outputs: { foregroundFraction: { edges: [0, 0.25, 0.5, 0.75, 1], counts: shift ? [10, 30, 60, 20] : [20, 60, 30, 10] } },
      };
      fs.writeFileSync(telemetry(i), JSON.stringify(t));
    });
  await kit.stage(await makePackage(kit.dir, '1.0.0', { gitCommit: 'c0ffee1', dataFingerprint: 'sha256:aaaa' }));
  await kit.promote(100);
  await fleet.pollAll();
  write('1.0.0');
  await fleet.pollAll();
  await kit.stage(await makePackage(kit.dir, '2.0.0', { gitCommit: 'badcafe', dataFingerprint: 'sha256:bbbb' }));
  await kit.promote(100);
  await fleet.pollAll();
  write('2.0.0');
  await fleet.pollAll();
  // Garbage in the reports folder is named, not counted.
  fs.mkdirSync(path.join(reports, 'biodevice-9999'), { recursive: true });
  fs.writeFileSync(path.join(reports, 'biodevice-9999', '20261201T100000000Z-000001.json'), '{"oops"');
  const inventory = path.join(kit.dir, 'inventory.txt');
  fs.writeFileSync(inventory, [...fleet.agents.map((_, i) => `biodevice-${String(i).padStart(4, '0')}`), 'biodevice-0500'].join('\n'));
  host = await runInMemory(fleetStatusStep, {
    channel: 'production',
    store: 'local',
    storeUri: kit.store.root,
    publicKey: KEYS.publicKeyPem,
    reportsUri: reports,
    inventory,
    device: 'biodevice-0003',
    jsonFile: path.join(out, 'fleet.json'),
    htmlFile: path.join(out, 'fleet.html'),
  });
  status = JSON.parse(fs.readFileSync(path.join(out, 'fleet.json'), 'utf8'));
});
afterAll(() => kit.cleanup());

test('counts releases, outcomes, silent and missing devices, and names bad reports', () => {
  expect(host.failure).toBeUndefined();
  expect(host.outputs).toMatchObject({
    devices: '13',
    reporting: '12',
    silent: '0',
    onCurrent: '12',
    failureRate: '0',
    rejectedReports: '1',
  });
  expect(status).toMatchObject({
    schema: 'mlship.fleet-status/v1',
    current: { version: '2.0.0' },
    previous: { version: '1.0.0' },
    byRelease: [{ version: '2.0.0', devices: 12 }],
    devices: { neverReported: ['biodevice-0500'] },
    rejected: [{ key: 'biodevice-9999/20261201T100000000Z-000001.json', problem: 'malformed' }],
  });
});

test('latency by hardware group, a paired significance test, and output drift against the previous release', () => {
  expect(status.latency.pairedDevices).toBe(12);
  expect(status.latency.groups.map((g) => [g.group, g.devices, Number(g.ratio.toFixed(3))])).toEqual([
    ['RTX A4000 / driver 550.54.15', 6, 1.5],
    ['RTX A4000 / driver 535.104.05', 6, 1],
  ]);
  expect(status.latency.test).toMatchObject({ n: 6, significant: true });
  expect(status.drift).toEqual([
    { statistic: 'foregroundFraction', devices: 12, psi: expect.any(Number), chiSquareP: expect.any(Number), significant: true },
  ]);
  expect(status.drift[0].psi).toBeGreaterThan(0.2);
});

test('answers what runs on one instrument, from which commit and data', () => {
  const row = status.table.find((d) => d.deviceId === 'biodevice-0003')!;
  expect(row).toMatchObject({
    version: '2.0.0',
    slot: 'b',
    gitCommit: 'badcafe',
    dataFingerprint: 'sha256:bbbb',
    driver: '550.54.15',
    onCurrent: 'runs',
  });
  expect(host.logs.some((l) => l.message.startsWith('biodevice-0003 runs 2.0.0 (commit badcafe, data sha256:bbbb'))).toBe(true);
});

test('the job summary is GitHub-flavoured markdown with tables, within the 1 MiB step summary limit', () => {
  expect(Buffer.byteLength(host.summary)).toBeLessThan(1024 * 1024);
  const html = new MarkdownIt({ html: true }).render(host.summary);
  expect((html.match(/<table>/g) ?? []).length).toBeGreaterThanOrEqual(8);
  expect(html).toContain('<details><summary>Which device runs what (12 devices)</summary>');
  expect(html).toContain('<h3>Device biodevice-0003</h3>');
  expect(host.summary).toContain('| RTX A4000 / driver 550.54.15 | 6 | 1.5 |');
});

test('the job summary renders alone in Chromium like every step summary: no data: URI, no element wider than its container', async () => {
  expect(await summaryRenders('fleet-status', host.summary)).toEqual({
    step: 'fleet-status',
    dataUri: false,
    image: false,
    axes: expect.not.arrayContaining([false]),
    overflowing: [],
  });
});

test('the HTML page renders in headless Chromium without errors or external requests, and its filter works', async () => {
  const browser = await launchChromium();
  try {
    const file = path.join(out, 'fleet.html');
    const result = await renderPage(browser, file, path.join(out, 'fleet.png'));
    expect(result).toEqual({ problems: [], externalRequests: [], sections: expect.any(Number) });
    expect(result.sections).toBeGreaterThanOrEqual(8);
    const page = await browser.newPage();
    await page.goto(`file://${file}`);
    await page.fill('#filter', 'biodevice-0003');
    const visible = await page.locator('section:last-of-type tbody tr:visible').count();
    expect(visible).toBe(1);
    await page.close();
  } finally {
    await browser.close();
  }
});
