import { exportFailure } from '../../../shared/steps/export-onnx/report';
import type { ExportResult } from '../../../shared/steps/export-onnx/verify';
import { compareTensors } from '../../../shared/onnx/parity';
import type { PlainTensor } from '../../../shared/onnx/tensors';

/** The failure an unfaithful export ends with, from one ExportResult (plain data, no Python or ONNX Runtime). */

const f32 = (dims: number[], values: number[]): PlainTensor => ({ type: 'float32', dims, data: Float32Array.from(values) });
const tol = { atol: 1e-4, rtol: 1e-3 };

function result(boxes: PlainTensor, reference: PlainTensor, labels = f32([2], [1, 2])): ExportResult {
  const outputs = [
    compareTensors('boxes', reference, boxes, tol, { rowOrder: true }),
    compareTensors('scores', f32([2], [0.4, 0.4]), f32([2], [0.4, 0.4]), tol, { rowOrder: true }),
    compareTensors('labels', f32([2], [1, 2]), labels, tol, { rowOrder: true }),
  ];
  return {
    output: 'dist/detector.onnx',
    source: 'models.detector:build',
    modelFile: '/tmp/work/model.onnx',
    refDir: '/tmp/work/reference',
    info: {} as ExportResult['info'],
    python: {} as ExportResult['python'],
    provenance: {},
    variants: [
      {
        name: 'fp32',
        file: '/tmp/work/model.onnx',
        tol,
        cases: [{ name: 'random-0', inputShapes: {}, ok: outputs.every((o) => o.ok), outputs }],
      },
    ],
    problems: [],
  };
}

describe('exportFailure', () => {
  const reference = f32([2, 4], [0, 0.175, 14.7, 15.9, 0, 0.118, 24.6, 10.8]);

  it('names tied rows that came out in another order, and asks for a value order instead of a looser tolerance', () => {
    const error = exportFailure(result(f32([2, 4], [0, 0.118, 24.6, 10.8, 0, 0.175, 14.7, 15.9]), reference))!;
    expect(error.message).toBe(
      'The ONNX export of models.detector:build is not faithful:\n' +
        '- fp32 parity fails (atol 0.0001, rtol 0.001) in 1 of 1 cases: random-0: output boxes differs in 6 of 8 values ' +
        '(max abs 9.90e+0, max rel 6.73e-1; at [0, 2] PyTorch 14.7000, ONNX Runtime 24.6000)' +
        ' — the same rows in another order (equal sort keys, e.g. detections with tied scores)\n' +
        '(The rejected model is at /tmp/work/model.onnx.)',
    );
    expect(error.hint).toMatch(/^Rows that agree in another order mean the model sorts by a key with ties/);
    expect(error.hint).toContain('do not loosen atol/rtol');
  });

  it('keeps the general hint when the values themselves differ', () => {
    const error = exportFailure(result(f32([2, 4], [0, 0.175, 14.7, 15.9, 0, 0.118, 24.6, 99]), reference))!;
    expect(error.message).not.toContain('another order');
    expect(error.hint).toMatch(/^A parity failure means the ONNX graph computes something else than PyTorch/);
  });

  it('keeps the general hint when one output really differs, even if another is only reordered', () => {
    // Labels [2, 1] for [1, 2] are a permutation; the boxes are not: the tie-break would not fix this export.
    const boxes = f32([2, 4], [0, 0.175, 14.7, 15.9, 0, 0.118, 24.6, 99]);
    const error = exportFailure(result(boxes, reference, f32([2], [2, 1])))!;
    expect(error.hint).toMatch(/^A parity failure means the ONNX graph computes something else than PyTorch/);
  });

  it('asks to fix the inputs when only a check other than parity failed (no tie advice without a parity failure)', () => {
    const problem = 'axis 2 (height) of input image was declared dynamic but the exported graph fixes it to 256';
    const error = exportFailure({ ...result(reference, reference), problems: [problem] })!;
    expect(error.message).toContain(`- ${problem}\n`);
    expect(error.hint).toBe('Fix the export inputs named above.');
  });

  it('is undefined for a faithful export', () => {
    expect(exportFailure(result(reference, reference))).toBeUndefined();
  });
});
