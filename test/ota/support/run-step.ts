import * as fs from 'node:fs';
import type { RunInfo } from '../../../shared/core/host';
import { runStep } from '../../../shared/core/runtime';
import type { AnyStep } from '../../../shared/core/step';
import { MemoryHost } from '../../../shared/hosts/memory-host';

/** Runs a step in-process on the memory host, with its own cancellation signal (no process listeners). */
export async function runInMemory(
  step: AnyStep,
  inputs: Record<string, string | number | boolean>,
  options: { env?: NodeJS.ProcessEnv; run?: Partial<RunInfo>; workspace?: string } = {},
): Promise<MemoryHost> {
  const host = new MemoryHost(inputs, options);
  await runStep(step, host, new AbortController().signal);
  fs.rmSync(host.tempDir, { recursive: true, force: true });
  return host;
}
