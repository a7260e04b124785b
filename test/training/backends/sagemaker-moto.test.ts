import * as fs from 'node:fs';
import * as path from 'node:path';
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeModelPackageCommand, DescribeTrainingJobCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { list as listTar } from 'tar';
import { AwsCaller } from '../../../shared/cloud/aws-call';
import type { AwsAuth } from '../../../shared/cloud/auth/aws';
import { createRegistry } from '../../../shared/registry';
import { createSubmitTrainingStep } from '../../../shared/steps/submit-training';
import { uploadSourceDir } from '../../../shared/training/backends/sagemaker-source';
import { FaultProxy } from '../../support/fault-proxy';
import { gateAgainstRegistry } from '../../support/gate-registry';
import { MOTO_KEY, MotoServer } from '../../support/moto';
import { exerciseRegistry } from '../../support/registry-contract';
import { FAST_RETRY, host, run, tempWorkspace, write } from '../helpers';

/**
 * SageMaker, S3, STS and CloudWatch Logs as moto_server emulates them, driven by the real @aws-sdk clients.
 * moto 5.2 creates training jobs already Completed, accepts a second CreateTrainingJob with the same name, and
 * has no StopTrainingJob; the job lifecycle (InProgress → Completed, stop on cancel, ResourceInUse on a re-run,
 * expiring OIDC credentials) therefore stays tested against test/fakes/aws-fake.ts in sagemaker-step.test.ts.
 * Throttling and 5xx are injected by a proxy in front of moto (test/support/fault-proxy.ts).
 */
const moto = new MotoServer();
beforeAll(() => moto.start(), 120_000);
afterAll(() => moto.stop());
beforeEach(() => moto.reset());

const REGION = 'eu-west-1';
const auth: AwsAuth = { credentials: async () => MOTO_KEY, source: 'test', invalidate() {}, check: async () => {} };
const s3 = () => new S3Client({ region: REGION, endpoint: moto.url, forcePathStyle: true, credentials: MOTO_KEY });

async function bucket(name: string): Promise<void> {
  await s3().send(new CreateBucketCommand({ Bucket: name, CreateBucketConfiguration: { LocationConstraint: REGION } }));
}

const SPEC = `name: cellseg
inputs:
  train: s3://mlship-data/cells/train/
outputPath: s3://mlship-models/cellseg/
hyperparameters: { epochs: 20 }
sagemaker:
  image: 763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311
  roleArn: arn:aws:iam::123456789012:role/SageMakerTraining
  instanceType: ml.g5.2xlarge
  entryPoint: train.py
  sourceDir: code
`;

function codeWorkspace(): string {
  const ws = tempWorkspace('mlship-moto-');
  write(ws, 'train/sagemaker.yml', SPEC);
  write(ws, 'code/train.py', 'print("training")\n');
  write(ws, 'code/cells/model.py', 'class Net: pass\n');
  write(ws, 'code/.git/HEAD', 'ref: refs/heads/main\n');
  return ws;
}

describe('submit-training on SageMaker against moto', () => {
  const step = createSubmitTrainingStep({ retry: FAST_RETRY });

  it('packs a local source-dir like the SDK, uploads it to moto’s S3 and sets sagemaker_program / sagemaker_submit_directory', async () => {
    await bucket('mlship-models');
    const ws = codeWorkspace();
    const h = host(
      { backend: 'sagemaker', jobSpec: 'train/sagemaker.yml', jobName: 'cellseg-moto-1', pollInterval: 0.01 },
      ws,
      moto.env(REGION),
    );
    const outcome = await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(outcome.ok).toBe(true);
    const key = 'cellseg/cellseg-moto-1/source/sourcedir.tar.gz';
    const job = await new SageMakerClient({ region: REGION, endpoint: moto.url, credentials: MOTO_KEY }).send(
      new DescribeTrainingJobCommand({ TrainingJobName: 'cellseg-moto-1' }),
    );
    expect(job.HyperParameters).toEqual({
      epochs: '20',
      sagemaker_program: '"train.py"',
      sagemaker_submit_directory: `"s3://mlship-models/${key}"`,
      sagemaker_region: '"eu-west-1"',
    });
    const tarball = Buffer.from(
      await (await s3().send(new GetObjectCommand({ Bucket: 'mlship-models', Key: key }))).Body!.transformToByteArray(),
    );
    const file = path.join(ws, 'downloaded.tar.gz');
    fs.writeFileSync(file, tarball);
    const entries: string[] = [];
    await listTar({ file, onReadEntry: (e) => entries.push(e.path) });
    expect(entries.sort()).toEqual(['cells/model.py', 'train.py']);
    expect(h.text).toContain(`Uploaded source folder ${path.join(ws, 'code')} (2 files`);
    expect(h.outputs.modelUri).toBe('s3://mlship-models/cellseg/cellseg-moto-1/output/model.tar.gz');
  });

  it('uploads the same code only once, and names a missing entry point', async () => {
    await bucket('mlship-models');
    const ws = codeWorkspace();
    const caller = new AwsCaller('S3', s3, auth, FAST_RETRY);
    const log = { debug() {}, info() {}, warning() {}, error() {} };
    const options = {
      dir: path.join(ws, 'code'),
      entryPoint: 'train.py',
      outputPath: 's3://mlship-models/cellseg/',
      jobName: 'j-1',
      s3: caller,
      log,
    };
    const first = await uploadSourceDir(options);
    const head = await s3().send(new HeadObjectCommand({ Bucket: 'mlship-models', Key: 'cellseg/j-1/source/sourcedir.tar.gz' }));
    expect(first).toMatchObject({ uploaded: true, files: 2 });
    expect((await uploadSourceDir(options)).uploaded).toBe(false);
    const again = await s3().send(new HeadObjectCommand({ Bucket: 'mlship-models', Key: 'cellseg/j-1/source/sourcedir.tar.gz' }));
    expect(again.ETag).toBe(head.ETag);
    write(ws, 'code/train.py', 'print("changed")\n');
    expect((await uploadSourceDir(options)).uploaded).toBe(true);
    await expect(uploadSourceDir({ ...options, entryPoint: 'main.py' })).rejects.toThrow(
      `The entry point "main.py" (sagemaker.entryPoint) is not in the source folder ${path.join(ws, 'code')}.`,
    );
  });

  it('streams the job’s CloudWatch Logs into the CI log in collapsible groups, capped per poll', async () => {
    await bucket('mlship-models');
    const logs = new CloudWatchLogsClient({ region: REGION, endpoint: moto.url, credentials: MOTO_KEY });
    await logs.send(new CreateLogGroupCommand({ logGroupName: '/aws/sagemaker/TrainingJobs' }));
    const now = Date.now();
    for (const instance of ['algo-1-1733000000', 'algo-2-1733000000']) {
      const logStreamName = `cellseg-logs/${instance}`;
      await logs.send(new CreateLogStreamCommand({ logGroupName: '/aws/sagemaker/TrainingJobs', logStreamName }));
      await logs.send(
        new PutLogEventsCommand({
          logGroupName: '/aws/sagemaker/TrainingJobs',
          logStreamName,
          logEvents: Array.from({ length: 6 }, (_, i) => ({
            timestamp: now + i,
            message: `epoch ${i + 1}/6 loss=${(1 / (i + 1)).toFixed(3)}`,
          })),
        }),
      );
    }
    const ws = codeWorkspace();
    const h = host(
      { backend: 'sagemaker', jobSpec: 'train/sagemaker.yml', jobName: 'cellseg-logs', pollInterval: 0.01, logLinesPerPoll: 2 },
      ws,
      moto.env(REGION),
    );
    await run(step, h);
    expect(h.failure).toBeUndefined();
    // moto's job is Completed at the first poll, so this is the final drain: 5 polls' worth (10 lines) of 12.
    expect(h.text).toContain('  | [algo-1] epoch 1/6 loss=1.000');
    expect(h.text).toContain('  | [algo-2] epoch 4/6 loss=0.250');
    expect(h.text).not.toContain('[algo-2] epoch 5/6');
    expect(h.text).toContain('  | … the log goes on; read it in full at https://eu-west-1.console.aws.amazon.com/cloudwatch/');
    expect(h.logs.filter((l) => l.level === 'group').map((l) => l.message)).toContainEqual(
      expect.stringMatching(/^Training log cellseg-logs: lines 1–10 \(/),
    );
  });
});

describe('SageMaker Model Registry against moto', () => {
  it('keeps the registry contract (model package groups, approval status, metrics documents in moto’s S3)', async () => {
    await bucket('mlship-models');
    const registry = createRegistry('sagemaker', { region: REGION, env: moto.env(REGION) });
    await exerciseRegistry(registry, (n) => `s3://mlship-models/cellseg/job-${n}/output/model.tar.gz`);
  });

  it('gate-metrics reads the production package’s metrics, opened from the step inputs', async () => {
    await bucket('mlship-models');
    const env = moto.env(REGION);
    await gateAgainstRegistry(
      createRegistry('sagemaker', { region: REGION, env }),
      tempWorkspace('mlship-moto-gate-'),
      { registry: 'sagemaker', region: REGION },
      env,
      (n) => `s3://mlship-models/gate/job-${n}/output/model.tar.gz`,
    );
  });

  it('keeps all per-class metrics in the S3 document while the metadata holds the first 40', async () => {
    await bucket('mlship-models');
    const metrics = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`AP/class-${i}`, i / 100]));
    const registry = createRegistry('sagemaker', { region: REGION, auth, endpoint: moto.url, s3Endpoint: moto.url, retry: FAST_RETRY });
    const v = await registry.register({
      name: 'detector',
      artifactUri: 's3://mlship-models/det/job/output/model.tar.gz',
      metrics,
      trainingJob: 'job',
    });
    expect(Object.keys(v.metrics)).toHaveLength(80);
    const arn = v.properties.modelPackageArn;
    const described = await new SageMakerClient({ region: REGION, endpoint: moto.url, credentials: MOTO_KEY }).send(
      new DescribeModelPackageCommand({ ModelPackageName: arn }),
    );
    expect(Object.keys(described.CustomerMetadataProperties ?? {}).filter((k) => k.startsWith('metric:'))).toHaveLength(40);
    expect(described.ModelMetrics?.ModelQuality?.Statistics?.S3Uri).toMatch(
      /^s3:\/\/mlship-models\/det\/job\/output\/mlship-metrics-[0-9a-f]{12}\.json$/,
    );
  });

  it('asks for an S3 prefix when the artifact is not in S3', async () => {
    const registry = createRegistry('sagemaker', { region: REGION, auth, endpoint: moto.url, s3Endpoint: moto.url, retry: FAST_RETRY });
    await expect(registry.register({ name: 'cellseg', artifactUri: '/local/model', metrics: {} })).rejects.toThrow(
      'The SageMaker registry stores model metrics in S3, but the artifact /local/model is not in S3 and no metrics S3 prefix is set.',
    );
  });

  it('registers through 12 injected throttles and two 500s (a proxy in front of moto)', async () => {
    await bucket('mlship-models');
    const proxy = new FaultProxy(moto.url);
    await proxy.start();
    try {
      proxy.inject(12, { match: (t) => t.startsWith('SageMaker.') });
      proxy.inject(2, { status: 500, type: 'InternalFailure', match: (t) => t === 'SageMaker.CreateModelPackage' });
      const registry = createRegistry('sagemaker', { region: REGION, auth, endpoint: proxy.url, s3Endpoint: proxy.url, retry: FAST_RETRY });
      const v = await registry.register({
        name: 'cellseg',
        artifactUri: 's3://mlship-models/k/model.tar.gz',
        metrics: { dice: 0.9 },
        trainingJob: 'j',
      });
      expect(v).toMatchObject({ version: '1', metrics: { dice: 0.9 } });
      expect(proxy.injected).toBe(14);
      expect(await registry.list('cellseg')).toHaveLength(1);
    } finally {
      await proxy.stop();
    }
  });
});
