import type { AnyStep } from '../core/step';
import { benchmarkModelStep } from './benchmark-model';
import { buildDevicePackageStep } from './build-device-package';
import { exportOnnxStep } from './export-onnx';
import { fleetStatusStep } from './fleet-status';
import { gateMetricsStep } from './gate-metrics';
import { optimizeModelStep } from './optimize-model';
import { promoteReleaseStep } from './promote-release';
import { stageOtaStep } from './stage-ota';
import { submitTrainingStep } from './submit-training';
import { validateDataStep } from './validate-data';
import { verifyPackageStep } from './verify-package';

/** Every shipped step, in pipeline order. Generators, bundles and the CLI all read this list. */
export const steps: readonly AnyStep[] = [
  validateDataStep,
  submitTrainingStep,
  gateMetricsStep,
  exportOnnxStep,
  optimizeModelStep,
  benchmarkModelStep,
  buildDevicePackageStep,
  verifyPackageStep,
  stageOtaStep,
  promoteReleaseStep,
  fleetStatusStep,
];
