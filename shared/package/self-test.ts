import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { StepError } from '../core/errors';
import { sha256File } from '../core/sha256';
import { openSession, type ProviderChoice } from '../benchmark/providers';
import { parseNpy } from '../onnx/npy';
import { compareTensors, formatError, type OutputParity } from '../onnx/parity';
import { getOnnxRuntime } from '../onnx/runtime';
import { fromOrtTensor, runSession, toOrtTensor } from '../onnx/session';
import { preprocessImage } from '../preprocess/image';
import { loadSharp } from '../preprocess/sharp-loader';
import { validatePreprocessSpec } from '../preprocess/spec';
import { GOLDEN_FORMAT, type GoldenIndex } from './golden';
import { MANIFEST_FILE, manifestSchemaErrors, SIGNATURE_FILE, type PackageManifest } from './manifest';
import { loadPublicKey, verifySignature } from './signing';
import { archivePathProblem } from './tar-format';

/**
 * `mlship self-test`: runs a package's golden vectors where the package is installed — decode each sample image,
 * preprocess it by the packaged spec, run the packaged model, compare input and outputs with the golden tensors
 * within their tolerances. It is the device agent's health check: a model file swapped for another of the same
 * shapes, a changed preprocessing spec, or a runtime that computes differently fails it, naming the tensor and
 * the largest difference. File hashes are checked against the manifest too, but every comparison still runs, so
 * the report says both that a file changed and what that changes in the outputs.
 */

export interface SelfTestOptions {
  /** An extracted package (the folder holding manifest.json). */
  dir: string;
  provider?: ProviderChoice;
  deviceId?: number;
  /** When given, manifest.sig must verify under it before anything else is trusted. */
  publicKey?: string;
  onnxruntimePath?: string;
}

export interface TensorCheck {
  tensor: string;
  role: 'input' | 'output';
  ok: boolean;
  maxAbs: number;
  mismatches: number;
  elements: number;
  atol: number;
  rtol: number;
  worst?: OutputParity['worst'];
  shape?: OutputParity['shape'];
}

export interface SelfTestCase {
  name: string;
  model: string;
  ok: boolean;
  tensors: TensorCheck[];
}

export interface SelfTestReport {
  ok: boolean;
  package: { name: string; version: string };
  provider: string;
  cases: SelfTestCase[];
  failures: string[];
}

const MAX_JSON = 16 << 20;
const MAX_TENSOR = 1 << 30;

function readBounded(file: string, limit: number, what: string): Buffer {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (error) {
    throw new StepError(`Cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: 'Run self-test on an extracted device package (the folder with manifest.json), or on the .tar.gz with --public-key.',
      file,
    });
  }
  if (size > limit)
    throw new StepError(`The ${what} ${file} is ${size} bytes, more than the ${limit} allowed.`, {
      hint: 'This is not a file build-device-package wrote.',
      file,
    });
  return fs.readFileSync(file);
}

function parseJson(bytes: Buffer, file: string, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new StepError(`The ${what} ${file} is not valid JSON: ${(error as Error).message}.`, {
      hint: 'Reinstall the package; the copy on this device is damaged.',
      file,
    });
  }
}

export async function runSelfTest(options: SelfTestOptions): Promise<SelfTestReport> {
  const dir = path.resolve(options.dir);
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifestBytes = readBounded(manifestFile, MAX_JSON, 'package manifest');
  if (options.publicKey) {
    const signature = parseJson(
      readBounded(path.join(dir, SIGNATURE_FILE), 4096, 'manifest signature'),
      path.join(dir, SIGNATURE_FILE),
      'manifest signature',
    ) as { signature?: unknown };
    if (typeof signature.signature !== 'string' || !verifySignature(manifestBytes, signature.signature, loadPublicKey(options.publicKey))) {
      throw new StepError(`${manifestFile} is not signed by the given public key (${SIGNATURE_FILE} does not verify).`, {
        hint: 'Do not trust this copy: reinstall the package from the release store.',
        file: manifestFile,
      });
    }
  }
  const manifest = parseJson(manifestBytes, manifestFile, 'package manifest') as PackageManifest;
  const problems = manifestSchemaErrors(manifest);
  if (problems.length)
    throw new StepError(`${manifestFile} does not follow the manifest schema (${problems.slice(0, 3).join('; ')}).`, {
      hint: 'Rebuild the package with this mlship version.',
      file: manifestFile,
    });
  if (!manifest.golden) {
    throw new StepError(`The package ${manifest.name} ${manifest.version} in ${dir} has no golden test vectors.`, {
      hint: 'Build it with build-device-package golden-images (a folder of sample images).',
    });
  }

  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  const failures: string[] = [];
  const checkedHashes = new Set<string>();
  /** A package path, refused unless the signed manifest lists it; its hash is compared once. */
  const resolve = async (rel: string, what: string): Promise<string> => {
    const problem = archivePathProblem(rel);
    const entry = listed.get(rel);
    if (problem || !entry)
      throw new StepError(`The ${what} "${rel}" is ${problem ? `not a package path (${problem})` : 'not listed in the manifest'}.`, {
        hint: 'Reinstall the package; this copy was altered.',
        file: manifestFile,
      });
    const file = path.join(dir, ...rel.split('/'));
    if (!checkedHashes.has(rel)) {
      checkedHashes.add(rel);
      const actual = await sha256File(file).catch((error: NodeJS.ErrnoException) => {
        throw new StepError(`The ${what} ${file} cannot be read: ${error.code ?? error.message}.`, {
          hint: 'Reinstall the package; this copy is incomplete.',
          file,
        });
      });
      if (actual !== entry.sha256)
        failures.push(
          `${rel} has sha256 ${actual}, but the manifest says ${entry.sha256}: the file was changed after the package was built`,
        );
    }
    return file;
  };

  const indexFile = await resolve(manifest.golden.index, 'golden index');
  const index = parseJson(readBounded(indexFile, MAX_JSON, 'golden index'), indexFile, 'golden index') as GoldenIndex;
  if (index.format !== GOLDEN_FORMAT || !Array.isArray(index.cases))
    throw new StepError(`${indexFile} has format ${JSON.stringify(index.format)}, expected "${GOLDEN_FORMAT}".`, {
      hint: 'Use an mlship version that knows this package format.',
      file: indexFile,
    });
  const specFile = await resolve(index.preprocessing, 'preprocessing spec');
  const spec = validatePreprocessSpec(
    parseJson(readBounded(specFile, MAX_JSON, 'preprocessing spec'), specFile, 'preprocessing spec'),
    specFile,
  );

  const runtime = await getOnnxRuntime({
    explicitPath: options.onnxruntimePath,
    need: options.provider === undefined || options.provider === 'auto' ? 'cpu' : options.provider,
  });
  const sharp = loadSharp();
  const sessions = new Map<string, InferenceSession>();
  let provider = options.provider ?? 'cpu';
  const cases: SelfTestCase[] = [];
  try {
    for (const c of index.cases) {
      const modelEntry = manifest.models.find((m) => m.path === c.model);
      if (!modelEntry)
        throw new StepError(`Golden case ${c.name} is for model ${c.model}, which the manifest does not list.`, {
          hint: 'Reinstall the package; this copy was altered.',
          file: indexFile,
        });
      let session = sessions.get(c.model);
      if (!session) {
        const modelFile = await resolve(c.model, 'model');
        for (const extra of modelEntry.externalData) await resolve(extra, 'external weights');
        const opened = await openSession(runtime, modelFile, options.provider ?? 'cpu', options.deviceId ?? 0, 0);
        provider = opened.provider;
        session = opened.session;
        sessions.set(c.model, session);
      }
      const image = await resolve(c.image, 'golden image');
      const prepared = await preprocessImage(image, spec, sharp);
      const tensors: TensorCheck[] = [];
      const feeds: Record<string, ReturnType<typeof toOrtTensor>> = {};
      for (const [name, ref] of Object.entries(c.inputs)) {
        const expected = parseNpy(readBounded(await resolve(ref.file, 'golden input'), MAX_TENSOR, 'golden input'), ref.file);
        tensors.push(check(name, 'input', compareTensors(name, expected, prepared.tensor, ref), ref));
        feeds[name] = toOrtTensor(runtime.ort, prepared.tensor);
      }
      let got: Awaited<ReturnType<typeof runSession>>;
      try {
        got = await runSession(session, feeds, `${c.model} on golden case ${c.name}`);
      } catch (error) {
        // A spec that no longer fits the model (another size, layout): a failed case, not the end of the test.
        for (const t of tensors.filter((x) => !x.ok)) failures.push(`case ${c.name}: ${describeFailure(t)}`);
        failures.push(`case ${c.name}: ${(error as Error).message}`);
        cases.push({ name: c.name, model: c.model, ok: false, tensors });
        continue;
      }
      for (const [name, ref] of Object.entries(c.outputs)) {
        const expected = parseNpy(readBounded(await resolve(ref.file, 'golden output'), MAX_TENSOR, 'golden output'), ref.file);
        const actual = got[name];
        if (!actual) {
          failures.push(`case ${c.name}: the model has no output "${name}" (outputs: ${Object.keys(got).join(', ')})`);
          continue;
        }
        tensors.push(check(name, 'output', compareTensors(name, expected, fromOrtTensor(actual), ref), ref));
      }
      for (const t of tensors.filter((x) => !x.ok)) failures.push(`case ${c.name}: ${describeFailure(t)}`);
      cases.push({ name: c.name, model: c.model, ok: tensors.every((t) => t.ok), tensors });
    }
  } finally {
    for (const s of sessions.values()) await s.release();
  }
  return { ok: failures.length === 0, package: { name: manifest.name, version: manifest.version }, provider, cases, failures };
}

function check(tensor: string, role: 'input' | 'output', p: OutputParity, tol: { atol: number; rtol: number }): TensorCheck {
  return {
    tensor,
    role,
    ok: p.ok,
    maxAbs: p.maxAbs,
    mismatches: p.mismatches,
    elements: p.elements,
    atol: tol.atol,
    rtol: tol.rtol,
    worst: p.worst,
    shape: p.shape,
  };
}

export function describeFailure(t: TensorCheck): string {
  const what = `${t.role} ${t.tensor}`;
  if (t.shape) return `${what} has shape [${t.shape.actual.join(', ')}], the golden one [${t.shape.expected.join(', ')}]`;
  const at = t.worst ? ` (worst at [${t.worst.index.join(', ')}]: golden ${t.worst.expected}, here ${t.worst.actual})` : '';
  return `${what} differs from the golden ${t.role}: max abs difference ${formatError(t.maxAbs)}${at}, ${t.mismatches} of ${t.elements} values outside atol ${t.atol} + rtol ${t.rtol}`;
}
