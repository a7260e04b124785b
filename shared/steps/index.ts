import type { AnyStep } from '../core/step';
import { benchmarkModelStep } from './benchmark-model';
import { exportOnnxStep } from './export-onnx';
import { gateMetricsStep } from './gate-metrics';
import { submitTrainingStep } from './submit-training';
import { validateDataStep } from './validate-data';

/** Every shipped step, in pipeline order. Generators, bundles and the CLI all read this list. */
export const steps: readonly AnyStep[] = [validateDataStep, submitTrainingStep, gateMetricsStep, exportOnnxStep, benchmarkModelStep];
