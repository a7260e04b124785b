import * as fs from 'node:fs';
import { InputError, StepError } from '../core/errors';

/** Parsing of export-onnx's shape-like inputs, with messages that name the input and the value. */

export function parseShape(text: string, label: string): number[] {
  const parts = text
    .replace(/[[\]()]/g, '')
    .split(/[\s,x×]+/)
    .filter((s) => s !== '');
  const dims = parts.map(Number);
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new InputError(`Input "${label}" has value "${text}", which is not a shape of positive whole numbers.`, {
      hint: 'Write the example input shape like 1,3,256,256 (batch, channels, height, width).',
    });
  }
  const elements = dims.reduce((a, b) => a * b, 1);
  if (elements > MAX_SHAPE_ELEMENTS) {
    throw new InputError(
      `Input "${label}" has value "${text}": ${elements.toExponential(2)} elements, more than the ${MAX_SHAPE_ELEMENTS} (1 GiB of float32) an example input may have.`,
      {
        hint: 'The example input is one batch of the size the model runs at, e.g. 1,3,512,512; dynamic axes cover other sizes.',
      },
    );
  }
  return dims;
}

/** Example inputs are allocated (seeded parity inputs, then PyTorch and ONNX Runtime buffers): 2^28 floats is 1 GiB. */
export const MAX_SHAPE_ELEMENTS = 2 ** 28;

const AXIS_NAMES = ['batch', 'channels', 'height', 'width'] as const;

/** "batch,height,width" or "0,2,3" → { axis index: symbolic name }. */
export function parseDynamicAxes(text: string | undefined, rank: number, layout: 'NCHW' | 'NHWC', label: string): Record<number, string> {
  const out: Record<number, string> = {};
  if (!text) return out;
  const positions: Record<string, number> =
    layout === 'NCHW' ? { batch: 0, channels: 1, height: 2, width: 3 } : { batch: 0, height: 1, width: 2, channels: 3 };
  for (const raw of text.split(/[\s,]+/).filter(Boolean)) {
    const name = raw.toLowerCase();
    let axis: number;
    if (/^\d+$/.test(name)) axis = Number(name);
    else if (name in positions && rank === 4) axis = positions[name];
    else if (name === 'batch') axis = 0;
    else {
      throw new InputError(
        `Input "${label}" names axis "${raw}", which is not ${rank === 4 ? AXIS_NAMES.join(', ') : 'batch'} or an axis index.`,
        { hint: `Use names (batch,height,width) for 4-D image inputs, or axis indices 0..${rank - 1}.` },
      );
    }
    if (axis >= rank)
      throw new InputError(`Input "${label}" names axis ${raw} (index ${axis}), but the input has rank ${rank}.`, {
        hint: `Use axis indices 0..${rank - 1}.`,
      });
    out[axis] = /^\d+$/.test(name) ? (axis === 0 ? 'batch' : `dim${axis}`) : name;
  }
  return out;
}

export function requireFile(file: string | undefined, label: string): void {
  if (!file) return;
  if (!fs.existsSync(file) || !fs.statSync(file).isFile())
    throw new StepError(`Input "${label}" points at ${file}, which is not a file.`, {
      hint: `Check the path of ${label}; relative paths are resolved against the workspace.`,
    });
}
