import type { KeyObject } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isStepError } from '../core/errors';
import { extractVerifiedPackage } from '../package';
import { loadPublicKey } from '../package/signing';
import { createPrivateKey } from 'node:crypto';
import { type ChannelDocument, inRollout, parseChannel, type ReleaseRef } from '../ota/channel';
import {
  type DeviceReport,
  type HardwareFacts,
  type ReportedRelease,
  type ReportEvent,
  reportIdOf,
  signReport,
  type Telemetry,
  telemetrySchemaError,
} from '../fleet/report';
import { DEVICE_ID, MAX_REPORT_BYTES, REPORT_SCHEMA } from '../fleet/report-schema';
import type { PackageManifest } from '../package/manifest';
import { LockTimeout, withFileLock } from '../core/file-lock';
import { writeFileAtomic } from '../core/atomic-write';
import { IntegrityError } from '../ota/files';
import { deferReason, type InstallWindow, runCommand } from './conditions';
import { downloadVerified, fetchSmall, NetworkError, packageUrl, redact } from './fetch';
import { type HardwareOptions, incompatibilities, readHardware } from './hardware';
import { DEFAULT_OUTBOX_LIMITS, type OutboxLimits, ReportOutbox, type ReportSink } from './reporter';
import { type SlotName, Slots } from './slots';

export interface DeviceAgentOptions extends InstallWindow, HardwareOptions {
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
  /** Where reports go (folder, S3 prefix, Azure container, HTTPS endpoint); without one, none are written. */
  reportSink?: ReportSink;
  /** Ed25519 private key of this device (PEM): reports are signed with it (docs/fleet-status.md, trust model). */
  deviceKey?: string;
  /** A report at least this often even when nothing happens (default 3600). */
  heartbeatSeconds?: number;
  /** mlship.telemetry/v1 file the instrument's inference application writes; copied into each report. */
  telemetryFile?: string;
  outboxLimits?: OutboxLimits;
  now?: () => Date;
  log?: (line: string) => void;
}

export type AgentStatus = 'installed' | 'up-to-date' | 'not-in-rollout' | 'deferred' | 'reverted' | 'refused' | 'incompatible' | 'error';

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
  /** Releases this device cannot run (compatibility); checked again when the hardware facts change. */
  incompatible?: Record<string, { version: string; at: string; reason: string; hardware: string }>;
  /** Reporting bookkeeping: report counter, reports dropped from a full outbox, what was last reported. */
  reports?: { counter: number; dropped: number; lastAt?: string; lastStatus?: string; lastMessage?: string };
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
  private readonly outbox: ReportOutbox;
  private readonly deviceKey?: KeyObject;
  /** Set during one poll: a warning to carry in its message, what it tried, and the health check's outcome. */
  private warning?: string;
  private acted?: ReportEvent;
  private health: DeviceReport['health'] = null;
  private target: ReleaseRef | null = null;
  private hardware?: { facts: HardwareFacts; problem?: string; at: number };

  constructor(private readonly options: DeviceAgentOptions) {
    this.slots = new Slots(options.root);
    this.publicKey = loadPublicKey(options.publicKey, 'device public key');
    this.channel = options.channel ?? channelNameOf(options.channelUrl);
    this.statePath = path.join(options.root, 'state.json');
    this.outbox = new ReportOutbox(path.join(options.root, 'reports', 'outbox'), options.outboxLimits ?? DEFAULT_OUTBOX_LIMITS);
    if (options.reportSink && !new RegExp(DEVICE_ID).test(options.deviceId)) {
      throw new Error(`device id "${options.deviceId}" cannot name a report folder: use letters, digits, ".", "_" and "-" (at most 128)`);
    }
    if (options.deviceKey) this.deviceKey = createPrivateKey(options.deviceKey);
  }

  /** The folder this agent owns. */
  get root(): string {
    return this.options.root;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private log(line: string): void {
    this.options.log?.(`[${this.options.deviceId}] ${line}`);
  }

  private emptyState(): AgentState {
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

  /** The saved state; a damaged state.json is rebuilt from the slots (see recoverState). */
  async state(): Promise<AgentState> {
    const text = await fsp.readFile(this.statePath, 'utf8').catch(() => undefined);
    if (text === undefined) return this.emptyState();
    try {
      const parsed = JSON.parse(text) as AgentState;
      if (
        parsed?.schema !== 'mlship.device-state/v1' ||
        typeof parsed.highestSequence !== 'number' ||
        typeof parsed.slots !== 'object' ||
        !parsed.failed
      )
        throw new Error('not a mlship.device-state/v1 document');
      return parsed;
    } catch (error) {
      return this.recoverState(`${(error as Error).message}, ${text.length} bytes`);
    }
  }

  /**
   * state.json was cut short (power loss on a filesystem without ordered writes) or edited: what runs is still
   * known from the `current` link and the slot markers, so the device keeps its model and its replay protection
   * (the highest sequence it installed) instead of failing every later poll.
   */
  private async recoverState(problem: string): Promise<AgentState> {
    const state = this.emptyState();
    for (const slot of ['a', 'b'] as const) {
      const marker = (await this.slots.readMarker(slot)) as Partial<SlotContent> | undefined;
      if (marker && typeof marker.sha256 === 'string' && typeof marker.version === 'string' && typeof marker.name === 'string') {
        state.slots[slot] = {
          name: marker.name,
          version: marker.version,
          sha256: marker.sha256,
          installedAt: String(marker.installedAt ?? ''),
          sequence: Number(marker.sequence) || 0,
        };
      }
    }
    const active = await this.slots.active();
    if (active && state.slots[active]) {
      state.activeSlot = active;
      state.lastKnownGood = { ...state.slots[active]!, slot: active };
    }
    state.highestSequence = Math.max(0, ...Object.values(state.slots).map((c) => c!.sequence));
    const running = state.activeSlot ? state.slots[state.activeSlot]! : undefined;
    this.warning = `state.json was damaged (${problem}); recovered from the slots: ${running ? `runs ${running.name} ${running.version} in slot ${state.activeSlot}` : 'no model active'}, highest sequence ${state.highestSequence}`;
    await fsp.copyFile(this.statePath, `${this.statePath}.damaged`).catch(() => undefined);
    this.log(`warning: ${this.warning}`);
    return state;
  }

  /**
   * One check of the channel; serialised per root so two agents never install into the same slots. Never throws:
   * whatever goes wrong (network, full disk, a damaged state file, a bug) ends in a report with status `error`,
   * with the lock released, so a daemon keeps polling.
   */
  async pollOnce(signal?: AbortSignal): Promise<AgentReport> {
    try {
      await fsp.mkdir(this.options.root, { recursive: true });
      const lock = path.join(this.options.root, 'agent.lock');
      return await withFileLock(lock, () => this.pollLocked(signal));
    } catch (error) {
      const state = await this.state().catch(() => this.emptyState());
      const message =
        error instanceof LockTimeout
          ? `another device agent is working in ${this.options.root}: ${error.message}`
          : `poll failed before it started: ${describeError(error)}`;
      this.log(`error: ${message}`);
      return { ...state, status: 'error', message, checkedAt: this.now().toISOString() };
    } finally {
      this.warning = undefined;
      this.acted = undefined;
      this.health = null;
      this.target = null;
    }
  }

  private async pollLocked(signal?: AbortSignal): Promise<AgentReport> {
    await this.sweepTemps();
    const state = await this.state();
    state.checkedAt = this.now().toISOString();
    try {
      await this.poll(state, signal);
    } catch (error) {
      // A device keeps running its last good model whatever went wrong; the report says what it was.
      state.status = isStepError(error) || error instanceof RefusedError ? 'refused' : 'error';
      state.message = state.status === 'error' ? describeError(error) : (error as Error).message;
      if (state.status === 'error' && !isOrdinary(error)) this.log((error as Error).stack ?? state.message);
    }
    if (this.warning) state.message += ` (warning: ${this.warning})`;
    try {
      await writeFileAtomic(this.statePath, JSON.stringify(state, null, 2) + '\n');
    } catch (error) {
      state.status = 'error';
      state.message = `cannot save ${this.statePath}: ${describeError(error)}; the device keeps running ${state.activeSlot ? state.slots[state.activeSlot]?.version : 'no model'} (after: ${state.message})`;
    }
    this.log(`${state.status}: ${state.message}`);
    await this.report(state).catch((error) => this.log(`report not sent: ${describeError(error)}`));
    return state;
  }

  /** Temp files of writes that were killed (state, pointer, lock attempts); the agent lock is held, so none is live. */
  private async sweepTemps(): Promise<void> {
    const names = await fsp.readdir(this.options.root).catch(() => [] as string[]);
    const outbox = (await fsp.readdir(this.outbox.dir).catch(() => [] as string[])).map((n) => path.join('reports', 'outbox', n));
    const now = Date.now();
    for (const name of [...names, ...outbox]) {
      if (!name.endsWith('.tmp')) continue;
      const file = path.join(this.options.root, name);
      // Another agent may be trying to take the lock right now with its own agent.lock.<uuid>.tmp: only old ones go.
      if (name.startsWith('agent.lock.')) {
        const stat = await fsp.stat(file).catch(() => undefined);
        if (!stat || now - stat.mtimeMs < 60_000) continue;
      }
      await fsp.rm(file, { force: true }).catch(() => undefined);
    }
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
    this.target = target;
    const failed = state.failed[target.sha256];
    if (failed) {
      state.status = 'reverted';
      state.message = `${target.name} ${target.version} failed its health check here at ${failed.at} (${failed.reason}); staying on ${active?.version ?? 'nothing'} until the channel names another release`;
      return;
    }
    const known = state.incompatible?.[target.sha256];
    if (known) {
      const { facts } = await this.facts();
      if (known.hardware === JSON.stringify(facts)) {
        state.status = 'incompatible';
        state.message = `${target.name} ${target.version} cannot run on this device (${known.reason}); staying on ${active?.version ?? 'nothing'}`;
        return;
      }
      delete state.incompatible![target.sha256];
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
    if (doc.channel !== this.channel)
      throw new RefusedError(`Channel document ${source} is for channel "${doc.channel}", but this device follows "${this.channel}".`);
    if (Date.parse(doc.expiresAt) <= this.now().getTime()) {
      throw new RefusedError(
        `Channel document ${source} (sequence ${doc.sequence}) expired at ${doc.expiresAt}; refusing it. The publisher must re-sign the channel.`,
      );
    }
    if (doc.sequence < state.highestSequence) {
      throw new RefusedError(
        `Channel document ${source} has sequence ${doc.sequence}, older than sequence ${state.highestSequence} already seen: refusing a replayed (rollback attack) document.`,
      );
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
          if (error instanceof IntegrityError)
            throw new RefusedError(
              `Package ${target.name} ${target.version} from ${redact(url)} does not match the channel document: ${error.message}.`,
            );
          throw error;
        });
        await this.slots.install(slot, async (dir) => {
          const verified = await extractVerifiedPackage(archive, dir, { publicKey: this.publicKey });
          if (verified.manifest.name !== target.name || verified.manifest.version !== target.version) {
            throw new RefusedError(
              `Package at ${target.key} is ${verified.manifest.name} ${verified.manifest.version}, but the channel names ${target.name} ${target.version}.`,
            );
          }
          // Checked on the verified manifest, before the slot is touched: an incompatible package is never installed.
          const { facts } = await this.facts();
          const missing = incompatibilities(verified.manifest.compatibility, facts);
          if (missing.length) throw new IncompatibleError(missing.join('; '), JSON.stringify(facts));
        });
      } catch (error) {
        if (!(error instanceof IncompatibleError)) throw error;
        state.incompatible = {
          ...state.incompatible,
          [target.sha256]: { version: target.version, at: this.now().toISOString(), reason: error.message, hardware: error.hardware },
        };
        state.status = 'incompatible';
        state.message = `${target.name} ${target.version} cannot run on this device (${error.message}); not installed, staying on ${state.activeSlot ? state.slots[state.activeSlot]?.version : 'nothing'}`;
        this.acted = 'incompatible';
        return;
      } finally {
        await fsp.rm(archive, { force: true });
      }
      state.slots[slot] = {
        name: target.name,
        version: target.version,
        sha256: target.sha256,
        installedAt: this.now().toISOString(),
        sequence: doc.sequence,
      };
      await this.slots.writeMarker(slot, state.slots[slot]!);
    }
    await this.slots.activate(slot);
    state.activeSlot = slot;
    const health = await this.healthCheck(slot, target);
    this.health = this.options.healthCommand ? { passed: !health, reason: health ?? null } : null;
    this.acted = health ? 'revert' : 'install';
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
      env: {
        MLSHIP_MODEL_DIR: this.slots.dir(slot),
        MLSHIP_MODEL_VERSION: target.version,
        MLSHIP_MODEL_SHA256: target.sha256,
        MLSHIP_DEVICE_ID: this.options.deviceId,
      },
      timeoutMs: (this.options.healthTimeoutSeconds ?? 300) * 1000,
    });
    if (result.timedOut) return `timed out after ${this.options.healthTimeoutSeconds ?? 300} s`;
    if (result.code !== 0) return `exit ${result.code ?? 'signal'}${result.output ? `: ${result.output.split('\n').at(-1)}` : ''}`;
    return undefined;
  }

  private async facts(): Promise<{ facts: HardwareFacts; problem?: string }> {
    // nvidia-smi takes tens of milliseconds: asked once per ten minutes (a driver update shows up by then).
    if (!this.hardware || Date.now() - this.hardware.at > 600_000)
      this.hardware = { ...(await readHardware(this.options)), at: Date.now() };
    return this.hardware;
  }

  /** Queues a report when something happened (or a heartbeat is due) and sends what is queued, oldest first. */
  private async report(state: AgentState): Promise<void> {
    const sink = this.options.reportSink;
    if (!sink) return;
    const now = this.now();
    const book = (state.reports ??= { counter: 0, dropped: 0 });
    const changed = book.lastStatus !== state.status || book.lastMessage !== state.message;
    const event: ReportEvent | undefined =
      this.acted ??
      (state.status === 'refused' && changed ? 'refusal' : state.status === 'error' && changed ? 'error' : undefined) ??
      (!book.lastAt || now.getTime() - Date.parse(book.lastAt) >= (this.options.heartbeatSeconds ?? 3600) * 1000 ? 'heartbeat' : undefined);
    if (event) {
      book.counter++;
      const reportId = reportIdOf(now, book.counter);
      const body = await this.buildReport(state, event, reportId, now);
      book.dropped += await this.outbox.add(reportId, body);
      book.lastAt = now.toISOString();
      book.lastStatus = state.status;
      book.lastMessage = state.message;
      await writeFileAtomic(this.statePath, JSON.stringify(state, null, 2) + '\n');
    }
    const result = await this.outbox.flush(sink, this.options.deviceId);
    for (const name of result.rejected) this.log(`report ${name} rejected by ${sink.description}; dropped`);
    if (result.error) this.log(`reports: ${result.pending} waiting to be sent (${result.error})`);
  }

  private async buildReport(state: AgentState, event: ReportEvent, reportId: string, now: Date): Promise<Buffer> {
    const { facts } = await this.facts();
    const active = state.activeSlot ? state.slots[state.activeSlot] : undefined;
    const installed: ReportedRelease | null = active
      ? {
          name: active.name,
          version: active.version,
          sha256: active.sha256,
          slot: state.activeSlot!,
          ...(await this.provenance(state.activeSlot!)),
        }
      : null;
    const target =
      this.target && this.target.sha256 !== active?.sha256
        ? { name: this.target.name, version: this.target.version, sha256: this.target.sha256 }
        : null;
    const report: DeviceReport = {
      schema: REPORT_SCHEMA,
      reportId,
      deviceId: this.options.deviceId,
      groups: (this.options.deviceGroups ?? []).slice(0, 32),
      agentVersion: AGENT_VERSION,
      createdAt: now.toISOString(),
      channel: this.channel,
      sequence: state.highestSequence,
      event,
      status: state.status,
      reason: state.message.slice(0, 2000),
      installed,
      target,
      health: this.health,
      hardware: facts,
      telemetry: installed ? await this.telemetry() : null,
      buffer: { pending: await this.outbox.pending(), dropped: state.reports?.dropped ?? 0 },
    };
    const signed = this.deviceKey ? signReport(report, this.deviceKey) : report;
    let body = Buffer.from(JSON.stringify(signed));
    if (body.length > MAX_REPORT_BYTES) {
      // Only the telemetry can grow this far (histograms): the report goes without it rather than not at all.
      const lean = {
        ...report,
        telemetry: null,
        reason: `${report.reason.slice(0, 1500)} (telemetry left out: the report was ${body.length} bytes)`,
      };
      body = Buffer.from(JSON.stringify(this.deviceKey ? signReport(lean, this.deviceKey) : lean));
    }
    return body;
  }

  /** Commit, data and training job of the installed package, from its verified manifest. */
  private async provenance(slot: SlotName): Promise<Pick<ReportedRelease, 'gitCommit' | 'dataFingerprint' | 'trainingJob'>> {
    const text = await fsp.readFile(path.join(this.slots.dir(slot), 'manifest.json'), 'utf8').catch(() => undefined);
    if (!text) return {};
    try {
      const p = (JSON.parse(text) as PackageManifest).provenance;
      const cut = (v: string | null | undefined, n: number) => (typeof v === 'string' ? v.slice(0, n) : null);
      return { gitCommit: cut(p?.gitCommit, 80), dataFingerprint: cut(p?.dataFingerprint, 200), trainingJob: cut(p?.trainingJob, 300) };
    } catch {
      return {};
    }
  }

  /** The application's telemetry file when it is valid and small; a broken one is logged, not sent. */
  private async telemetry(): Promise<Telemetry | null> {
    const file = this.options.telemetryFile;
    if (!file) return null;
    const stat = await fsp.stat(file).catch(() => undefined);
    if (!stat) return null;
    if (stat.size > MAX_REPORT_BYTES / 2) {
      this.log(`telemetry file ${file} is ${stat.size} bytes, above ${MAX_REPORT_BYTES / 2}; not sent`);
      return null;
    }
    try {
      const value: unknown = JSON.parse(await fsp.readFile(file, 'utf8'));
      const problem = telemetrySchemaError(value);
      if (problem) throw new Error(`does not match mlship.telemetry/v1: ${problem}`);
      return value as Telemetry;
    } catch (error) {
      this.log(`telemetry file ${file} not sent: ${(error as Error).message}`);
      return null;
    }
  }
}

const AGENT_VERSION: string = (require('../../package.json') as { version: string }).version;

/** This device cannot run the package (driver, CUDA, GPU, instrument model); `hardware` is what it was judged on. */
class IncompatibleError extends Error {
  constructor(
    message: string,
    readonly hardware: string,
  ) {
    super(message);
  }
}

/** Failures of the world, not of the agent: network, integrity, disk. One line; a stack trace would only hide them. */
function isOrdinary(error: unknown): boolean {
  return error instanceof NetworkError || error instanceof IntegrityError || typeof (error as NodeJS.ErrnoException)?.code === 'string';
}

function describeError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') return `no space left on the device (${e.path ?? e.message})`;
  return e?.message ?? String(error);
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
      options.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve(true);
        },
        { once: true },
      );
    });
    if (aborted) return report;
  }
}
