import { createPublicKey } from 'node:crypto';
import { secretFromEnv, type StepContext } from '../../core/context';
import { InputError, StepError } from '../../core/errors';
import { ciPlatformOf } from '../../core/host';
import { mergeInputs, omitInputs } from '../../core/merge-inputs';
import { defineStep, type InputValues } from '../../core/step';
import type { ChannelDocument, ReleaseRef } from '../../ota/channel';
import { privateKeyInput } from '../../package/key-inputs';
import { type ChannelPublisher, readChannel } from '../../ota/publish';
import { promoteChannel, rollbackChannel } from '../../ota/release';
import { DEFAULT_EXPIRY_HOURS, storeFromInputs, storeInputs } from '../../ota/step-inputs';
import { cloudInputs, registryInputs } from '../../cloud/inputs';
import { connectionsFromInputs, type CloudConnections } from '../../cloud/connections';
import { releaseKey } from '../../ota/store';
import { evaluateHealth, hasHealthPolicy, type HealthPolicy } from '../../fleet/health-gate';
import { loadFleetStatus, reportInputs } from '../../fleet/step-inputs';
import type { OriginInfo } from '../../ota/release';
import type { ApprovalEvidence, ModelRegistry, ModelStage } from '../../registry/types';
import { azureDevOpsApprovals, enforceApprovalPolicy, githubApprovals } from './approvals';
import { openRegistry, recordPromotion, recordRollback } from './registry-link';

const promoteInputs = mergeInputs(
  {
    mode: {
      type: 'enum',
      options: ['promote', 'rollback', 'health-check'],
      default: 'promote',
      description:
        'promote: copy the release of "from" onto "to" (advancing a phase only when the health gate passes); rollback: point "to" back at its previous release; health-check: only judge the current phase (for a schedule), rolling back on a breach with auto-rollback.',
    },
    from: { type: 'string', default: 'staging', description: 'Channel whose current release is promoted.' },
    to: { type: 'string', default: 'production', description: 'Channel that receives the release (or is rolled back).' },
    version: {
      type: 'string',
      description: 'Refuse unless "from" carries this version (guards against promoting something staged since).',
    },
    phases: {
      type: 'string',
      description: 'Phase plan as percentages, e.g. "10,50,100". Each run without phase moves the same release one phase further.',
    },
    phase: { type: 'number', integer: true, min: 1, description: 'Phase of the plan to set (1-based) instead of advancing one phase.' },
    rolloutPercent: { type: 'number', min: 0, max: 100, description: 'Explicit share of devices, instead of phases; default 100.' },
    deviceGroups: { type: 'list', description: 'Device groups that take the release whatever the percentage, one per line.' },
  },
  storeInputs,
  {
    expiresInHours: {
      type: 'number',
      min: 1,
      max: 87600,
      default: DEFAULT_EXPIRY_HOURS,
      description: 'Devices refuse the channel document this many hours after it was signed.',
    },
    signingKey: {
      type: 'secret',
      required: true,
      description: 'Ed25519 private key (PEM) that signs channel documents (the key devices trust).',
    },
    requireApproval: {
      type: 'boolean',
      default: false,
      description:
        'Refuse to promote without approval evidence (GitHub environment reviewers, Azure DevOps approvals, or approved-by on the CLI).',
    },
    minApprovals: {
      type: 'number',
      integer: true,
      min: 1,
      max: 20,
      default: 1,
      description: 'Distinct approvers needed when require-approval is set.',
    },
    noSelfApproval: { type: 'boolean', default: false, description: 'An approval by the person who started the run does not count.' },
    approvalSource: {
      type: 'enum',
      options: ['auto', 'github', 'azure-devops', 'cli', 'none'],
      default: 'auto',
      description: 'Where approvals are read: auto picks the platform the step runs on (cli when run locally).',
    },
    githubToken: { type: 'secret', description: 'Token that can read the run (actions: read), to read environment approvals on GitHub.' },
    githubApiUrl: { type: 'string', description: 'GitHub REST API root; default GITHUB_API_URL, else https://api.github.com.' },
    environment: { type: 'string', description: 'Count only approvals of this GitHub environment.' },
    azureDevopsToken: { type: 'secret', description: 'Azure DevOps token that can read pipeline approvals; default SYSTEM_ACCESSTOKEN.' },
    azureDevopsUrl: { type: 'string', description: 'Azure DevOps collection URL; default SYSTEM_COLLECTIONURI.' },
    azureDevopsProject: { type: 'string', description: 'Azure DevOps project; default SYSTEM_TEAMPROJECT.' },
    approvedBy: { type: 'list', description: 'CLI only: approvers (login, or login:comment) recorded as evidence, one per line.' },
    reason: { type: 'string', description: 'Why (recorded with a rollback).' },
  },
  reportInputs,
  {
    minDevicesReporting: {
      type: 'number',
      integer: true,
      min: 0,
      description: 'Health gate: devices that run the new release and report, at least, before the next phase.',
    },
    minBakeMinutes: { type: 'number', min: 0, description: 'Health gate: minutes since the current phase started, at least.' },
    maxFailureRate: {
      type: 'number',
      min: 0,
      max: 1,
      description:
        'Health gate: share of devices that tried the new release and failed its health check, reverted or crashed, at most (0.05 = 5%).',
    },
    maxLatencyRatio: {
      type: 'number',
      min: 1,
      description: 'Health gate: p50 latency new/previous on the same devices, worst GPU model × driver group, at most (1.2 = 20% slower).',
    },
    maxOutputDrift: {
      type: 'number',
      min: 0,
      description: 'Health gate: PSI of each output statistic (new vs previous, same devices), at most (0.2: a shifted distribution).',
    },
    autoRollback: {
      type: 'boolean',
      default: false,
      description: 'On a health-gate breach, publish a signed rollback of "to" (as mlship rollback does), recorded with the evidence.',
    },
  },
  cloudInputs,
  // Promotions update no registry unless asked: `registry` adds "none" and defaults to it.
  {
    registry: {
      type: 'enum',
      options: ['none', 'local', 'sagemaker', 'azureml', 'mlflow'],
      default: 'none',
      description:
        'Model registry to update with the promotion: none, a local folder, SageMaker Model Registry, Azure ML models or MLflow (moves the registry-alias to the promoted version).',
    },
  },
  omitInputs(registryInputs, 'registry'),
  {
    modelName: { type: 'string', description: 'Registry model name; default the package name.' },
    modelVersion: { type: 'string', description: 'Registry model version of this release (needed to update a registry on promote).' },
    registryStage: {
      type: 'enum',
      options: ['staging', 'production'],
      description: 'Registry stage for the promoted version; default production when "to" is production, else staging.',
    },
  },
);

type Inputs = InputValues<typeof promoteInputs>;

export const promoteReleaseStep = defineStep({
  name: 'promote-release',
  title: 'Promote OTA release',
  description:
    'Moves the release on one OTA channel to another (e.g. staging → production), in phases, with approval evidence; or rolls a channel back to its previous release.',
  azure: { id: '6cb7b667-bc57-4c3b-a38e-b36457e18ecf', major: 1, minor: 0, patch: 0, category: 'Deploy' },
  branding: { icon: 'trending-up', color: 'green' },
  inputs: promoteInputs,
  outputs: {
    channel: { description: 'The channel that was changed.' },
    version: { description: 'Version the channel now carries.' },
    sequence: { description: 'Sequence number of the channel document.' },
    rolloutPercent: { description: 'Share of devices that take it.' },
    phase: { description: 'Phase of the plan (1-based), when promoting in phases.' },
    previousVersion: { description: 'Rollback target (empty after a rollback).' },
    approvers: { description: 'Approval evidence recorded, as JSON.' },
    releaseRecord: { description: 'Key of the release record in the store.' },
    healthy: { description: 'Health gate verdict: true, false, or empty when no gate ran.' },
    rolledBack: { description: 'true when this run rolled the channel back after a health-gate breach.' },
  },
  async run(inputs, ctx) {
    const signingKey = privateKeyInput(inputs.signingKey, ctx.inputLabel('signingKey'), ctx.workspace);
    // One set of connections for the store and the registry: one credential resolution, one OIDC exchange.
    const connections = connectionsFromInputs(inputs, ctx);
    const store = storeFromInputs(inputs, ctx, connections);
    const publisher: ChannelPublisher = {
      store,
      signingKey,
      publicKey: createPublicKey(signingKey),
      expiresInHours: inputs.expiresInHours,
    };
    const policy = {
      requireApproval: inputs.requireApproval,
      minApprovals: inputs.minApprovals,
      noSelfApproval: inputs.noSelfApproval,
      actor: ctx.run.actor,
    };
    const collected = await ctx.group('Approval evidence', () => collectApprovals(inputs, ctx));
    const approvals = collected && enforceApprovalPolicy(collected, policy);
    if (approvals)
      ctx.log.info(
        approvals.approvers.length
          ? `Approved by ${approvals.approvers.map((a) => a.login).join(', ')} (${approvals.source}).`
          : `No approvals found (${approvals.source}).`,
      );
    const registry = inputs.registry === 'none' ? undefined : openRegistry({ ...inputs, registry: inputs.registry }, ctx, connections);
    const origin = { actor: ctx.run.actor, runId: ctx.run.id, runUrl: ctx.run.url, repository: ctx.run.repository, commit: ctx.run.commit };
    const stage: ModelStage = (inputs.registryStage as ModelStage | undefined) ?? (inputs.to === 'production' ? 'production' : 'staging');

    if (inputs.mode === 'rollback') {
      const { restored, withdrawn, update } = await rollbackChannel({
        publisher,
        channel: inputs.to,
        reason: inputs.reason,
        approvals,
        origin,
      });
      if (!withdrawn) throw new Error('rollback without a withdrawn release');
      ctx.log.info(
        `Channel "${inputs.to}" rolled back from ${withdrawn.name} ${withdrawn.version} to ${restored.version} for all devices (sequence ${update.doc.sequence}).`,
      );
      if (registry) await recordRollback(registry, restored, withdrawn, stage, approvals, ctx);
      summarize(ctx, `Rolled back ${inputs.to} to ${restored.name} ${restored.version}`, update.doc, approvals, [
        ['withdrawn', `${withdrawn.name} ${withdrawn.version}`],
        ['reason', inputs.reason ?? ''],
      ]);
      return outputsOf(update.doc, approvals);
    }

    const gate = await healthGate(inputs, ctx, publisher, origin, connections);
    if (inputs.mode === 'health-check') {
      const doc = gate?.doc ?? (await readChannel(store, inputs.to, publisher.publicKey))?.doc;
      if (!doc)
        throw new StepError(`Channel "${inputs.to}" does not exist in ${store.location}; there is nothing to check.`, {
          hint: 'Check the channel name and the store.',
        });
      return { ...outputsOf(doc, approvals), healthy: gate ? true : '', rolledBack: false };
    }
    const registryRef = registry ? await registryEntry(inputs, registry, publisher, ctx) : undefined;
    const { release, update } = await promoteChannel({
      publisher,
      from: inputs.from,
      to: inputs.to,
      expectVersion: inputs.version,
      rolloutPercent: inputs.rolloutPercent,
      phases: parsePhases(inputs.phases, ctx.inputLabel('phases')),
      phase: inputs.phase,
      deviceGroups: inputs.deviceGroups,
      approvals,
      origin,
      registry: registryRef,
      observedSequence: gate?.doc.sequence,
    });
    const doc = update.doc;
    ctx.log.info(
      update.changed
        ? `Channel "${doc.channel}" now carries ${release.name} ${release.version} for ${doc.rollout.percent}% of devices${doc.rollout.phase ? ` (phase ${doc.rollout.phase} of ${doc.rollout.phases!.length})` : ''} (sequence ${doc.sequence}${update.conflicts ? `, after ${update.conflicts} concurrent update(s)` : ''}).`
        : `Channel "${doc.channel}" already carries ${release.name} ${release.version} at ${doc.rollout.percent}% (sequence ${doc.sequence}); left unchanged.`,
    );
    if (registry && registryRef) await recordPromotion(registry, registryRef, stage, approvals);
    summarize(ctx, `Promoted ${release.name} ${release.version} from ${inputs.from} to ${doc.channel}`, doc, approvals, [
      ['from', `${inputs.from}`],
    ]);
    return { ...outputsOf(doc, approvals), healthy: gate ? true : '', rolledBack: false };
  },
});

/**
 * The health gate before a phase moves on (and for mode health-check): when "to" already carries the release
 * being promoted, its devices' reports must pass the policy. Undefined when no gate applies (no policy, or the
 * release is not on "to" yet: nothing to judge before its first phase). On a breach with auto-rollback, the
 * channel is rolled back (only if it still carries the judged release), and the step fails either way.
 */
async function healthGate(
  inputs: Inputs,
  ctx: StepContext,
  publisher: ChannelPublisher,
  origin: OriginInfo,
  connections: CloudConnections,
): Promise<{ doc: ChannelDocument } | undefined> {
  const policy: HealthPolicy = {
    minDevicesReporting: inputs.minDevicesReporting,
    minBakeMinutes: inputs.minBakeMinutes,
    maxFailureRate: inputs.maxFailureRate,
    maxLatencyRatio: inputs.maxLatencyRatio,
    maxOutputDrift: inputs.maxOutputDrift,
  };
  if (!hasHealthPolicy(policy)) {
    if (inputs.mode === 'health-check')
      throw new InputError('Mode health-check needs a health policy.', {
        hint: 'Set at least one of min-devices-reporting, min-bake-minutes, max-failure-rate, max-latency-ratio, max-output-drift.',
      });
    return undefined;
  }
  const target = await readChannel(publisher.store, inputs.to, publisher.publicKey);
  if (!target) return undefined;
  if (inputs.mode !== 'health-check') {
    const source = await readChannel(publisher.store, inputs.from, publisher.publicKey);
    if (source?.doc.current.sha256 !== target.doc.current.sha256) {
      ctx.log.info(
        `"${inputs.to}" does not carry ${source?.doc.current.version ?? 'the release'} yet: no phase to judge before its first one.`,
      );
      return undefined;
    }
  }
  const doc = target.doc;
  const status = await ctx.group(`Health of ${doc.current.name} ${doc.current.version} on ${doc.channel} (${doc.rollout.percent}%)`, () =>
    loadFleetStatus(inputs, ctx, doc.channel, doc, 'for the health gate', connections),
  );
  const verdict = evaluateHealth(status, policy, new Date());
  ctx.summary.heading(`Health gate: ${verdict.passed ? 'passed ✅' : verdict.breached ? 'breached ❌' : 'not yet ⏳'}`, 3).table(
    ['rule', 'limit', 'observed', 'verdict'],
    verdict.checks.map((c) => [c.rule, c.limit, c.observed, c.passed ? 'pass' : c.kind === 'breach' ? 'FAIL' : 'wait']),
  );
  if (verdict.passed) {
    ctx.log.info(`Health gate passed for ${doc.current.version} at ${doc.rollout.percent}% (sequence ${doc.sequence}).`);
    return { doc };
  }
  const failing = verdict.checks.filter((c) => !c.passed);
  const what = failing.map((c) => `${c.rule} ${c.observed} (limit ${c.limit})`).join('; ');
  const outputs = { ...outputsOf(doc, null), healthy: false, rolledBack: false };
  if (verdict.breached && inputs.autoRollback) {
    const evidence = failing.map(({ rule, limit, observed }) => ({ rule, limit, observed }));
    const { update, withdrawn } = await rollbackChannel({
      publisher,
      channel: doc.channel,
      onlyIf: doc.current.sha256,
      reason: `health gate breached: ${what}`.slice(0, 1000),
      evidence,
      origin,
    });
    if (withdrawn) {
      ctx.log.warning(
        `Rolled "${doc.channel}" back from ${withdrawn.version} to ${update.doc.current.version} for all devices (sequence ${update.doc.sequence}).`,
      );
      ctx.summary.paragraph(
        `Rolled back to ${update.doc.current.name} ${update.doc.current.version} (sequence ${update.doc.sequence}); the evidence is in the channel's origin and release record.`,
      );
      Object.assign(outputs, outputsOf(update.doc, null), { rolledBack: true });
    } else ctx.log.warning(`"${doc.channel}" no longer carries ${doc.current.version}: someone else changed it; no rollback.`);
  }
  throw new StepError(
    `Health gate ${verdict.breached ? 'breached' : 'not met yet'} for ${doc.current.name} ${doc.current.version} on "${doc.channel}" at ${doc.rollout.percent}%: ${what}.`,
    {
      hint: verdict.breached
        ? inputs.autoRollback
          ? 'The channel was rolled back; see the job summary for the evidence.'
          : 'Roll back (mlship rollback, or set auto-rollback), or fix the release.'
        : 'Run again later, when more devices have installed and reported the release.',
      outputs,
    },
  );
}

function outputsOf(doc: ChannelDocument, approvals: ApprovalEvidence | null) {
  return {
    channel: doc.channel,
    version: doc.current.version,
    sequence: doc.sequence,
    rolloutPercent: doc.rollout.percent,
    phase: doc.rollout.phase ?? '',
    previousVersion: doc.previous?.version ?? '',
    approvers: approvals?.approvers ?? [],
    releaseRecord: releaseKey(doc.channel, doc.sequence),
  };
}

export function parsePhases(text: string | undefined, label: string): number[] {
  if (!text?.trim()) return [];
  const phases = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  const bad = phases.findIndex((p, i) => !Number.isFinite(p) || p <= 0 || p > 100 || (i > 0 && p <= phases[i - 1]));
  if (bad !== -1) {
    throw new InputError(`Input "${label}" has value "${text}": phase ${bad + 1} is not a percentage above the one before it.`, {
      hint: 'Give increasing percentages from 1 to 100, e.g. "10,50,100".',
    });
  }
  return phases;
}

async function collectApprovals(inputs: Inputs, ctx: StepContext): Promise<ApprovalEvidence | null> {
  const source = inputs.approvalSource === 'auto' ? autoSource(inputs, ctx) : inputs.approvalSource;
  const runUrl = ctx.run.url;
  switch (source) {
    case 'none':
      return inputs.requireApproval ? { approvers: [], source: 'none' } : null;
    case 'cli': {
      const ci = ciOf(ctx);
      if (ci) {
        throw new InputError(
          `Input "${ctx.inputLabel('approvedBy')}" (approval source cli) is for runs on a workstation, but this run is inside ${ci === 'github' ? 'GitHub Actions (GITHUB_ACTIONS=true)' : 'Azure Pipelines (TF_BUILD=True)'}; in a pipeline, approvals come from the platform.`,
          {
            hint: 'Use approval-source auto, with environment reviewers (GitHub) or an Approvals check (Azure DevOps).',
          },
        );
      }
      const at = new Date().toISOString();
      const approvers = inputs.approvedBy.map((entry) => {
        const colon = entry.indexOf(':');
        return colon === -1 ? { login: entry, at } : { login: entry.slice(0, colon).trim(), at, comment: entry.slice(colon + 1).trim() };
      });
      return { approvers, source: 'cli', ...(runUrl ? { runUrl } : {}) };
    }
    case 'github': {
      const token = inputs.githubToken ?? secretFromEnv(ctx, 'GITHUB_TOKEN');
      if (!token) {
        if (inputs.requireApproval)
          throw new InputError(`Approvals are required, but no "${ctx.inputLabel('githubToken')}" was given to read them.`, {
            hint: 'Pass github-token: ${{ github.token }} with permissions actions: read.',
          });
        ctx.log.warning('No GitHub token given: approval evidence is not recorded.');
        return null;
      }
      return githubApprovals({
        apiUrl: inputs.githubApiUrl ?? ctx.env.GITHUB_API_URL ?? 'https://api.github.com',
        token,
        repository: ctx.run.repository ?? '',
        runId: ctx.run.id,
        environment: inputs.environment,
        runUrl,
      });
    }
    case 'azure-devops': {
      const token = inputs.azureDevopsToken ?? secretFromEnv(ctx, 'SYSTEM_ACCESSTOKEN');
      const collectionUri = inputs.azureDevopsUrl ?? ctx.env.SYSTEM_COLLECTIONURI;
      const project = inputs.azureDevopsProject ?? ctx.env.SYSTEM_TEAMPROJECT;
      if (!token || !collectionUri || !project) {
        const missing = [!token && 'a token (SYSTEM_ACCESSTOKEN)', !collectionUri && 'the collection URL', !project && 'the project']
          .filter(Boolean)
          .join(', ');
        if (inputs.requireApproval)
          throw new InputError(`Approvals are required, but ${missing} is missing to read them.`, {
            hint: 'Map System.AccessToken into the step: env: SYSTEM_ACCESSTOKEN: $(System.AccessToken).',
          });
        ctx.log.warning(`Approval evidence is not recorded: ${missing} is missing.`);
        return null;
      }
      return azureDevOpsApprovals({ collectionUri, project, token, buildId: ctx.run.id, runUrl });
    }
    default:
      throw new InputError(`Unknown approval source "${source}".`);
  }
}

/** The CI system of this run: the host's platform, or the CI environment a CLI run sits in. */
function ciOf(ctx: StepContext): 'github' | 'azure' | undefined {
  return ctx.platform === 'github' || ctx.platform === 'azure' ? ctx.platform : ciPlatformOf(ctx.env);
}

function autoSource(inputs: Inputs, ctx: StepContext): string {
  const ci = ciOf(ctx);
  if (ci === 'github') return 'github';
  if (ci === 'azure') return 'azure-devops';
  if (inputs.approvedBy.length) return 'cli';
  return 'none';
}

async function registryEntry(
  inputs: Inputs,
  registry: ModelRegistry,
  publisher: ChannelPublisher,
  ctx: StepContext,
): Promise<ReleaseRef['registry']> {
  if (!inputs.modelVersion) {
    throw new InputError(`Input "${ctx.inputLabel('modelVersion')}" is required to update the ${registry.kind} registry.`, {
      hint: 'Give the registry version of the model in this release, or set registry to none.',
    });
  }
  let name = inputs.modelName;
  if (!name) {
    const source = await readChannel(publisher.store, inputs.from, publisher.publicKey);
    if (!source)
      throw new StepError(`Channel "${inputs.from}" does not exist in ${publisher.store.location}, so there is nothing to promote.`, {
        hint: `Stage a package on "${inputs.from}" first with stage-ota.`,
      });
    name = source.doc.current.name;
  }
  return { kind: registry.kind, name, version: inputs.modelVersion };
}

function summarize(
  ctx: StepContext,
  title: string,
  doc: ChannelDocument,
  approvals: ApprovalEvidence | null,
  extra: [string, string][],
): void {
  ctx.summary
    .heading(title)
    .table(
      ['field', 'value'],
      [
        ['channel', doc.channel],
        ['sequence', doc.sequence],
        ['version', `${doc.current.name} ${doc.current.version}`],
        ['sha256', doc.current.sha256],
        [
          'rollout',
          `${doc.rollout.percent}%${doc.rollout.phase ? ` (phase ${doc.rollout.phase} of ${doc.rollout.phases!.join(' → ')})` : ''}${doc.rollout.groups.length ? ` + groups ${doc.rollout.groups.join(', ')}` : ''}`,
        ],
        ['previous', doc.previous ? `${doc.previous.name} ${doc.previous.version}` : 'none'],
        ...extra,
        ['expires', doc.expiresAt],
      ],
    );
  if (approvals?.approvers.length) {
    ctx.summary.heading('Approvals', 3).table(
      ['approver', 'at', 'comment'],
      approvals.approvers.map((a) => [a.login, a.at, a.comment ?? '']),
    );
  }
}
