import * as fsp from 'node:fs/promises';
import { queryGpu } from '../benchmark/nvidia-smi';
import type { HardwareFacts } from '../fleet/report';
import type { Compatibility } from '../package/manifest';

export interface HardwareOptions {
  /** nvidia-smi to ask (default "nvidia-smi" on PATH); its answer wins over the file. */
  nvidiaSmi?: string;
  /** JSON file with the same fields as the report's `hardware`, for devices without nvidia-smi or to add the rest. */
  hardwareFile?: string;
  /** Instrument model, matched against the manifest's deviceModels. */
  deviceModel?: string;
  /** ONNX Runtime version the instrument's application links. */
  onnxruntimeVersion?: string;
}

const FIELDS = ['deviceModel', 'gpuModel', 'driver', 'cuda', 'computeCapability', 'onnxruntime'] as const;
const MAX_FILE_BYTES = 16 * 1024;

/**
 * What this device has: nvidia-smi when present (GPU model, driver, CUDA, compute capability, memory), else the
 * configured file, and the instrument model / ONNX Runtime version from options or the file. Never throws: a
 * broken file is reported as `problem` and the facts stay unknown (an unknown fact never satisfies a requirement).
 */
export async function readHardware(options: HardwareOptions): Promise<{ facts: HardwareFacts; problem?: string }> {
  let fromFile: Record<string, unknown> = {};
  let problem: string | undefined;
  if (options.hardwareFile) {
    try {
      const handle = await fsp.open(options.hardwareFile, 'r');
      const { size } = await handle.stat();
      const buffer = Buffer.alloc(Math.min(size, MAX_FILE_BYTES));
      await handle.read(buffer, 0, buffer.length, 0);
      await handle.close();
      if (size > MAX_FILE_BYTES) throw new Error(`${size} bytes, above ${MAX_FILE_BYTES}`);
      const parsed: unknown = JSON.parse(buffer.toString('utf8'));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      fromFile = parsed as Record<string, unknown>;
    } catch (error) {
      problem = `hardware file ${options.hardwareFile} is unusable (${(error as Error).message}); fix it or leave --hardware-file out`;
    }
  }
  const gpu = await queryGpu(0, options.nvidiaSmi ?? 'nvidia-smi');
  const str = (v: unknown) => (typeof v === 'string' && v.trim() && v.length <= 128 ? v.trim() : null);
  const facts: HardwareFacts = { source: gpu ? 'nvidia-smi' : Object.keys(fromFile).length ? 'file' : 'none' };
  for (const field of FIELDS) facts[field] = str(fromFile[field]);
  facts.gpuMemoryMiB = typeof fromFile.gpuMemoryMiB === 'number' && fromFile.gpuMemoryMiB >= 0 ? fromFile.gpuMemoryMiB : null;
  if (gpu) {
    facts.gpuModel = gpu.name;
    facts.driver = gpu.driver;
    facts.cuda = gpu.cuda ?? facts.cuda ?? null;
    facts.computeCapability = gpu.computeCapability ?? facts.computeCapability ?? null;
    facts.gpuMemoryMiB = gpu.memoryMiB || facts.gpuMemoryMiB || null;
  }
  if (options.deviceModel) facts.deviceModel = options.deviceModel;
  if (options.onnxruntimeVersion) facts.onnxruntime = options.onnxruntimeVersion;
  return { facts, problem };
}

/** -1, 0, 1 over dotted numeric versions ("535.104.05" vs "525.60"); missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((p) => parseInt(p, 10) || 0);
  const pb = b.split(/[.+-]/).map((p) => parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Why the package cannot run here, one line per requirement it misses; empty when it can. */
export function incompatibilities(needs: Compatibility, has: HardwareFacts): string[] {
  const out: string[] = [];
  if (needs.deviceModels.length && (!has.deviceModel || !needs.deviceModels.includes(has.deviceModel))) {
    out.push(`device model ${has.deviceModel ?? 'unknown (set --device-model)'} is not one of ${needs.deviceModels.join(', ')}`);
  }
  const atLeast = (label: string, need: string | null, have: string | null | undefined, unknown: string) => {
    if (!need) return;
    if (!have) out.push(`needs ${label} ${need}, but ${unknown}`);
    else if (compareVersions(have, need) < 0) out.push(`needs ${label} ${need} or newer, device has ${have}`);
  };
  atLeast(
    'NVIDIA driver',
    needs.minDriverVersion,
    has.driver,
    'no NVIDIA driver was found (no nvidia-smi, no driver in the hardware file)',
  );
  atLeast('CUDA', needs.minCudaVersion, has.cuda, 'the CUDA version is unknown');
  atLeast('ONNX Runtime', needs.minOnnxRuntimeVersion, has.onnxruntime, 'the ONNX Runtime version is unknown (set --onnxruntime-version)');
  atLeast('compute capability', needs.minComputeCapability, has.computeCapability, 'the GPU compute capability is unknown');
  if (needs.minGpuMemoryMb !== null) {
    if (has.gpuMemoryMiB === null || has.gpuMemoryMiB === undefined)
      out.push(`needs ${needs.minGpuMemoryMb} MiB of GPU memory, but the GPU memory is unknown`);
    else if (has.gpuMemoryMiB < needs.minGpuMemoryMb)
      out.push(`needs ${needs.minGpuMemoryMb} MiB of GPU memory, device has ${has.gpuMemoryMiB} MiB`);
  }
  return out;
}
