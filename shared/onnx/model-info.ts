import * as fs from 'node:fs';
import { StepError } from '../core/errors';
import { BufferReader, type ByteReader, PositionedReader } from './positioned-reader';

/**
 * Reads what a release needs to know about an ONNX model (IR version, opsets, producer, signature, metadata_props,
 * operator and weight counts, external data files) straight from the protobuf wire format, without onnxruntime and
 * without loading the weights: initializer payloads and other large fields are skipped by offset, so a 2 GB model
 * costs a few kilobytes of reads. Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
 * ValueInfoProto, TypeProto, TensorProto). The device package manifest and the export/benchmark steps all read
 * models through this one walk.
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
  domain: string;
  modelVersion: number;
  graphName: string;
  /** In file order. */
  opsets: OnnxOpset[];
  /** Graph inputs the caller must feed; inputs that are also initializers (IR < 4 lists weights as inputs) are left out. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  metadata: Record<string, string>;
  nodeCount: number;
  opTypes: Record<string, number>;
  initializerCount: number;
  /** Elements over all initializers (parameters, constants). */
  parameterCount: number;
  /** `location` of every initializer stored outside the model file, relative to the model's folder; sorted, once each. */
  externalData: string[];
}

/** A value as step outputs and benchmark reports publish it (see tensorSignature). */
export interface TensorSignature {
  name: string;
  /** ONNX element type name (float32, int64, ...), or the value kind for non-tensors. */
  type: string;
  /** Fixed sizes as numbers, symbolic ones as their name, `?` where open; undefined where the rank is unknown. */
  shape?: (number | string)[];
}

/** TensorProto.DataType, named as onnxruntime names them. */
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
  23: 'float4e2m1',
};

export function elementTypeName(code: number): string {
  return ELEMENT_TYPES[code] ?? `type${code}`;
}

/** Version of the opset imported for `domain`, undefined when the model imports none. */
export function opsetVersion(info: Pick<OnnxModelInfo, 'opsets'>, domain = 'ai.onnx'): number | undefined {
  return info.opsets.find((o) => o.domain === domain)?.version;
}

export function tensorSignature(v: OnnxValueInfo): TensorSignature {
  return { name: v.name, type: v.kind === 'tensor' ? (v.dtype ?? 'unknown') : v.kind, shape: v.shape?.map((d) => d ?? '?') };
}

/** "image: float32[batch,3,height,width]" */
export function formatSignature(v: OnnxValueInfo): string {
  const s = tensorSignature(v);
  return `${s.name}: ${s.type}[${s.shape ? s.shape.join(',') : '?'}]`;
}

/** Names and opset domains are short; a longer one means the bytes are not what they claim. */
const MAX_NAME = 64 * 1024;
/** metadata_props values may carry a JSON document (preprocessing spec, class map). */
const MAX_METADATA_VALUE = 16 * 1024 * 1024;
const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;
const DATA_LOCATION_EXTERNAL = 1;

class WireError extends Error {}

interface Field {
  number: number;
  wire: number;
  /** Value of a varint field. */
  value: bigint;
  /** Payload range of a length-delimited field (the encoded value for other wire types). */
  start: number;
  end: number;
}

function readVarint(r: ByteReader, pos: number, limit: number): [bigint, number] {
  const { buffer, offset, available } = r.view(pos, Math.min(10, limit - pos));
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < available; i++) {
    const byte = buffer[offset + i];
    result |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [result, pos + i + 1];
    shift += 7n;
  }
  throw new WireError(`truncated or over-long varint at byte ${pos}`);
}

/** Walks the fields of one message occupying `[start, end)`. */
function* fields(r: ByteReader, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const [tag, afterTag] = readVarint(r, pos, end);
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (number === 0) throw new WireError(`field number 0 at byte ${pos}`);
    switch (wire) {
      case WIRE_VARINT: {
        const [value, next] = readVarint(r, afterTag, end);
        yield { number, wire, value, start: afterTag, end: next };
        pos = next;
        break;
      }
      case WIRE_LEN: {
        const [length, payload] = readVarint(r, afterTag, end);
        const payloadEnd = payload + Number(length);
        if (payloadEnd > end) throw new WireError(`field ${number} of length ${length} at byte ${payload} runs past byte ${end}`);
        yield { number, wire, value: 0n, start: payload, end: payloadEnd };
        pos = payloadEnd;
        break;
      }
      case WIRE_I64:
      case WIRE_I32: {
        const next = afterTag + (wire === WIRE_I64 ? 8 : 4);
        if (next > end) throw new WireError(`fixed-size field ${number} at byte ${afterTag} runs past byte ${end}`);
        yield { number, wire, value: 0n, start: afterTag, end: next };
        pos = next;
        break;
      }
      default:
        throw new WireError(`field ${number} at byte ${pos} has wire type ${wire}, which ONNX never uses`);
    }
  }
}

function expectWire(field: Field, wire: number, what: string): void {
  if (field.wire !== wire)
    throw new WireError(`${what} (field ${field.number} at byte ${field.start}) has wire type ${field.wire}, expected ${wire}`);
}

function readString(r: ByteReader, field: Field, what: string, max = MAX_NAME): string {
  expectWire(field, WIRE_LEN, what);
  if (field.end - field.start > max)
    throw new WireError(`${what} at byte ${field.start} is ${field.end - field.start} bytes long, more than ${max}`);
  return r.bytes(field.start, field.end).toString('utf8');
}

function int64(field: Field, what: string): number {
  expectWire(field, WIRE_VARINT, what);
  return Number(BigInt.asIntN(64, field.value));
}

/** A repeated int64, packed or not. */
function int64s(r: ByteReader, field: Field, what: string): number[] {
  if (field.wire !== WIRE_LEN) return [int64(field, what)];
  const out: number[] = [];
  for (let pos = field.start; pos < field.end;) {
    const [value, next] = readVarint(r, pos, field.end);
    out.push(Number(BigInt.asIntN(64, value)));
    pos = next;
  }
  return out;
}

function parseDim(r: ByteReader, start: number, end: number): OnnxDim {
  let dim: OnnxDim = null;
  for (const f of fields(r, start, end)) {
    if (f.number === 1) dim = int64(f, 'dim_value');
    else if (f.number === 2) dim = readString(r, f, 'dim_param') || null;
  }
  return dim;
}

function parseTensorType(r: ByteReader, start: number, end: number): { dtype: string | null; shape: OnnxDim[] | null } {
  let dtype: string | null = null;
  let shape: OnnxDim[] | null = null;
  for (const f of fields(r, start, end)) {
    if (f.number === 1) dtype = elementTypeName(int64(f, 'elem_type'));
    else if (f.number === 2) {
      expectWire(f, WIRE_LEN, 'shape');
      shape = [];
      for (const d of fields(r, f.start, f.end)) {
        if (d.number !== 1) continue;
        expectWire(d, WIRE_LEN, 'dim');
        shape.push(parseDim(r, d.start, d.end));
      }
    }
  }
  return { dtype, shape };
}

const TYPE_KINDS: Record<number, OnnxValueKind> = { 1: 'tensor', 4: 'sequence', 5: 'map', 8: 'sparse_tensor', 9: 'optional' };

function parseValueInfo(r: ByteReader, field: Field, what: string): OnnxValueInfo {
  expectWire(field, WIRE_LEN, what);
  const info: OnnxValueInfo = { name: '', kind: 'unknown', dtype: null, shape: null };
  for (const f of fields(r, field.start, field.end)) {
    if (f.number === 1) info.name = readString(r, f, 'value name');
    else if (f.number === 2) {
      expectWire(f, WIRE_LEN, 'type');
      for (const t of fields(r, f.start, f.end)) {
        const kind = TYPE_KINDS[t.number];
        if (!kind) continue;
        info.kind = kind;
        if (kind === 'tensor' || kind === 'sparse_tensor') {
          expectWire(t, WIRE_LEN, 'tensor_type');
          Object.assign(info, parseTensorType(r, t.start, t.end));
        }
      }
    }
  }
  return info;
}

/** A StringStringEntryProto (metadata_props, external_data). */
function parseEntry(r: ByteReader, field: Field, what: string, maxValue = MAX_NAME): [string, string] {
  expectWire(field, WIRE_LEN, what);
  let key = '';
  let value = '';
  for (const f of fields(r, field.start, field.end)) {
    if (f.number === 1) key = readString(r, f, `${what} key`);
    else if (f.number === 2) value = readString(r, f, `${what} value`, maxValue);
  }
  return [key, value];
}

/** Name, element count and external-data location of an initializer; its payload (raw_data, float_data, …) is skipped. */
function parseInitializer(r: ByteReader, field: Field): { name: string; elements: number; location?: string } {
  expectWire(field, WIRE_LEN, 'initializer');
  let name = '';
  let elements = 1;
  let location: string | undefined;
  let external = false;
  for (const f of fields(r, field.start, field.end)) {
    if (f.number === 1) for (const d of int64s(r, f, 'dims')) elements *= d;
    else if (f.number === 8) name = readString(r, f, 'initializer name');
    else if (f.number === 14) external = int64(f, 'data_location') === DATA_LOCATION_EXTERNAL;
    else if (f.number === 13) {
      const [key, value] = parseEntry(r, f, 'external_data');
      if (key === 'location') location = value;
    }
  }
  return { name, elements, location: external ? location : undefined };
}

function parseOpType(r: ByteReader, field: Field): string | undefined {
  expectWire(field, WIRE_LEN, 'node');
  let op: string | undefined;
  for (const f of fields(r, field.start, field.end)) if (f.number === 4) op = readString(r, f, 'op_type');
  return op;
}

type GraphInfo = Pick<
  OnnxModelInfo,
  'graphName' | 'inputs' | 'outputs' | 'nodeCount' | 'opTypes' | 'initializerCount' | 'parameterCount' | 'externalData'
>;

function parseGraph(r: ByteReader, graph: Field): GraphInfo {
  const info: GraphInfo = {
    graphName: '',
    inputs: [],
    outputs: [],
    nodeCount: 0,
    opTypes: {},
    initializerCount: 0,
    parameterCount: 0,
    externalData: [],
  };
  // Maps, not object keys, while counting: an op or key named like an Object.prototype member must count as itself.
  const opTypes = new Map<string, number>();
  const initializers = new Set<string>();
  const external = new Set<string>();
  const inputs: OnnxValueInfo[] = [];
  for (const f of fields(r, graph.start, graph.end)) {
    if (f.number === 1) {
      info.nodeCount++;
      const op = parseOpType(r, f);
      if (op !== undefined) opTypes.set(op, (opTypes.get(op) ?? 0) + 1);
    } else if (f.number === 2) info.graphName = readString(r, f, 'graph name');
    else if (f.number === 5) {
      const init = parseInitializer(r, f);
      info.initializerCount++;
      info.parameterCount += init.elements;
      initializers.add(init.name);
      if (init.location !== undefined) external.add(init.location);
    } else if (f.number === 11) inputs.push(parseValueInfo(r, f, 'graph input'));
    else if (f.number === 12) info.outputs.push(parseValueInfo(r, f, 'graph output'));
  }
  info.inputs = inputs.filter((i) => !initializers.has(i.name));
  info.opTypes = Object.fromEntries(opTypes);
  info.externalData = [...external].sort();
  if (info.outputs.length === 0) throw new WireError(`the graph at byte ${graph.start} declares no outputs`);
  return info;
}

/** Parses a model through `r`; readOnnxModelInfo and parseOnnxModelInfo wrap it with file handling and messages. */
export function parseOnnxModel(r: ByteReader): OnnxModelInfo {
  let irVersion: number | undefined;
  let graph: Field | undefined;
  const head = { producerName: '', producerVersion: '', domain: '', modelVersion: 0 };
  const opsets: OnnxOpset[] = [];
  const metadata = new Map<string, string>();
  for (const f of fields(r, 0, r.size)) {
    switch (f.number) {
      case 1:
        irVersion = int64(f, 'ir_version');
        break;
      case 2:
        head.producerName = readString(r, f, 'producer_name');
        break;
      case 3:
        head.producerVersion = readString(r, f, 'producer_version');
        break;
      case 4:
        head.domain = readString(r, f, 'domain');
        break;
      case 5:
        head.modelVersion = int64(f, 'model_version');
        break;
      case 7:
        expectWire(f, WIRE_LEN, 'graph');
        graph = f;
        break;
      case 8: {
        expectWire(f, WIRE_LEN, 'opset_import');
        const opset: OnnxOpset = { domain: '', version: 0 };
        for (const o of fields(r, f.start, f.end)) {
          if (o.number === 1) opset.domain = readString(r, o, 'opset domain');
          else if (o.number === 2) opset.version = int64(o, 'opset version');
        }
        opsets.push({ domain: opset.domain || 'ai.onnx', version: opset.version });
        break;
      }
      case 14:
        metadata.set(...parseEntry(r, f, 'metadata_props', MAX_METADATA_VALUE));
        break;
    }
  }
  if (irVersion === undefined) throw new WireError('no ir_version field');
  if (irVersion < 1) throw new WireError(`ir_version is ${irVersion}`);
  if (!graph) throw new WireError('no graph field');
  const graphInfo = parseGraph(r, graph);
  if (opsets.length === 0) throw new WireError('no opset_import field');
  return { irVersion, ...head, opsets, metadata: Object.fromEntries(metadata), ...graphInfo };
}

const MALFORMED_HINT =
  'Pass the .onnx file itself (not a PyTorch checkpoint or an archive); a truncated copy or an interrupted export also ends up here.';

function parseNamed(r: ByteReader, label: string): OnnxModelInfo {
  try {
    return parseOnnxModel(r);
  } catch (error) {
    if (error instanceof WireError || error instanceof RangeError)
      throw new StepError(`${label} is not a readable ONNX model: ${error.message}.`, { hint: MALFORMED_HINT, file: label });
    throw error;
  }
}

/** Reads the ONNX model at `file` (a few kilobytes of it, whatever its size); `label` is how error messages name it. */
export function readOnnxModelInfo(file: string, label = file): OnnxModelInfo {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new StepError(`Cannot open the ONNX model ${label}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`, {
      hint: 'Check the model path; step inputs are relative to the workspace.',
      cause: error,
    });
  }
  try {
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory())
      throw new StepError(`The ONNX model ${label} is a folder, not a file.`, { hint: 'Give the path of the .onnx file.', file: label });
    const { size } = stat;
    if (size === 0) throw new StepError(`The ONNX model ${label} is empty.`, { hint: 'Export the model again.', file: label });
    return parseNamed(new PositionedReader(fd, size), label);
  } finally {
    fs.closeSync(fd);
  }
}

export function parseOnnxModelInfo(buffer: Buffer, label = 'buffer'): OnnxModelInfo {
  return parseNamed(new BufferReader(buffer), label);
}
