import type { ApprovalEvidence, ModelRegistry } from '../../shared/registry/types';

export const evidence: ApprovalEvidence = {
  approvers: [{ login: 'qa-lead', at: '2025-01-02T03:04:05Z', comment: 'validated on 3 devices' }],
  source: 'github-environment',
  runUrl: 'https://github.com/acme/cells/actions/runs/1',
};

/** The contract every registry backend keeps; run against each one below. */
export async function exerciseRegistry(registry: ModelRegistry, artifact: (n: number) => string): Promise<void> {
  const a = await registry.register({
    name: 'cellseg',
    artifactUri: artifact(1),
    metrics: { dice: 0.81 },
    trainingJob: 'job-1',
    gitCommit: 'aaa111',
    dataFingerprint: 'sha256:d1',
  });
  const b = await registry.register({
    name: 'cellseg',
    artifactUri: artifact(2),
    metrics: { dice: 0.84 },
    trainingJob: 'job-2',
    gitCommit: 'bbb222',
  });
  const c = await registry.register({
    name: 'cellseg',
    artifactUri: artifact(3),
    metrics: { dice: 0.86 },
    trainingJob: 'job-3',
    gitCommit: 'ccc333',
  });
  expect([a.version, b.version, c.version]).toEqual(['1', '2', '3']);
  expect(a).toMatchObject({
    name: 'cellseg',
    artifactUri: artifact(1),
    metrics: { dice: 0.81 },
    trainingJob: 'job-1',
    gitCommit: 'aaa111',
    dataFingerprint: 'sha256:d1',
    stage: 'candidate',
    approval: 'pending',
  });

  // Registering the same job's artifact again (a re-run) returns the version it already has.
  const again = await registry.register({ name: 'cellseg', artifactUri: artifact(2), metrics: { dice: 0.84 }, trainingJob: 'job-2' });
  expect(again.version).toBe('2');
  expect((await registry.list('cellseg')).map((v) => v.version)).toEqual(['1', '2', '3']);

  expect(await registry.production('cellseg')).toBeUndefined();
  const promoted = await registry.setStage('cellseg', '2', 'production', { approval: 'approved', evidence });
  expect(promoted).toMatchObject({ version: '2', stage: 'production', approval: 'approved', evidence });
  expect((await registry.production('cellseg'))?.metrics).toEqual({ dice: 0.84 });

  // Promoting another version archives the previous production one.
  await registry.setStage('cellseg', '3', 'production', { approval: 'approved' });
  const all = await registry.list('cellseg');
  expect(all.map((v) => [v.version, v.stage, v.approval])).toEqual([
    ['1', 'candidate', 'pending'],
    ['2', 'archived', 'approved'],
    ['3', 'production', 'approved'],
  ]);
  expect((await registry.production('cellseg'))?.version).toBe('3');
  await registry.setStage('cellseg', '1', 'candidate', { approval: 'rejected' });
  expect((await registry.get('cellseg', '1'))?.approval).toBe('rejected');
  expect(await registry.get('cellseg', '9')).toBeUndefined();
  expect(await registry.list('unknown-model')).toEqual([]);
}
