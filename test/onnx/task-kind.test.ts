import { modelTask } from '../../shared/onnx/task-kind';
import type { OnnxValueInfo } from '../../shared/onnx/model-info';

const v = (name: string, shape: (number | string | null)[]): OnnxValueInfo => ({ name, kind: 'tensor', dtype: 'float32', shape });

describe('modelTask', () => {
  const image = v('image', ['batch', 3, 'height', 'width']);
  it("reads the task a model names, mlship's or ultralytics'", () => {
    expect(
      modelTask({ metadata: { 'mlship.task': 'detection' }, inputs: [image], outputs: [v('y', ['batch', 2, 'height', 'width'])] }),
    ).toEqual({ task: 'detection', source: 'metadata mlship.task' });
    expect(modelTask({ metadata: { task: 'segment' }, inputs: [image], outputs: [v('output0', [1, 116, 8400])] })?.task).toBe('detection');
  });

  it('tells boxes from per-pixel maps, including the expressions torch.export writes for output sizes', () => {
    expect(modelTask({ metadata: {}, inputs: [image], outputs: [v('dets', ['n', 5])] })?.task).toBe('detection');
    expect(modelTask({ metadata: {}, inputs: [image], outputs: [v('out', [1, 100, 4]), v('scores', [1, 100])] })?.task).toBe('detection');
    expect(modelTask({ metadata: {}, inputs: [image], outputs: [v('logits', ['batch', 2, '4*((height//4))', '4*((width//4))'])] })).toEqual(
      {
        task: 'segmentation',
        source: "output logits [batch, 2, 4*((height//4)), 4*((width//4))] (per-pixel, the input's height and width)",
      },
    );
    expect(modelTask({ metadata: {}, inputs: [v('x', [1, 3, 256, 256])], outputs: [v('mask', [1, 4, 256, 256])] })?.task).toBe(
      'segmentation',
    );
    // A classifier, or a map of another size than the input: not guessed.
    expect(modelTask({ metadata: {}, inputs: [image], outputs: [v('probs', ['batch', 10])] })).toBeUndefined();
    expect(modelTask({ metadata: {}, inputs: [image], outputs: [v('probs', ['batch', 4])] })).toBeUndefined();
    expect(modelTask({ metadata: {}, inputs: [v('x', [1, 3, 'h', 'w'])], outputs: [v('y', [1, 2, 'height', 'w'])] })).toBeUndefined();
  });
});
