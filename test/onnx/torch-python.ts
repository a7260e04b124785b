import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryHost } from '../../shared/hosts/memory-host';
import { runStep } from '../../shared/core/runtime';
import { exportOnnxStep } from '../../shared/steps/export-onnx';
import { requirePython } from '../support/python-env';

/**
 * Test support for export-onnx: the pinned Python test environment (.venv-test: torch 2.15, onnx, onnxscript,
 * onnxconverter-common) and the fixtures. A missing environment throws when the test file loads, so the suite
 * fails instead of skipping.
 */

export const FIXTURES = path.resolve(__dirname, 'fixtures');

export const python = requirePython(['torch', 'onnx', 'onnxscript', 'onnxconverter_common']);

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs export-onnx in memory; inputs are the step's camelCase keys. */
export async function runExport(inputs: Record<string, string | number | boolean>, workspace: string): Promise<MemoryHost> {
  const host = new MemoryHost({ python, sourceDir: FIXTURES, ...inputs }, { workspace });
  await runStep(exportOnnxStep, host, new AbortController().signal);
  return host;
}
