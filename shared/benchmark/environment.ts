import * as os from 'node:os';
import type { LoadedRuntime } from '../onnx/runtime';
import { type GpuInfo, queryGpu } from './nvidia-smi';

/** Where the figures were measured: numbers from different hardware or runtimes are not comparable. */
export interface EnvironmentFingerprint {
  gpu?: GpuInfo;
  onnxruntime: { version: string; source: string; packageDir: string; providerLibraries: string[] };
  provider: string;
  cpu: { model: string; cores: number };
  memoryGb: number;
  os: { platform: string; release: string; arch: string };
  node: string;
}

export async function fingerprint(
  runtime: LoadedRuntime,
  provider: string,
  deviceId: number,
  nvidiaSmi: string,
): Promise<EnvironmentFingerprint> {
  const cpus = os.cpus();
  const ortVersion = (runtime.ort as unknown as { env?: { versions?: { node?: string } } }).env?.versions?.node ?? runtime.version;
  return {
    gpu: await queryGpu(deviceId, nvidiaSmi),
    onnxruntime: {
      version: ortVersion,
      source: runtime.source,
      packageDir: runtime.packageDir,
      providerLibraries: runtime.providerLibraries,
    },
    provider,
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length },
    memoryGb: Math.round((os.totalmem() / 1073741824) * 10) / 10,
    os: { platform: os.platform(), release: os.release(), arch: os.arch() },
    node: process.versions.node,
  };
}

export function fingerprintRows(f: EnvironmentFingerprint): [string, string][] {
  const rows: [string, string][] = [];
  if (f.gpu) {
    rows.push([
      'GPU',
      `${f.gpu.name} (${f.gpu.memoryMiB} MiB${f.gpu.computeCapability ? `, compute capability ${f.gpu.computeCapability}` : ''})`,
    ]);
    rows.push(['NVIDIA driver / CUDA', `${f.gpu.driver} / ${f.gpu.cuda ?? 'unknown'}`]);
  } else rows.push(['GPU', 'none (nvidia-smi not available)']);
  rows.push(['ONNX Runtime', `${f.onnxruntime.version} (${f.onnxruntime.source}: ${f.onnxruntime.packageDir})`]);
  rows.push(['Execution provider', f.provider]);
  rows.push(['CPU', `${f.cpu.model} × ${f.cpu.cores}`]);
  rows.push(['Memory', `${f.memoryGb} GB`]);
  rows.push(['OS', `${f.os.platform} ${f.os.release} ${f.os.arch}`]);
  rows.push(['Node', f.node]);
  return rows;
}
