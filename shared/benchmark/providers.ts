import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { StepError } from '../core/errors';
import type { LoadedRuntime, Ort } from '../onnx/runtime';
import { firstLine } from '../onnx/session';

/**
 * Execution providers, and proof of which one ran the model. ONNX Runtime quietly places nodes it cannot run on
 * the asked provider on the CPU; a model that "runs on CUDA" may do its convolutions on the CPU. A one-run
 * profiling session records the provider of every node, and the step fails when the asked one ran none (or,
 * when partial fallback is not allowed, not all).
 */

export type Provider = 'cuda' | 'tensorrt' | 'cpu';
export type ProviderChoice = Provider | 'auto';

export const EP_NAMES: Record<Provider, string> = {
  cpu: 'CPUExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  tensorrt: 'TensorrtExecutionProvider',
};

export function executionProviders(provider: Provider, deviceId: number): InferenceSession.SessionOptions['executionProviders'] {
  if (provider === 'cpu') return ['cpu'];
  // TensorRT with CUDA behind it for the nodes TensorRT does not take, as ONNX Runtime recommends.
  if (provider === 'tensorrt') return [{ name: 'tensorrt', deviceId } as never, { name: 'cuda', deviceId } as never];
  return [{ name: 'cuda', deviceId } as never];
}

export function sessionOptions(provider: Provider, deviceId: number, threads: number): InferenceSession.SessionOptions {
  const options: InferenceSession.SessionOptions = {
    executionProviders: executionProviders(provider, deviceId),
    graphOptimizationLevel: 'all',
  };
  if (threads > 0) options.intraOpNumThreads = threads;
  return options;
}

/** The failure for a provider ONNX Runtime could not enable, naming the CPU fallback the step refuses. */
export function providerUnavailable(
  provider: Provider,
  runtime: Pick<LoadedRuntime, 'packageDir' | 'version' | 'providerLibraries' | 'notes'>,
  reason: string,
): StepError {
  const libs = runtime.providerLibraries.length ? runtime.providerLibraries.join(', ') : 'no GPU provider libraries';
  const looked = runtime.notes.length ? ` Looked at: ${runtime.notes.join('; ')}.` : '';
  return new StepError(
    `Execution provider ${provider} (${EP_NAMES[provider]}) is not available: ${reason}. ONNX Runtime would fall back to CPUExecutionProvider, so the model would run on the CPU, not the GPU; this step refuses that fallback. Loaded onnxruntime-node ${runtime.version} from ${runtime.packageDir} (${libs}).${looked}`,
    {
      hint:
        provider === 'cpu'
          ? 'Reinstall onnxruntime-node.'
          : `Run on a GPU runner with the NVIDIA driver${provider === 'tensorrt' ? ', CUDA 12 and TensorRT' : ' and CUDA 12/cuDNN 9'} libraries, and a CUDA-enabled onnxruntime-node: set onnxruntime-path to one, or install-onnxruntime: true (see docs/onnxruntime-on-runners.md). Use provider: cpu to benchmark on the CPU on purpose.`,
    },
  );
}

export interface OpenedSession {
  session: InferenceSession;
  provider: Provider;
  loadMs: number;
  /** Providers tried before this one under `auto`, with the reason each failed. */
  skipped: { provider: Provider; reason: string }[];
}

/** Creates the session on the asked provider; under `auto`, the first of tensorrt, cuda, cpu that works. */
export async function openSession(
  runtime: LoadedRuntime,
  model: string,
  choice: ProviderChoice,
  deviceId: number,
  threads: number,
  extra: InferenceSession.SessionOptions = {},
): Promise<OpenedSession> {
  const order: Provider[] = choice === 'auto' ? autoOrder(runtime.ort) : [choice];
  const skipped: OpenedSession['skipped'] = [];
  for (const provider of order) {
    const t0 = process.hrtime.bigint();
    try {
      const session = await runtime.ort.InferenceSession.create(model, { ...sessionOptions(provider, deviceId, threads), ...extra });
      return { session, provider, loadMs: Number(process.hrtime.bigint() - t0) / 1e6, skipped };
    } catch (error) {
      const reason = firstLine(error);
      if (provider === 'cpu')
        throw new StepError(`ONNX Runtime cannot load ${model} on the CPU: ${reason}`, {
          hint: 'Check that the model is valid and its opset is supported by this ONNX Runtime.',
          file: model,
          cause: error,
        });
      if (choice !== 'auto') throw providerUnavailable(provider, runtime, reason);
      skipped.push({ provider, reason });
    }
  }
  throw new StepError(`No execution provider could load ${model}.`, { hint: 'Check the model and the ONNX Runtime install.' });
}

/** Providers this onnxruntime-node build knows, best first. */
export function autoOrder(ort: Ort): Provider[] {
  const list = (ort as unknown as { listSupportedBackends?: () => { name: string }[] }).listSupportedBackends?.();
  const names = new Set((list ?? []).map((b) => b.name));
  const order: Provider[] = [];
  if (!list || names.has('tensorrt')) order.push('tensorrt');
  if (!list || names.has('cuda')) order.push('cuda');
  order.push('cpu');
  return order;
}

export interface Placement {
  /** Nodes per execution provider (ONNX Runtime's names), as the profile recorded them. */
  providers: Record<string, { nodes: number; ops: Record<string, number>; microseconds: number }>;
  totalNodes: number;
}

/** Node placement from an ONNX Runtime profile (chrome-trace JSON). */
export function placementFromProfile(events: unknown): Placement {
  const providers: Placement['providers'] = {};
  let totalNodes = 0;
  const seen = new Set<string>();
  for (const e of Array.isArray(events) ? events : []) {
    const ev = e as { cat?: string; name?: string; dur?: number; args?: { provider?: string; op_name?: string } };
    if (ev.cat !== 'Node' || !ev.args?.provider || !ev.name?.endsWith('_kernel_time')) continue;
    const p = (providers[ev.args.provider] ??= { nodes: 0, ops: {}, microseconds: 0 });
    p.microseconds += ev.dur ?? 0;
    // A node appears once per run; count each node name once.
    if (seen.has(ev.name)) continue;
    seen.add(ev.name);
    totalNodes++;
    p.nodes++;
    const op = ev.args.op_name ?? '?';
    p.ops[op] = (p.ops[op] ?? 0) + 1;
  }
  return { providers, totalNodes };
}

/** Runs the model once in a profiling session and reads where every node ran. */
export async function probePlacement(
  runtime: LoadedRuntime,
  model: string,
  provider: Provider,
  deviceId: number,
  threads: number,
  feeds: Record<string, Tensor>,
  dir: string,
): Promise<Placement> {
  fs.mkdirSync(dir, { recursive: true });
  const prefix = path.join(dir, `placement-${provider}`);
  const { session } = await openSession(runtime, model, provider, deviceId, threads, { enableProfiling: true, profileFilePrefix: prefix });
  try {
    await session.run(feeds);
    session.endProfiling();
  } finally {
    await session.release();
  }
  const file = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`placement-${provider}`) && f.endsWith('.json'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  if (!file)
    throw new StepError(`ONNX Runtime wrote no profile under ${dir}; cannot tell which provider ran the model.`, {
      hint: 'Check that the temp folder is writable.',
    });
  return placementFromProfile(JSON.parse(fs.readFileSync(file, 'utf8')));
}

export interface PlacementVerdict {
  ok: boolean;
  /** Share of nodes on the asked provider. */
  share: number;
  elsewhere: { provider: string; nodes: number; ops: Record<string, number> }[];
  message?: string;
}

/**
 * Judges a placement for the asked provider. Nodes elsewhere (CPU; CUDA under TensorRT, for what TensorRT does
 * not take) are partial fallback: reported, and failing only when partial fallback is not allowed.
 */
export function judgePlacement(provider: Provider, placement: Placement, allowPartial: boolean): PlacementVerdict {
  const asked = EP_NAMES[provider];
  const accepted = [asked];
  const on = placement.providers[asked]?.nodes ?? 0;
  const share = placement.totalNodes ? on / placement.totalNodes : 0;
  const elsewhere = Object.entries(placement.providers)
    .filter(([p]) => !accepted.includes(p))
    .map(([p, v]) => ({ provider: p, nodes: v.nodes, ops: v.ops }));
  const describe = elsewhere
    .map(
      (e) =>
        `${e.nodes} on ${e.provider} (${Object.entries(e.ops)
          .map(([op, n]) => `${op}×${n}`)
          .join(', ')})`,
    )
    .join('; ');
  if (placement.totalNodes === 0) return { ok: false, share, elsewhere, message: 'the profile recorded no nodes' };
  if (on === 0) {
    return {
      ok: false,
      share,
      elsewhere,
      message: `asked for ${provider}, but ${asked} ran none of the ${placement.totalNodes} nodes: ${describe}. ONNX Runtime silently fell back`,
    };
  }
  if (elsewhere.length > 0 && provider !== 'cpu') {
    const message = `${on} of ${placement.totalNodes} nodes ran on ${asked}; ${describe}`;
    return { ok: allowPartial, share, elsewhere, message };
  }
  return { ok: true, share, elsewhere };
}
