import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryHost } from '../../shared/hosts/memory-host';
import { runStep } from '../../shared/core/runtime';
import { exportOnnxStep } from '../../shared/steps/export-onnx';
import { VENV_PYTHON } from '../support/python-env';

/** Test support: a Python with torch + onnx (CI installs Debian's python3-torch and python3-onnx), and fixtures. */

export const FIXTURES = path.resolve(__dirname, 'fixtures');

function probe(python: string): string | undefined {
  const r = spawnSync(python, ['-c', 'import torch, onnx, numpy; print(torch.__version__, onnx.__version__)'], { encoding: 'utf8', timeout: 180_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function find(): { python?: string; reason: string } {
  const candidates = [process.env.MLSHIP_TEST_PYTHON, VENV_PYTHON, '/usr/bin/python3', 'python3', 'python'].filter((p): p is string => !!p);
  for (const python of candidates) {
    const versions = probe(python);
    if (versions) return { python, reason: `${python}: torch/onnx ${versions}` };
  }
  return { reason: `no Python with torch, onnx and numpy among ${candidates.join(', ')} (install python3-torch and python3-onnx, or set MLSHIP_TEST_PYTHON)` };
}

export const torch = find();
/** In CI (CI=true) a missing torch is a broken test environment, not a reason to skip. */
const inCi = process.env.CI === 'true';
if (!torch.python && !inCi) process.stderr.write(`\n*** SKIPPING export tests: ${torch.reason} ***\n\n`);

/** `describe` when torch is there; else, in CI, a failing test that says why, and elsewhere a skipped block. */
export const describeTorch = (title: string, fn: () => void) => {
  if (torch.python) return describe(title, fn);
  if (inCi) {
    return describe(title, () => {
      it('has a Python with torch, onnx and numpy', () => {
        throw new Error(`CI=true but ${torch.reason}`);
      });
    });
  }
  return describe.skip(`${title} — SKIPPED: ${torch.reason}`, fn);
};

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs export-onnx in memory; inputs are the step's camelCase keys. */
export async function runExport(inputs: Record<string, string | number | boolean>, workspace: string): Promise<MemoryHost> {
  const host = new MemoryHost({ python: torch.python!, sourceDir: FIXTURES, ...inputs }, { workspace });
  await runStep(exportOnnxStep, host, new AbortController().signal);
  return host;
}
