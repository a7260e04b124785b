import * as path from 'node:path';
import { DeviceAgent, packageUrl } from '../../shared/agent';
import type { StoreKind } from '../../shared/ota/store';
import { stageOtaStep } from '../../shared/steps/stage-ota';
import { KEYS, makePackage } from '../ota/support/packages';
import { runInMemory } from '../ota/support/run-step';
import { StoreBackends } from '../ota/support/stores';

const backends = new StoreBackends();
beforeAll(() => backends.start(['s3', 'azure-blob']));
afterAll(() => backends.stop());

test('a package key resolves next to the channel folder, keeping the query (a SAS token)', () => {
  expect(
    packageUrl('https://acct.blob.core.windows.net/ota/fleet/channels/production.json?sv=2024&sig=abc', 'blobs/sha256/ab.tar.gz'),
  ).toBe('https://acct.blob.core.windows.net/ota/fleet/blobs/sha256/ab.tar.gz?sv=2024&sig=abc');
  expect(packageUrl('file:///srv/ota/channels/canary.json', 'blobs/sha256/cd.tar.gz')).toBe('file:///srv/ota/blobs/sha256/cd.tar.gz');
});

describe.each<StoreKind>(['s3', 'azure-blob'])('device polling %s over HTTP', (kind) => {
  test('installs the staged release and then finds itself up to date', async () => {
    const prefix = `http-${kind}`;
    const pkg = await makePackage(backends.folder, '1.2.3');
    const staged = await runInMemory(
      stageOtaStep,
      { ...backends.inputs(kind, prefix), signingKey: KEYS.privateKeyPem, package: pkg, channel: 'production' },
      { env: backends.env(kind) },
    );
    expect(staged.failure).toBeUndefined();
    const channelUrl = backends.channelUrl(kind, prefix, 'production');
    expect(channelUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*\/channels\/production\.json$/);
    const agent = new DeviceAgent({
      channelUrl,
      deviceId: `dev-${kind}`,
      publicKey: KEYS.publicKeyPem,
      root: path.join(backends.folder, `device-${kind}`),
    });
    expect(await agent.pollOnce()).toMatchObject({
      status: 'installed',
      activeSlot: 'a',
      slots: { a: { version: '1.2.3', sha256: staged.outputs.sha256 } },
    });
    expect(await agent.pollOnce()).toMatchObject({ status: 'up-to-date' });
  });
});
