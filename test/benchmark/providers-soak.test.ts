import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planInputs } from '../../shared/benchmark/input-shapes';
import { parseSampleLine, queryGpu, throttleNames } from '../../shared/benchmark/nvidia-smi';
import { autoOrder, judgePlacement, placementFromProfile, providerUnavailable } from '../../shared/benchmark/providers';
import { analyzeSoak, SoakRecorder, type SoakRaw } from '../../shared/benchmark/soak';
import type { Ort } from '../../shared/onnx/runtime';

const node = (name: string, op: string, provider: string, dur = 10) => ({
  cat: 'Node',
  name: `${name}_kernel_time`,
  dur,
  args: { op_name: op, provider },
});

describe('execution provider placement', () => {
  // What ONNX Runtime's profiler writes: a session event, then one kernel event per node per run.
  const profile = [
    { cat: 'Session', name: 'session_initialization', dur: 100, args: {} },
    node('conv1', 'Conv', 'CUDAExecutionProvider', 50),
    node('relu1', 'Relu', 'CUDAExecutionProvider', 5),
    node('shape', 'Shape', 'CPUExecutionProvider', 1),
    node('nms', 'NonMaxSuppression', 'CPUExecutionProvider', 40),
    node('conv1', 'Conv', 'CUDAExecutionProvider', 48),
    { cat: 'Node', name: 'conv1_fence_before', args: { provider: 'CUDAExecutionProvider' } },
  ];

  it('counts nodes per provider from the profile, each node once', () => {
    expect(placementFromProfile(profile)).toEqual({
      totalNodes: 4,
      providers: {
        CUDAExecutionProvider: { nodes: 2, ops: { Conv: 1, Relu: 1 }, microseconds: 103 },
        CPUExecutionProvider: { nodes: 2, ops: { Shape: 1, NonMaxSuppression: 1 }, microseconds: 41 },
      },
    });
  });

  it('fails a complete silent fallback, reports a partial one, and fails it when partial fallback is not allowed', () => {
    const all = placementFromProfile([node('a', 'Conv', 'CPUExecutionProvider'), node('b', 'Relu', 'CPUExecutionProvider')]);
    expect(judgePlacement('cuda', all, true)).toMatchObject({
      ok: false,
      share: 0,
      message:
        'asked for cuda, but CUDAExecutionProvider ran none of the 2 nodes: 2 on CPUExecutionProvider (Conv×1, Relu×1). ONNX Runtime silently fell back',
    });
    const partial = placementFromProfile(profile);
    expect(judgePlacement('cuda', partial, true)).toMatchObject({
      ok: true,
      share: 0.5,
      message: '2 of 4 nodes ran on CUDAExecutionProvider; 2 on CPUExecutionProvider (Shape×1, NonMaxSuppression×1)',
    });
    expect(judgePlacement('cuda', partial, false).ok).toBe(false);
    const trt = placementFromProfile([
      node('TRTKernel_graph_0', 'TRTKernel', 'TensorrtExecutionProvider'),
      node('nms', 'NonMaxSuppression', 'CUDAExecutionProvider'),
    ]);
    expect(judgePlacement('tensorrt', trt, true)).toMatchObject({
      ok: true,
      share: 0.5,
      message: '1 of 2 nodes ran on TensorrtExecutionProvider; 1 on CUDAExecutionProvider (NonMaxSuppression×1)',
    });
    expect(judgePlacement('cuda', placementFromProfile([]), true)).toMatchObject({ ok: false, message: 'the profile recorded no nodes' });
  });

  it('explains an unavailable provider with the runtime it loaded and where it looked', () => {
    const e = providerUnavailable(
      'tensorrt',
      {
        packageDir: '/opt/ort',
        version: '1.23.2',
        providerLibraries: ['libonnxruntime_providers_cuda.so'],
        notes: ['/repo lacks libonnxruntime_providers_tensorrt.so'],
      },
      'libnvinfer.so.10: cannot open shared object file',
    );
    expect(e.message).toBe(
      'Execution provider tensorrt (TensorrtExecutionProvider) is not available: libnvinfer.so.10: cannot open shared object file. ONNX Runtime would fall back to CPUExecutionProvider, so the model would run on the CPU, not the GPU; this step refuses that fallback. Loaded onnxruntime-node 1.23.2 from /opt/ort (libonnxruntime_providers_cuda.so). Looked at: /repo lacks libonnxruntime_providers_tensorrt.so.',
    );
    expect(e.hint).toContain('CUDA 12 and TensorRT');
  });

  it('tries tensorrt, cuda, cpu under auto, as far as the build lists them', () => {
    expect(autoOrder({ listSupportedBackends: () => [{ name: 'cpu' }, { name: 'cuda' }] } as unknown as Ort)).toEqual(['cuda', 'cpu']);
    expect(
      autoOrder({
        listSupportedBackends: () => [{ name: 'cpu' }, { name: 'webgpu' }, { name: 'cuda' }, { name: 'tensorrt' }],
      } as unknown as Ort),
    ).toEqual(['tensorrt', 'cuda', 'cpu']);
  });
});

describe('input shapes', () => {
  const inputs = [{ name: 'image', type: 'float32', shape: ['batch', 3, 'height', 'width'] as (string | number)[] }];

  it('takes the batch from the batch size and other dynamic sizes from input-shape or the preprocessing resize', () => {
    expect(planInputs('m.onnx', inputs, 4, [1, 3, 256, 320], undefined)).toEqual([
      { name: 'image', type: 'float32', dims: [4, 3, 256, 320] },
    ]);
    expect(
      planInputs('m.onnx', inputs, 2, undefined, {
        version: 1,
        color: 'rgb',
        layout: 'NCHW',
        dtype: 'float32',
        resize: { width: 128, height: 96 },
      })[0].dims,
    ).toEqual([2, 3, 96, 128]);
  });

  it('says which axis has no size, and refuses sizes the model fixes otherwise', () => {
    expect(() => planInputs('m.onnx', inputs, 1, undefined, undefined)).toThrow(
      'Axis 2 ("height") of input image of m.onnx is dynamic, and neither input-shape nor a preprocessing resize gives its size.',
    );
    expect(() => planInputs('m.onnx', inputs, 1, [1, 4, 64, 64], undefined)).toThrow(
      'input-shape sets axis 1 of image to 4, but the model fixes it to 3.',
    );
    expect(() => planInputs('m.onnx', [{ name: 'x', type: 'float32', shape: [1, 3] }], 8, undefined, undefined)).toThrow(
      'Batch size 8 was asked, but m.onnx fixes the batch axis of x to 1.',
    );
    expect(() => planInputs('m.onnx', [{ name: 's', type: 'string', shape: [1] }], 1, undefined, undefined)).toThrow(
      'Input s of m.onnx has element type string, which the benchmark cannot generate.',
    );
  });
});

describe('nvidia-smi', () => {
  it('parses samples and throttle reason bits', () => {
    expect(parseSampleLine('2026/01/01 10:00:00.000, 71, 1410, 1593, 2048, 250.12, 0x0000000000000044', 1500)).toEqual({
      t: 1500,
      temperatureC: 71,
      smClockMHz: 1410,
      memClockMHz: 1593,
      memoryUsedMiB: 2048,
      powerW: 250.12,
      throttleMask: 0x44,
    });
    expect(parseSampleLine('2026/01/01 10:00:00.000, 40, 210, 405, 0, [N/A], 0x0000000000000001', 0)).toMatchObject({
      powerW: undefined,
      throttleMask: 1,
    });
    expect(throttleNames(0x44)).toEqual([
      { name: 'sw_power_cap', fails: false },
      { name: 'hw_thermal_slowdown', fails: true },
    ]);
    expect(parseSampleLine('garbage', 0)).toBeUndefined();
  });

  it('is absent, not an error, where nvidia-smi does not exist; and falls back for drivers without compute_cap', async () => {
    expect(await queryGpu(0, '/nonexistent/nvidia-smi')).toBeUndefined();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-smi-'));
    const smi = path.join(dir, 'nvidia-smi');
    fs.writeFileSync(
      smi,
      '#!/bin/sh\ncase "$*" in\n  *compute_cap*) echo "Field \\"compute_cap\\" is not a valid field to query." >&2; exit 2 ;;\n  *index,name*) echo "1, Tesla T4, 470.82.01, 15109" ;;\n  "") echo "CUDA Version: 11.4" ;;\nesac\n',
      { mode: 0o755 },
    );
    expect(await queryGpu(1, smi)).toEqual({
      index: 1,
      name: 'Tesla T4',
      driver: '470.82.01',
      memoryMiB: 15109,
      computeCapability: undefined,
      cuda: '11.4',
    });
  });
});

describe('soak analysis', () => {
  function raw(durationS: number, latencyAt: (t: number) => number, rssAt: (t: number) => number, gpu: SoakRaw['gpu'] = []): SoakRaw {
    const latency = new SoakRecorder(60000);
    const rss = [];
    for (let t = 0; t <= durationS * 1000; t += 10) latency.add(t, latencyAt(t));
    for (let t = 0; t <= durationS * 1000; t += 1000) rss.push({ t, mb: rssAt(t) });
    return { durationMs: durationS * 1000, windowMs: 60000, latency: latency.finish(), rss, gpu };
  }
  const limits = { maxDriftPercent: 10, maxTailDriftPercent: 1000, maxRssGrowthMb: 64, maxGpuMemoryGrowthMb: 64, failOnThrottle: true };

  it('passes a steady run', () => {
    const a = analyzeSoak(
      raw(
        300,
        () => 5,
        () => 400,
      ),
      limits,
    );
    expect(a).toMatchObject({
      durationS: 300,
      windowS: 60,
      iterations: 30001,
      driftPercent: 0,
      tailDriftPercent: { p95: 0, p99: 0 },
      rssStartMb: 400,
      rssGrowthMb: 0,
      failures: [],
      warnings: [],
    });
    // One timeline row per 60 s window (the last holds the single sample at t = 300 s), and every run in the histogram.
    expect(a.timeline.map((w) => [w.startS, w.count])).toEqual([
      [0, 6000],
      [60, 6000],
      [120, 6000],
      [180, 6000],
      [240, 6000],
      [300, 1],
    ]);
    expect(a.histogram.counts.reduce((x, y) => x + y, 0)).toBe(30001);
  });

  it('fails a run whose p95 grows while its median stays flat', () => {
    // 1 run in 10 is slow; from 120 s on the slow runs take 3× as long. Median 5 ms throughout, p95 10 → 30 ms.
    const tailGrows = (t: number) => (Math.round(t / 10) % 10 === 0 ? (t < 120000 ? 10 : 30) : 5);
    const a = analyzeSoak(
      raw(300, tailGrows, () => 400),
      { ...limits, maxTailDriftPercent: 30 },
    );
    expect(a.driftPercent).toBe(0);
    expect(a.first.p95).toBe(10);
    expect(a.last.p95).toBe(30);
    expect(a.failures).toEqual([
      'p95 latency drifted 200.0% (10.000 ms in the first 60 s, 30.000 ms in the last; median +0.0%), more than max-tail-drift-percent 30',
      'p99 latency drifted 200.0% (10.000 ms in the first 60 s, 30.000 ms in the last; median +0.0%), more than max-tail-drift-percent 30',
    ]);
    // The same run passes a median-only limit, as every soak did before tails were gated.
    expect(
      analyzeSoak(
        raw(300, tailGrows, () => 400),
        limits,
      ).failures,
    ).toEqual([]);
  });

  it('does not gate a tail that its windows hold too few samples for, and says so', () => {
    const latency = new SoakRecorder(1000);
    for (let t = 0; t <= 3000; t += 20) latency.add(t, t < 1500 ? 5 : t % 200 === 0 ? 50 : 5);
    const a = analyzeSoak(
      { durationMs: 3000, windowMs: 1000, latency: latency.finish(), rss: [], gpu: [] },
      { ...limits, maxTailDriftPercent: 30 },
    );
    expect(a.tailDriftPercent).toEqual({ p95: null, p99: null });
    expect(a.warnings).toEqual([
      'p95 drift is not gated: a window holds 51 samples, fewer than the 100 a p95 needs; lengthen soak-window',
      'p99 drift is not gated: a window holds 51 samples, fewer than the 500 a p99 needs; lengthen soak-window',
    ]);
  });

  it('fails latency drift and a leak, and names the figures', () => {
    const a = analyzeSoak(
      raw(
        300,
        (t) => 5 + t / 100000,
        (t) => 400 + t / 1000,
      ),
      limits,
    );
    // Medians: first window (0-60 s) 5.3 ms, last (240-300 s) 7.7 ms; RSS 430 MB → 670 MB.
    expect(a.first.p50).toBeCloseTo(5.3, 9);
    expect(a.last.p50).toBeCloseTo(7.7, 9);
    expect(a.failures).toEqual([
      'latency drifted 45.3% (median 5.300 ms in the first 60 s, 7.700 ms in the last), more than max-drift-percent 10',
      'resident memory grew 240.0 MB (from 430.0 MB), more than max-rss-growth-mb 64: a leak',
    ]);
  });

  it('fails thermal throttling and GPU memory growth, and only warns about a power cap', () => {
    const gpu = Array.from({ length: 300 }, (_, i) => ({
      t: i * 1000,
      temperatureC: 60 + i / 10,
      smClockMHz: i < 200 ? 1800 : 1400,
      memoryUsedMiB: 1000 + i,
      throttleMask: i >= 200 ? 0x20 : i === 10 ? 0x4 : 0,
    }));
    const a = analyzeSoak(
      raw(
        300,
        () => 5,
        () => 400,
        gpu,
      ),
      limits,
    );
    expect(a.gpu).toMatchObject({
      samples: 300,
      temperature: { start: 60, max: 89.9, end: 89.9 },
      smClockMHz: { first: 1800, last: 1400 },
    });
    // Median used memory: 1030 MiB over 0-60 s, 1269.5 MiB over the last 60 s.
    expect(a.gpu!.memoryGrowthMb).toBeCloseTo(239.5, 9);
    expect(a.failures).toEqual([
      'GPU memory grew 240 MiB, more than max-gpu-memory-growth-mb 64: a leak',
      'GPU reported sw_thermal_slowdown in 100 of 300 samples (first at 200 s, max 89.9 °C): the device throttles under this load',
    ]);
    expect(a.warnings).toEqual(['GPU reported sw_power_cap in 1 of 300 samples (first at 10 s, max 89.9 °C)']);
    expect(
      analyzeSoak(
        raw(
          300,
          () => 5,
          () => 400,
          gpu,
        ),
        { ...limits, failOnThrottle: false, maxGpuMemoryGrowthMb: 1000 },
      ).failures,
    ).toEqual([]);
  });
});
