import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { StepError } from '../../shared/core/errors';
import { parseOnnxModel, readOnnxModelInfo } from '../../shared/onnx/model-info';
import { PositionedReader } from '../../shared/onnx/positioned-reader';
import { tempDir } from '../package/helpers';
import { Message, modelMessage, segmentationModel, writeModel } from '../package/onnx-fixture';

describe('ONNX header reader', () => {
  const dir = tempDir();
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('reads the signature onnxruntime reports, without onnxruntime', async () => {
    const file = path.join(dir, 'seg.onnx');
    await writeModel(file, segmentationModel());
    const info = readOnnxModelInfo(file);
    expect(info).toEqual({
      irVersion: 8,
      producerName: 'pytorch',
      producerVersion: '2.3.0',
      domain: '',
      modelVersion: 0,
      graphName: 'main_graph',
      opsets: [{ domain: 'ai.onnx', version: 17 }],
      inputs: [{ name: 'image', kind: 'tensor', dtype: 'float32', shape: [1, 3, 'height', 'width'] }],
      outputs: [{ name: 'mask', kind: 'tensor', dtype: 'float32', shape: [1, 3, 'height', 'width'] }],
      metadata: {},
      nodeCount: 1,
      opTypes: { Add: 1 },
      initializerCount: 1,
      parameterCount: 1,
      externalData: [],
    });

    const session = await ort.InferenceSession.create(file);
    try {
      expect(info.inputs.map((i) => i.name)).toEqual([...session.inputNames]);
      expect(info.outputs.map((o) => o.name)).toEqual([...session.outputNames]);
      const meta = session.inputMetadata[0];
      expect(meta.isTensor && { type: meta.type, shape: [...meta.shape] }).toEqual({
        type: info.inputs[0].dtype,
        shape: info.inputs[0].shape,
      });
    } finally {
      await session.release();
    }
  });

  test('leaves out inputs that are initializers (IR 3 exporters list weights as inputs)', async () => {
    const file = path.join(dir, 'ir3.onnx');
    const spec = segmentationModel({ irVersion: 3, opsets: [{ domain: '', version: 9 }] });
    spec.inputs.push({ name: 'bias', elemType: 1, shape: [1] });
    await writeModel(file, spec);
    const info = readOnnxModelInfo(file);
    expect(info.irVersion).toBe(3);
    expect(info.inputs.map((i) => i.name)).toEqual(['image']);
    const session = await ort.InferenceSession.create(file);
    expect([...session.inputNames]).toEqual(['image']);
    await session.release();
  });

  test('handles field order, unknown fields, several opsets and non-tensor values', () => {
    const file = path.join(dir, 'mixed.onnx');
    const model = modelMessage({
      inputsFirst: true,
      opsets: [
        { domain: '', version: 18 },
        { domain: 'com.microsoft', version: 1 },
      ],
      inputs: [
        { name: 'ids', elemType: 7, shape: ['batch', null] },
        { name: 'half', elemType: 10 },
        { name: 'items', kind: 'sequence' },
      ],
      outputs: [{ name: 'scores', elemType: 16, shape: [-1, 80] }],
      initializers: [{ name: 'w', dims: [2, 2], raw: Buffer.alloc(16) }],
    });
    model.fixed32(99, 7).int(100, 5);
    fs.writeFileSync(file, model.toBuffer());
    const info = readOnnxModelInfo(file);
    expect(info.opsets).toEqual([
      { domain: 'ai.onnx', version: 18 },
      { domain: 'com.microsoft', version: 1 },
    ]);
    expect(info.inputs).toEqual([
      { name: 'ids', kind: 'tensor', dtype: 'int64', shape: ['batch', null] },
      { name: 'half', kind: 'tensor', dtype: 'float16', shape: null },
      { name: 'items', kind: 'sequence', dtype: null, shape: null },
    ]);
    expect(info.outputs).toEqual([{ name: 'scores', kind: 'tensor', dtype: 'bfloat16', shape: [-1, 80] }]);
  });

  test('lists external data locations once each, sorted', async () => {
    const file = path.join(dir, 'ext.onnx');
    await writeModel(
      file,
      segmentationModel({
        initializers: [
          { name: 'b', dims: [4], externalLocation: 'weights-2.bin' },
          { name: 'a', dims: [4], externalLocation: 'weights-1.bin' },
          { name: 'c', dims: [4], externalLocation: 'weights-1.bin' },
          { name: 'bias', dims: [1], raw: Buffer.alloc(4) },
        ],
      }),
    );
    expect(readOnnxModelInfo(file).externalData).toEqual(['weights-1.bin', 'weights-2.bin']);
  });

  test('skips a 1 GiB initializer without reading it', () => {
    // The initializer's payload is a hole in a sparse file: a reader that loaded it would read 1 GiB.
    const size = 1 << 30;
    const head = new Message().int(1, 1).int(2, 1).bytes(8, 'weights');
    const tensorLength = head.length + 1 + varintLength(size) + size;
    const spec = segmentationModel();
    const graphTail = new Message();
    spec.inputs.forEach((i) =>
      graphTail.bytes(11, new Message().bytes(1, i.name).bytes(2, new Message().bytes(1, new Message().int(1, 1)))),
    );
    spec.outputs.forEach((o) => graphTail.bytes(12, new Message().bytes(1, o.name)));
    const graphLength = 1 + varintLength(tensorLength) + tensorLength + graphTail.length;
    const prefix = Buffer.concat([
      new Message().int(1, 8).toBuffer(),
      Buffer.from([(7 << 3) | 2]),
      encodeVarint(graphLength),
      Buffer.from([(5 << 3) | 2]),
      encodeVarint(tensorLength),
      head.toBuffer(),
      Buffer.from([(9 << 3) | 2]),
      encodeVarint(size),
    ]);
    const suffix = Buffer.concat([graphTail.toBuffer(), new Message().bytes(8, new Message().bytes(1, '').int(2, 17)).toBuffer()]);
    const file = path.join(dir, 'huge.onnx');
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, prefix, 0, prefix.length, 0);
    fs.writeSync(fd, suffix, 0, suffix.length, prefix.length + size);
    fs.closeSync(fd);

    const handle = fs.openSync(file, 'r');
    try {
      const reader = new PositionedReader(handle, prefix.length + size + suffix.length);
      const info = parseOnnxModel(reader);
      expect(info.inputs.map((i) => i.name)).toEqual(['image']);
      expect(info.outputs.map((o) => o.name)).toEqual(['mask']);
      expect(info.opsets).toEqual([{ domain: 'ai.onnx', version: 17 }]);
      expect(reader.bytesRead).toBeLessThan(256 * 1024);
    } finally {
      fs.closeSync(handle);
    }
  });

  test.each([
    ['random bytes', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')],
    ['a JSON file', Buffer.from('{"model": "cellseg"}')],
    ['a truncated model', modelMessage(segmentationModel()).toBuffer().subarray(0, 60)],
    ['a model without a graph', new Message().int(1, 8).bytes(2, 'x').toBuffer()],
  ])('refuses %s with a clear message', (_what, bytes) => {
    const file = path.join(dir, 'bad.onnx');
    fs.writeFileSync(file, bytes);
    const error = thrown(() => readOnnxModelInfo(file, 'model/bad.onnx'));
    expect(error).toBeInstanceOf(StepError);
    expect((error as StepError).message).toMatch(/^model\/bad\.onnx is not a readable ONNX model: .+/);
    expect((error as StepError).hint).toContain('.onnx file itself');
  });

  test('names a missing or empty file', () => {
    expect(() => readOnnxModelInfo(path.join(dir, 'missing.onnx'), 'missing.onnx')).toThrow('Cannot open the ONNX model missing.onnx');
    fs.writeFileSync(path.join(dir, 'empty.onnx'), '');
    expect(() => readOnnxModelInfo(path.join(dir, 'empty.onnx'), 'empty.onnx')).toThrow('The ONNX model empty.onnx is empty.');
  });
});

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function encodeVarint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function varintLength(n: number): number {
  return encodeVarint(n).length;
}
