import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeviceAgent, type DeviceAgentOptions } from '../../shared/agent';
import { deviceAgentCommand } from '../../shared/agent/command';
import { type ReleaseRef, rolloutSalt } from '../../shared/ota/channel';
import { sha256File } from '../../shared/core/sha256';
import { updateChannel } from '../../shared/ota/publish';
import { blobKey } from '../../shared/ota/store';
import { generateSigningKeyPair, loadPrivateKey } from '../../shared/package';
import { signManifest } from '../../shared/package/signing';
import { KEYS, makePackage } from '../ota/support/packages';
import { ChannelKit } from './support/fleet';
import { flipByte, repack } from './support/tamper';

let kit: ChannelKit;
let v1: string;
let v2: string;
let v3: string;
let device = 0;

beforeAll(async () => {
  kit = new ChannelKit();
  v1 = await makePackage(kit.dir, '1.0.0');
  v2 = await makePackage(kit.dir, '2.0.0');
  v3 = await makePackage(kit.dir, '3.0.0');
});
afterAll(() => kit.cleanup());

/** Each test gets its own channel and device, so their histories do not mix. */
function setup(channel: string, options: Partial<DeviceAgentOptions> = {}) {
  const root = path.join(kit.dir, 'devices', `${channel}-${device++}`);
  const agent = new DeviceAgent({
    channelUrl: kit.channelUrl(channel),
    deviceId: `dev-${channel}`,
    publicKey: KEYS.publicKeyPem,
    root,
    ...options,
  });
  const publish = async (pkg: string, percent = 100) => (await kit.stage(pkg, channel, percent)).update.doc;
  const model = () => fs.readFileSync(path.join(root, 'current', 'manifest.json'), 'utf8');
  return { agent, root, publish, model };
}

/** Puts bytes in the store and points the channel at them without stage-ota's package check (a hostile store). */
async function publishUnchecked(channel: string, archive: string, name: string, version: string) {
  const sha256 = await sha256File(archive);
  const { size } = fs.statSync(archive);
  await kit.store.putBlob(blobKey(sha256), archive, { sha256, size });
  const release: ReleaseRef = { name, version, sha256, size, key: blobKey(sha256), url: '' };
  await updateChannel(kit.publisher, channel, (current) => ({
    current: release,
    previous: current?.current ?? null,
    rollout: { percent: 100, groups: [], salt: rolloutSalt(channel, release) },
    approvals: null,
    origin: { event: 'stage' },
  }));
}

describe('install, A/B switch, rollback', () => {
  test('installs into slot a, upgrades into slot b, and returns to slot a on rollback without downloading', async () => {
    const { agent, root, publish, model } = setup('ab');
    await publish(v1);
    const first = await agent.pollOnce();
    expect(first).toMatchObject({
      status: 'installed',
      activeSlot: 'a',
      highestSequence: 1,
      inRollout: true,
      lastKnownGood: { version: '1.0.0', slot: 'a' },
    });
    expect(fs.readlinkSync(path.join(root, 'current'))).toBe(path.join('slots', 'a'));
    expect(fs.readFileSync(path.join(root, 'current.slot'), 'utf8')).toBe('a\n');
    expect(JSON.parse(model())).toMatchObject({ name: 'cellseg', version: '1.0.0' });
    expect(fs.existsSync(path.join(root, 'current', 'models', 'model.onnx'))).toBe(true);
    expect(await agent.pollOnce()).toMatchObject({ status: 'up-to-date', message: 'runs cellseg 1.0.0 (sequence 1)' });

    await publish(v2);
    const second = await agent.pollOnce();
    expect(second).toMatchObject({
      status: 'installed',
      activeSlot: 'b',
      slots: { a: { version: '1.0.0' }, b: { version: '2.0.0' } },
      lastKnownGood: { version: '2.0.0', slot: 'b' },
    });
    expect(JSON.parse(model()).version).toBe('2.0.0');

    await kit.rollback('ab');
    // The package of 1.0.0 is gone from the store: the device must use what slot a still holds.
    fs.rmSync(kit.store.pathOf(blobKey(second.slots.a!.sha256)));
    const back = await agent.pollOnce();
    expect(back).toMatchObject({ status: 'installed', activeSlot: 'a', highestSequence: 3, lastKnownGood: { version: '1.0.0' } });
    expect(JSON.parse(model()).version).toBe('1.0.0');
    expect(JSON.parse(fs.readFileSync(path.join(root, 'state.json'), 'utf8'))).toEqual(back);
  });

  test('a device outside a partial rollout stays on the previous release', async () => {
    const { agent, publish } = setup('partial', { deviceId: 'biodevice-0003' });
    await publish(v1);
    await agent.pollOnce();
    await publish(v2, 0);
    expect(await agent.pollOnce()).toMatchObject({
      status: 'not-in-rollout',
      inRollout: false,
      activeSlot: 'a',
      message: 'not in the 0% rollout of 2.0.0; stays on cellseg 1.0.0 (sequence 2)',
    });
    await publish(v2, 100);
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed', inRollout: true, activeSlot: 'b' });
  });

  test('device groups take a release whatever the percentage', async () => {
    const inGroup = setup('groups', { deviceGroups: ['lab-a'] });
    const outside = setup('groups', { deviceGroups: ['lab-b'] });
    await kit.stage(v1, 'groups', undefined, ['lab-a']);
    expect(await inGroup.agent.pollOnce()).toMatchObject({ status: 'installed', inRollout: true });
    expect(await outside.agent.pollOnce()).toMatchObject({ status: 'not-in-rollout', inRollout: false, activeSlot: null });
  });
});

describe('health check and last known good', () => {
  test('a release that fails its health command is reverted and not retried', async () => {
    const health = 'test "$MLSHIP_MODEL_VERSION" != "2.0.0" || { echo "accuracy 0.41 below 0.80"; exit 3; }';
    const { agent, publish, model } = setup('health', { healthCommand: health });
    await publish(v1);
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed', activeSlot: 'a' });
    await publish(v2);
    const failed = await agent.pollOnce();
    expect(failed).toMatchObject({ status: 'reverted', activeSlot: 'a', lastKnownGood: { version: '1.0.0', slot: 'a' } });
    expect(failed.message).toBe('cellseg 2.0.0 failed its health check (exit 3: accuracy 0.41 below 0.80); reverted to cellseg 1.0.0');
    expect(JSON.parse(model()).version).toBe('1.0.0');
    const again = await agent.pollOnce();
    expect(again.status).toBe('reverted');
    expect(again.message).toContain('cellseg 2.0.0 failed its health check here at');
    // A new release is tried again.
    await publish(v3);
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed', activeSlot: 'b', lastKnownGood: { version: '3.0.0' } });
  });

  test('the health command sees the new slot and its version', async () => {
    const seen = path.join(kit.dir, 'health-env.txt');
    const { agent, root, publish } = setup('health-env', {
      healthCommand: `echo "$MLSHIP_MODEL_DIR $MLSHIP_MODEL_VERSION $(pwd)" > ${seen}`,
    });
    await publish(v1);
    await agent.pollOnce();
    const slot = path.join(root, 'slots', 'a');
    expect(fs.readFileSync(seen, 'utf8').trim()).toBe(`${slot} 1.0.0 ${fs.realpathSync(slot)}`);
  });

  test('a first install that fails its health check leaves no model active', async () => {
    const { agent, root, publish } = setup('health-first', { healthCommand: 'exit 1' });
    await publish(v1);
    expect(await agent.pollOnce()).toMatchObject({
      status: 'reverted',
      activeSlot: null,
      message: 'cellseg 1.0.0 failed its health check (exit 1); reverted to no model',
    });
    expect(fs.existsSync(path.join(root, 'current'))).toBe(false);
  });
});

describe('busy instrument and maintenance window', () => {
  test('a lock file defers the update until it is gone', async () => {
    const busyFile = path.join(kit.dir, 'analysis.lock');
    const { agent, publish } = setup('busy-file', { busyFile });
    await publish(v1);
    fs.writeFileSync(busyFile, 'run 42');
    expect(await agent.pollOnce()).toMatchObject({
      status: 'deferred',
      activeSlot: null,
      message: `update to cellseg 1.0.0 deferred: busy: ${busyFile} exists`,
    });
    fs.rmSync(busyFile);
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed' });
  });

  test('a busy command that exits 0 defers; non-zero lets the update through', async () => {
    const flag = path.join(kit.dir, 'busy-flag');
    const { agent, publish } = setup('busy-cmd', { busyCommand: `test -f ${flag} && echo "acquiring plate 7"` });
    await publish(v1);
    fs.writeFileSync(flag, '');
    expect(await agent.pollOnce()).toMatchObject({
      status: 'deferred',
      message: `update to cellseg 1.0.0 deferred: busy: "test -f ${flag} && echo "acquiring plate 7"" says so (acquiring plate 7)`,
    });
    fs.rmSync(flag);
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed' });
  });

  test('outside the maintenance window the update waits; inside it installs', async () => {
    let now = new Date(2026, 0, 10, 14, 30);
    const { agent, publish } = setup('window', { maintenanceWindow: '22:00-06:00', now: () => now });
    await publish(v1);
    expect(await agent.pollOnce()).toMatchObject({
      status: 'deferred',
      message: 'update to cellseg 1.0.0 deferred: outside the maintenance window 22:00-06:00',
    });
    now = new Date(2026, 0, 11, 1, 15);
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed' });
  });
});

describe('tampering and replay are refused', () => {
  test('a flipped byte in the stored package', async () => {
    const { agent, publish } = setup('flip');
    await publish(v1);
    await agent.pollOnce();
    // A package of its own: the store is shared by the tests and this one damages it.
    const doc = await publish(await makePackage(kit.dir, '2.0.9'));
    const stored = kit.store.pathOf(doc.current.key);
    flipByte(stored, stored, 100);
    const report = await agent.pollOnce();
    expect(report).toMatchObject({ status: 'refused', activeSlot: 'a', highestSequence: 2 });
    expect(report.message).toMatch(
      new RegExp(
        `^Package cellseg 2\\.0\\.9 from file://.* does not match the channel document: sha256 [0-9a-f]{64}, expected ${doc.current.sha256}\\.$`,
      ),
    );
  });

  test('a changed manifest', async () => {
    const { agent } = setup('manifest');
    const tampered = await repack(v1, path.join(kit.dir, 'manifest-tampered.tar.gz'), (dir) => {
      const file = path.join(dir, 'manifest.json');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"releaseNotes": ""', '"releaseNotes": "trust me"'));
    });
    await publishUnchecked('manifest', tampered, 'cellseg', '1.0.0');
    const report = await agent.pollOnce();
    expect(report).toMatchObject({ status: 'refused', activeSlot: null });
    expect(report.message).toContain('manifest.json does not match manifest.sig');
    expect(report.message).toContain('so the manifest was changed after it was signed');
  });

  test('a replaced signature', async () => {
    const { agent } = setup('signature');
    const other = loadPrivateKey(generateSigningKeyPair().privateKeyPem);
    const tampered = await repack(v1, path.join(kit.dir, 'signature-tampered.tar.gz'), (dir) => {
      fs.writeFileSync(path.join(dir, 'manifest.sig'), signManifest(fs.readFileSync(path.join(dir, 'manifest.json')), other));
    });
    await publishUnchecked('signature', tampered, 'cellseg', '1.0.0');
    const report = await agent.pollOnce();
    expect(report).toMatchObject({ status: 'refused', activeSlot: null });
    expect(report.message).toMatch(/it was signed with key [0-9a-f]{64}, but the public key given has id [0-9a-f]{64}\./);
  });

  test('a package that is not the release the channel names', async () => {
    const { agent } = setup('mislabel');
    await publishUnchecked('mislabel', v2, 'cellseg', '1.0.0');
    const report = await agent.pollOnce();
    expect(report).toMatchObject({ status: 'refused', activeSlot: null });
    expect(report.message).toMatch(
      /^Package at blobs\/sha256\/[0-9a-f]{64}\.tar\.gz is cellseg 2\.0\.0, but the channel names cellseg 1\.0\.0\.$/,
    );
  });

  test('an old channel document replayed', async () => {
    const { agent, publish } = setup('replay');
    await publish(v1);
    const channelFile = kit.store.pathOf('channels/replay.json');
    const old = fs.readFileSync(channelFile);
    await publish(v2);
    expect(await agent.pollOnce()).toMatchObject({ status: 'installed', highestSequence: 2, slots: { a: { version: '2.0.0' } } });
    fs.writeFileSync(channelFile, old);
    const report = await agent.pollOnce();
    expect(report).toMatchObject({ status: 'refused', highestSequence: 2, activeSlot: 'a' });
    expect(report.message).toBe(
      `Channel document ${kit.channelUrl('replay')} has sequence 1, older than sequence 2 already seen: refusing a replayed (rollback attack) document.`,
    );
  });

  test('an expired channel document', async () => {
    const { agent, publish } = setup('expired', { now: () => new Date(Date.now() + 25 * 3_600_000) });
    const doc = await publish(v1);
    const report = await agent.pollOnce();
    expect(report).toMatchObject({ status: 'refused', activeSlot: null, highestSequence: 0 });
    expect(report.message).toBe(
      `Channel document ${kit.channelUrl('expired')} (sequence 1) expired at ${doc.expiresAt}; refusing it. The publisher must re-sign the channel.`,
    );
  });

  test('an edited channel document, one signed by another key, one for another channel', async () => {
    const { agent, publish } = setup('edited');
    await publish(v1, 10);
    const channelFile = kit.store.pathOf('channels/edited.json');
    const signed = fs.readFileSync(channelFile, 'utf8');
    fs.writeFileSync(channelFile, signed.replace('"percent": 10', '"percent": 100'));
    expect((await agent.pollOnce()).message).toBe(
      `Channel document ${kit.channelUrl('edited')} has an invalid signature: its content was changed after it was signed.`,
    );

    const stranger = new DeviceAgent({
      channelUrl: kit.channelUrl('edited'),
      deviceId: 'x',
      publicKey: generateSigningKeyPair().publicKeyPem,
      root: path.join(kit.dir, 'devices', 'stranger'),
    });
    fs.writeFileSync(channelFile, signed);
    expect((await stranger.pollOnce()).message).toMatch(/is signed by key [0-9a-f]{64}, not by the trusted key [0-9a-f]{64}\.$/);

    const wrongChannel = new DeviceAgent({
      channelUrl: kit.channelUrl('edited'),
      channel: 'production',
      deviceId: 'x',
      publicKey: KEYS.publicKeyPem,
      root: path.join(kit.dir, 'devices', 'wrong'),
    });
    expect((await wrongChannel.pollOnce()).message).toBe(
      `Channel document ${kit.channelUrl('edited')} is for channel "edited", but this device follows "production".`,
    );
  });
});

describe('mlship device-agent', () => {
  test('--once installs, prints the state as one JSON line, exits 0; bad usage exits 2', async () => {
    await kit.stage(v1, 'cli');
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) };
    const keyFile = path.join(kit.dir, 'device.pub.pem');
    fs.writeFileSync(keyFile, KEYS.publicKeyPem);
    const root = path.join(kit.dir, 'devices', 'cli');
    const code = await deviceAgentCommand.run(
      ['--channel-url', kit.channelUrl('cli'), '--device-id', 'lab7-scope', '--public-key', keyFile, '--root', root, '--once'],
      io,
    );
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0])).toMatchObject({ deviceId: 'lab7-scope', channel: 'cli', status: 'installed', activeSlot: 'a' });
    expect(err.join('')).toContain('[lab7-scope] installed: installed cellseg 1.0.0 in slot a (sequence 1)');

    expect(await deviceAgentCommand.run(['--device-id', 'x'], io)).toBe(2);
    expect(err.join('')).toContain('error: "mlship device-agent" needs --channel-url, --public-key, --root.');
    expect(await deviceAgentCommand.run(['--chanel-url', 'x'], io)).toBe(2);
    expect(err.join('')).toContain(
      'error: Unknown option "--chanel-url" for "mlship device-agent".\n  → Did you mean --channel-url? Run "mlship device-agent --help".',
    );
  });
});
