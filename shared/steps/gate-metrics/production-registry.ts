import type { StepContext } from '../../core/context';
import { StepError } from '../../core/errors';
import type { RegistryInputValues } from '../../registry';
import type { ModelRegistry } from '../../registry/types';
import type { StoredMetrics } from './production-metrics';

/** Per-class values stored next to the headline metric: `<metric>/class-<id>` (e.g. `dice/class-2`). */
const CLASS_KEY = /^(.+)\/class-(.+)$/;

export interface RegistryProduction {
  stored: StoredMetrics;
  /** `sagemaker registry cellseg v3`, for the report and the summary. */
  source: string;
}

/**
 * The production model's stored metrics, read from the model registry instead of a file: the version the
 * registry marks as production (stage `production`; in MLflow the alias), as registered by submit-training.
 * The registry module is loaded on demand so a gate without a registry does not load cloud SDKs.
 */
export async function registryProductionMetrics(
  model: string,
  metric: string,
  inputs: RegistryInputValues,
  ctx: StepContext,
  open?: () => ModelRegistry,
): Promise<RegistryProduction> {
  const registry = open ? open() : (require('../../registry') as typeof import('../../registry')).openRegistryFromInputs(inputs, ctx);
  const version = await registry.production(model);
  const where = `the ${registry.kind} registry${registry.productionMarker ? ` (${registry.productionMarker})` : ''}`;
  if (!version) {
    throw new StepError(`Model "${model}" has no production version in ${where}, so there are no production metrics to gate against.`, {
      hint:
        registry.kind === 'mlflow'
          ? `Check ${ctx.inputLabel('productionModel')} and ${ctx.inputLabel('registryAlias')}; give a version the alias with promote-release (registry: mlflow) or in the MLflow UI. For a first model, leave ${ctx.inputLabel('productionModel')} unset.`
          : `Check ${ctx.inputLabel('productionModel')} and the registry inputs; promote a version with promote-release. For a first model, leave ${ctx.inputLabel('productionModel')} unset.`,
    });
  }
  const names = Object.keys(version.metrics);
  const key = names.find((k) => k === metric) ?? names.find((k) => k.toLowerCase() === metric.toLowerCase());
  const label = `${model} v${version.version}`;
  if (key === undefined) {
    throw new StepError(
      `The production version ${label} in ${where} has no "${metric}" metric (it has ${
        names.length
          ? names
              .filter((n) => !CLASS_KEY.test(n))
              .slice(0, 20)
              .join(', ')
          : 'no metrics'
      }).`,
      {
        hint: `Gate on a metric the training recorded (${ctx.inputLabel('metric')}), or compare with ${ctx.inputLabel('productionPredictions')} / ${ctx.inputLabel('productionMetrics')}.`,
      },
    );
  }
  const value = version.metrics[key];
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new StepError(`The production version ${label} in ${where} stores ${key} = ${value}; gate metrics are numbers in [0, 1].`, {
      hint: 'Record metrics on a 0–1 scale when registering.',
    });
  const perClass = names
    .map((n) => [n, CLASS_KEY.exec(n)] as const)
    .filter(([, m]) => m && m[1] === key)
    .map(([n, m]) => ({ id: /^\d+$/.test(m![2]) ? Number(m![2]) : m![2], name: m![2], value: version.metrics[n] }));
  ctx.log.info(`Production: ${label} from ${where}, ${key} ${value}${version.trainingJob ? ` (trained by ${version.trainingJob})` : ''}.`);
  return { stored: { value, perClass: perClass.length ? perClass : null }, source: `${registry.kind} registry ${label}` };
}
