import type { AnyStep } from '../core/step';
import { submitTrainingStep } from './submit-training';
import { validateDataStep } from './validate-data';

/** Every shipped step, in pipeline order. Generators, bundles and the CLI all read this list. */
export const steps: readonly AnyStep[] = [validateDataStep, submitTrainingStep];
