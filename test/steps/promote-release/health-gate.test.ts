import * as fs from 'node:fs';
import * as path from 'node:path';
import { openReportSink } from '../../../shared/agent/reporter';
import { parseChannel } from '../../../shared/ota/channel';
import { promoteChannel } from '../../../shared/ota/release';
import { loadPublicKey } from '../../../shared/package';
import { promoteReleaseStep } from '../../../shared/steps/promote-release';
import { ChannelKit, Fleet, versionsOf } from '../../agent/support/fleet';
import { KEYS, makePackage } from '../../ota/support/packages';
import { runInMemory } from '../../ota/support/run-step';

let kit: ChannelKit;
let v1: string;
let v2: string;
beforeAll(async () => {
  kit = new ChannelKit();
  v1 = await makePackage(kit.dir, '1.0.0');
  v2 = await makePackage(kit.dir, '2.0.0');
});
afterAll(() => kit.cleanup());

const publicKey = loadPublicKey(KEYS.publicKeyPem);
const readDoc = (channel: string) => parseChannel(fs.readFileSync(kit.store.pathOf(`channels/${channel}.json`)), publicKey, channel);

test('two concurrent "advance one phase" runs that judged the same document advance one phase, not two', async () => {
  await kit.stage(v1, 'staging-a');
  await promoteChannel({ publisher: kit.publisher, from: 'staging-a', to: 'race', phases: [10, 50, 100], approvals: null });
  const judged = readDoc('race');
  expect(judged.rollout).toMatchObject({ percent: 10, phase: 1 });
  const runs = await Promise.all(
    [0, 1].map(() =>
      promoteChannel({
        publisher: kit.publisher,
        from: 'staging-a',
        to: 'race',
        phases: [10, 50, 100],
        approvals: null,
        observedSequence: judged.sequence,
      }),
    ),
  );
  expect(runs.map((r) => r.update.changed).sort()).toEqual([false, true]);
  expect(readDoc('race')).toMatchObject({ sequence: judged.sequence + 1, rollout: { percent: 50, phase: 2 } });
  // The phase start is recorded for bake time, and kept when the same phase is re-signed.
  expect(Date.parse(readDoc('race').rollout.startedAt!)).toBeGreaterThanOrEqual(Date.parse(judged.rollout.startedAt!));
});

describe('promote-release health gate', () => {
  const reportsDir = () => path.join(kit.dir, 'reports', 'gated');
  const inputs = (extra: Record<string, string | number | boolean>) => ({
    from: 'staging-g',
    to: 'gated',
    phases: '50,100',
    store: 'local',
    storeUri: kit.store.root,
    signingKey: KEYS.privateKeyPem,
    reportsUri: reportsDir(),
    ...extra,
  });

  test('waits without rolling back while evidence is missing; rolls back with the evidence on a breach', async () => {
    // 20 devices on 1.0.0; 2.0.0 fails its health check on every other device.
    const fleet = new Fleet(kit, 20, {
      channelUrl: kit.channelUrl('gated'),
      reportSink: openReportSink({ kind: 'folder', uri: reportsDir() }),
      healthCommand: 'test "$MLSHIP_MODEL_VERSION" != "2.0.0" || test $(( ${MLSHIP_DEVICE_ID#biodevice-} % 2 )) -eq 0',
    });
    await kit.stage(v1, 'staging-g');
    await promoteChannel({ publisher: kit.publisher, from: 'staging-g', to: 'gated', rolloutPercent: 100, approvals: null });
    await fleet.pollAll();
    await kit.stage(v2, 'staging-g');
    const first = await runInMemory(promoteReleaseStep, inputs({ maxFailureRate: 0.1, autoRollback: true }));
    expect(first.failure).toBeUndefined();
    expect(first.outputs).toMatchObject({ phase: '1', rolloutPercent: '50', healthy: '', rolledBack: 'false' });

    // Before any device has tried it: not met yet, no rollback, channel unchanged.
    const early = await runInMemory(promoteReleaseStep, inputs({ maxFailureRate: 0.1, minBakeMinutes: 60, autoRollback: true }));
    expect(early.failure).toMatch(
      /^Health gate not met yet for cellseg 2\.0\.0 on "gated" at 50%: bake time since the phase started \(minutes\) 0(\.\d)? \(limit ≥ 60\); failure\/revert rate on devices that tried it no device tried it yet \(limit ≤ 0\.1\)\./,
    );
    expect(early.outputs).toMatchObject({ healthy: 'false', rolledBack: 'false' });
    expect(readDoc('gated').rollout.phase).toBe(1);

    const reports = await fleet.pollAll();
    const failedDevices = reports.filter((r) => r.status === 'reverted').length;
    expect(failedDevices).toBeGreaterThan(0);
    const check = await runInMemory(promoteReleaseStep, inputs({ mode: 'health-check', maxFailureRate: 0.1, autoRollback: true }));
    expect(check.failure).toMatch(
      /^Health gate breached for cellseg 2\.0\.0 on "gated" at 50%: failure\/revert rate on devices that tried it /,
    );
    expect(check.outputs).toMatchObject({ healthy: 'false', rolledBack: 'true', version: '1.0.0' });
    expect(check.summary).toContain('Health gate: breached ❌');
    const doc = readDoc('gated');
    expect(doc).toMatchObject({
      current: { version: '1.0.0' },
      previous: null,
      rollout: { percent: 100 },
      origin: { event: 'rollback', rolledBack: { version: '2.0.0' } },
    });
    expect(doc.origin.reason).toMatch(/^health gate breached: failure\/revert rate/);
    expect(doc.origin.evidence).toEqual([
      {
        rule: 'failure/revert rate on devices that tried it',
        limit: '≤ 0.1',
        observed: expect.stringMatching(/^\d(\.\d+)? \(\d+ of \d+\)$/),
      },
    ]);
    const record = JSON.parse(fs.readFileSync(kit.store.pathOf(`releases/gated/${String(doc.sequence).padStart(10, '0')}.json`), 'utf8'));
    expect(record.document.origin.evidence).toEqual(doc.origin.evidence);
    expect(versionsOf(await fleet.pollAll())).toEqual({ '1.0.0': 20 });
  });

  test('passes and advances when the cohort is healthy; needs reports-uri', async () => {
    // Its own kit: device roots are per kit, and these devices follow another channel.
    const kit = new ChannelKit();
    try {
      const dir = path.join(kit.dir, 'reports', 'ok');
      const fleet = new Fleet(kit, 10, { channelUrl: kit.channelUrl('ok'), reportSink: openReportSink({ kind: 'folder', uri: dir }) });
      await kit.stage(v1, 'staging-ok');
      await promoteChannel({ publisher: kit.publisher, from: 'staging-ok', to: 'ok', rolloutPercent: 100, approvals: null });
      await fleet.pollAll();
      await kit.stage(v2, 'staging-ok');
      const gate = {
        from: 'staging-ok',
        to: 'ok',
        phases: '50,100',
        store: 'local',
        storeUri: kit.store.root,
        signingKey: KEYS.privateKeyPem,
        minDevicesReporting: 2,
        maxFailureRate: 0,
      };
      expect((await runInMemory(promoteReleaseStep, { ...gate, reportsUri: dir })).outputs.phase).toBe('1');
      await fleet.pollAll();
      const missing = await runInMemory(promoteReleaseStep, gate);
      expect(missing.failure).toMatch(/^Input "reports-uri" is required for the health gate\./);
      const next = await runInMemory(promoteReleaseStep, { ...gate, reportsUri: dir });
      expect(next.failure).toBeUndefined();
      expect(next.outputs).toMatchObject({ phase: '2', rolloutPercent: '100', healthy: 'true' });
      expect(next.summary).toContain('Health gate: passed ✅');
    } finally {
      kit.cleanup();
    }
  });
});
