import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type AgentReport, DeviceAgent, type DeviceAgentOptions } from '../../../shared/agent';
import { LocalFolderStore } from '../../../shared/ota/local-store';
import type { ChannelPublisher } from '../../../shared/ota/publish';
import { promoteChannel, rollbackChannel, stagePackage } from '../../../shared/ota/release';
import { channelKey } from '../../../shared/ota/store';
import { loadPrivateKey, loadPublicKey } from '../../../shared/package';
import { KEYS } from '../../ota/support/packages';

/** A folder OTA store with a publisher, for device tests: stage, promote and roll back in-process. */
export class ChannelKit {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-agent-'));
  readonly store = new LocalFolderStore(path.join(this.dir, 'store'));
  readonly publisher: ChannelPublisher;

  constructor(expiresInHours = 24) {
    const signingKey = loadPrivateKey(KEYS.privateKeyPem);
    this.publisher = { store: this.store, signingKey, publicKey: loadPublicKey(signingKey), expiresInHours };
  }

  channelUrl(channel = 'production'): string {
    return this.store.urlOf(channelKey(channel));
  }

  stage(archivePath: string, channel = 'staging', rolloutPercent?: number, deviceGroups?: string[]) {
    return stagePackage({
      publisher: this.publisher,
      archivePath,
      channel,
      packagePublicKey: this.publisher.publicKey,
      rolloutPercent,
      deviceGroups,
    });
  }

  promote(rolloutPercent: number, from = 'staging', to = 'production') {
    return promoteChannel({ publisher: this.publisher, from, to, rolloutPercent, approvals: null });
  }

  rollback(channel = 'production') {
    return rollbackChannel({ publisher: this.publisher, channel });
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function deviceIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `biodevice-${String(i).padStart(4, '0')}`);
}

/** `count` in-process device agents polling one channel, each with its own root folder. */
export class Fleet {
  readonly agents: DeviceAgent[];

  /** `options` apply to every device, or are given per device by a function of its id and index. */
  constructor(
    readonly kit: ChannelKit,
    count: number,
    options: Partial<DeviceAgentOptions> | ((deviceId: string, i: number) => Partial<DeviceAgentOptions>) = {},
  ) {
    this.agents = deviceIds(count).map(
      (deviceId, i) =>
        new DeviceAgent({
          channelUrl: kit.channelUrl(),
          deviceId,
          publicKey: KEYS.publicKeyPem,
          root: path.join(kit.dir, 'devices', deviceId),
          ...(typeof options === 'function' ? options(deviceId, i) : options),
        }),
    );
  }

  /** One poll of every device, `concurrency` at a time (I/O overlaps; the work is mostly file copies). */
  async pollAll(concurrency = 16): Promise<AgentReport[]> {
    const reports: AgentReport[] = new Array(this.agents.length);
    let next = 0;
    const worker = async () => {
      while (next < this.agents.length) {
        const i = next++;
        reports[i] = await this.agents[i].pollOnce();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return reports;
  }
}

/** How many devices run each version. */
export function versionsOf(reports: AgentReport[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of reports) {
    const version = r.activeSlot ? r.slots[r.activeSlot]!.version : 'none';
    counts[version] = (counts[version] ?? 0) + 1;
  }
  return counts;
}
