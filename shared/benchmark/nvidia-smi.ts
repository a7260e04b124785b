import { execFile, spawn, type ChildProcess } from 'node:child_process';

/**
 * nvidia-smi, where the runner has one: the GPU's identity for the environment fingerprint, and periodic
 * samples (temperature, clocks, memory, power, throttle reasons) during a soak run.
 */

export interface GpuInfo {
  index: number;
  name: string;
  driver: string;
  /** CUDA version the driver supports (from nvidia-smi's banner). */
  cuda?: string;
  memoryMiB: number;
  computeCapability?: string;
}

export interface GpuSample {
  /** Milliseconds since sampling started. */
  t: number;
  temperatureC?: number;
  smClockMHz?: number;
  memClockMHz?: number;
  memoryUsedMiB?: number;
  powerW?: number;
  throttleMask?: number;
}

/** Bits of clocks_throttle_reasons.active (clocks_event_reasons on newer drivers), per nvml.h. */
export const THROTTLE_REASONS: Record<number, { name: string; fails: boolean }> = {
  0x1: { name: 'gpu_idle', fails: false },
  0x2: { name: 'applications_clocks_setting', fails: false },
  0x4: { name: 'sw_power_cap', fails: false },
  0x8: { name: 'hw_slowdown', fails: true },
  0x10: { name: 'sync_boost', fails: false },
  0x20: { name: 'sw_thermal_slowdown', fails: true },
  0x40: { name: 'hw_thermal_slowdown', fails: true },
  0x80: { name: 'hw_power_brake_slowdown', fails: true },
  0x100: { name: 'display_clock_setting', fails: false },
};

export function throttleNames(mask: number): { name: string; fails: boolean }[] {
  return Object.entries(THROTTLE_REASONS)
    .filter(([bit]) => (mask & Number(bit)) !== 0)
    .map(([, r]) => r);
}

function run(command: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 15000 }, (error, stdout) => resolve(error ? undefined : stdout));
  });
}

function num(field: string | undefined): number | undefined {
  if (field === undefined) return undefined;
  const v = Number(field.trim());
  return field.trim() === '' || Number.isNaN(v) ? undefined : v;
}

/** The GPU at `index`, or undefined where nvidia-smi is missing or fails (no GPU, no driver). */
export async function queryGpu(index: number, command = 'nvidia-smi'): Promise<GpuInfo | undefined> {
  const base = ['--format=csv,noheader,nounits', '-i', String(index)];
  // compute_cap needs driver 510+; ask without it when older drivers reject the field.
  let out = await run(command, ['--query-gpu=index,name,driver_version,memory.total,compute_cap', ...base]);
  let withCap = true;
  if (out === undefined) {
    out = await run(command, ['--query-gpu=index,name,driver_version,memory.total', ...base]);
    withCap = false;
  }
  if (!out) return undefined;
  const f = out
    .trim()
    .split('\n')[0]
    .split(',')
    .map((s) => s.trim());
  const banner = await run(command, []);
  const cuda = banner ? /CUDA Version:\s*([\d.]+)/.exec(banner)?.[1] : undefined;
  return {
    index: num(f[0]) ?? index,
    name: f[1],
    driver: f[2],
    memoryMiB: num(f[3]) ?? 0,
    computeCapability: withCap ? f[4] : undefined,
    cuda,
  };
}

export function parseSampleLine(line: string, t: number): GpuSample | undefined {
  const f = line.split(',').map((s) => s.trim());
  if (f.length < 7) return undefined;
  const mask = f[6].startsWith('0x') ? parseInt(f[6], 16) : num(f[6]);
  return {
    t,
    temperatureC: num(f[1]),
    smClockMHz: num(f[2]),
    memClockMHz: num(f[3]),
    memoryUsedMiB: num(f[4]),
    powerW: num(f[5]),
    throttleMask: Number.isNaN(mask) ? undefined : mask,
  };
}

/** Samples the GPU every `intervalMs` with `nvidia-smi -lms` until stopped. */
export class GpuSampler {
  readonly samples: GpuSample[] = [];
  private child?: ChildProcess;
  private started = 0;
  private buffer = '';

  constructor(
    private readonly index: number,
    private readonly intervalMs: number,
    private readonly command = 'nvidia-smi',
  ) {}

  start(field = 'clocks_throttle_reasons.active'): void {
    this.started = performance.now();
    const query = `--query-gpu=timestamp,temperature.gpu,clocks.sm,clocks.mem,memory.used,power.draw,${field}`;
    const child = spawn(this.command, [query, '--format=csv,noheader,nounits', '-i', String(this.index), '-lms', String(this.intervalMs)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    child.on('error', () => undefined);
    child.stdout?.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      const lines = this.buffer.split('\n');
      this.buffer = lines.pop() ?? '';
      for (const line of lines) {
        const s = parseSampleLine(line, performance.now() - this.started);
        if (s) this.samples.push(s);
      }
    });
    this.child = child;
  }

  stop(): GpuSample[] {
    this.child?.kill('SIGTERM');
    this.child = undefined;
    return this.samples;
  }
}
