import type { InputSpecs, InputValues } from '../core/step';
import type { DetectionReadout, SegmentationReadout } from './accuracy';

/**
 * The inputs that say how a model is scored on a labelled test set: where the labels are and which outputs hold
 * the prediction. benchmark-model (accuracy on the device) and optimize-model (accuracy of each variant) read the
 * model the same way, through benchmark/accuracy.ts, so they declare these once; the test images themselves stay
 * each step's own (optional for the benchmark, required for the accuracy gate).
 */
export const accuracyInputs = {
  testMasks: { type: 'path', description: 'Segmentation: folder of label masks, named like the test images.' },
  testAnnotations: {
    type: 'path',
    description: 'Detection: COCO ground truth (JSON) whose images[].file_name are in test-images; scored as mAP.',
  },
  accuracyOutput: { type: 'string', description: 'Segmentation: the output holding the per-pixel prediction (default: the first output).' },
  segmentationMode: {
    type: 'enum',
    options: ['argmax', 'threshold'],
    default: 'argmax',
    description: 'Segmentation: argmax over classes, or threshold on a 1- or 2-channel output.',
  },
  threshold: {
    type: 'number',
    default: 0.5,
    description:
      'Segmentation: threshold for segmentation-mode threshold and single-channel outputs (0 for logits, 0.5 for probabilities).',
  },
  classes: { type: 'number', integer: true, min: 2, description: 'Segmentation: number of classes, when the output already holds labels.' },
  boxesOutput: { type: 'string', default: 'boxes', description: 'Detection: output with the boxes (N×4, in input tensor pixels).' },
  scoresOutput: { type: 'string', default: 'scores', description: 'Detection: output with the scores (N).' },
  labelsOutput: { type: 'string', default: 'labels', description: 'Detection: output with the class labels (N).' },
  boxFormat: { type: 'enum', options: ['xyxy', 'xywh', 'cxcywh'], default: 'xyxy', description: 'Detection: box layout of boxes-output.' },
  labelMapping: {
    type: 'enum',
    options: ['index', 'id'],
    default: 'index',
    description: "Detection: labels index the ground truth's categories sorted by id (index), or are category ids (id).",
  },
} as const satisfies InputSpecs;

/** The readouts benchmark/accuracy.ts takes, from the step's values; the first output is the default mask output. */
export function readoutsFromInputs(
  values: InputValues<typeof accuracyInputs>,
  firstOutput: string,
): { segmentation: SegmentationReadout; detection: DetectionReadout } {
  return {
    segmentation: {
      outputName: values.accuracyOutput ?? firstOutput,
      mode: values.segmentationMode,
      threshold: values.threshold,
      classes: values.classes,
    },
    detection: {
      boxesOutput: values.boxesOutput,
      scoresOutput: values.scoresOutput,
      labelsOutput: values.labelsOutput,
      boxFormat: values.boxFormat,
      labelMapping: values.labelMapping,
    },
  };
}
