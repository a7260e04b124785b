/**
 * Device reports end to end: the agent writes them to a folder, an S3 prefix (the test S3 server), an Azure
 * container through a write-only SAS (Azurite) and an HTTPS endpoint; CI reads them back with the same store
 * classes; the outbox bounds itself offline and sends oldest first; compatibility refuses packages the device
 * cannot run (a fake nvidia-smi: there is no GPU here, and nvidia-smi cannot run without one); the aggregation
 * names and skips malformed, oversized and forged reports.
 *
 * The HTTPS endpoint is the user's own service, so the test runs a small node:http server that implements the
 * documented contract (docs/fleet-status.md): PUT /<device>/<report>.json, If-None-Match, bearer token per device.
 */
import { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { DeviceAgent, type DeviceAgentOptions } from '../../shared/agent';
import { HttpsReportSink, openReportSink, type ReportSink } from '../../shared/agent/reporter';
import { aggregate } from '../../shared/fleet/aggregate';
import { readReports } from '../../shared/fleet/read-reports';
import { type DeviceReport, parseReport, signReport } from '../../shared/fleet/report';
import { MAX_REPORT_BYTES } from '../../shared/fleet/report-schema';
import { wilcoxonSignedRank } from '../../shared/fleet/signed-rank';
import { LocalFolderStore } from '../../shared/ota/local-store';
import { generateSigningKeyPair, loadPrivateKey, loadPublicKey } from '../../shared/package';
import { ChannelKit } from '../agent/support/fleet';
import { KEYS, makePackage } from '../ota/support/packages';
import { BUCKET, S3_ENV, StoreBackends, testConnections } from '../ota/support/stores';
import { openStore } from '../../shared/ota/open-store';

const backends = new StoreBackends();
let kit: ChannelKit;
let v1: string;
let n = 0;

beforeAll(async () => {
  await backends.start(['s3', 'azure-blob']);
  kit = new ChannelKit();
  v1 = await makePackage(kit.dir, '1.0.0', { gitCommit: '0123abc', dataFingerprint: 'sha256:feed' });
  await kit.stage(v1, 'production');
});
afterAll(async () => {
  await backends.stop();
  kit.cleanup();
});

function agent(deviceId: string, options: Partial<DeviceAgentOptions>): DeviceAgent {
  return new DeviceAgent({
    channelUrl: kit.channelUrl('production'),
    deviceId,
    publicKey: KEYS.publicKeyPem,
    root: path.join(kit.dir, 'devices', `${deviceId}-${n++}`),
    nvidiaSmi: '/nonexistent/nvidia-smi',
    ...options,
  });
}

/** A fake nvidia-smi answering the two queries mlship makes, as driver 535 on an RTX A4000 prints them. */
function fakeNvidiaSmi(dir: string, gpu: { name: string; driver: string; memory: number; cap: string; cuda: string }): string {
  const file = path.join(dir, `nvidia-smi-${n++}`);
  fs.writeFileSync(
    file,
    `#!/bin/sh
case "$1" in
  --query-gpu=*) echo "0, ${gpu.name}, ${gpu.driver}, ${gpu.memory}, ${gpu.cap}" ;;
  *) echo "| NVIDIA-SMI ${gpu.driver}    Driver Version: ${gpu.driver}    CUDA Version: ${gpu.cuda}     |" ;;
esac
`,
    { mode: 0o755 },
  );
  return file;
}

describe('report sinks', () => {
  test('folder: one schema-valid report per event, under the device prefix, read back by CI', async () => {
    const dir = path.join(kit.dir, 'reports-folder');
    const sink = openReportSink({ kind: 'folder', uri: dir });
    const telemetryFile = path.join(kit.dir, 'telemetry-folder.json');
    const device = agent('SN-0001', {
      reportSink: sink,
      telemetryFile,
      deviceGroups: ['lab-a'],
      hardwareFile: writeJson('hw-1.json', {
        gpuModel: 'RTX A4000',
        driver: '535.104.05',
        cuda: '12.2',
        computeCapability: '8.6',
        gpuMemoryMiB: 16376,
      }),
    });
    expect((await device.pollOnce()).status).toBe('installed');
    fs.writeFileSync(
      telemetryFile,
      JSON.stringify({
        schema: 'mlship.telemetry/v1',
        modelVersion: '1.0.0',
        windowStart: '2026-12-01T10:00:00.000Z',
        windowEnd: '2026-12-01T11:00:00.000Z',
        images: 120,
        latencyMs: { p50: 31.5, p95: 40.1 },
        fps: 31.7,
        outputs: { foregroundFraction: { edges: [0, 0.5, 1], counts: [70, 50] } },
      }),
    );
    // Nothing happened: no report until the heartbeat is due.
    expect((await device.pollOnce()).status).toBe('up-to-date');
    const { reports, rejected } = await readReports(new LocalFolderStore(dir));
    expect(rejected).toEqual([]);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      schema: 'mlship.device-report/v1',
      deviceId: 'SN-0001',
      groups: ['lab-a'],
      event: 'install',
      status: 'installed',
      channel: 'production',
      sequence: 1,
      installed: { name: 'cellseg', version: '1.0.0', slot: 'a', gitCommit: '0123abc', dataFingerprint: 'sha256:feed' },
      hardware: { source: 'file', gpuModel: 'RTX A4000', driver: '535.104.05', gpuMemoryMiB: 16376 },
      // Older reports still waiting to be sent when this one was made.
      buffer: { pending: 0, dropped: 0 },
    });
    const heartbeat = agent('SN-0002', { reportSink: sink, telemetryFile, heartbeatSeconds: 0 });
    await heartbeat.pollOnce();
    await heartbeat.pollOnce();
    const second = (await readReports(new LocalFolderStore(dir))).reports.filter((r) => r.deviceId === 'SN-0002');
    expect(second.map((r) => r.event)).toEqual(['install', 'heartbeat']);
    expect(second[1].telemetry).toMatchObject({ latencyMs: { p50: 31.5 }, outputs: { foregroundFraction: { counts: [70, 50] } } });
  });

  test('S3 prefix with device credentials, and an Azure container through a write-only SAS the device cannot read with', async () => {
    const s3 = openReportSink({ kind: 's3', uri: `s3://${BUCKET}/reports/production`, endpoint: backends.s3.endpoint, env: S3_ENV });
    expect((await agent('SN-S3', { reportSink: s3 }).pollOnce()).status).toBe('installed');
    const fromS3 = await readReports(backends.open('s3', 'reports/production'));
    expect(fromS3.reports.map((r) => [r.deviceId, r.event])).toEqual([['SN-S3', 'install']]);

    const credential = new StorageSharedKeyCredential(backends.azurite.account, backends.azurite.key);
    // A private container: the OTA one is public-read for devices, reports are not.
    const service = BlobServiceClient.fromConnectionString(backends.azurite.connectionString);
    await service.getContainerClient('reports').create();
    const sas = generateBlobSASQueryParameters(
      { containerName: 'reports', permissions: BlobSASPermissions.parse('cw'), expiresOn: new Date(Date.now() + 3_600_000) },
      credential,
    ).toString();
    const containerUrl = `${backends.azurite.blobEndpoint}/reports`;
    const azure = openReportSink({ kind: 'azure-blob', uri: `${containerUrl}/production?${sas}` });
    const azLogs: string[] = [];
    expect((await agent('SN-AZ', { reportSink: azure, log: (l) => azLogs.push(l) }).pollOnce()).status).toBe('installed');
    expect(azLogs.filter((l) => l.includes('report'))).toEqual([]);
    const fromAzure = await readReports(
      openStore({
        kind: 'azure-blob',
        uri: 'reports/production',
        azureConnectionString: backends.azurite.connectionString,
        connections: testConnections({}),
      }),
    );
    expect(fromAzure.reports.map((r) => [r.deviceId, r.event])).toEqual([['SN-AZ', 'install']]);
    // The device's SAS writes; it cannot read what it (or another device) wrote.
    const key = `production/SN-AZ/${fromAzure.reports[0].reportId}.json`;
    expect((await fetch(`${containerUrl}/${key}?${sas}`)).status).toBe(403);
    expect(await service.getContainerClient('reports').getBlobClient(key).exists()).toBe(true);
  });

  test('HTTPS endpoint: PUT per report with the device token; a 4xx drops it, a 5xx keeps it for later', async () => {
    const received: { url: string; auth?: string; body: DeviceReport }[] = [];
    let answer = 201;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (answer < 300)
          received.push({ url: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString()) });
        res.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`;
    try {
      const device = agent('SN-HTTP', { reportSink: new HttpsReportSink(base, 'device-token-7'), heartbeatSeconds: 0 });
      answer = 503;
      await device.pollOnce();
      await device.pollOnce();
      expect(received).toEqual([]);
      answer = 201;
      await device.pollOnce();
      expect(received.map((r) => r.body.event)).toEqual(['install', 'heartbeat', 'heartbeat']);
      expect(received.every((r) => r.auth === 'Bearer device-token-7' && r.url === `/ingest/SN-HTTP/${r.body.reportId}.json`)).toBe(true);
      answer = 400;
      const logs: string[] = [];
      const noisy = agent('SN-HTTP-2', { reportSink: new HttpsReportSink(base), log: (l) => logs.push(l) });
      await noisy.pollOnce();
      expect(logs.some((l) => /report .*\.json rejected by http:\/\/127\.0\.0\.1:\d+\/ingest; dropped/.test(l))).toBe(true);
      expect(
        fs.readdirSync(
          path.join(
            kit.dir,
            'devices',
            fs.readdirSync(path.join(kit.dir, 'devices')).find((d) => d.startsWith('SN-HTTP-2'))!,
            'reports',
            'outbox',
          ),
        ),
      ).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

test('mlship device-agent --report-sink folder --device-key … --once writes a signed report', async () => {
  const { deviceAgentCommand } = await import('../../shared/agent/command');
  const dir = path.join(kit.dir, 'reports-cli');
  const keys = generateSigningKeyPair();
  const keyFile = path.join(kit.dir, 'device.key.pem');
  fs.writeFileSync(keyFile, keys.privateKeyPem);
  const publicKeyFile = path.join(kit.dir, 'release.pub.pem');
  fs.writeFileSync(publicKeyFile, KEYS.publicKeyPem);
  const out: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: () => undefined };
  const args = [
    '--channel-url',
    kit.channelUrl('production'),
    '--device-id',
    'SN-CLI',
    '--public-key',
    publicKeyFile,
    '--root',
    path.join(kit.dir, 'devices', `cli-${n++}`),
    '--once',
  ];
  expect(
    await deviceAgentCommand.run(
      [
        ...args,
        '--report-sink',
        'folder',
        '--report-uri',
        dir,
        '--device-key',
        keyFile,
        '--device-model',
        'CellScope 5',
        '--nvidia-smi',
        '/nonexistent/nvidia-smi',
      ],
      io,
    ),
  ).toBe(0);
  const { reports, rejected } = await readReports(new LocalFolderStore(dir), {
    deviceKeys: new Map([['SN-CLI', loadPublicKey(keys.publicKeyPem)]]),
  });
  expect(rejected).toEqual([]);
  expect(reports).toMatchObject([
    { deviceId: 'SN-CLI', event: 'install', hardware: { deviceModel: 'CellScope 5', source: 'none' }, signature: { algorithm: 'ed25519' } },
  ]);
  const err: string[] = [];
  const bad = { stdout: () => undefined, stderr: (t: string) => err.push(t) };
  expect(await deviceAgentCommand.run([...args, '--report-sink', 'ftp', '--report-uri', dir], bad)).toBe(2);
  expect(await deviceAgentCommand.run([...args, '--report-sink', 'folder'], bad)).toBe(2);
  expect(err.join('')).toContain('error: --report-sink is "ftp"; use folder, s3, azure-blob or https');
  expect(err.join('')).toContain('error: --report-sink and --report-uri go together');
});

describe('offline buffer', () => {
  test('bounded: the oldest reports go first and are counted; once online, the rest arrive oldest first', async () => {
    let online = false;
    const delivered: string[] = [];
    const sink: ReportSink = {
      description: 'test sink',
      async put(_device, reportId) {
        if (!online) throw new Error('connect ENETUNREACH');
        delivered.push(reportId);
        return 'stored';
      },
    };
    const device = agent('SN-OFF', { reportSink: sink, heartbeatSeconds: 0, outboxLimits: { maxReports: 5, maxBytes: 1024 * 1024 } });
    for (let i = 0; i < 9; i++) await device.pollOnce();
    const state = await device.state();
    expect(state.reports).toMatchObject({ counter: 9, dropped: 4 });
    expect(fs.readdirSync(path.join(device.root, 'reports', 'outbox'))).toHaveLength(5);
    online = true;
    // The tenth report joins the five waiting (one more old one goes), then all five are sent, oldest first.
    await device.pollOnce();
    expect(delivered.map((id) => Number(id.slice(-6)))).toEqual([6, 7, 8, 9, 10]);
    expect((await device.state()).reports).toMatchObject({ counter: 10, dropped: 5 });
  });
});

describe('compatibility before install', () => {
  test('a package for driver 999, CUDA 99, another model and compute 9.0 is refused as incompatible and never installed', async () => {
    const needy = await makePackage(kit.dir, '9.0.0', {
      compatibility: {
        deviceModels: ['CellScope 7'],
        minDriverVersion: '999.0',
        minCudaVersion: '99.0',
        minComputeCapability: '9.0',
        minGpuMemoryMb: 81920,
        minOnnxRuntimeVersion: '1.20.0',
      },
    });
    await kit.stage(needy, 'needy');
    const reports = path.join(kit.dir, 'reports-compat');
    const nvidiaSmi = fakeNvidiaSmi(kit.dir, { name: 'NVIDIA RTX A4000', driver: '535.104.05', memory: 16376, cap: '8.6', cuda: '12.2' });
    const root = path.join(kit.dir, 'devices', `compat-${n++}`);
    const device = new DeviceAgent({
      channelUrl: kit.channelUrl('needy'),
      deviceId: 'SN-OLD',
      publicKey: KEYS.publicKeyPem,
      root,
      nvidiaSmi,
      deviceModel: 'CellScope 5',
      onnxruntimeVersion: '1.17.3',
      reportSink: openReportSink({ kind: 'folder', uri: reports }),
    });
    const first = await device.pollOnce();
    expect(first).toMatchObject({ status: 'incompatible', activeSlot: null, slots: {} });
    expect(first.message).toBe(
      'cellseg 9.0.0 cannot run on this device (device model CellScope 5 is not one of CellScope 7; needs NVIDIA driver 999.0 or newer, device has 535.104.05; needs CUDA 99.0 or newer, device has 12.2; needs ONNX Runtime 1.20.0 or newer, device has 1.17.3; needs compute capability 9.0 or newer, device has 8.6; needs 81920 MiB of GPU memory, device has 16376 MiB); not installed, staying on nothing',
    );
    expect(fs.existsSync(path.join(root, 'slots', 'a'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'current'))).toBe(false);
    // Known incompatible: not downloaded again (the package can even be gone).
    const doc = JSON.parse(fs.readFileSync(kit.store.pathOf('channels/needy.json'), 'utf8'));
    fs.renameSync(kit.store.pathOf(doc.current.key), `${kit.store.pathOf(doc.current.key)}.away`);
    expect((await device.pollOnce()).status).toBe('incompatible');
    fs.renameSync(`${kit.store.pathOf(doc.current.key)}.away`, kit.store.pathOf(doc.current.key));
    const { reports: sent } = await readReports(new LocalFolderStore(reports));
    expect(sent[0]).toMatchObject({
      event: 'incompatible',
      status: 'incompatible',
      installed: null,
      target: { version: '9.0.0' },
      hardware: {
        source: 'nvidia-smi',
        gpuModel: 'NVIDIA RTX A4000',
        driver: '535.104.05',
        cuda: '12.2',
        computeCapability: '8.6',
        gpuMemoryMiB: 16376,
      },
    });
  });

  test('a machine with no GPU at all refuses a package that needs a driver', async () => {
    const needy = await makePackage(kit.dir, '9.1.0', { compatibility: { minDriverVersion: '525.60' } });
    await kit.stage(needy, 'no-gpu');
    const device = new DeviceAgent({
      channelUrl: kit.channelUrl('no-gpu'),
      deviceId: 'SN-CPU',
      publicKey: KEYS.publicKeyPem,
      root: path.join(kit.dir, 'devices', `cpu-${n++}`),
      nvidiaSmi: '/nonexistent/nvidia-smi',
    });
    const report = await device.pollOnce();
    expect(report.status).toBe('incompatible');
    expect(report.message).toContain(
      'needs NVIDIA driver 525.60, but no NVIDIA driver was found (no nvidia-smi, no driver in the hardware file)',
    );
  });
});

describe('bad reports in the aggregation', () => {
  test('malformed, oversized, misnamed and forged reports are named and counted, never healthy, never a crash', async () => {
    const dir = path.join(kit.dir, 'reports-bad');
    const store = new LocalFolderStore(dir);
    const sink = openReportSink({ kind: 'folder', uri: dir });
    await agent('SN-GOOD', { reportSink: sink }).pollOnce();
    const good = (await readReports(store)).reports[0];
    const put = (key: string, body: string | Buffer) => {
      fs.mkdirSync(path.dirname(path.join(dir, key)), { recursive: true });
      fs.writeFileSync(path.join(dir, key), body);
    };
    put('SN-BAD/20261201T100000000Z-000001.json', '{"schema": "mlship.device-report/v1", "deviceId": ');
    put(
      'SN-BAD/20261201T100000000Z-000002.json',
      JSON.stringify({ ...good, deviceId: 'SN-BAD', reportId: '20261201T100000000Z-000002', status: 'healthy-trust-me' }),
    );
    put('SN-BIG/20261201T100000000Z-000001.json', Buffer.alloc(MAX_REPORT_BYTES + 1, 0x20));
    // Another device's credentials (SN-EVIL's prefix) cannot speak for SN-GOOD.
    put(`SN-EVIL/${good.reportId}.json`, JSON.stringify(good));
    put('SN-EVIL/notes.txt', 'hello');
    const { reports, rejected } = await readReports(store);
    expect(reports.map((r) => r.deviceId)).toEqual(['SN-GOOD']);
    expect(rejected.map((r) => [r.key, r.problem])).toEqual([
      ['SN-BAD/20261201T100000000Z-000001.json', 'malformed'],
      ['SN-BAD/20261201T100000000Z-000002.json', 'malformed'],
      ['SN-BIG/20261201T100000000Z-000001.json', 'oversized'],
      [`SN-EVIL/${good.reportId}.json`, 'forged'],
      ['SN-EVIL/notes.txt', 'malformed'],
    ]);
    expect(rejected[1].detail).toMatch(/^does not match mlship\.device-report\/v1: \/status: must be equal to one of the allowed values/);
    expect(rejected[3].detail).toBe('claims to be from device SN-GOOD but was written under SN-EVIL/');
    const status = aggregate(reports, rejected, { channel: 'production', now: new Date(), silentAfterHours: 24 });
    expect(status.rejectedCounts).toEqual({ malformed: 3, oversized: 1, forged: 1 });
    expect(status.table.map((d) => d.deviceId)).toEqual(['SN-GOOD']);
  });

  test('with device keys, only reports signed by their own device count', async () => {
    const dir = path.join(kit.dir, 'reports-signed');
    const sink = openReportSink({ kind: 'folder', uri: dir });
    const mine = generateSigningKeyPair();
    const other = generateSigningKeyPair();
    await agent('SN-SIGNED', { reportSink: sink, deviceKey: mine.privateKeyPem }).pollOnce();
    await agent('SN-UNSIGNED', { reportSink: sink }).pollOnce();
    const store = new LocalFolderStore(dir);
    const plain = (await readReports(store)).reports;
    // A report re-signed by a key that is not SN-SIGNED's, written under its prefix.
    const forged = signReport(
      { ...plain[0], reportId: '20261201T100000000Z-000009', status: 'installed' },
      loadPrivateKey(other.privateKeyPem),
    );
    fs.writeFileSync(path.join(dir, 'SN-SIGNED', '20261201T100000000Z-000009.json'), JSON.stringify(forged));
    const keys = new Map([['SN-SIGNED', loadPublicKey(mine.publicKeyPem)]]);
    const { reports, rejected } = await readReports(store, { deviceKeys: keys });
    expect(reports.map((r) => r.deviceId)).toEqual(['SN-SIGNED']);
    expect(rejected.map((r) => [r.deviceId, r.problem, r.detail])).toEqual([
      ['SN-SIGNED', 'forged', 'signature does not verify with the key of device SN-SIGNED'],
      ['SN-UNSIGNED', 'forged', 'device SN-UNSIGNED has no key in the device keys, so its reports cannot be trusted'],
    ]);
    expect(parseReport(Buffer.from(JSON.stringify(plain[0]))).ok).toBe(true);
  });
});

test('Wilcoxon signed-rank matches scipy.stats.wilcoxon(method="approx", correction=True)', () => {
  // scipy 1.16: WilcoxonResult(statistic=3.5, pvalue=0.028263033165028824), with a tie (|−0.1| = |0.1|).
  const result = wilcoxonSignedRank([0.1, 0.2, -0.05, 0.3, 0.25, 0.15, 0.4, -0.1, 0.22])!;
  expect(result.n).toBe(9);
  expect(Math.min(result.wPlus, (9 * 10) / 2 - result.wPlus)).toBe(3.5);
  expect(result.p).toBeCloseTo(0.028263033165028824, 6);
  expect(wilcoxonSignedRank([1, 2, 3])).toBeUndefined();
});

function writeJson(name: string, value: unknown): string {
  const file = path.join(kit.dir, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}
