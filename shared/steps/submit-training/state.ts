import type { CloudSettings } from '../../cloud/connections';
import type { StepContext } from '../../core/context';
import type { JobSpec } from '../../training/types';

/** Keys of what the main entry saves for the post entry. */
export const STATE = { job: 'jobName', backend: 'backend', connection: 'connection', ended: 'mainEnded' } as const;

/** Connection details kept for the post entry, which runs in a fresh process; no secrets. */
export interface SavedConnection {
  region?: string;
  azure?: CloudSettings['azure'];
  jobsDir?: string;
  modelOutput?: string;
}

/** The Azure half of the cloud settings: workspace from the job spec, identity from the inputs. */
export function azureSettings(
  spec: JobSpec,
  values: { azureClientId?: string; azureTenantId?: string; azureServiceConnection?: string },
): CloudSettings['azure'] {
  const az = spec.azureml ?? {};
  return {
    subscriptionId: az.subscriptionId,
    resourceGroup: az.resourceGroup,
    workspace: az.workspace,
    armEndpoint: az.armEndpoint,
    clientId: values.azureClientId,
    tenantId: values.azureTenantId,
    serviceConnection: values.azureServiceConnection,
  };
}

/** Tags tying cloud jobs to the run that started them. */
export function runTags(ctx: StepContext): Record<string, string> {
  const tags: Record<string, string | undefined> = {
    'mlship:repository': ctx.run.repository,
    'mlship:run-id': ctx.run.id,
    'mlship:commit': ctx.run.commit,
    'mlship:workflow': ctx.run.workflow,
  };
  // SageMaker tag values allow letters, digits, spaces and _.:/=+-@ only, at most 256 characters.
  const clean = (v: string) => v.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '-').slice(0, 256);
  return Object.fromEntries(
    Object.entries(tags)
      .filter(([, v]) => v)
      .map(([k, v]) => [k, clean(v!)]),
  );
}
