import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createContext } from '../../shared/core/context';
import type { RunInfo, ServiceConnection } from '../../shared/core/host';
import { parseInputs } from '../../shared/core/inputs';
import { runStep, type StepOutcome } from '../../shared/core/runtime';
import type { AnyStep } from '../../shared/core/step';
import { MemoryHost } from '../../shared/hosts/memory-host';
import type { RetryPolicy } from '../../shared/core/retry';

const created: string[] = [];

/** Retries in milliseconds, so throttling tests finish fast. */
export const FAST_RETRY: RetryPolicy = { baseMs: 1, maxMs: 4, budgetMs: 20_000 };

/** A MemoryHost that issues OIDC tokens (as GitHub does) and knows Azure DevOps service connections. */
export class CiHost extends MemoryHost {
  readonly idTokens: { audience: string; token: string }[] = [];
  connections: ServiceConnection[] = [];

  async getIdToken(audience: string): Promise<string> {
    const token = `oidc-${audience.replace(/[^a-z0-9]/gi, '')}-${this.idTokens.length + 1}`;
    this.idTokens.push({ audience, token });
    return token;
  }

  getServiceConnection(id: string): ServiceConnection | undefined {
    return this.connections.find((c) => c.id === id);
  }
}

/** A plain host without OIDC, like a laptop. */
export function host(
  inputs: Record<string, string | number | boolean>,
  workspace: string,
  env: NodeJS.ProcessEnv,
  run: Partial<RunInfo> = {},
): MemoryHost {
  return track(
    new MemoryHost(inputs, {
      workspace,
      env,
      run: { id: '4242', repository: 'acme/cells', job: 'train', commit: 'c0ffee1234567890', ...run },
    }),
  );
}

export function ciHost(
  inputs: Record<string, string | number | boolean>,
  workspace: string,
  env: NodeJS.ProcessEnv,
  run: Partial<RunInfo> = {},
): CiHost {
  return track(
    new CiHost(inputs, { workspace, env, run: { id: '4242', repository: 'acme/cells', job: 'train', commit: 'c0ffee1234567890', ...run } }),
  );
}

/** MemoryHost makes a temp folder per host; remove it with the test's workspaces. */
export function track<H extends MemoryHost>(h: H): H {
  created.push(h.tempDir);
  return h;
}

export function tempWorkspace(prefix = 'mlship-train-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});

export function write(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** Runs a step's post entry the way a host does after the main entry: parsed inputs, same saved state. */
export async function runPost(step: AnyStep, h: MemoryHost): Promise<void> {
  const ctx = createContext(h, new AbortController().signal);
  await step.post!(parseInputs(step, h) as never, ctx);
}

/** runStep with a signal of the test's own, so runs do not pile up SIGINT/SIGTERM listeners. */
export function run(step: AnyStep, h: MemoryHost, signal: AbortSignal = new AbortController().signal): Promise<StepOutcome> {
  return runStep(step, h, signal);
}
