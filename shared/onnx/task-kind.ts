import type { OnnxModelInfo, OnnxValueInfo } from './model-info';

/**
 * What a model does, as the gate and the device package name it: `segmentation` (semantic label masks) or
 * `detection` (COCO boxes or instance masks). Read from the model's own metadata where an exporter stamped it,
 * else from the shape of its outputs; undefined when neither tells.
 */
export type TaskKind = 'segmentation' | 'detection';
export const TASK_KINDS: readonly TaskKind[] = ['segmentation', 'detection'];

export interface ModelTask {
  task: TaskKind;
  /** Where the answer came from, for messages: `metadata mlship.task`, `outputs boxes, scores, labels`, … */
  source: string;
}

/** ultralytics writes its task name into metadata_props["task"]; its instance segmentation is COCO detection. */
const ULTRALYTICS: Record<string, TaskKind> = { detect: 'detection', segment: 'detection', obb: 'detection', pose: 'detection' };
const BOX_OUTPUT = /^(boxes|bboxes|dets|detections|pred_boxes)$/i;

export function modelTask(info: Pick<OnnxModelInfo, 'metadata' | 'inputs' | 'outputs'>): ModelTask | undefined {
  const stamped = info.metadata['mlship.task'];
  if (stamped === 'segmentation' || stamped === 'detection') return { task: stamped, source: 'metadata mlship.task' };
  const ultralytics = ULTRALYTICS[info.metadata.task ?? ''];
  if (ultralytics) return { task: ultralytics, source: `metadata task "${info.metadata.task}" (ultralytics)` };
  // By name, or a [batch, N, 4] tensor; a rank-2 [batch, 4] is as likely a 4-class classifier, so it needs the name.
  const boxes = info.outputs.find((o) => BOX_OUTPUT.test(o.name) || (o.shape?.length === 3 && o.shape[2] === 4));
  if (boxes) return { task: 'detection', source: `output ${describe(boxes)}` };
  const input = info.inputs[0];
  const dense = info.outputs.find((o) => o.shape?.length === 4 && input?.shape?.length === 4 && sameSpatial(o.shape, input.shape));
  if (dense) return { task: 'segmentation', source: `output ${describe(dense)} (per-pixel, the input's height and width)` };
  return undefined;
}

function sameSpatial(out: readonly unknown[], inp: readonly unknown[]): boolean {
  // NCHW on both sides: height and width are the last two axes. Sizes or symbolic names agree, or the output's is an
  // expression of the input's (torch.export writes `4*((height//4))` for a UNet's padded output).
  const related = (o: unknown, i: unknown) =>
    o !== null &&
    (o === i ||
      (typeof o === 'string' &&
        typeof i === 'string' &&
        new RegExp(`(^|[^A-Za-z0-9_])${i.replace(/[^A-Za-z0-9_]/g, '\\$&')}([^A-Za-z0-9_]|$)`).test(o)));
  return related(out[2], inp[2]) && related(out[3], inp[3]);
}

function describe(v: OnnxValueInfo): string {
  return `${v.name} [${v.shape ? v.shape.map((d) => d ?? '?').join(', ') : '?'}]`;
}
