import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatSignature, parseOnnxModelInfo, readOnnxModelInfo } from '../../shared/onnx/model-info';
import { len as bytes, cat as msg, int as num, varint } from '../support/protobuf';

const dim = (d: number | string) => bytes(1, typeof d === 'number' ? num(1, d) : bytes(2, d));
const valueInfo = (name: string, elemType: number, shape?: (number | string)[]) =>
  msg(bytes(1, name), bytes(2, bytes(1, msg(num(1, elemType), ...(shape ? [bytes(2, msg(...shape.map(dim)))] : [])))));

function model(): Buffer {
  const weight = msg(num(1, 2), num(1, 3), num(2, 1), bytes(8, 'W'), bytes(9, Buffer.alloc(24)));
  const packedDims = msg(bytes(1, msg(varint(4), varint(5))), num(2, 1), bytes(8, 'B'), bytes(9, Buffer.alloc(80)));
  const conv = msg(bytes(1, 'x'), bytes(1, 'W'), bytes(2, 'y'), bytes(3, 'conv0'), bytes(4, 'Conv'));
  const nms = msg(bytes(1, 'y'), bytes(2, 'sel'), bytes(4, 'NonMaxSuppression'));
  const graph = msg(
    bytes(1, conv),
    bytes(1, nms),
    bytes(2, 'g'),
    bytes(5, weight),
    bytes(5, packedDims),
    bytes(11, valueInfo('x', 1, ['N', 3, 8, 8])),
    bytes(11, valueInfo('W', 1, [2, 3])),
    bytes(12, valueInfo('sel', 7)),
    bytes(12, valueInfo('y', 10, [1, 2, 'h', 'w'])),
  );
  return msg(
    num(1, 3),
    bytes(2, 'hand'),
    bytes(3, '0.1'),
    num(5, 42),
    bytes(7, graph),
    bytes(8, msg(bytes(1, ''), num(2, 11))),
    bytes(8, msg(bytes(1, 'com.microsoft'), num(2, 1))),
    bytes(14, msg(bytes(1, 'mlship.version'), bytes(2, '1.0.0'))),
    bytes(14, msg(bytes(1, 'mlship.preprocessing'), bytes(2, '{"version":1}'))),
  );
}

describe('ONNX model reader', () => {
  it('reads IR version, producer, opsets, signature, metadata and operator counts', () => {
    const info = parseOnnxModelInfo(model());
    expect(info).toEqual({
      irVersion: 3,
      producerName: 'hand',
      producerVersion: '0.1',
      domain: '',
      modelVersion: 42,
      graphName: 'g',
      opsets: [
        { domain: 'ai.onnx', version: 11 },
        { domain: 'com.microsoft', version: 1 },
      ],
      // IR 3 lists initializers among the inputs; W is a weight, not an input.
      inputs: [{ name: 'x', kind: 'tensor', dtype: 'float32', shape: ['N', 3, 8, 8] }],
      outputs: [
        { name: 'sel', kind: 'tensor', dtype: 'int64', shape: null },
        { name: 'y', kind: 'tensor', dtype: 'float16', shape: [1, 2, 'h', 'w'] },
      ],
      metadata: { 'mlship.version': '1.0.0', 'mlship.preprocessing': '{"version":1}' },
      nodeCount: 2,
      opTypes: { Conv: 1, NonMaxSuppression: 1 },
      initializerCount: 2,
      parameterCount: 26,
      externalData: [],
    });
    expect(formatSignature(info.outputs[1])).toBe('y: float16[1,2,h,w]');
    expect(formatSignature(info.outputs[0])).toBe('sel: int64[?]');
  });

  it('reads a file by offsets, also when weights are far larger than its read block', () => {
    const big = msg(
      num(1, 8),
      bytes(
        7,
        msg(
          bytes(5, msg(num(1, 300000), num(2, 1), bytes(8, 'huge'), bytes(9, Buffer.alloc(1200000)))),
          bytes(11, valueInfo('in', 2, [1, 64, 64, 3])),
          bytes(12, valueInfo('out', 1, [1, 10])),
        ),
      ),
      bytes(8, msg(num(2, 17))),
      bytes(14, msg(bytes(1, 'k'), bytes(2, 'v'))),
    );
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-mi-')), 'big.onnx');
    fs.writeFileSync(file, big);
    const info = readOnnxModelInfo(file);
    expect(info.inputs).toEqual([{ name: 'in', kind: 'tensor', dtype: 'uint8', shape: [1, 64, 64, 3] }]);
    expect(info.parameterCount).toBe(300000);
    expect(info.opsets).toEqual([{ domain: 'ai.onnx', version: 17 }]);
    expect(info.metadata).toEqual({ k: 'v' });
  });

  it('names the file and the problem for a truncated or foreign file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-mi-'));
    const truncated = path.join(dir, 'cut.onnx');
    fs.writeFileSync(truncated, model().subarray(0, 60));
    expect(() => readOnnxModelInfo(truncated)).toThrow(
      /^.*cut\.onnx is not a readable ONNX model: field 7 of length \d+ at byte \d+ runs past byte 60\.$/,
    );
    const text = path.join(dir, 'readme.onnx');
    fs.writeFileSync(text, 'hello');
    expect(() => readOnnxModelInfo(text)).toThrow('readme.onnx is not a readable ONNX model');
    expect(() => readOnnxModelInfo(path.join(dir, 'missing.onnx'))).toThrow(
      `Cannot open the ONNX model ${path.join(dir, 'missing.onnx')}: ENOENT.`,
    );
  });
});
