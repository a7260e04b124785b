/** @jest-environment ./test/onnx/ort-environment.js */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { simulateSoak } from '../../shared/benchmark/simulated-soak';
import { sha256Hex } from '../../shared/core/sha256';
import { runStep } from '../../shared/core/runtime';
import { MemoryHost } from '../../shared/hosts/memory-host';
import { buildPackage, generateSigningKeyPair } from '../../shared/package';
import { benchmarkModelStep } from '../../shared/steps/benchmark-model';
import { convNetOnnx } from './conv-model';

/**
 * benchmark-model's report without PyTorch (a hand-built conv net): compact (percentiles, fixed-bin histogram,
 * statistics), bound to the model by sha256, raw samples in a separate file that a later run's regression gate
 * reads; and an hour-long soak's report, synthesised from a simulated sample stream, embeds in a device package.
 */
describe('compact benchmark reports', () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-compact-'));
  fs.writeFileSync(path.join(ws, 'conv.onnx'), convNetOnnx());
  afterAll(() => fs.rmSync(ws, { recursive: true, force: true }));

  async function bench(inputs: Record<string, string | number | boolean>): Promise<MemoryHost> {
    const host = new MemoryHost({ model: 'conv.onnx', provider: 'cpu', warmup: 2, iterations: 30, ...inputs }, { workspace: ws });
    await runStep(benchmarkModelStep, host, new AbortController().signal);
    return host;
  }

  it('stores percentiles and a histogram, names the model by sha256, and keeps the raw samples apart', async () => {
    const host = await bench({ report: 'out/bench.json', dataFingerprint: 'sha256:data' });
    expect(host.failure).toBeUndefined();
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'out', 'bench.json'), 'utf8'));
    expect(report.model.sha256).toBe(sha256Hex(fs.readFileSync(path.join(ws, 'conv.onnx'))));
    expect(report.task).toBe('segmentation');
    expect(report.dataFingerprint).toBe('sha256:data');
    const l = report.latency[0];
    expect(l.samples).toBeUndefined();
    expect(l.stats.count).toBe(30);
    const h = l.histogram;
    expect(h).toMatchObject({ scale: 'log10', binsPerDecade: 20 });
    expect(h.edgesMs).toHaveLength(h.counts.length + 1);
    expect(h.counts.reduce((a: number, b: number) => a + b, 0)).toBe(30);
    // The exact min and max fall inside the first and last stored bins.
    expect(h.edgesMs[0]).toBeLessThanOrEqual(l.stats.min);
    expect(h.edgesMs.at(-1)).toBeGreaterThan(l.stats.max);
    expect(report.samplesFile).toBe('bench.samples.json');
    const samples = JSON.parse(fs.readFileSync(path.join(ws, 'out', 'bench.samples.json'), 'utf8'));
    expect(samples).toMatchObject({ format: 'mlship-benchmark-samples/1', model: { sha256: report.model.sha256 }, provider: 'cpu' });
    expect(samples.latency[0].samples).toHaveLength(30);

    // A later run gates against the stored report, reading the samples file it names.
    const again = await bench({ report: 'again.json', baselineReport: 'out/bench.json', regressionMargin: 100 });
    expect(again.failure).toBeUndefined();
    expect(JSON.parse(again.outputs.regression)).toMatchObject({ interleaved: false, baselineSamples: 30, slower: false });
    fs.rmSync(path.join(ws, 'out', 'bench.samples.json'));
    const lost = await bench({ report: 'lost.json', baselineReport: 'out/bench.json' });
    expect(lost.failure).toContain(
      `Baseline report ${path.join(ws, 'out', 'bench.json')} keeps its raw samples in bench.samples.json, which does not exist`,
    );
  });

  it('fails a soak whose p95 grows past max-tail-drift-percent while its median stays flat', () => {
    const limits = { maxDriftPercent: 10, maxTailDriftPercent: 30, maxRssGrowthMb: 64, maxGpuMemoryGrowthMb: 64, failOnThrottle: true };
    // 5 ms runs; 8 % of them stall, for 12 ms in the first 10 minutes and 40 ms after that.
    const soak = simulateSoak(1800, 60, (t, u) => (u < 0.08 ? (t < 600_000 ? 12 : 40) : 5), limits);
    expect(soak.driftPercent).toBe(0);
    expect(soak.failures).toEqual([
      'p95 latency drifted 233.3% (12.000 ms in the first 60 s, 40.000 ms in the last; median +0.0%), more than max-tail-drift-percent 30',
      'p99 latency drifted 233.3% (12.000 ms in the first 60 s, 40.000 ms in the last; median +0.0%), more than max-tail-drift-percent 30',
    ]);
  });

  it('embeds the report of an hour-long soak in a device package', async () => {
    const host = await bench({ report: 'hour.json' });
    expect(host.failure).toBeUndefined();
    const report = JSON.parse(fs.readFileSync(path.join(ws, 'hour.json'), 'utf8'));
    // One hour of 2-4 ms runs (about 1.2 million), as a real soak at batch 1 on a GPU runner records them.
    const limits = { maxDriftPercent: 10, maxTailDriftPercent: 30, maxRssGrowthMb: 64, maxGpuMemoryGrowthMb: 64, failOnThrottle: true };
    report.soak = simulateSoak(3600, 60, (_t, u) => 2 + 2 * u * u, limits);
    expect(report.soak.iterations).toBeGreaterThan(1_000_000);
    expect(report.soak.timeline).toHaveLength(61);
    const file = path.join(ws, 'hour-soak.json');
    fs.writeFileSync(file, JSON.stringify(report, null, 2));
    expect(fs.statSync(file).size).toBeLessThan(64 * 1024);
    const keys = generateSigningKeyPair();
    const built = await buildPackage({
      name: 'conv',
      version: '1.0.0',
      models: [path.join(ws, 'conv.onnx')],
      provenance: { benchmarkReport: file },
      signingKey: keys.privateKeyPem,
      outputDir: path.join(ws, 'pkg'),
    });
    expect((built.manifest.provenance.benchmarkReport as { soak: { iterations: number } }).soak.iterations).toBe(report.soak.iterations);
  });
});
