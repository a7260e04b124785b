import type { KeyObject } from 'node:crypto';
import { StepError } from '../core/errors';
import { verifyPackage } from '../package';
import type { ApprovalEvidence } from '../registry/types';
import { type ChannelDocument, type ChannelOrigin, type ReleaseRef, type RolloutPlan, rolloutSalt } from './channel';
import { type ChannelDraft, type ChannelPublisher, type ChannelUpdate, readChannel, updateChannel } from './publish';
import { blobKey, type UploadProgress } from './store';

export type OriginInfo = Omit<ChannelOrigin, 'event' | 'fromChannel' | 'fromSequence' | 'rolledBack'>;

export interface StageOptions {
  publisher: ChannelPublisher;
  archivePath: string;
  channel: string;
  /** Key the package itself must be signed with (devices verify it with the same key). */
  packagePublicKey: KeyObject;
  /** Default: 100, or 0 when device groups are given (only those groups). */
  rolloutPercent?: number;
  deviceGroups?: string[];
  origin?: OriginInfo;
  registry?: ReleaseRef['registry'];
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface StageResult {
  release: ReleaseRef;
  bytesUploaded: number;
  update: ChannelUpdate;
}

/**
 * Verifies a package, uploads it under its sha256 (nothing when already there), and only then points the
 * channel at it. Killed at any moment, it leaves either the old channel or a channel whose blob is complete.
 */
export async function stagePackage(options: StageOptions): Promise<StageResult> {
  const { publisher, channel } = options;
  const verified = await verifyPackage(options.archivePath, { publicKey: options.packagePublicKey });
  const key = blobKey(verified.sha256);
  const { bytesUploaded } = await publisher.store.putBlob(key, options.archivePath, {
    sha256: verified.sha256,
    size: verified.size,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  const release: ReleaseRef = {
    name: verified.manifest.name,
    version: verified.manifest.version,
    sha256: verified.sha256,
    size: verified.size,
    key,
    url: publisher.store.urlOf(key),
    ...(options.registry ? { registry: options.registry } : {}),
  };
  const groups = options.deviceGroups ?? [];
  const percent = options.rolloutPercent ?? (groups.length ? 0 : 100);
  const update = await updateChannel(publisher, channel, (current) => {
    const same = current?.current.sha256 === release.sha256;
    const rollout: RolloutPlan = { percent, groups, salt: rolloutSalt(channel, release) };
    if (same && samePlan(current.rollout, rollout) && !nearExpiry(current, publisher)) return undefined;
    return {
      current: release,
      previous: same ? current.previous : (current?.current ?? null),
      rollout,
      approvals: same ? current.approvals : null,
      origin: { event: 'stage', ...options.origin },
    };
  });
  return { release, bytesUploaded, update };
}

export interface PromoteOptions {
  publisher: ChannelPublisher;
  from: string;
  to: string;
  /** Refuse unless the source channel carries this version (guards against promoting what was staged since). */
  expectVersion?: string;
  /** Explicit percentage; wins over phases. */
  rolloutPercent?: number;
  /** Phase plan, e.g. [10, 50, 100]. Without `phase`, each run moves the same release one phase further. */
  phases?: number[];
  /** 1-based phase to set. */
  phase?: number;
  deviceGroups?: string[];
  approvals: ApprovalEvidence | null;
  origin?: OriginInfo;
  registry?: ReleaseRef['registry'];
  /**
   * Sequence of the target channel this run looked at (and judged, with a health gate) before advancing. When
   * the channel moved on since and carries this release, another run advanced it already: this one changes
   * nothing, so two concurrent "advance one phase" runs make one step, not two. Read here when not given.
   */
  observedSequence?: number;
}

export interface PromoteResult {
  release: ReleaseRef;
  update: ChannelUpdate;
}

export async function promoteChannel(options: PromoteOptions): Promise<PromoteResult> {
  const { publisher, from, to } = options;
  if (from === to)
    throw new StepError(`Promotion from "${from}" to "${to}": the channels are the same.`, {
      hint: 'Promote between two channels, e.g. from staging to production.',
    });
  const source = await readChannel(publisher.store, from, publisher.publicKey);
  if (!source) {
    throw new StepError(`Channel "${from}" does not exist in ${publisher.store.location}, so there is nothing to promote.`, {
      hint: `Stage a package on "${from}" first with stage-ota.`,
    });
  }
  const staged = source.doc.current;
  if (options.expectVersion !== undefined && staged.version !== options.expectVersion) {
    throw new StepError(
      `Channel "${from}" carries ${staged.name} ${staged.version} (sequence ${source.doc.sequence}), not version ${options.expectVersion}.`,
      {
        hint: `Promote what is staged, or stage ${options.expectVersion} on "${from}" first.`,
      },
    );
  }
  await requireBlob(publisher, staged, from);
  const release: ReleaseRef = options.registry ? { ...staged, registry: options.registry } : staged;
  const groups = options.deviceGroups ?? [];
  const advancing = options.rolloutPercent === undefined && options.phase === undefined && (options.phases ?? []).length > 0;
  const observed =
    options.observedSequence ??
    (advancing ? ((await readChannel(publisher.store, to, publisher.publicKey))?.doc.sequence ?? 0) : undefined);
  const update = await updateChannel(publisher, to, (current) => {
    const same = current?.current.sha256 === release.sha256;
    if (advancing && same && observed !== undefined && current.sequence !== observed) return undefined;
    const { percent, phase } = choosePercent(options, same ? current : undefined);
    const samePhase = same && current.rollout.percent === percent && (current.rollout.phase ?? 0) === (phase ?? 0);
    const startedAt = samePhase ? (current.rollout.startedAt ?? current.issuedAt) : (publisher.now?.() ?? new Date()).toISOString();
    const rollout: RolloutPlan = {
      percent,
      groups,
      salt: rolloutSalt(to, release),
      ...(phase ? { phases: options.phases, phase } : {}),
      startedAt,
    };
    if (same && samePlan(current.rollout, rollout) && !nearExpiry(current, publisher)) return undefined;
    const draft: ChannelDraft = {
      current: same && !options.registry ? { ...release, registry: current.current.registry } : release,
      previous: same ? current.previous : (current?.current ?? null),
      rollout,
      approvals: options.approvals?.approvers.length ? options.approvals : same ? current.approvals : options.approvals,
      origin: { event: 'promote', ...options.origin, fromChannel: from, fromSequence: source.doc.sequence },
    };
    return draft;
  });
  return { release: update.doc.current, update };
}

/** The percentage of this run: explicit, the given phase, the next phase of the same release, or 100. */
function choosePercent(options: PromoteOptions, sameRelease: ChannelDocument | undefined): { percent: number; phase?: number } {
  if (options.rolloutPercent !== undefined) return { percent: options.rolloutPercent };
  const phases = options.phases ?? [];
  if (!phases.length) return { percent: 100 };
  if (options.phase !== undefined) {
    if (options.phase < 1 || options.phase > phases.length) {
      throw new StepError(`Input "phase" is ${options.phase}, but the phase plan ${phases.join(',')} has phases 1 to ${phases.length}.`, {
        hint: 'Give a phase within the plan, or leave it out to advance one phase.',
      });
    }
    return { percent: phases[options.phase - 1], phase: options.phase };
  }
  if (!sameRelease) return { percent: phases[0], phase: 1 };
  const next = phases.findIndex((p) => p > sameRelease.rollout.percent);
  const phase = next === -1 ? phases.length : next + 1;
  return { percent: phases[phase - 1], phase };
}

export interface RollbackOptions {
  publisher: ChannelPublisher;
  channel: string;
  reason?: string;
  approvals?: ApprovalEvidence | null;
  origin?: OriginInfo;
  /** Withdraw only this release (sha256): when the channel already moved away from it, nothing changes. */
  onlyIf?: string;
  evidence?: ChannelOrigin['evidence'];
}

/** Points the channel back at its previous release, for every device, with a new sequence number. */
export async function rollbackChannel(
  options: RollbackOptions,
): Promise<{ restored: ReleaseRef; withdrawn: ReleaseRef | undefined; update: ChannelUpdate }> {
  const { publisher, channel } = options;
  let withdrawn: ReleaseRef | undefined;
  const existing = await readChannel(publisher.store, channel, publisher.publicKey);
  if (existing?.doc.previous) await requireBlob(publisher, existing.doc.previous, channel);
  const update = await updateChannel(publisher, channel, (current) => {
    if (!current)
      throw new StepError(`Channel "${channel}" does not exist in ${publisher.store.location}; there is nothing to roll back.`, {
        hint: 'Check the channel name and the store.',
      });
    if (options.onlyIf !== undefined && current.current.sha256 !== options.onlyIf) return undefined;
    if (!current.previous) {
      throw new StepError(
        `Channel "${channel}" (sequence ${current.sequence}, ${current.current.name} ${current.current.version}) has no previous version to roll back to.`,
        {
          hint:
            current.origin.event === 'rollback'
              ? 'It was rolled back already; promote the wanted version again instead.'
              : current.sequence > 1
                ? `Every change since the channel started (or since its last rollback) kept ${current.current.name} ${current.current.version}, changing only its rollout, so there is no earlier release to return to; promote the wanted version instead.`
                : 'Only one release was ever published on it; promote the wanted version instead.',
        },
      );
    }
    withdrawn = current.current;
    return {
      current: current.previous,
      previous: null,
      rollout: { percent: 100, groups: [], salt: rolloutSalt(channel, current.previous) },
      approvals: options.approvals ?? null,
      origin: {
        event: 'rollback',
        ...options.origin,
        ...(options.reason ? { reason: options.reason } : {}),
        rolledBack: current.current,
        ...(options.evidence ? { evidence: options.evidence } : {}),
      },
    };
  });
  return { restored: update.doc.current, withdrawn, update };
}

async function requireBlob(publisher: ChannelPublisher, release: ReleaseRef, channel: string): Promise<void> {
  const head = await publisher.store.headBlob(release.key);
  if (!head || head.size !== release.size) {
    throw new StepError(
      `Channel "${channel}" refers to ${release.name} ${release.version} at ${release.key}, but the store ${publisher.store.location} holds ${head ? `${head.size} bytes there, not ${release.size}` : 'no such blob'}.`,
      {
        hint: 'The package was deleted or the store was edited by hand; stage the package again with stage-ota.',
      },
    );
  }
}

function samePlan(a: RolloutPlan, b: RolloutPlan): boolean {
  return a.percent === b.percent && a.salt === b.salt && a.groups.join('\n') === b.groups.join('\n') && (a.phase ?? 0) === (b.phase ?? 0);
}

/** Re-publishing an unchanged channel is skipped unless less than half of its lifetime is left. */
function nearExpiry(doc: ChannelDocument, publisher: ChannelPublisher): boolean {
  const now = (publisher.now?.() ?? new Date()).getTime();
  return Date.parse(doc.expiresAt) - now < (publisher.expiresInHours * 3_600_000) / 2;
}
