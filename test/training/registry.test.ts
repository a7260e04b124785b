import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createRegistry } from '../../shared/registry';
import type { AzureAuth } from '../../shared/cloud/auth/azure';
import { AwsFake, STATIC_KEY } from '../fakes/aws-fake';
import { AzureFake, SUB } from '../fakes/azure-fake';
import { evidence, exerciseRegistry } from '../support/registry-contract';
import { FAST_RETRY, tempWorkspace, write } from './helpers';

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
      const { LocalRegistry } = require(${JSON.stringify(path.resolve(__dirname, '../../shared/registry/local.ts'))});
      (async () => {
        const r = new LocalRegistry({ root: process.argv[1] });
        const out = [];
        for (let i = 0; i < 5; i++) out.push((await r.register({ name: 'cellseg', artifactUri: 'p' + process.argv[2] + '-' + i, metrics: {} })).version);
        console.log(JSON.stringify(out));
      })();`;
    const run = promisify(execFile);
    const results = await Promise.all([1, 2, 3, 4].map((p) => run(process.execPath, ['-r', 'esbuild-register', '-e', script, root, String(p)], { cwd: path.resolve(__dirname, '../..') })));
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
    await expect(registry.setStage('cellseg', '7', 'production')).rejects.toThrow(`Model cellseg has no version 7 in the local registry ${path.join(root, 'cellseg.json')}.`);
    await expect(registry.register({ name: '../escape', artifactUri: 'x', metrics: {} })).rejects.toThrow('Model name "../escape" is not allowed.');
    write(root, 'broken.json', '{"name": "broken", "versions": [');
    await expect(registry.list('broken')).rejects.toThrow(`The local registry file ${path.join(root, 'broken.json')} is not a valid model file`);
  });

  it('opens through the generic options other steps pass (uri relative to the workspace)', async () => {
    const workspace = tempWorkspace('mlship-reg-');
    const registry = createRegistry('local', { uri: 'models/registry', workspace });
    await registry.register({ name: 'cellseg', artifactUri: '/m/1', metrics: { dice: 0.8 } });
    expect(fs.existsSync(path.join(workspace, 'models/registry/cellseg.json'))).toBe(true);
  });
});

describe('SageMaker Model Registry (real SDK against the fake)', () => {
  let fake: AwsFake;
  beforeEach(async () => {
    fake = await new AwsFake().start();
  });
  afterEach(() => fake.close());

  const open = () =>
    createRegistry('sagemaker', {
      region: 'eu-west-1',
      env: { AWS_ENDPOINT_URL_SAGEMAKER: fake.url, AWS_ENDPOINT_URL_S3: fake.url, AWS_ACCESS_KEY_ID: STATIC_KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: STATIC_KEY.secretAccessKey },
    });

  it('keeps the registry contract with model package groups, ModelMetrics in S3 and approval status', async () => {
    await exerciseRegistry(open(), (n) => `s3://mlship-models/cellseg/job-${n}/output/model.tar.gz`);
    expect(fake.callsOf('CreateModelPackageGroup')).toHaveLength(1);
    expect(fake.callsOf('CreateModelPackage')).toHaveLength(3);
    const first = fake.packages[0];
    expect(first.input.ModelApprovalStatus).toBe('PendingManualApproval');
    const statistics = (first.input.ModelMetrics as { ModelQuality: { Statistics: { ContentType: string; S3Uri: string } } }).ModelQuality.Statistics;
    expect(statistics.ContentType).toBe('application/json');
    expect(statistics.S3Uri).toMatch(/^s3:\/\/mlship-models\/cellseg\/job-1\/output\/mlship-metrics-[0-9a-f]{12}\.json$/);
    const doc = JSON.parse(fake.s3.get(statistics.S3Uri.slice(5))!.toString());
    expect(doc).toMatchObject({ metrics: { dice: 0.81 }, artifactUri: 's3://mlship-models/cellseg/job-1/output/model.tar.gz', gitCommit: 'aaa111', trainingJob: 'job-1' });
    expect(first.input.MetadataProperties).toEqual({ CommitId: 'aaa111', GeneratedBy: 'job-1' });
    expect(fake.packages.map((p) => [p.version, p.approval, p.metadata['mlship:stage']])).toEqual([
      [1, 'Rejected', 'candidate'],
      [2, 'Approved', 'archived'],
      [3, 'Approved', 'production'],
    ]);
    expect(JSON.parse(fake.packages[1].approvalDescription!)).toEqual(evidence);
    // ListModelPackages answers two per page; every version was still found.
    expect(fake.callsOf('ListModelPackages').some((c) => (c.body as { NextToken?: string }).NextToken === '2')).toBe(true);
  });

  it('keeps all per-class metrics in the S3 document while the metadata holds the first 40', async () => {
    const metrics = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`AP/class-${i}`, i / 100]));
    const registry = open();
    const v = await registry.register({ name: 'detector', artifactUri: 's3://mlship-models/det/job/output/model.tar.gz', metrics, trainingJob: 'job' });
    expect(Object.keys(v.metrics)).toHaveLength(80);
    expect(Object.keys(fake.packages[0].metadata).filter((k) => k.startsWith('metric:'))).toHaveLength(40);
  });

  it('survives throttling while registering', async () => {
    fake.throttle(12);
    const registry = createRegistry('sagemaker', {
      region: 'eu-west-1',
      auth: { credentials: async () => STATIC_KEY, source: 'test', invalidate() {}, check: async () => {} },
      endpoint: fake.url,
      s3Endpoint: fake.url,
      retry: FAST_RETRY,
    });
    const v = await registry.register({ name: 'cellseg', artifactUri: 's3://b/k/model.tar.gz', metrics: { dice: 0.9 }, trainingJob: 'j' });
    expect(v.version).toBe('1');
    expect(fake.calls.filter((c) => c.error === 'ThrottlingException')).toHaveLength(12);
  });

  it('asks for an S3 prefix when the artifact is not in S3', async () => {
    await expect(open().register({ name: 'cellseg', artifactUri: '/local/model', metrics: {} })).rejects.toThrow('The SageMaker registry stores model metrics in S3, but the artifact /local/model is not in S3 and no metrics S3 prefix is set.');
  });
});

describe('Azure ML model registry (ARM REST against the fake)', () => {
  let fake: AzureFake;
  beforeEach(async () => {
    fake = await new AzureFake().start();
  });
  afterEach(() => fake.close());

  const auth = (): AzureAuth => ({ source: 'test', token: async () => fake.mintToken().token, invalidate() {} });
  const open = () => createRegistry('azureml', { subscriptionId: SUB, resourceGroup: 'ml-rg', workspace: 'cells-ws', auth: auth(), armEndpoint: fake.url, retry: FAST_RETRY });

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
      properties: { 'mlship.metrics': '{"dice":0.81}', 'mlship.gitCommit': 'aaa111', 'mlship.dataFingerprint': 'sha256:d1', 'mlship.trainingJob': 'job-1' },
    });
    expect(JSON.parse((versions[1].properties.tags as Record<string, string>)['mlship.evidence'])).toEqual(evidence);
    // Lists come two per page; the registry followed nextLink.
    expect(fake.calls.some((c) => c.action === 'GET {ws}/models/cellseg/versions' && c.status === 200)).toBe(true);
  });

  it('takes the next number when another registration claimed the version first (409)', async () => {
    const registry = open();
    await registry.register({ name: 'cellseg', artifactUri: 'azureml://jobs/a/outputs/model', metrics: {}, trainingJob: 'a' });
    fake.models.get('cellseg')!.push({ name: 'cellseg', version: '2', properties: { modelUri: 'azureml://jobs/other/outputs/model' }, created: new Date().toISOString(), hidden: true });
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
