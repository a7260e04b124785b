import * as fs from 'node:fs/promises';
import { StepError } from '../core/errors';
import { PositionedReader } from './positioned-reader';

/**
 * Reads what a device needs to know about an ONNX model (its signature and opsets) straight from the
 * protobuf wire format, without onnxruntime and without loading the weights: initializers, nodes and
 * other large fields are skipped by seeking past them, so a 2 GB model costs a few kilobytes of reads.
 * Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, ValueInfoProto, TypeProto, TensorProto).
 */

export type OnnxValueKind = 'tensor' | 'sparse_tensor' | 'sequence' | 'map' | 'optional' | 'unknown';

/** A dimension: a fixed size, a symbolic name (`batch`), or null when the model leaves it open. */
export type OnnxDim = number | string | null;

export interface OnnxValueInfo {
  name: string;
  kind: OnnxValueKind;
  /** Element type for tensors (`float32`, `uint8`, …); null for other kinds. */
  dtype: string | null;
  /** Null when the model declares no shape (unknown rank). */
  shape: OnnxDim[] | null;
}

export interface OnnxOpset {
  /** `ai.onnx` for the default domain (stored as an empty string in the file). */
  domain: string;
  version: number;
}

export interface OnnxModelInfo {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  graphName: string;
  opsets: OnnxOpset[];
  /** Graph inputs the caller must feed; inputs that are also initializers (overridable weights) are left out. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** `location` of every initializer stored outside the model file, relative to the model's folder. */
  externalData: string[];
}

/** TensorProto.DataType, named as onnxruntime names them. */
const DTYPES: Record<number, string> = {
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
  23: 'float4e2m1',
};

const MAX_STRING = 64 * 1024;
const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

class WireError extends Error {
  constructor(
    message: string,
    readonly pos: number,
  ) {
    super(message);
  }
}

interface Field {
  number: number;
  wire: number;
  /** Value of a varint field. */
  value: bigint;
  /** Payload range of a length-delimited field. */
  start: number;
  end: number;
}

async function readVarint(r: PositionedReader, pos: number, limit: number): Promise<[bigint, number]> {
  const { buffer, offset, available } = await r.view(pos, Math.min(10, limit - pos));
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < available; i++) {
    const byte = buffer[offset + i];
    result |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [result, pos + i + 1];
    shift += 7n;
  }
  throw new WireError('truncated or over-long varint', pos);
}

/** Walks the fields of one message occupying `[start, end)`. */
async function* fields(r: PositionedReader, start: number, end: number): AsyncGenerator<Field> {
  let pos = start;
  while (pos < end) {
    const [tag, afterTag] = await readVarint(r, pos, end);
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (number === 0) throw new WireError('field number 0', pos);
    switch (wire) {
      case WIRE_VARINT: {
        const [value, next] = await readVarint(r, afterTag, end);
        yield { number, wire, value, start: afterTag, end: next };
        pos = next;
        break;
      }
      case WIRE_LEN: {
        const [length, payload] = await readVarint(r, afterTag, end);
        const payloadEnd = payload + Number(length);
        if (payloadEnd > end) throw new WireError(`field ${number} is ${length} bytes long but its message ends ${end - payload} bytes later`, pos);
        yield { number, wire, value: 0n, start: payload, end: payloadEnd };
        pos = payloadEnd;
        break;
      }
      case WIRE_I64:
      case WIRE_I32: {
        const next = afterTag + (wire === WIRE_I64 ? 8 : 4);
        if (next > end) throw new WireError(`fixed-size field ${number} runs past its message`, pos);
        yield { number, wire, value: 0n, start: afterTag, end: next };
        pos = next;
        break;
      }
      default:
        throw new WireError(`field ${number} has wire type ${wire}, which ONNX never uses`, pos);
    }
  }
}

function expectWire(field: Field, wire: number, what: string): void {
  if (field.wire !== wire) throw new WireError(`${what} (field ${field.number}) has wire type ${field.wire}, expected ${wire}`, field.start);
}

async function readString(r: PositionedReader, field: Field, what: string): Promise<string> {
  expectWire(field, WIRE_LEN, what);
  if (field.end - field.start > MAX_STRING) throw new WireError(`${what} is ${field.end - field.start} bytes long, more than a name can be`, field.start);
  return (await r.bytes(field.start, field.end)).toString('utf8');
}

function int64(field: Field, what: string): number {
  expectWire(field, WIRE_VARINT, what);
  return Number(BigInt.asIntN(64, field.value));
}

async function parseDim(r: PositionedReader, start: number, end: number): Promise<OnnxDim> {
  let dim: OnnxDim = null;
  for await (const f of fields(r, start, end)) {
    if (f.number === 1) dim = int64(f, 'dim_value');
    else if (f.number === 2) dim = (await readString(r, f, 'dim_param')) || null;
  }
  return dim;
}

async function parseTensorType(r: PositionedReader, start: number, end: number): Promise<{ dtype: string | null; shape: OnnxDim[] | null }> {
  let dtype: string | null = null;
  let shape: OnnxDim[] | null = null;
  for await (const f of fields(r, start, end)) {
    if (f.number === 1) {
      const code = int64(f, 'elem_type');
      dtype = DTYPES[code] ?? `type${code}`;
    } else if (f.number === 2) {
      expectWire(f, WIRE_LEN, 'shape');
      shape = [];
      for await (const d of fields(r, f.start, f.end)) {
        if (d.number !== 1) continue;
        expectWire(d, WIRE_LEN, 'dim');
        shape.push(await parseDim(r, d.start, d.end));
      }
    }
  }
  return { dtype, shape };
}

const TYPE_KINDS: Record<number, OnnxValueKind> = { 1: 'tensor', 4: 'sequence', 5: 'map', 8: 'sparse_tensor', 9: 'optional' };

async function parseValueInfo(r: PositionedReader, start: number, end: number): Promise<OnnxValueInfo> {
  const info: OnnxValueInfo = { name: '', kind: 'unknown', dtype: null, shape: null };
  for await (const f of fields(r, start, end)) {
    if (f.number === 1) info.name = await readString(r, f, 'value name');
    else if (f.number === 2) {
      expectWire(f, WIRE_LEN, 'type');
      for await (const t of fields(r, f.start, f.end)) {
        const kind = TYPE_KINDS[t.number];
        if (!kind) continue;
        info.kind = kind;
        if (kind === 'tensor' || kind === 'sparse_tensor') {
          expectWire(t, WIRE_LEN, 'tensor_type');
          Object.assign(info, await parseTensorType(r, t.start, t.end));
        }
      }
    }
  }
  return info;
}

const DATA_LOCATION_EXTERNAL = 1;

/** Name and external-data location of an initializer; its payload (raw_data, float_data, …) is skipped. */
async function parseInitializer(r: PositionedReader, start: number, end: number): Promise<{ name: string; location?: string }> {
  let name = '';
  let location: string | undefined;
  let external = false;
  for await (const f of fields(r, start, end)) {
    if (f.number === 8) name = await readString(r, f, 'initializer name');
    else if (f.number === 14) external = int64(f, 'data_location') === DATA_LOCATION_EXTERNAL;
    else if (f.number === 13) {
      expectWire(f, WIRE_LEN, 'external_data');
      let key = '';
      let value = '';
      for await (const kv of fields(r, f.start, f.end)) {
        if (kv.number === 1) key = await readString(r, kv, 'external_data key');
        else if (kv.number === 2) value = await readString(r, kv, 'external_data value');
      }
      if (key === 'location') location = value;
    }
  }
  return { name, location: external ? location : undefined };
}

/** Parses a model through `r`; readOnnxModelInfo wraps it with file handling and messages. */
export async function parseOnnxModel(r: PositionedReader): Promise<OnnxModelInfo> {
  let irVersion: number | undefined;
  let graph: Field | undefined;
  const info: OnnxModelInfo = { irVersion: 0, producerName: '', producerVersion: '', graphName: '', opsets: [], inputs: [], outputs: [], externalData: [] };
  for await (const f of fields(r, 0, r.size)) {
    switch (f.number) {
      case 1:
        irVersion = int64(f, 'ir_version');
        break;
      case 2:
        info.producerName = await readString(r, f, 'producer_name');
        break;
      case 3:
        info.producerVersion = await readString(r, f, 'producer_version');
        break;
      case 7:
        expectWire(f, WIRE_LEN, 'graph');
        graph = f;
        break;
      case 8: {
        expectWire(f, WIRE_LEN, 'opset_import');
        const opset: OnnxOpset = { domain: '', version: 0 };
        for await (const o of fields(r, f.start, f.end)) {
          if (o.number === 1) opset.domain = await readString(r, o, 'opset domain');
          else if (o.number === 2) opset.version = int64(o, 'opset version');
        }
        info.opsets.push({ domain: opset.domain || 'ai.onnx', version: opset.version });
        break;
      }
    }
  }
  if (irVersion === undefined) throw new WireError('no ir_version field', 0);
  if (!graph) throw new WireError('no graph field', 0);
  info.irVersion = irVersion;

  const initializers = new Set<string>();
  const external = new Set<string>();
  const inputs: OnnxValueInfo[] = [];
  for await (const f of fields(r, graph.start, graph.end)) {
    if (f.number === 2) info.graphName = await readString(r, f, 'graph name');
    else if (f.number === 5) {
      expectWire(f, WIRE_LEN, 'initializer');
      const init = await parseInitializer(r, f.start, f.end);
      initializers.add(init.name);
      if (init.location !== undefined) external.add(init.location);
    } else if (f.number === 11) {
      expectWire(f, WIRE_LEN, 'graph input');
      inputs.push(await parseValueInfo(r, f.start, f.end));
    } else if (f.number === 12) {
      expectWire(f, WIRE_LEN, 'graph output');
      info.outputs.push(await parseValueInfo(r, f.start, f.end));
    }
  }
  info.inputs = inputs.filter((i) => !initializers.has(i.name));
  info.externalData = [...external].sort();
  if (info.opsets.length === 0) throw new WireError('no opset_import field', 0);
  if (info.outputs.length === 0) throw new WireError('the graph declares no outputs', graph.start);
  return info;
}

/** Reads the signature of the ONNX model at `file`; `label` is how error messages name it. */
export async function readOnnxModelInfo(file: string, label = file): Promise<OnnxModelInfo> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    throw new StepError(`Cannot open the ONNX model ${label}: ${(error as Error).message}`, { hint: 'Check the path; list inputs are relative to the workspace.', cause: error });
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) throw new StepError(`The ONNX model ${label} is empty.`, { hint: 'Export the model again.', file: label });
    return await parseOnnxModel(new PositionedReader(handle, size));
  } catch (error) {
    if (error instanceof WireError || error instanceof RangeError) {
      const at = error instanceof WireError ? ` (at byte ${error.pos})` : '';
      throw new StepError(`${label} is not a readable ONNX model: ${error.message}${at}.`, {
        hint: 'Pass the .onnx file itself (not a PyTorch checkpoint or an archive); a truncated copy or an interrupted export also ends up here.',
        file: label,
      });
    }
    throw error;
  } finally {
    await handle.close();
  }
}
