import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { StepError } from '../core/errors';
import { readNpy } from './npy';
import { compareTensors, type OutputParity, type Tolerance } from './parity';
import type { Ort } from './runtime';
import { fromOrtTensor, runSession, toFeeds } from './session';
import type { PlainTensor } from './tensors';

/**
 * Reference outputs saved at export (PyTorch's outputs for seeded and sample inputs): export-onnx checks the ONNX
 * model against them, benchmark-model checks the device's ONNX Runtime (CUDA, TensorRT, FP16) against them.
 * Layout: <dir>/index.json + one .npy per tensor.
 */
export interface ReferenceCase {
  name: string;
  inputs: Record<string, string>;
  outputs: Record<string, string>;
}

export interface ReferenceIndex {
  format: 'mlship-reference/1';
  inputs: string[];
  outputs: string[];
  cases: ReferenceCase[];
}

export interface CaseParity {
  name: string;
  inputShapes: Record<string, number[]>;
  ok: boolean;
  outputs: OutputParity[];
}

export function readReferenceIndex(dir: string): ReferenceIndex {
  const file = path.join(dir, 'index.json');
  let index: ReferenceIndex;
  try {
    index = JSON.parse(fs.readFileSync(file, 'utf8')) as ReferenceIndex;
  } catch (error) {
    throw new StepError(
      `Cannot read reference index ${file}: ${error instanceof SyntaxError ? error.message : ((error as NodeJS.ErrnoException).code ?? String(error))}.`,
      {
        hint: 'Use the <model>.reference folder that export-onnx wrote next to the model.',
        file,
      },
    );
  }
  if (index.format !== 'mlship-reference/1' || !Array.isArray(index.cases)) {
    throw new StepError(`${file} has format ${JSON.stringify(index.format)}, expected "mlship-reference/1" with a cases list.`, {
      hint: 'Use the reference folder written by export-onnx.',
      file,
    });
  }
  return index;
}

export function loadTensors(dir: string, files: Record<string, string>): Record<string, PlainTensor> {
  const out: Record<string, PlainTensor> = {};
  for (const [name, file] of Object.entries(files)) out[name] = readNpy(path.join(dir, file));
  return out;
}

/** Runs every case through `session` and compares each output with the saved one. */
export async function checkAgainstReference(
  ort: Ort,
  session: InferenceSession,
  dir: string,
  index: ReferenceIndex,
  tol: Tolerance,
  label: string,
): Promise<CaseParity[]> {
  const results: CaseParity[] = [];
  for (const c of index.cases) {
    const inputs = loadTensors(dir, c.inputs);
    const expected = loadTensors(dir, c.outputs);
    const got = await runSession(session, toFeeds(ort, inputs), `${label} on reference case ${c.name}`);
    const outputs: OutputParity[] = [];
    for (const [name, ref] of Object.entries(expected)) {
      const actual = got[name];
      if (!actual) {
        throw new StepError(
          `${label} has no output "${name}", which the reference case ${c.name} holds (outputs: ${Object.keys(got).join(', ')}).`,
          {
            hint: 'Compare the model with the reference folder it was exported with.',
          },
        );
      }
      // A parity failure should say when the model only sorted tied rows differently (export-onnx's hint).
      outputs.push(compareTensors(name, ref, fromOrtTensor(actual), tol, { rowOrder: true }));
    }
    const inputShapes: Record<string, number[]> = {};
    for (const [name, t] of Object.entries(inputs)) inputShapes[name] = t.dims;
    results.push({ name: c.name, inputShapes, ok: outputs.every((o) => o.ok), outputs });
  }
  return results;
}
