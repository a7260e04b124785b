import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { StepError } from '../core/errors';
import type { Ort } from './runtime';
import type { PlainTensor, TensorType } from './tensors';

/** Conversions between mlship's plain tensors and ONNX Runtime's, and session creation with clear errors. */

export function toOrtTensor(ort: Ort, t: PlainTensor): Tensor {
  return new ort.Tensor(t.type as never, t.data as never, t.dims);
}

export function fromOrtTensor(t: Tensor): PlainTensor {
  return { type: t.type as TensorType, dims: [...t.dims], data: t.data as PlainTensor['data'] };
}

export function toFeeds(ort: Ort, inputs: Record<string, PlainTensor>): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = toOrtTensor(ort, t);
  return feeds;
}

export async function createSession(ort: Ort, modelPath: string, options: InferenceSession.SessionOptions = {}): Promise<InferenceSession> {
  try {
    return await ort.InferenceSession.create(modelPath, options);
  } catch (error) {
    throw new StepError(`ONNX Runtime cannot load ${modelPath}: ${firstLine(error)}`, {
      hint: 'The graph may use an operator or opset this ONNX Runtime does not implement; compare the opset with the runtime version on the device.',
      file: modelPath,
      cause: error,
    });
  }
}

export async function runSession(session: InferenceSession, feeds: Record<string, Tensor>, where: string): Promise<Record<string, Tensor>> {
  try {
    return (await session.run(feeds)) as Record<string, Tensor>;
  } catch (error) {
    throw new StepError(`ONNX Runtime failed to run ${where}: ${firstLine(error)}`, {
      hint: 'An input of this shape or type is not accepted by the graph; a dynamic axis may be fixed inside the graph (look for Reshape with constant sizes).',
      cause: error,
    });
  }
}

export function firstLine(error: unknown): string {
  // Errors from the native binding may come from another realm (jest), so no instanceof.
  const message = typeof error === 'object' && error !== null && 'message' in error ? (error as { message: unknown }).message : undefined;
  const text = typeof message === 'string' ? message : String(error);
  return text.split('\n')[0].trim();
}
