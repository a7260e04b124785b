import type { KeyObject } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isStepError } from '../core/errors';
import { extractVerifiedPackage } from '../package';
import { loadPublicKey } from '../package/signing';
import { type ChannelDocument, inRollout, parseChannel, type ReleaseRef } from '../ota/channel';
import { LockTimeout, withFileLock } from '../ota/file-lock';
import { writeFileAtomic } from '../core/atomic-write';
import { IntegrityError } from '../ota/files';
import { deferReason, type InstallWindow, runCommand } from './conditions';
import { downloadVerified, fetchSmall, packageUrl, redact } from './fetch';
import { type SlotName, Slots } from './slots';

export interface DeviceAgentOptions extends InstallWindow {
  /** URL of the channel document: file://…/channels/production.json or https://…/channels/production.json?<sas>. */
  channelUrl: string;
  deviceId: string;
  /** Ed25519 public key that channel documents and packages must be signed with. */
  publicKey: string | KeyObject;
  /** Folder the agent owns: slots, the `current` pointer, state.json. */
  root: string;
  /** Channel the device follows; default the name in the URL. A document for another channel is refused. */
  channel?: string;
  deviceGroups?: string[];
  /** Shell command run in the new slot after switching; non-zero exit (or timeout) reverts to the last known good. */
  healthCommand?: string;
  healthTimeoutSeconds?: number;
  now?: () => Date;
  log?: (line: string) => void;
}

export type AgentStatus = 'installed' | 'up-to-date' | 'not-in-rollout' | 'deferred' | 'reverted' | 'refused' | 'error';

export interface SlotContent {
  name: string;
  version: string;
  sha256: string;
  installedAt: string;
  sequence: number;
}

/** <root>/state.json: what the device runs and why; also the report the CLI prints. */
export interface AgentState {
  schema: 'mlship.device-state/v1';
  deviceId: string;
  channel: string;
  /** Highest channel sequence accepted; an older document is a replay and is refused. */
  highestSequence: number;
  activeSlot: SlotName | null;
  slots: Partial<Record<SlotName, SlotContent>>;
  /** The release that last passed its health check: where a failed update returns. */
  lastKnownGood: (SlotContent & { slot: SlotName }) | null;
  /** Releases whose health check failed here; not retried until the channel names another release. */
  failed: Record<string, { version: string; at: string; reason: string }>;
  status: AgentStatus;
  message: string;
  checkedAt: string;
  inRollout: boolean | null;
}

export type AgentReport = AgentState;

/**
 * The reference device updater: one poll checks the channel and, when it names another release for this
 * device, downloads, verifies, installs into the inactive slot, switches, checks health and reverts on failure.
 * Every outcome, refusals included, lands in state.json; only bugs throw.
 */
export class DeviceAgent {
  private readonly slots: Slots;
  private readonly publicKey: KeyObject;
  private readonly channel: string;
  private readonly statePath: string;

  constructor(private readonly options: DeviceAgentOptions) {
    this.slots = new Slots(options.root);
    this.publicKey = loadPublicKey(options.publicKey, 'device public key');
    this.channel = options.channel ?? channelNameOf(options.channelUrl);
    this.statePath = path.join(options.root, 'state.json');
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private log(line: string): void {
    this.options.log?.(`[${this.options.deviceId}] ${line}`);
  }

  async state(): Promise<AgentState> {
    const text = await fsp.readFile(this.statePath, 'utf8').catch(() => undefined);
    if (text) return JSON.parse(text) as AgentState;
    return {
      schema: 'mlship.device-state/v1',
      deviceId: this.options.deviceId,
      channel: this.channel,
      highestSequence: 0,
      activeSlot: null,
      slots: {},
      lastKnownGood: null,
      failed: {},
      status: 'up-to-date',
      message: 'no release installed yet',
      checkedAt: '',
      inRollout: null,
    };
  }

  /** One check of the channel; serialised per root so two agents never install into the same slots. */
  async pollOnce(signal?: AbortSignal): Promise<AgentReport> {
    await fsp.mkdir(this.options.root, { recursive: true });
    const lock = path.join(this.options.root, 'agent.lock');
    return withFileLock(lock, async () => {
      const state = await this.state();
      state.checkedAt = this.now().toISOString();
      try {
        await this.poll(state, signal);
      } catch (error) {
        // A device keeps running its last good model whatever went wrong; the report says what it was.
        state.status = isStepError(error) || error instanceof RefusedError ? 'refused' : 'error';
        state.message = (error as Error).message;
        if (state.status === 'error') this.log((error as Error).stack ?? state.message);
      }
      await writeFileAtomic(this.statePath, JSON.stringify(state, null, 2) + '\n');
      this.log(`${state.status}: ${state.message}`);
      return state;
    }).catch(async (error: Error) => {
      if (!(error instanceof LockTimeout)) throw error;
      // Another agent holds this root: report without touching its state.
      return { ...(await this.state()), status: 'error' as const, message: `another device agent is working in ${this.options.root}: ${error.message}`, checkedAt: this.now().toISOString() };
    });
  }

  private async poll(state: AgentState, signal?: AbortSignal): Promise<void> {
    const source = redact(this.options.channelUrl);
    const doc = parseChannel(await fetchSmall(this.options.channelUrl, signal), this.publicKey, source);
    this.checkFreshness(doc, state, source);
    state.highestSequence = doc.sequence;
    const member = inRollout(doc, this.options.deviceId, this.options.deviceGroups);
    state.inRollout = member;
    const target = member ? doc.current : doc.previous;
    const active = state.activeSlot ? state.slots[state.activeSlot] : undefined;
    if (!target) {
      state.status = 'not-in-rollout';
      state.message = `not in the ${doc.rollout.percent}% rollout of ${doc.current.version} (sequence ${doc.sequence}); keeping ${active?.version ?? 'nothing'}`;
      return;
    }
    if (active?.sha256 === target.sha256) {
      state.status = member ? 'up-to-date' : 'not-in-rollout';
      state.message = `${member ? 'runs' : `not in the ${doc.rollout.percent}% rollout of ${doc.current.version}; stays on`} ${target.name} ${target.version} (sequence ${doc.sequence})`;
      return;
    }
    const failed = state.failed[target.sha256];
    if (failed) {
      state.status = 'reverted';
      state.message = `${target.name} ${target.version} failed its health check here at ${failed.at} (${failed.reason}); staying on ${active?.version ?? 'nothing'} until the channel names another release`;
      return;
    }
    const wait = await deferReason(this.options, this.now());
    if (wait) {
      state.status = 'deferred';
      state.message = `update to ${target.name} ${target.version} deferred: ${wait}`;
      return;
    }
    await this.install(state, target, doc, signal);
  }

  private checkFreshness(doc: ChannelDocument, state: AgentState, source: string): void {
    if (doc.channel !== this.channel) throw new RefusedError(`Channel document ${source} is for channel "${doc.channel}", but this device follows "${this.channel}".`);
    if (Date.parse(doc.expiresAt) <= this.now().getTime()) {
      throw new RefusedError(`Channel document ${source} (sequence ${doc.sequence}) expired at ${doc.expiresAt}; refusing it. The publisher must re-sign the channel.`);
    }
    if (doc.sequence < state.highestSequence) {
      throw new RefusedError(`Channel document ${source} has sequence ${doc.sequence}, older than sequence ${state.highestSequence} already seen: refusing a replayed (rollback attack) document.`);
    }
  }

  private async install(state: AgentState, target: ReleaseRef, doc: ChannelDocument, signal?: AbortSignal): Promise<void> {
    const previousSlot = state.activeSlot ?? undefined;
    const slot = Slots.other(previousSlot);
    if (state.slots[slot]?.sha256 !== target.sha256) {
      // The inactive slot is rewritten; it holds nothing the device runs.
      delete state.slots[slot];
      const downloads = path.join(this.options.root, 'downloads');
      // Only one poll runs per root (the agent lock), so anything here is left from a poll that was killed.
      await fsp.rm(downloads, { recursive: true, force: true });
      const archive = path.join(downloads, `${target.sha256}.tar.gz`);
      const url = packageUrl(this.options.channelUrl, target.key);
      try {
        await downloadVerified(url, archive, { sha256: target.sha256, size: target.size }, signal).catch((error: Error) => {
          if (error instanceof IntegrityError) throw new RefusedError(`Package ${target.name} ${target.version} from ${redact(url)} does not match the channel document: ${error.message}.`);
          throw error;
        });
        await this.slots.install(slot, async (dir) => {
          const verified = await extractVerifiedPackage(archive, dir, { publicKey: this.publicKey });
          if (verified.manifest.name !== target.name || verified.manifest.version !== target.version) {
            throw new RefusedError(`Package at ${target.key} is ${verified.manifest.name} ${verified.manifest.version}, but the channel names ${target.name} ${target.version}.`);
          }
        });
      } finally {
        await fsp.rm(archive, { force: true });
      }
      state.slots[slot] = { name: target.name, version: target.version, sha256: target.sha256, installedAt: this.now().toISOString(), sequence: doc.sequence };
    }
    await this.slots.activate(slot);
    state.activeSlot = slot;
    const health = await this.healthCheck(slot, target);
    if (health) {
      state.failed[target.sha256] = { version: target.version, at: this.now().toISOString(), reason: health };
      const good = state.lastKnownGood;
      if (good && state.slots[good.slot]?.sha256 === good.sha256) {
        await this.slots.activate(good.slot);
        state.activeSlot = good.slot;
      } else {
        await this.slots.deactivate();
        state.activeSlot = null;
      }
      state.status = 'reverted';
      state.message = `${target.name} ${target.version} failed its health check (${health}); reverted to ${good ? `${good.name} ${good.version}` : 'no model'}`;
      return;
    }
    state.lastKnownGood = { ...state.slots[slot]!, slot };
    // A release that failed here before may be tried again once the channel names it again after this one.
    state.failed = {};
    state.status = 'installed';
    state.message = `installed ${target.name} ${target.version} in slot ${slot} (sequence ${doc.sequence}${previousSlot ? `, previous in slot ${previousSlot}` : ''})`;
  }

  /** undefined when healthy, else why not. */
  private async healthCheck(slot: SlotName, target: ReleaseRef): Promise<string | undefined> {
    if (!this.options.healthCommand) return undefined;
    const result = await runCommand(this.options.healthCommand, {
      cwd: this.slots.dir(slot),
      env: { MLSHIP_MODEL_DIR: this.slots.dir(slot), MLSHIP_MODEL_VERSION: target.version, MLSHIP_MODEL_SHA256: target.sha256, MLSHIP_DEVICE_ID: this.options.deviceId },
      timeoutMs: (this.options.healthTimeoutSeconds ?? 300) * 1000,
    });
    if (result.timedOut) return `timed out after ${this.options.healthTimeoutSeconds ?? 300} s`;
    if (result.code !== 0) return `exit ${result.code ?? 'signal'}${result.output ? `: ${result.output.split('\n').at(-1)}` : ''}`;
    return undefined;
  }
}

/** The device declines what it was offered (bad signature, replay, expiry, wrong bytes). */
export class RefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedError';
  }
}

export function channelNameOf(channelUrl: string): string {
  const match = /\/([^/?#]+)\.json(?:[?#]|$)/.exec(channelUrl);
  if (!match) throw new Error(`cannot tell the channel from ${redact(channelUrl)}; give the channel name`);
  return decodeURIComponent(match[1]);
}

export interface RunAgentOptions extends DeviceAgentOptions {
  /** Poll once and return (a test runner, a cron job). */
  once?: boolean;
  intervalSeconds?: number;
  signal?: AbortSignal;
  onReport?: (report: AgentReport) => void;
}

/** `mlship device-agent`: poll until the signal aborts (or once). Returns the last report. */
export async function runDeviceAgent(options: RunAgentOptions): Promise<AgentReport> {
  const agent = new DeviceAgent(options);
  for (;;) {
    const report = await agent.pollOnce(options.signal);
    options.onReport?.(report);
    if (options.once || options.signal?.aborted) return report;
    // Jitter spreads a fleet's polls so the store sees no thundering herd.
    const waitMs = (options.intervalSeconds ?? 300) * 1000 * (0.9 + 0.2 * Math.random());
    const aborted = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), waitMs);
      options.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve(true);
      }, { once: true });
    });
    if (aborted) return report;
  }
}
