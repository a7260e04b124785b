import * as fs from 'node:fs/promises';
import { varint } from '../support/protobuf';

/**
 * Writes ONNX models in protobuf wire format for tests and the benchmark, including models whose
 * weights are far larger than memory should hold: a `Big` payload is streamed when the file is written.
 *
 * Valid small models are built with onnx-proto (test/benchmark/conv-model.ts). This writer stays because an
 * encoder cannot write what these tests need: onnx-proto encodes a message whole in memory, so weights larger
 * than memory could not be streamed; it never emits fixed32 or unknown fields, which a reader must skip; and it
 * will not write the malformed models (no graph, a weights field split from its graph tail) the reader must refuse.
 */

export interface Big {
  length: number;
  fill(write: (chunk: Buffer) => Promise<void>): Promise<void>;
}
type Part = Buffer | Big;

export class Message {
  readonly parts: Part[] = [];
  get length(): number {
    return this.parts.reduce((sum, p) => sum + p.length, 0);
  }
  int(field: number, value: number | bigint): this {
    this.parts.push(varint((field << 3) | 0), varint(value));
    return this;
  }
  bytes(field: number, value: Buffer | string | Big | Message): this {
    const payload: Part[] = value instanceof Message ? value.parts : [typeof value === 'string' ? Buffer.from(value) : value];
    const length = payload.reduce((sum, p) => sum + p.length, 0);
    this.parts.push(varint((field << 3) | 2), varint(length), ...payload);
    return this;
  }
  /** A field of wire type 5 (fixed32), which ONNX readers must skip. */
  fixed32(field: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    this.parts.push(varint((field << 3) | 5), b);
    return this;
  }
  toBuffer(): Buffer {
    if (this.parts.some((p) => !Buffer.isBuffer(p))) throw new Error('message has streamed parts; use writeMessage');
    return Buffer.concat(this.parts as Buffer[]);
  }
}

export async function writeMessage(file: string, message: Message): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes > 0) await handle.write(Buffer.concat(pending));
      pending = [];
      pendingBytes = 0;
    };
    for (const part of message.parts) {
      if (Buffer.isBuffer(part)) {
        pending.push(part);
        pendingBytes += part.length;
        if (pendingBytes > 1 << 20) await flush();
      } else {
        await flush();
        await part.fill(async (chunk) => {
          await handle.write(chunk);
        });
      }
    }
    await flush();
  } finally {
    await handle.close();
  }
}

export type Dim = number | string | null;
export interface ValueSpec {
  name: string;
  /** TensorProto.DataType code: 1 float, 7 int64, 10 float16, … */
  elemType?: number;
  shape?: Dim[];
  kind?: 'tensor' | 'sequence';
}

export function valueInfo(spec: ValueSpec): Message {
  const info = new Message().bytes(1, spec.name);
  if (spec.kind === 'sequence') return info.bytes(2, new Message().bytes(4, new Message()));
  const tensor = new Message().int(1, spec.elemType ?? 1);
  if (spec.shape) {
    const shape = new Message();
    for (const d of spec.shape) {
      const dim = new Message();
      if (typeof d === 'number') dim.int(1, d);
      else if (typeof d === 'string') dim.bytes(2, d);
      shape.bytes(1, dim);
    }
    tensor.bytes(2, shape);
  }
  return info.bytes(2, new Message().bytes(1, tensor));
}

export interface InitializerSpec {
  name: string;
  dims: number[];
  dataType?: number;
  raw?: Buffer | Big;
  /** Stored outside the model file at this location (relative to the model's folder). */
  externalLocation?: string;
}

export function initializer(spec: InitializerSpec): Message {
  const t = new Message();
  for (const d of spec.dims) t.int(1, d);
  t.int(2, spec.dataType ?? 1);
  t.bytes(8, spec.name);
  if (spec.raw) t.bytes(9, spec.raw);
  if (spec.externalLocation) {
    t.bytes(13, new Message().bytes(1, 'location').bytes(2, spec.externalLocation));
    t.bytes(13, new Message().bytes(1, 'offset').bytes(2, '0'));
    t.int(14, 1);
  }
  return t;
}

export interface ModelSpec {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  graphName?: string;
  opsets?: { domain: string; version: number }[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers?: InitializerSpec[];
  /** Nodes as [opType, inputs, outputs]. */
  nodes?: [string, string[], string[]][];
  /** Puts graph inputs before initializers, as some exporters do. */
  inputsFirst?: boolean;
  /** metadata_props (ModelProto field 14). */
  metadata?: Record<string, string>;
}

export function modelMessage(spec: ModelSpec): Message {
  const graph = new Message();
  const addInputs = () => spec.inputs.forEach((i) => graph.bytes(11, valueInfo(i)));
  if (spec.inputsFirst) addInputs();
  for (const [op, ins, outs] of spec.nodes ?? []) {
    const node = new Message();
    ins.forEach((i) => node.bytes(1, i));
    outs.forEach((o) => node.bytes(2, o));
    node.bytes(4, op);
    graph.bytes(1, node);
  }
  graph.bytes(2, spec.graphName ?? 'main_graph');
  for (const init of spec.initializers ?? []) graph.bytes(5, initializer(init));
  if (!spec.inputsFirst) addInputs();
  spec.outputs.forEach((o) => graph.bytes(12, valueInfo(o)));
  const model = new Message()
    .int(1, spec.irVersion ?? 8)
    .bytes(2, spec.producerName ?? 'pytorch')
    .bytes(3, spec.producerVersion ?? '2.3.0')
    .bytes(7, graph);
  for (const o of spec.opsets ?? [{ domain: '', version: 17 }]) model.bytes(8, new Message().bytes(1, o.domain).int(2, o.version));
  for (const [key, value] of Object.entries(spec.metadata ?? {})) model.bytes(14, new Message().bytes(1, key).bytes(2, value));
  return model;
}

/** A small segmentation-like model ONNX Runtime can load: mask = image + bias. */
export function segmentationModel(extra: Partial<ModelSpec> = {}): ModelSpec {
  const bias = Buffer.alloc(4);
  bias.writeFloatLE(0.5);
  return {
    inputs: [{ name: 'image', elemType: 1, shape: [1, 3, 'height', 'width'] }],
    outputs: [{ name: 'mask', elemType: 1, shape: [1, 3, 'height', 'width'] }],
    initializers: [{ name: 'bias', dims: [1], raw: bias }],
    nodes: [['Add', ['image', 'bias'], ['mask']]],
    ...extra,
  };
}

export async function writeModel(file: string, spec: ModelSpec): Promise<void> {
  await writeMessage(file, modelMessage(spec));
}
