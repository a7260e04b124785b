import * as path from 'node:path';
import { createRegistry } from '../../shared/registry';
import { promoteReleaseStep } from '../../shared/steps/promote-release';
import { stageOtaStep } from '../../shared/steps/stage-ota';
import { KEYS, makePackage } from './support/packages';
import { runInMemory } from './support/run-step';
import { StoreBackends } from './support/stores';

const backends = new StoreBackends();
afterAll(() => backends.stop());

test('promote-release moves the local registry with the channel, and rollback moves it back', async () => {
  const registryPath = path.join(backends.folder, 'registry');
  const registry = createRegistry('local', { root: registryPath });
  const r1 = await registry.register({ name: 'cellseg', artifactUri: 'file:///models/1.onnx', metrics: { dice: 0.81 } });
  const r2 = await registry.register({ name: 'cellseg', artifactUri: 'file:///models/2.onnx', metrics: { dice: 0.86 } });
  const store = { ...backends.inputs('local', 'registry'), signingKey: KEYS.privateKeyPem };
  const promote = (extra: Record<string, string | boolean>) =>
    runInMemory(
      promoteReleaseStep,
      { ...store, registry: 'local', registryPath, approvedBy: 'grace:ok', ...extra },
      { run: { id: 'run-9', actor: 'ada' } },
    );

  await runInMemory(stageOtaStep, { ...store, package: await makePackage(backends.folder, '1.0.0') });
  expect((await promote({ modelVersion: r1.version })).failure).toBeUndefined();
  expect(await registry.get('cellseg', r1.version)).toMatchObject({
    stage: 'production',
    approval: 'approved',
    evidence: { source: 'cli', approvers: [{ login: 'grace', comment: 'ok' }] },
  });

  await runInMemory(stageOtaStep, { ...store, package: await makePackage(backends.folder, '2.0.0') });
  expect((await promote({ modelVersion: r2.version })).failure).toBeUndefined();
  expect((await registry.get('cellseg', r2.version))?.stage).toBe('production');
  expect((await registry.get('cellseg', r1.version))?.stage).toBe('archived');

  const rolled = await promote({ mode: 'rollback' });
  expect(rolled.failure).toBeUndefined();
  expect((await registry.get('cellseg', r1.version))?.stage).toBe('production');
  expect((await registry.get('cellseg', r2.version))?.stage).toBe('archived');

  const unknown = await promote({ modelVersion: '99' });
  expect(unknown.failure).toContain('Model cellseg version 99 is not in the local registry.');
  const missing = await promote({});
  expect(missing.failure).toContain('Input "model-version" is required to update the local registry.');
});
