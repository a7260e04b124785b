import type { StepContext } from '../../core/context';
import { StepError } from '../../core/errors';
import type { ReleaseRef } from '../../ota/channel';
import type { CloudConnections } from '../../cloud/connections';
import type { RegistryInputValues } from '../../registry';
import type { ApprovalEvidence, ModelRegistry, ModelStage } from '../../registry/types';

/**
 * Opens the model registry the step's cloud and registry inputs describe. The registry module is loaded on
 * demand, so promotions that do not touch a registry do not load cloud SDKs.
 */
export function openRegistry(inputs: RegistryInputValues, ctx: StepContext, connections: CloudConnections): ModelRegistry {
  const { openRegistryFromInputs } = require('../../registry') as typeof import('../../registry');
  return openRegistryFromInputs(inputs, ctx, {}, connections);
}

/**
 * Moves the registry entries with the channel: the promoted version to `stage` (production archives the
 * previous production version, by the registry's own rule), approved when there is approval evidence.
 */
export async function recordPromotion(
  registry: ModelRegistry,
  ref: NonNullable<ReleaseRef['registry']>,
  stage: ModelStage,
  evidence: ApprovalEvidence | null,
): Promise<void> {
  const existing = await registry.get(ref.name, ref.version);
  if (!existing) {
    throw new StepError(`Model ${ref.name} version ${ref.version} is not in the ${registry.kind} registry.`, {
      hint: 'Give model-name and model-version of a registered model (register-model / submit-training register it).',
    });
  }
  await registry.setStage(ref.name, ref.version, stage, {
    approval: evidence?.approvers.length ? 'approved' : existing.approval,
    ...(evidence ? { evidence } : {}),
  });
}

/** On rollback: the restored version goes back to its stage and the withdrawn one is archived. */
export async function recordRollback(
  registry: ModelRegistry,
  restored: ReleaseRef,
  withdrawn: ReleaseRef,
  stage: ModelStage,
  evidence: ApprovalEvidence | null,
  ctx: StepContext,
): Promise<void> {
  if (withdrawn.registry)
    await registry.setStage(withdrawn.registry.name, withdrawn.registry.version, 'archived', evidence ? { evidence } : {});
  else
    ctx.log.warning(
      `The withdrawn release ${withdrawn.name} ${withdrawn.version} names no registry entry; the registry keeps it where it is.`,
    );
  if (restored.registry) await registry.setStage(restored.registry.name, restored.registry.version, stage, evidence ? { evidence } : {});
  else
    ctx.log.warning(`The restored release ${restored.name} ${restored.version} names no registry entry; move it in the registry by hand.`);
}
