import * as fs from 'node:fs';
import { StepError } from '../core/errors';
import { allocate, elementCount, type PlainTensor, type TensorType } from './tensors';
import { writeFileAtomicSync } from '../core/atomic-write';

/** NumPy .npy files (format 1.0-3.0, little-endian, C order): how reference tensors travel between Python and Node. */

const DESCR_TO_TYPE: Record<string, TensorType> = {
  '<f4': 'float32',
  '<f2': 'float16',
  '<f8': 'float64',
  '|u1': 'uint8',
  '<u1': 'uint8',
  '|i1': 'int8',
  '<i2': 'int16',
  '<u2': 'uint16',
  '<i4': 'int32',
  '<i8': 'int64',
  '|b1': 'bool',
};
const TYPE_TO_DESCR: Record<TensorType, string> = {
  float32: '<f4',
  float16: '<f2',
  float64: '<f8',
  uint8: '|u1',
  int8: '|i1',
  int16: '<i2',
  uint16: '<u2',
  int32: '<i4',
  int64: '<i8',
  bool: '|b1',
};

export function parseNpy(buffer: Buffer, file = 'buffer'): PlainTensor {
  if (buffer.length < 10 || buffer.toString('latin1', 0, 6) !== '\x93NUMPY')
    throw new StepError(`${file} is not a .npy file (bad magic bytes).`, { hint: 'Save arrays with numpy.save.', file });
  const major = buffer[6];
  const headerLength = major === 1 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buffer.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new StepError(`${file}: unreadable .npy header ${JSON.stringify(header.trim())}.`, {
      hint: 'Save arrays with numpy.save.',
      file,
    });
  const type = DESCR_TO_TYPE[descr];
  if (!type)
    throw new StepError(`${file}: .npy dtype ${descr} is not supported.`, {
      hint: `Save one of ${Object.keys(DESCR_TO_TYPE).join(', ')} (little-endian).`,
      file,
    });
  if (fortran === 'True')
    throw new StepError(`${file}: Fortran-ordered arrays are not supported.`, { hint: 'Save numpy.ascontiguousarray(a).', file });
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const n = elementCount(dims);
  const data = allocate(type, n);
  const bytes = data.byteLength;
  const offset = start + headerLength;
  if (buffer.length - offset < bytes)
    throw new StepError(`${file}: holds ${buffer.length - offset} data bytes, shape ${JSON.stringify(dims)} ${descr} needs ${bytes}.`, {
      hint: 'The file is truncated; save it again.',
      file,
    });
  // Copy into the typed array's own (aligned) buffer.
  new Uint8Array(data.buffer).set(buffer.subarray(offset, offset + bytes));
  return { type, dims, data };
}

export function readNpy(file: string): PlainTensor {
  let buffer: Buffer;
  try {
    buffer = fs.readFileSync(file);
  } catch (error) {
    throw new StepError(`Cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: 'Check that the reference folder is complete.',
      file,
    });
  }
  return parseNpy(buffer, file);
}

export function encodeNpy(tensor: PlainTensor): Buffer {
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${TYPE_TO_DESCR[tensor.type]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Format 1.0: data starts on a 64-byte boundary; the header ends with a newline.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

export function writeNpy(file: string, tensor: PlainTensor): void {
  writeFileAtomicSync(file, encodeNpy(tensor));
}
