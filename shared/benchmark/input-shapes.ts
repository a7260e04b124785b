import { StepError } from '../core/errors';
import type { TensorSignature } from '../onnx/model-info';
import type { TensorType } from '../onnx/tensors';
import type { PreprocessSpec } from '../preprocess/spec';

/**
 * Concrete input shapes for a benchmark: fixed sizes from the model, the batch axis from the batch size,
 * other symbolic sizes from input-shape (first input) or the preprocessing spec's resize.
 */

const SUPPORTED: Record<string, TensorType> = {
  float32: 'float32',
  float16: 'float16',
  float64: 'float64',
  uint8: 'uint8',
  int8: 'int8',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
  uint16: 'uint16',
  int16: 'int16',
};

export interface PlannedInput {
  name: string;
  type: TensorType;
  dims: number[];
}

export function batchIsDynamic(inputs: readonly TensorSignature[]): boolean {
  return inputs.some((i) => typeof i.shape?.[0] === 'string');
}

export function planInputs(
  model: string,
  inputs: readonly TensorSignature[],
  batch: number,
  shapeHint: number[] | undefined,
  spec: PreprocessSpec | undefined,
): PlannedInput[] {
  return inputs.map((input, n) => {
    const type = SUPPORTED[input.type];
    if (!type)
      throw new StepError(`Input ${input.name} of ${model} has element type ${input.type}, which the benchmark cannot generate.`, {
        hint: 'Benchmark models whose inputs are numeric tensors.',
        file: model,
      });
    if (!input.shape)
      throw new StepError(`Input ${input.name} of ${model} has no shape in the model.`, {
        hint: 'Export the model with a shaped input.',
        file: model,
      });
    const fromSpec =
      spec?.resize && input.shape.length === 4
        ? spec.layout === 'NCHW'
          ? [undefined, undefined, spec.resize.height, spec.resize.width]
          : [undefined, spec.resize.height, spec.resize.width, undefined]
        : [];
    const hint = n === 0 ? shapeHint : undefined;
    if (hint && hint.length !== input.shape.length) {
      throw new StepError(
        `input-shape has ${hint.length} dimensions, but input ${input.name} of ${model} has ${input.shape.length} ([${input.shape.join(', ')}]).`,
        { hint: 'Give one size per dimension.' },
      );
    }
    const dims = input.shape.map((d, axis) => {
      if (typeof d === 'number') {
        if (hint && axis > 0 && hint[axis] !== d)
          throw new StepError(`input-shape sets axis ${axis} of ${input.name} to ${hint[axis]}, but the model fixes it to ${d}.`, {
            hint: `Use ${d} there.`,
          });
        if (axis === 0 && d !== batch && d !== 0)
          throw new StepError(`Batch size ${batch} was asked, but ${model} fixes the batch axis of ${input.name} to ${d}.`, {
            hint: `Use batch-sizes ${d}, or export with dynamic-axes batch.`,
            file: model,
          });
        return d;
      }
      if (axis === 0) return batch;
      const size = hint?.[axis] ?? fromSpec[axis];
      if (size === undefined) {
        throw new StepError(
          `Axis ${axis} ("${d}") of input ${input.name} of ${model} is dynamic, and neither input-shape nor a preprocessing resize gives its size.`,
          { hint: 'Set input-shape, e.g. 1,3,512,512, to the size the device feeds.' },
        );
      }
      return size;
    });
    return { name: input.name, type, dims };
  });
}
