import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { createSubmitTrainingStep } from '../../shared/steps/submit-training';
import { AzureFake, SUB } from '../fakes/azure-fake';
import { AzuriteBlob } from '../ota/support/azurite';
import { requirePython } from '../support/python-env';
import { FAST_RETRY, ciHost, run, tempWorkspace, write } from './helpers';

/**
 * A standard Azure ML command-job YAML (test/fixtures/azureml/command-job.yml, checked by azure-ai-ml's own
 * load_job) submitted unchanged. ARM is the team's fake (Azure ML has no emulator); the code upload goes to a
 * real Azurite blob service, as the workspace's default datastore.
 */
const FIXTURE = path.resolve(__dirname, '../fixtures/azureml');
const azurite = new AzuriteBlob();
const CONTAINER = 'azureml-blobstore-test';
let fake: AzureFake;

beforeAll(async () => {
  await azurite.start();
  await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER).create();
}, 60_000);
afterAll(() => azurite.stop());
beforeEach(async () => {
  fake = await new AzureFake().start();
  fake.datastore = {
    name: 'workspaceblobstore',
    accountName: azurite.account,
    containerName: CONTAINER,
    endpoint: `127.0.0.1:${azurite.port}`,
    protocol: 'http',
    key: azurite.key,
  };
});
afterEach(() => fake.close());

function workspaceWithFixture(): string {
  const ws = tempWorkspace('mlship-amlyaml-');
  fs.cpSync(FIXTURE, path.join(ws, 'ml'), { recursive: true });
  return ws;
}

const inputs = () => ({
  jobSpec: 'ml/command-job.yml',
  pollInterval: 0.005,
  azureClientId: '11111111-2222-3333-4444-555555555555',
  azureTenantId: '99999999-8888-7777-6666-555555555555',
  azureSubscriptionId: SUB,
  azureResourceGroup: 'ml-rg',
  azureWorkspace: 'cells-ws',
  azureArmEndpoint: fake.url,
});

async function uploadedBlobs(): Promise<string[]> {
  const names: string[] = [];
  for await (const b of BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER).listBlobsFlat())
    names.push(b.name);
  return names.sort();
}

describe('Azure ML command-job YAML as users write it', () => {
  it('is valid for azure-ai-ml’s own loader', () => {
    const python = requirePython(['azure.ai.ml']);
    const r = spawnSync(
      python,
      [
        '-c',
        'import sys; from azure.ai.ml import load_job; j = load_job(sys.argv[1]); print(j.type, j.code, j.compute, j.resources.instance_count, j.distribution.type)',
        path.join(FIXTURE, 'command-job.yml'),
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.stderr.trim().split('\n').pop() ?? '').not.toMatch(/Error/);
    expect(r.stdout.trim()).toBe('command ./src gpu-cluster 2 pytorch');
  });

  it('submits unchanged: local code uploaded to the default datastore as a content-hashed code asset, once', async () => {
    const step = createSubmitTrainingStep({ retry: FAST_RETRY, azureIdentityOptions: fake.identityOptions() });
    const ws = workspaceWithFixture();
    const h = ciHost(inputs(), ws, {});
    await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(h.outputs.status).toBe('Completed');
    const blobs = await uploadedBlobs();
    const hash = /^LocalUpload\/([0-9a-f]{32})\/src\//.exec(blobs[0])?.[1];
    expect(blobs).toEqual([
      `LocalUpload/${hash}/src/.amlignore`,
      `LocalUpload/${hash}/src/cells/net.py`,
      `LocalUpload/${hash}/src/train.py`,
    ]);
    const codeId = `${fake.workspacePath()}/codes/mlship-${hash}/versions/1`;
    expect(fake.codes.get(codeId)).toMatchObject({
      codeUri: `http://127.0.0.1:${azurite.port}/${azurite.account}/${CONTAINER}/LocalUpload/${hash}/src`,
      isAnonymous: true,
    });

    const job = fake.calls.find((c) => /^PUT \{ws\}\/jobs\//.test(c.action))!.body as { properties: Record<string, any> };
    expect(job.properties).toMatchObject({
      jobType: 'Command',
      displayName: 'cell segmentation',
      description: "U-Net on the lab's cell images",
      experimentName: 'cellseg',
      codeId,
      environmentId: `${fake.workspacePath()}/environments/acpt-pytorch-2.2-cuda12.1/versions/23`,
      computeId: `${fake.workspacePath()}/computes/gpu-cluster`,
      environmentVariables: { WANDB_MODE: 'offline' },
      distribution: { distributionType: 'PyTorch', processCountPerInstance: 1 },
      resources: { instanceCount: 2, instanceType: 'Standard_NC6s_v3', shmSize: '16g' },
      limits: { jobLimitsType: 'Command', timeout: 'PT7200S' },
    });
    expect(job.properties.command).toBe(
      'python train.py --data ${{inputs.train}} --epochs ${{inputs.epochs}} --lr ${{inputs.lr}} --out ${{outputs.model}}',
    );
    expect(job.properties.inputs).toEqual({
      train: { jobInputType: 'uri_folder', uri: 'azureml://datastores/workspaceblobstore/paths/cells/train/', mode: 'ReadOnlyMount' },
      epochs: { jobInputType: 'literal', value: '20' },
      lr: { jobInputType: 'literal', value: '0.001' },
    });
    expect(job.properties.outputs).toEqual({ model: { jobOutputType: 'uri_folder', mode: 'ReadWriteMount' } });

    // Another run of the same code: a new job, the same code asset, nothing uploaded.
    const again = ciHost(inputs(), ws, {}, { id: 'another-run' });
    await run(step, again);
    expect(again.failure).toBeUndefined();
    expect(again.text).toContain(`is unchanged (3 files); using code asset mlship-${hash}.`);
    expect(fake.calls.filter((c) => /^PUT \{ws\}\/codes\//.test(c.action))).toHaveLength(1);
    expect(await uploadedBlobs()).toEqual(blobs);
    const jobs = fake.calls.filter((c) => /^PUT \{ws\}\/jobs\//.test(c.action));
    expect(jobs).toHaveLength(2);
    expect((jobs[1].body as { properties: { codeId: string } }).properties.codeId).toBe(codeId);
  });

  it.each([
    [
      'an unknown key',
      'resources:\n',
      'resource:\n',
      'unknown field "resource"; did you mean "resources"?',
      'Rename "resource" to "resources".',
    ],
    [
      'a field mlship cannot map',
      'limits:\n',
      'services:\n  my_jupyter: { type: jupyter_lab }\nlimits:\n',
      'field "services" (line 32) is valid Azure ML YAML but mlship cannot map it',
      'Remove "services", or submit this job with az ml job create.',
    ],
    [
      'a local data path',
      'path: azureml://datastores/workspaceblobstore/paths/cells/train/',
      'path: ./data/train',
      'input "train" is the local path "./data/train"; mlship does not upload data with the job.',
      'az ml data create',
    ],
    [
      'an inline environment',
      'environment: azureml:acpt-pytorch-2.2-cuda12.1:23',
      'environment: { image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04 }',
      'field "environment" is an inline environment',
      'az ml environment create',
    ],
  ])('names %s with its line and the fix', async (_, from, to, message, hint) => {
    const step = createSubmitTrainingStep({ retry: FAST_RETRY, azureIdentityOptions: fake.identityOptions() });
    const ws = workspaceWithFixture();
    const file = path.join(ws, 'ml/command-job.yml');
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toContain(from);
    write(ws, 'ml/command-job.yml', text.replace(from, to));
    const h = ciHost(inputs(), ws, {});
    await run(step, h);
    expect(h.failure).toContain(`The Azure ML job YAML ${file}: ${message}`);
    expect(h.failure).toContain(hint);
    expect(fake.calls.filter((c) => c.service === 'arm')).toHaveLength(0);
  });
});
