import * as fs from 'node:fs';
import { StepError } from '../core/errors';

/**
 * Reads what a release needs to know about an ONNX file (IR version, opsets, producer, input/output signature,
 * metadata_props, operator counts) straight from its protobuf encoding. Reads only the bytes of those fields:
 * weights are skipped by offset, so a multi-GB model costs a few kilobytes of reads.
 */

export interface TensorSignature {
  name: string;
  /** ONNX element type name (float32, int64, ...). */
  type: string;
  /** Fixed sizes as numbers, symbolic ones as their name; undefined where the file leaves the rank unknown. */
  shape?: (number | string)[];
}

export interface OnnxModelInfo {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  /** Opset per domain; '' is the default ONNX domain. */
  opsets: Record<string, number>;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  metadata: Record<string, string>;
  nodeCount: number;
  opTypes: Record<string, number>;
  initializerCount: number;
  /** Elements over all initializers (parameters, constants). */
  parameterCount: number;
}

const ELEMENT_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
};

export function elementTypeName(code: number): string {
  return ELEMENT_TYPES[code] ?? `type${code}`;
}

interface ByteSource {
  readonly size: number;
  byte(pos: number): number;
  bytes(pos: number, length: number): Buffer;
}

class FileSource implements ByteSource {
  private block = Buffer.alloc(0);
  private blockStart = 0;
  private static readonly BLOCK = 65536;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  byte(pos: number): number {
    if (pos < this.blockStart || pos >= this.blockStart + this.block.length) this.load(pos);
    return this.block[pos - this.blockStart];
  }

  bytes(pos: number, length: number): Buffer {
    if (pos >= this.blockStart && pos + length <= this.blockStart + this.block.length) return this.block.subarray(pos - this.blockStart, pos - this.blockStart + length);
    if (length <= FileSource.BLOCK) {
      this.load(pos);
      return this.block.subarray(0, length);
    }
    const out = Buffer.alloc(length);
    fs.readSync(this.fd, out, 0, length, pos);
    return out;
  }

  private load(pos: number): void {
    const length = Math.min(FileSource.BLOCK, this.size - pos);
    const buf = Buffer.alloc(Math.max(0, length));
    fs.readSync(this.fd, buf, 0, buf.length, pos);
    this.block = buf;
    this.blockStart = pos;
  }
}

class BufferSource implements ByteSource {
  constructor(private readonly buffer: Buffer) {}
  get size(): number {
    return this.buffer.length;
  }
  byte(pos: number): number {
    return this.buffer[pos];
  }
  bytes(pos: number, length: number): Buffer {
    return this.buffer.subarray(pos, pos + length);
  }
}

interface Field {
  number: number;
  wire: number;
  /** Varint value (wire type 0). */
  value: number;
  /** Byte range of a length-delimited value (wire type 2). */
  start: number;
  end: number;
}

class MalformedProto extends Error {}

function readVarint(src: ByteSource, pos: number, limit: number): [number, number] {
  let result = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= limit) throw new MalformedProto(`varint runs past byte ${limit}`);
    const b = src.byte(pos++);
    result += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return [result, pos];
    multiplier *= 128;
  }
  throw new MalformedProto('varint longer than 10 bytes');
}

function* fields(src: ByteSource, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const [key, afterKey] = readVarint(src, pos, end);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    pos = afterKey;
    if (wire === 0) {
      const [value, next] = readVarint(src, pos, end);
      yield { number, wire, value, start: pos, end: next };
      pos = next;
    } else if (wire === 2) {
      const [length, next] = readVarint(src, pos, end);
      if (next + length > end) throw new MalformedProto(`field ${number} of length ${length} at byte ${next} runs past byte ${end}`);
      yield { number, wire, value: length, start: next, end: next + length };
      pos = next + length;
    } else if (wire === 1) {
      yield { number, wire, value: 0, start: pos, end: pos + 8 };
      pos += 8;
    } else if (wire === 5) {
      yield { number, wire, value: 0, start: pos, end: pos + 4 };
      pos += 4;
    } else {
      throw new MalformedProto(`unsupported wire type ${wire} for field ${number} at byte ${pos}`);
    }
  }
}

function text(src: ByteSource, f: Field): string {
  return src.bytes(f.start, f.end - f.start).toString('utf8');
}

/** Varint fields that may be packed (repeated int64 in proto3 style) or not. */
function varints(src: ByteSource, f: Field): number[] {
  if (f.wire === 0) return [f.value];
  const out: number[] = [];
  let pos = f.start;
  while (pos < f.end) {
    const [v, next] = readVarint(src, pos, f.end);
    out.push(v);
    pos = next;
  }
  return out;
}

function readValueInfo(src: ByteSource, f: Field): TensorSignature {
  let name = '';
  let type = 'unknown';
  let shape: (number | string)[] | undefined;
  for (const vf of fields(src, f.start, f.end)) {
    if (vf.number === 1) name = text(src, vf);
    else if (vf.number === 2) {
      for (const tf of fields(src, vf.start, vf.end)) {
        if (tf.number === 1) {
          // TypeProto.Tensor
          for (const t of fields(src, tf.start, tf.end)) {
            if (t.number === 1) type = elementTypeName(t.value);
            else if (t.number === 2) {
              shape = [];
              for (const dim of fields(src, t.start, t.end)) {
                if (dim.number !== 1) continue;
                let size: number | string = '?';
                for (const d of fields(src, dim.start, dim.end)) {
                  if (d.number === 1) size = d.value;
                  else if (d.number === 2) size = text(src, d);
                }
                shape.push(size);
              }
            }
          }
        } else if (tf.number === 4) type = 'sequence';
        else if (tf.number === 5) type = 'map';
        else if (tf.number === 9) type = 'optional';
      }
    }
  }
  return { name, type, shape };
}

function parse(src: ByteSource): OnnxModelInfo {
  const info: OnnxModelInfo = {
    irVersion: 0,
    producerName: '',
    producerVersion: '',
    domain: '',
    modelVersion: 0,
    opsets: {},
    inputs: [],
    outputs: [],
    metadata: {},
    nodeCount: 0,
    opTypes: {},
    initializerCount: 0,
    parameterCount: 0,
  };
  let graphSeen = false;
  const initializerNames = new Set<string>();
  const graphInputs: TensorSignature[] = [];
  for (const f of fields(src, 0, src.size)) {
    switch (f.number) {
      case 1:
        info.irVersion = f.value;
        break;
      case 2:
        info.producerName = text(src, f);
        break;
      case 3:
        info.producerVersion = text(src, f);
        break;
      case 4:
        info.domain = text(src, f);
        break;
      case 5:
        info.modelVersion = f.value;
        break;
      case 8: {
        let domain = '';
        let version = 0;
        for (const o of fields(src, f.start, f.end)) {
          if (o.number === 1) domain = text(src, o);
          else if (o.number === 2) version = o.value;
        }
        info.opsets[domain === 'ai.onnx' ? '' : domain] = version;
        break;
      }
      case 14: {
        let key = '';
        let value = '';
        for (const e of fields(src, f.start, f.end)) {
          if (e.number === 1) key = text(src, e);
          else if (e.number === 2) value = text(src, e);
        }
        info.metadata[key] = value;
        break;
      }
      case 7:
        graphSeen = true;
        for (const g of fields(src, f.start, f.end)) {
          if (g.number === 1) {
            info.nodeCount++;
            for (const n of fields(src, g.start, g.end)) {
              if (n.number === 4) {
                const op = text(src, n);
                info.opTypes[op] = (info.opTypes[op] ?? 0) + 1;
              }
            }
          } else if (g.number === 5) {
            info.initializerCount++;
            let elements = 1;
            for (const t of fields(src, g.start, g.end)) {
              if (t.number === 1) for (const d of varints(src, t)) elements *= d;
              else if (t.number === 8) initializerNames.add(text(src, t));
            }
            info.parameterCount += elements;
          } else if (g.number === 11) graphInputs.push(readValueInfo(src, g));
          else if (g.number === 12) info.outputs.push(readValueInfo(src, g));
        }
        break;
    }
  }
  if (!graphSeen || info.irVersion === 0) throw new MalformedProto(`no ${graphSeen ? 'ir_version' : 'graph'} field`);
  // IR < 4 lists initializers among the graph inputs; they are weights, not inputs a caller feeds.
  info.inputs = graphInputs.filter((i) => !initializerNames.has(i.name));
  return info;
}

export function readOnnxModelInfo(file: string): OnnxModelInfo {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new StepError(`Cannot open ONNX model ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, { hint: 'Check the model path.' });
  }
  try {
    return parse(new FileSource(fd, fs.fstatSync(fd).size));
  } catch (error) {
    if (error instanceof MalformedProto) throw new StepError(`${file} is not a valid ONNX model: ${error.message}.`, { hint: 'Export the model again; the file may be truncated or not an .onnx file.', file });
    throw error;
  } finally {
    fs.closeSync(fd);
  }
}

export function parseOnnxModelInfo(buffer: Buffer, where = 'buffer'): OnnxModelInfo {
  try {
    return parse(new BufferSource(buffer));
  } catch (error) {
    if (error instanceof MalformedProto) throw new StepError(`${where} is not a valid ONNX model: ${error.message}.`, { hint: 'Export the model again.' });
    throw error;
  }
}

/** "image: float32[batch,3,height,width]" */
export function formatSignature(s: TensorSignature): string {
  return `${s.name}: ${s.type}[${s.shape ? s.shape.join(',') : '?'}]`;
}
