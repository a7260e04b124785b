import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createRegistry } from '../../shared/registry';
import type { AzureAuth } from '../../shared/cloud/auth/azure';
import { AzureFake, SUB } from '../fakes/azure-fake';
import { evidence, exerciseRegistry } from '../support/registry-contract';
import { FAST_RETRY, tempWorkspace, write } from '../training/helpers';
import { repoPath, ROOT } from '../support/paths';

describe('local file registry', () => {
  it('keeps the registry contract', async () => {
    const root = path.join(tempWorkspace('mlship-reg-'), 'registry');
    await exerciseRegistry(createRegistry('local', { root }), (n) => `/models/cellseg/${n}`);
    expect(fs.readdirSync(root)).toEqual(['cellseg.json']);
    const file = JSON.parse(fs.readFileSync(path.join(root, 'cellseg.json'), 'utf8'));
    expect(file.versions).toHaveLength(3);
  });

  it('hands out unique, monotonic versions to four processes registering at once', async () => {
    const root = path.join(tempWorkspace('mlship-reg-'), 'registry');
    const script = `
      const { LocalRegistry } = require(${JSON.stringify(repoPath('shared/registry/local.ts'))});
      (async () => {
        const r = new LocalRegistry({ root: process.argv[1] });
        const out = [];
        for (let i = 0; i < 5; i++) out.push((await r.register({ name: 'cellseg', artifactUri: 'p' + process.argv[2] + '-' + i, metrics: {} })).version);
        console.log(JSON.stringify(out));
      })();`;
    const run = promisify(execFile);
    const results = await Promise.all(
      [1, 2, 3, 4].map((p) => run(process.execPath, ['-r', 'esbuild-register', '-e', script, root, String(p)], { cwd: ROOT })),
    );
    const versions = results.flatMap((r) => JSON.parse(r.stdout) as string[]).map(Number);
    expect(versions.sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const r of results) {
      const mine = JSON.parse(r.stdout).map(Number) as number[];
      expect([...mine].sort((x, y) => x - y)).toEqual(mine);
    }
    expect(fs.readdirSync(root)).toEqual(['cellseg.json']);
  });

  it('names the file and the known versions when something is wrong', async () => {
    const root = tempWorkspace('mlship-reg-');
    const registry = createRegistry('local', { root });
    await registry.register({ name: 'cellseg', artifactUri: '/m/1', metrics: {} });
    await expect(registry.setStage('cellseg', '7', 'production')).rejects.toThrow(
      `Model cellseg has no version 7 in the local registry ${path.join(root, 'cellseg.json')}.`,
    );
    await expect(registry.register({ name: '../escape', artifactUri: 'x', metrics: {} })).rejects.toThrow(
      'Model name "../escape" is not allowed.',
    );
    write(root, 'broken.json', '{"name": "broken", "versions": [');
    await expect(registry.list('broken')).rejects.toThrow(
      `The local registry file ${path.join(root, 'broken.json')} is not a valid model file`,
    );
  });

  it('opens through the generic options other steps pass (uri relative to the workspace)', async () => {
    const workspace = tempWorkspace('mlship-reg-');
    const registry = createRegistry('local', { uri: 'models/registry', workspace });
    await registry.register({ name: 'cellseg', artifactUri: '/m/1', metrics: { dice: 0.8 } });
    expect(fs.existsSync(path.join(workspace, 'models/registry/cellseg.json'))).toBe(true);
  });
});

// The SageMaker Model Registry runs against moto_server: test/training/sagemaker-moto.test.ts.

describe('Azure ML model registry (ARM REST against the fake)', () => {
  let fake: AzureFake;
  beforeEach(async () => {
    fake = await new AzureFake().start();
  });
  afterEach(() => fake.close());

  const auth = (): AzureAuth => ({ source: 'test', token: async () => fake.mintToken().token, invalidate() {} });
  const open = () =>
    createRegistry('azureml', {
      subscriptionId: SUB,
      resourceGroup: 'ml-rg',
      workspace: 'cells-ws',
      auth: auth(),
      armEndpoint: fake.url,
      retry: FAST_RETRY,
    });

  it('keeps the registry contract with model versions, lifecycle in tags and lineage in properties', async () => {
    await exerciseRegistry(open(), (n) => `azureml://jobs/job-${n}/outputs/model`);
    const versions = fake.models.get('cellseg')!;
    expect(versions.map((v) => [v.version, (v.properties.tags as Record<string, string>)['mlship.stage']])).toEqual([
      ['1', 'candidate'],
      ['2', 'archived'],
      ['3', 'production'],
    ]);
    expect(versions[0].properties).toMatchObject({
      modelUri: 'azureml://jobs/job-1/outputs/model',
      modelType: 'custom_model',
      jobName: 'job-1',
      properties: {
        'mlship.metrics': '{"dice":0.81}',
        'mlship.gitCommit': 'aaa111',
        'mlship.dataFingerprint': 'sha256:d1',
        'mlship.trainingJob': 'job-1',
      },
    });
    expect(JSON.parse((versions[1].properties.tags as Record<string, string>)['mlship.evidence'])).toEqual(evidence);
    // Lists come two per page; the registry followed nextLink.
    expect(fake.calls.some((c) => c.action === 'GET {ws}/models/cellseg/versions' && c.status === 200)).toBe(true);
  });

  it('takes the next number when another registration claimed the version first (409)', async () => {
    const registry = open();
    await registry.register({ name: 'cellseg', artifactUri: 'azureml://jobs/a/outputs/model', metrics: {}, trainingJob: 'a' });
    fake.models.get('cellseg')!.push({
      name: 'cellseg',
      version: '2',
      properties: { modelUri: 'azureml://jobs/other/outputs/model' },
      created: new Date().toISOString(),
      hidden: true,
    });
    const v = await registry.register({ name: 'cellseg', artifactUri: 'azureml://jobs/b/outputs/model', metrics: {}, trainingJob: 'b' });
    expect(v.version).toBe('3');
    expect(fake.calls.filter((c) => c.error === 'Conflict')).toHaveLength(1);
  });

  it('opens from a workspace URI (the generic options promote-release passes)', async () => {
    const registry = createRegistry('azureml', { uri: `azureml://subscriptions/${SUB}/resourcegroups/ml-rg/workspaces/cells-ws`, env: {} });
    expect(registry.kind).toBe('azureml');
    expect(() => createRegistry('azureml', { uri: 'cells-ws', env: {} })).toThrow('"cells-ws" does not name an Azure ML workspace.');
  });
});
