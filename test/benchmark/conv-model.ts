/**
 * A small convolutional ONNX model written in TypeScript (protobuf by hand), for tests and benches that must not
 * depend on Python: Conv(3→16) + 4 × [Conv(16→16)] with Relu, fixed 1×3×64×64 input "input", about 40 MFLOP.
 */
import { seededRandom } from '../../shared/core/random';
import { cat, int, len } from '../support/protobuf';

function tensor(name: string, dims: number[], seed: number): Buffer {
  const n = dims.reduce((a, b) => a * b, 1);
  const rnd = seededRandom(seed);
  const data = new Float32Array(n).map(() => (rnd() - 0.5) * 0.2);
  return cat(...dims.map((d) => int(1, d)), int(2, 1), len(8, name), len(9, Buffer.from(data.buffer)));
}
const ints = (name: string, values: number[]) => cat(len(1, name), ...values.map((v) => int(8, v)), int(20, 7));
const node = (op: string, inputs: string[], outputs: string[], attrs: Buffer[] = []) =>
  cat(...inputs.map((i) => len(1, i)), ...outputs.map((o) => len(2, o)), len(4, op), ...attrs.map((a) => len(5, a)));
const valueInfo = (name: string, dims: number[]) =>
  cat(len(1, name), len(2, len(1, cat(int(1, 1), len(2, cat(...dims.map((d) => len(1, int(1, d)))))))));

export function convNetOnnx(): Buffer {
  const nodes: Buffer[] = [];
  const inits: Buffer[] = [];
  let x = 'input';
  for (let i = 0; i < 5; i++) {
    const cin = i === 0 ? 3 : 16;
    inits.push(tensor(`w${i}`, [16, cin, 3, 3], i + 1), tensor(`b${i}`, [16], i + 100));
    nodes.push(node('Conv', [x, `w${i}`, `b${i}`], [`c${i}`], [ints('pads', [1, 1, 1, 1]), ints('kernel_shape', [3, 3])]));
    nodes.push(node('Relu', [`c${i}`], [`r${i}`]));
    x = `r${i}`;
  }
  const graph = cat(
    ...nodes.map((n) => len(1, n)),
    len(2, 'bench'),
    ...inits.map((t) => len(5, t)),
    len(11, valueInfo('input', [1, 3, 64, 64])),
    len(12, valueInfo(x, [1, 16, 64, 64])),
  );
  return cat(int(1, 8), len(2, 'mlship-bench'), len(7, graph), len(8, int(2, 17)));
}
