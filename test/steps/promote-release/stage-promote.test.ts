import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseChannel } from '../../../shared/ota/channel';
import { generateSigningKeyPair, keyIdOf, loadPublicKey } from '../../../shared/package';
import { promoteReleaseStep } from '../../../shared/steps/promote-release';
import { stageOtaStep } from '../../../shared/steps/stage-ota';
import type { StoreKind } from '../../../shared/ota/store';
import { KEYS, makePackage } from '../../ota/support/packages';
import { runInMemory } from '../../ota/support/run-step';
import { StoreBackends } from '../../ota/support/stores';

const backends = new StoreBackends();
const publicKey = loadPublicKey(KEYS.publicKeyPem);
let v1: string;
let v2: string;

beforeAll(async () => {
  await backends.start();
  v1 = await makePackage(backends.folder, '1.0.0', { payloadBytes: 4000 });
  v2 = await makePackage(backends.folder, '1.1.0', { payloadBytes: 6000 });
});
afterAll(() => backends.stop());

describe.each<StoreKind>(['local', 's3', 'azure-blob'])('%s store', (kind) => {
  const prefix = `flow-${kind}`;
  const base = () => ({ ...backends.inputs(kind, prefix), signingKey: KEYS.privateKeyPem });
  const env = () => backends.env(kind);
  const stage = (pkg: string, extra: Record<string, string | number> = {}) =>
    runInMemory(stageOtaStep, { ...base(), package: pkg, ...extra }, { env: env(), run: { id: 'run-1', actor: 'ada' } });
  const promote = (extra: Record<string, string | number | boolean> = {}) =>
    runInMemory(promoteReleaseStep, { ...base(), ...extra }, { env: env(), run: { id: 'run-2', actor: 'ada' } });
  const channel = async (name: string) => {
    const stored = await backends.open(kind, prefix).readDocument(`channels/${name}.json`);
    return parseChannel(stored!.body, publicKey, name);
  };

  test('stage, re-stage (0 bytes), promote in phases, roll back', async () => {
    const size1 = fs.statSync(v1).size;
    const first = await stage(v1);
    expect(first.failure).toBeUndefined();
    expect(first.outputs).toMatchObject({ channel: 'staging', sequence: '1', bytesUploaded: String(size1), version: '1.0.0' });
    expect(first.progressReports.at(-1)).toMatchObject({ done: size1, total: size1, unit: 'bytes' });

    const received = backends.s3.stats.bytesReceived;
    const again = await stage(v1);
    expect(again.outputs).toMatchObject({ sequence: '1', bytesUploaded: '0' });
    expect(again.text).toContain('already carries cellseg 1.0.0 with this rollout (sequence 1); left unchanged');
    if (kind === 's3') expect(backends.s3.stats.bytesReceived - received).toBe(0);

    // 1.0.0 to production at once, then 1.1.0 in phases 10 → 50 → 100.
    expect((await promote({ version: '1.0.0' })).outputs).toMatchObject({
      channel: 'production',
      version: '1.0.0',
      sequence: '1',
      rolloutPercent: '100',
      previousVersion: '',
    });
    expect((await stage(v2)).outputs).toMatchObject({ sequence: '2', version: '1.1.0' });
    const staging = await channel('staging');
    expect(staging.previous?.version).toBe('1.0.0');

    const phases = { phases: '10,50,100' };
    expect((await promote(phases)).outputs).toMatchObject({
      version: '1.1.0',
      sequence: '2',
      rolloutPercent: '10',
      phase: '1',
      previousVersion: '1.0.0',
    });
    expect((await promote(phases)).outputs).toMatchObject({ sequence: '3', rolloutPercent: '50', phase: '2', previousVersion: '1.0.0' });
    expect((await promote(phases)).outputs).toMatchObject({ sequence: '4', rolloutPercent: '100', phase: '3', previousVersion: '1.0.0' });
    const done = await promote(phases);
    expect(done.outputs).toMatchObject({ sequence: '4', rolloutPercent: '100' });
    expect(done.text).toContain('already carries cellseg 1.1.0 at 100% (sequence 4); left unchanged');
    const production = await channel('production');
    expect(production).toMatchObject({
      channel: 'production',
      sequence: 4,
      current: { version: '1.1.0', sha256: staging.current.sha256 },
      rollout: { percent: 100, phases: [10, 50, 100], phase: 3 },
      origin: { event: 'promote', fromChannel: 'staging', fromSequence: 2, actor: 'ada', runId: 'run-2' },
    });

    const rolled = await promote({ mode: 'rollback', reason: 'dice dropped on lab B' });
    expect(rolled.failure).toBeUndefined();
    expect(rolled.outputs).toMatchObject({
      channel: 'production',
      version: '1.0.0',
      sequence: '5',
      rolloutPercent: '100',
      previousVersion: '',
    });
    const back = await channel('production');
    expect(back.origin).toMatchObject({ event: 'rollback', reason: 'dice dropped on lab B', rolledBack: { version: '1.1.0' } });
    expect(back.previous).toBeNull();

    const twice = await promote({ mode: 'rollback' });
    expect(twice.failure).toContain('Channel "production" (sequence 5, cellseg 1.0.0) has no previous version to roll back to.');
    expect(twice.failure).toContain('It was rolled back already; promote the wanted version again instead.');

    // One release record per sequence, each holding the signed document of that sequence.
    const store = backends.open(kind, prefix);
    for (let seq = 1; seq <= 5; seq++) {
      const record = JSON.parse((await store.readDocument(`releases/production/${String(seq).padStart(10, '0')}.json`))!.body.toString());
      expect(record.document.sequence).toBe(seq);
      expect(parseChannel(JSON.stringify(record.document), publicKey, 'record').sequence).toBe(seq);
    }
  });

  test('refuses to promote a version that is not the staged one, and an unknown channel', async () => {
    await stage(v1, { channel: 'qa' });
    const wrong = await promote({ from: 'qa', to: 'lab-a', version: '9.9.9' });
    expect(wrong.failure).toContain('Channel "qa" carries cellseg 1.0.0 (sequence 1), not version 9.9.9.');
    const missing = await promote({ from: 'nightly', to: 'lab-a' });
    expect(missing.failure).toContain('Channel "nightly" does not exist in');
    expect(missing.failure).toContain('Stage a package on "nightly" first with stage-ota.');
  });
});

describe('stage-ota input checks (local store)', () => {
  const inputs = () => ({ ...backends.inputs('local', 'checks'), signingKey: KEYS.privateKeyPem });

  test('refuses a package signed with another key before uploading anything', async () => {
    const other = await makePackage(path.join(backends.folder, 'other'), '2.0.0', {
      privateKeyPem: generateSigningKeyPair().privateKeyPem,
    });
    const host = await runInMemory(stageOtaStep, { ...inputs(), package: other });
    expect(host.failure).toContain(`cellseg-2.0.0.tar.gz: it was signed with key`);
    expect(host.failure).toContain(`but the public key given has id ${keyIdOf(publicKey)}`);
    expect(fs.existsSync(path.join(backends.folder, 'checks', 'channels'))).toBe(false);
    expect(fs.existsSync(path.join(backends.folder, 'checks', 'blobs'))).toBe(false);
  });

  test('device groups without a percentage reach only those groups; bad channel names are refused', async () => {
    const host = await runInMemory(stageOtaStep, { ...inputs(), package: v1, channel: 'canary', deviceGroups: 'lab-a\nlab-b' });
    expect(host.failure).toBeUndefined();
    const doc = parseChannel(fs.readFileSync(path.join(backends.folder, 'checks', 'channels', 'canary.json')), publicKey, 'canary');
    expect(doc.rollout).toMatchObject({ percent: 0, groups: ['lab-a', 'lab-b'] });
    const bad = await runInMemory(stageOtaStep, { ...inputs(), package: v1, channel: '../prod' });
    expect(bad.failure).toContain('Input "channel" has value "../prod", which is not a valid channel name.');
  });

  test('a signing key that is not Ed25519 PEM is refused without echoing it', async () => {
    const host = await runInMemory(stageOtaStep, { ...inputs(), package: v1, signingKey: 'not-a-key-value-42' });
    expect(host.failure).toContain('input "signing-key"');
    expect(host.failure).not.toContain('not-a-key-value-42');
  });
});
