import * as path from 'node:path';
import { createSession } from '../../onnx/session';
import { type OnnxModelInfo, readOnnxModelInfo } from '../../onnx/model-info';
import type { Tolerance } from '../../onnx/parity';
import { type CaseParity, checkAgainstReference, readReferenceIndex } from '../../onnx/reference';
import type { LoadedRuntime } from '../../onnx/runtime';
import type { StepContext } from '../../core/context';

/** The proof of an export: ONNX Runtime against PyTorch's reference outputs, for the model and each variant. */

export interface PythonExportResult {
  outputNames: string[];
  torchVersion: string;
  onnxVersion: string;
  exporter: 'dynamo' | 'torchscript';
  opset: number;
  warnings: string[];
  fp16: null | { path: string; convertedNodes: number; keptNodes: number; clampedValues: number; flushedToZero: number };
}

export interface VariantParity {
  name: string;
  file: string;
  tol: Tolerance;
  cases: CaseParity[];
}

/** Everything the export produced and found: what the summary, the failure and the outputs are made from. */
export interface ExportResult {
  output: string;
  source: string;
  modelFile: string;
  refDir: string;
  info: OnnxModelInfo;
  python: PythonExportResult;
  provenance: Record<string, string | undefined>;
  variants: VariantParity[];
  optimizedFile?: string;
  problems: string[];
}

export interface VerifyOptions {
  inputName: string;
  dynamic: Record<number, string>;
  tol: Tolerance;
  fp16Tol: Tolerance;
  optimize: 'none' | 'basic' | 'extended' | 'all';
}

export async function verifyExport(
  runtime: LoadedRuntime,
  work: string,
  base: Pick<ExportResult, 'output' | 'source' | 'python' | 'provenance'>,
  o: VerifyOptions,
  ctx: StepContext,
): Promise<ExportResult> {
  const modelFile = path.join(work, 'model.onnx');
  const refDir = path.join(work, 'reference');
  const info = readOnnxModelInfo(modelFile);
  const problems: string[] = [];
  checkSignature(info, o.inputName, o.dynamic, problems);
  checkMetadata(info, base.provenance, problems, 'model');

  const variants: VariantParity[] = [];
  const index = readReferenceIndex(refDir);
  const parityOf = async (file: string, tol: Tolerance, what: string): Promise<CaseParity[]> => {
    const session = await createSession(runtime.ort, file, { executionProviders: ['cpu'] });
    try {
      return await checkAgainstReference(runtime.ort, session, refDir, index, tol, what);
    } finally {
      await session.release();
    }
  };
  variants.push({
    name: 'fp32',
    file: modelFile,
    tol: o.tol,
    cases: await ctx.group('Parity: ONNX Runtime vs PyTorch', () => parityOf(modelFile, o.tol, 'the exported model')),
  });

  let optimizedFile: string | undefined;
  if (o.optimize !== 'none') {
    optimizedFile = path.join(work, 'model.optimized.onnx');
    const sess = await createSession(runtime.ort, modelFile, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: o.optimize,
      optimizedModelFilePath: optimizedFile,
    });
    await sess.release();
    checkMetadata(readOnnxModelInfo(optimizedFile), base.provenance, problems, 'optimized model');
    variants.push({
      name: `optimized (${o.optimize})`,
      file: optimizedFile,
      tol: o.tol,
      cases: await parityOf(optimizedFile, o.tol, 'the optimized model'),
    });
  }
  const fp16 = base.python.fp16;
  if (fp16) {
    checkMetadata(readOnnxModelInfo(fp16.path), base.provenance, problems, 'FP16 variant');
    variants.push({ name: 'fp16', file: fp16.path, tol: o.fp16Tol, cases: await parityOf(fp16.path, o.fp16Tol, 'the FP16 variant') });
  }
  return { ...base, modelFile, refDir, info, variants, optimizedFile, problems };
}

function checkSignature(info: OnnxModelInfo, inputName: string, dynamic: Record<number, string>, problems: string[]): void {
  const input = info.inputs.find((i) => i.name === inputName);
  if (!input) {
    problems.push(`the model has no input "${inputName}" (inputs: ${info.inputs.map((i) => i.name).join(', ')})`);
    return;
  }
  for (const [axis, name] of Object.entries(dynamic)) {
    const dim = input.shape?.[Number(axis)];
    // A symbolic name or an open (null) size is dynamic; a number or a missing axis is not.
    if (typeof dim === 'number' || dim === undefined)
      problems.push(`axis ${axis} (${name}) of input ${inputName} was declared dynamic but the exported graph fixes it to ${dim}`);
  }
}

function checkMetadata(info: OnnxModelInfo, provenance: Record<string, string | undefined>, problems: string[], what: string): void {
  for (const [key, value] of Object.entries(provenance)) {
    if (value === undefined || value === '') continue;
    if (info.metadata[key] !== value)
      problems.push(
        `${what}: metadata_props ${key} reads back as ${JSON.stringify(info.metadata[key])}, expected ${JSON.stringify(value)}`,
      );
  }
}
