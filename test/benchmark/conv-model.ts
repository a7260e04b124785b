/**
 * A small convolutional ONNX model built in TypeScript with onnx-proto (the encoder the demo's segmenter uses), for
 * tests and benches that must not depend on Python: Conv(3→16) + 4 × [Conv(16→16)] with Relu, fixed 1×3×64×64 input
 * "input", about 40 MFLOP. Weights are seeded, so every call returns the same bytes.
 */
import { onnx } from 'onnx-proto';
import { seededRandom } from '../../shared/core/random';

function tensor(name: string, dims: number[], seed: number): onnx.TensorProto {
  const rnd = seededRandom(seed);
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1)).map(() => (rnd() - 0.5) * 0.2);
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) });
}

const ints = (name: string, values: number[]) =>
  onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });

const valueInfo = (name: string, dims: number[]) =>
  onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } },
  });

export function convNetOnnx(): Buffer {
  const node: onnx.NodeProto[] = [];
  const initializer: onnx.TensorProto[] = [];
  let x = 'input';
  for (let i = 0; i < 5; i++) {
    const cin = i === 0 ? 3 : 16;
    initializer.push(tensor(`w${i}`, [16, cin, 3, 3], i + 1), tensor(`b${i}`, [16], i + 100));
    node.push(
      onnx.NodeProto.create({
        opType: 'Conv',
        input: [x, `w${i}`, `b${i}`],
        output: [`c${i}`],
        attribute: [ints('pads', [1, 1, 1, 1]), ints('kernel_shape', [3, 3])],
      }),
      onnx.NodeProto.create({ opType: 'Relu', input: [`c${i}`], output: [`r${i}`] }),
    );
    x = `r${i}`;
  }
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'mlship-bench',
    opsetImport: [{ domain: '', version: 17 }],
    graph: onnx.GraphProto.create({
      name: 'bench',
      node,
      initializer,
      input: [valueInfo('input', [1, 3, 64, 64])],
      output: [valueInfo(x, [1, 16, 64, 64])],
    }),
  });
  const bytes = onnx.ModelProto.encode(model).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
