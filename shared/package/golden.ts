import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../core/errors';
import { listImages } from '../benchmark/accuracy';
import { encodeNpy } from '../onnx/npy';
import type { Tolerance } from '../onnx/parity';
import { getOnnxRuntime } from '../onnx/runtime';
import { createSession, fromOrtTensor, runSession, toOrtTensor } from '../onnx/session';
import type { PlainTensor } from '../onnx/tensors';
import { preprocessImage } from '../preprocess/image';
import { loadSharp } from '../preprocess/sharp-loader';
import type { PreprocessSpec } from '../preprocess/spec';
import { stableJson } from './stable-json';

/**
 * Golden test vectors: a few real sample images, the input tensors the packaged preprocessing makes of them, and
 * the outputs ONNX Runtime (CPU, one thread) computes from those, with a tolerance per output. A device proves
 * with them that its decoding, preprocessing and inference reproduce the pipeline the model was released with
 * (`mlship self-test`, or the integrator's C++ check; docs/golden-vectors.md). Stored as .npy (little-endian,
 * C order) with a JSON index, all covered by the signed manifest.
 */

export const GOLDEN_DIR = 'golden';
export const GOLDEN_INDEX = `${GOLDEN_DIR}/index.json`;
export const GOLDEN_FORMAT = 'mlship-golden/1';

export interface GoldenTensorRef {
  file: string;
  dtype: string;
  shape: number[];
}

export interface GoldenOutputRef extends GoldenTensorRef, Tolerance {}

export interface GoldenCase {
  name: string;
  /** The sample image as it was given, byte for byte. */
  image: string;
  model: string;
  inputs: Record<string, GoldenTensorRef & Tolerance>;
  outputs: Record<string, GoldenOutputRef>;
}

export interface GoldenIndex {
  format: typeof GOLDEN_FORMAT;
  preprocessing: string;
  runtime: { name: 'onnxruntime'; version: string; provider: 'cpu'; threads: 1 };
  cases: GoldenCase[];
}

export interface GoldenModel {
  archivePath: string;
  source: string;
}

export interface GoldenOptions {
  models: readonly GoldenModel[];
  spec: PreprocessSpec;
  specArchivePath: string;
  imagesDir: string;
  imagesLabel: string;
  count: number;
  tolerance: Tolerance;
  /** Per output name: a larger absolute tolerance measured elsewhere (CPU–GPU differences in a benchmark report). */
  measuredAtol?: Record<string, number>;
  /** Where the files are written before they are packaged. */
  workDir: string;
}

export interface GoldenFiles {
  index: GoldenIndex;
  /** Package path → file on disk. */
  files: { archivePath: string; source: string }[];
  /** The computed outputs, per case and model, for the build's label check. */
  outputs: { name: string; model: string; tensors: Record<string, PlainTensor> }[];
}

/** Preprocessed inputs are exact on the same decoder; this allows float rounding of another implementation. */
export const INPUT_TOLERANCE: Tolerance = { atol: 1e-5, rtol: 1e-5 };

export async function buildGoldenVectors(o: GoldenOptions): Promise<GoldenFiles> {
  const images = listImages(o.imagesDir, o.imagesLabel).slice(0, o.count);
  const runtime = await getOnnxRuntime({ need: 'cpu' });
  const sharp = loadSharp();
  fs.mkdirSync(o.workDir, { recursive: true });
  const files: GoldenFiles['files'] = [];
  const cases: GoldenCase[] = [];
  const outputs: GoldenFiles['outputs'] = [];
  const write = (archivePath: string, bytes: Buffer) => {
    const source = path.join(o.workDir, ...archivePath.split('/'));
    fs.mkdirSync(path.dirname(source), { recursive: true });
    fs.writeFileSync(source, bytes);
    files.push({ archivePath, source });
  };
  for (const [m, model] of o.models.entries()) {
    // One thread: the same inputs give the same bytes, so a package rebuilt from the same inputs is identical.
    const session = await createSession(runtime.ort, model.source, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    try {
      const inputName = o.spec.inputName ?? session.inputNames[0];
      for (const [i, image] of images.entries()) {
        const name = `${String(i).padStart(3, '0')}${o.models.length > 1 ? `-m${m}` : ''}`;
        const dir = `${GOLDEN_DIR}/${name}`;
        const ext = path.extname(image).toLowerCase().replace('.jpeg', '.jpg').replace('.tiff', '.tif');
        const imagePath = `${dir}/image${ext}`;
        write(imagePath, fs.readFileSync(image));
        const prepared = await preprocessImage(image, o.spec, sharp);
        const got = await runSession(
          session,
          { [inputName]: toOrtTensor(runtime.ort, prepared.tensor) },
          `${model.source} on golden image ${image}`,
        );
        const inputFile = `${dir}/input-0.npy`;
        write(inputFile, encodeNpy(prepared.tensor));
        const tensors: Record<string, PlainTensor> = {};
        const outRefs: Record<string, GoldenOutputRef> = {};
        for (const [k, outputName] of session.outputNames.entries()) {
          const t = fromOrtTensor(got[outputName]);
          tensors[outputName] = t;
          const file = `${dir}/output-${k}.npy`;
          write(file, encodeNpy(t));
          const atol = Math.max(o.tolerance.atol, 2 * (o.measuredAtol?.[outputName] ?? 0));
          outRefs[outputName] = { file, dtype: t.type, shape: t.dims, atol, rtol: o.tolerance.rtol };
        }
        cases.push({
          name,
          image: imagePath,
          model: model.archivePath,
          inputs: { [inputName]: { file: inputFile, dtype: prepared.tensor.type, shape: prepared.tensor.dims, ...INPUT_TOLERANCE } },
          outputs: outRefs,
        });
        outputs.push({ name, model: model.archivePath, tensors });
      }
    } finally {
      await session.release();
    }
  }
  if (cases.length === 0)
    throw new StepError(`No golden vectors were made from ${o.imagesDir}.`, { hint: 'Give at least one sample image.' });
  const index: GoldenIndex = {
    format: GOLDEN_FORMAT,
    preprocessing: o.specArchivePath,
    runtime: { name: 'onnxruntime', version: runtime.version, provider: 'cpu', threads: 1 },
    cases,
  };
  write(GOLDEN_INDEX, Buffer.from(stableJson(index)));
  return { index, files, outputs };
}
