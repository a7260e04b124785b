import { makePackage } from '../ota/support/packages';
import { ChannelKit, Fleet, versionsOf } from './support/fleet';

const kit = new ChannelKit();
afterAll(() => kit.cleanup());

test('200 devices: a 10% rollout reaches 10% ± 3%, 100% reaches all, a rollback returns all', async () => {
  const v1 = await makePackage(kit.dir, '1.0.0');
  const v2 = await makePackage(kit.dir, '2.0.0');
  const fleet = new Fleet(kit, 200);

  await kit.stage(v1);
  await kit.promote(100);
  const start = await fleet.pollAll();
  expect(versionsOf(start)).toEqual({ '1.0.0': 200 });
  expect(start.every((r) => r.status === 'installed')).toBe(true);

  await kit.stage(v2);
  await kit.promote(10);
  const canary = await fleet.pollAll();
  const share = versionsOf(canary)['2.0.0'];
  expect(share).toBeGreaterThanOrEqual(14);
  expect(share).toBeLessThanOrEqual(26);
  // Exactly the devices the hash puts inside the rollout moved; the rest stayed and say why.
  expect(canary.filter((r) => r.inRollout).length).toBe(share);
  expect(
    canary.filter((r) => !r.inRollout).every((r) => r.status === 'not-in-rollout' && r.message.includes('not in the 10% rollout of 2.0.0')),
  ).toBe(true);
  // Polling again changes nothing: membership is a stable function of the device id.
  expect(versionsOf(await fleet.pollAll())).toEqual(versionsOf(canary));

  await kit.promote(50);
  const half = await fleet.pollAll();
  const canaryDevices = new Set(canary.filter((r) => r.inRollout).map((r) => r.deviceId));
  // Widening the rollout only adds devices: every canary device is still in.
  expect(half.filter((r) => canaryDevices.has(r.deviceId)).every((r) => r.inRollout)).toBe(true);

  await kit.promote(100);
  const all = await fleet.pollAll();
  expect(versionsOf(all)).toEqual({ '2.0.0': 200 });

  await kit.rollback();
  const back = await fleet.pollAll();
  expect(versionsOf(back)).toEqual({ '1.0.0': 200 });
  expect(back.every((r) => r.status === 'installed' && r.highestSequence === 5)).toBe(true);
});
