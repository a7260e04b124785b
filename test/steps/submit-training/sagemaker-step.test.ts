import { MemoryHost } from '../../../shared/hosts/memory-host';
import { createSubmitTrainingStep } from '../../../shared/steps/submit-training';
import { AwsFake, STATIC_KEY } from '../../fakes/aws-fake';
import { until } from '../../fakes/http';
import { FAST_RETRY, ciHost, host, runPost, tempWorkspace, write, run, track } from '../../training/helpers';

const step = createSubmitTrainingStep({ retry: FAST_RETRY });

const SPEC = `# cell segmentation on SageMaker
name: cellseg
inputs:
  train: s3://mlship-data/cells/train/
  val: s3://mlship-data/cells/val/
outputPath: s3://mlship-models/cellseg/
hyperparameters: { epochs: 20, lr: 0.001 }
environment: { WANDB_MODE: offline }
tags: { team: vision }
maxRuntimeMinutes: 120
sagemaker:
  image: 763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311
  roleArn: arn:aws:iam::123456789012:role/SageMakerTraining
  instanceType: ml.g5.2xlarge
  volumeSizeGb: 100
  entryPoint: train.py
  sourceDir: s3://mlship-code/cellseg/sourcedir.tar.gz
  spot: { maxWaitMinutes: 240, checkpointS3Uri: s3://mlship-models/checkpoints/ }
  metricDefinitions: [{ name: mAP, regex: 'mAP=([0-9.]+)' }]
`;

let fake: AwsFake;
let workspace: string;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  fake = await new AwsFake().start();
  workspace = tempWorkspace();
  write(workspace, 'train/sagemaker.yml', SPEC);
  env = {
    AWS_REGION: 'eu-west-1',
    AWS_ENDPOINT_URL_SAGEMAKER: fake.url,
    AWS_ENDPOINT_URL_STS: fake.url,
    AWS_ENDPOINT_URL_S3: fake.url,
    AWS_ACCESS_KEY_ID: STATIC_KEY.accessKeyId,
    AWS_SECRET_ACCESS_KEY: STATIC_KEY.secretAccessKey,
  };
});

afterEach(() => fake.close());

// The fake speaks SageMaker, S3 and STS only; log streaming from CloudWatch Logs is tested against moto
// (test/training/sagemaker-moto.test.ts).
const base = { backend: 'sagemaker', jobSpec: 'train/sagemaker.yml', pollInterval: 0.005, streamLogs: false };

describe('submit-training on SageMaker (real SDK against the fake)', () => {
  it('submits the full CreateTrainingJob request, waits, and returns the model and final metrics', async () => {
    const h = host(base, workspace, env);
    const outcome = await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(outcome.ok).toBe(true);
    const name = h.outputs.jobName;
    expect(name).toMatch(/^cellseg-[0-9a-f]{12}$/);
    expect(h.outputs.status).toBe('Completed');
    expect(h.outputs.modelUri).toBe(`s3://mlship-models/cellseg/${name}/output/model.tar.gz`);
    expect(JSON.parse(h.outputs.metrics)).toEqual({ mAP: 0.512, loss: 0.07 });
    expect(h.outputs.consoleUrl).toBe(`https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/${name}`);

    const creates = fake.callsOf('CreateTrainingJob');
    expect(creates).toHaveLength(1);
    const req = creates[0].body as Record<string, any>;
    expect(req.RoleArn).toBe('arn:aws:iam::123456789012:role/SageMakerTraining');
    expect(req.AlgorithmSpecification).toEqual({
      TrainingImage: '763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311',
      TrainingInputMode: 'File',
      MetricDefinitions: [{ Name: 'mAP', Regex: 'mAP=([0-9.]+)' }],
    });
    expect(req.InputDataConfig.map((c: any) => [c.ChannelName, c.DataSource.S3DataSource.S3Uri])).toEqual([
      ['train', 's3://mlship-data/cells/train/'],
      ['val', 's3://mlship-data/cells/val/'],
    ]);
    expect(req.OutputDataConfig).toEqual({ S3OutputPath: 's3://mlship-models/cellseg/' });
    expect(req.ResourceConfig).toEqual({ InstanceType: 'ml.g5.2xlarge', InstanceCount: 1, VolumeSizeInGB: 100 });
    expect(req.StoppingCondition).toEqual({ MaxRuntimeInSeconds: 7200, MaxWaitTimeInSeconds: 14400 });
    expect(req.EnableManagedSpotTraining).toBe(true);
    expect(req.CheckpointConfig).toEqual({ S3Uri: 's3://mlship-models/checkpoints/' });
    // Script-mode containers read JSON-encoded hyperparameters.
    expect(req.HyperParameters).toEqual({
      epochs: '20',
      lr: '0.001',
      sagemaker_program: '"train.py"',
      sagemaker_submit_directory: '"s3://mlship-code/cellseg/sourcedir.tar.gz"',
      sagemaker_region: '"eu-west-1"',
    });
    expect(req.Environment).toEqual({ WANDB_MODE: 'offline' });
    expect(req.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'team', Value: 'vision' },
        { Key: 'mlship:repository', Value: 'acme/cells' },
        { Key: 'mlship:run-id', Value: '4242' },
        { Key: 'mlship:commit', Value: 'c0ffee1234567890' },
      ]),
    );
    // Progress: one log line per phase, one progress report per poll, billable seconds at the end.
    const transitions = h.logs
      .map((l) => l.message)
      .filter((m) => m.includes(`] ${name}: `))
      .map((m) => m.split(`${name}: `)[1]);
    expect(transitions).toEqual([
      'InProgress / Starting — Launching requested ML instances',
      'InProgress / Downloading — Downloading input data',
      'InProgress / Training — Training image download completed. Training in progress.',
      'InProgress / Uploading — Uploading generated training model',
      'Completed — billable 1234 s — Training job completed',
    ]);
    expect(h.progressReports).toHaveLength(7);
    expect(h.progressReports.every((r) => r.label === `training ${name}`)).toBe(true);
    expect(h.summary).toContain('| Billable seconds | 1234 |');
  });

  it('starts one job per workflow run across three re-runs of it', async () => {
    const names: string[] = [];
    // Attempt 1 submits without waiting (as if its runner died right after), attempts 2 and 3 attach.
    for (const [attempt, wait] of [
      [1, false],
      [2, true],
      [3, true],
    ] as const) {
      const h = host({ ...base, wait }, workspace, env, { attempt });
      await run(step, h);
      expect(h.failure).toBeUndefined();
      names.push(h.outputs.jobName);
      if (attempt > 1) expect(h.text).toContain(`Attaching to training job ${names[0]}`);
    }
    expect(new Set(names).size).toBe(1);
    expect(fake.callsOf('CreateTrainingJob')).toHaveLength(1);
    expect(fake.jobs.size).toBe(1);

    // A different workflow run gets its own job.
    const other = host(base, workspace, env, { id: '4243' });
    await run(step, other);
    expect(other.outputs.jobName).not.toBe(names[0]);
    expect(fake.callsOf('CreateTrainingJob')).toHaveLength(2);
  });

  it('stops the job when the run is cancelled mid-wait', async () => {
    fake.plan = { ...fake.plan, trainingMs: 60_000 };
    const h = host(base, workspace, env);
    const controller = new AbortController();
    const running = run(step, h, controller.signal);
    await until(() => [...fake.jobs.values()].some((j) => fake.jobState(j).secondary === 'Training'));
    controller.abort(new Error('cancelled by SIGINT'));
    const outcome = await running;
    expect(outcome.ok).toBe(false);
    const name = [...fake.jobs.keys()][0];
    expect(h.failure).toContain(`The run was cancelled; training job ${name} was stopped.`);
    expect(fake.callsOf('StopTrainingJob').map((c) => (c.body as { TrainingJobName: string }).TrainingJobName)).toEqual([name]);
    expect(fake.jobState(fake.jobs.get(name)!).status).toMatch(/^Stopp(ing|ed)$/);
    // The main entry handled it, so the post entry has nothing left to do.
    await runPost(step, h);
    expect(fake.callsOf('StopTrainingJob')).toHaveLength(1);
  });

  it('leaves the job running on cancel when keep-running-on-cancel is set', async () => {
    fake.plan = { ...fake.plan, trainingMs: 60_000 };
    const h = host({ ...base, keepRunningOnCancel: true }, workspace, env);
    const controller = new AbortController();
    const running = run(step, h, controller.signal);
    await until(() => fake.callsOf('DescribeTrainingJob').length >= 3);
    controller.abort();
    await running;
    expect(h.failure).toContain('was left running');
    expect(fake.callsOf('StopTrainingJob')).toHaveLength(0);
  });

  it('post entry stops the job when the main process was killed during the wait', async () => {
    fake.plan = { ...fake.plan, trainingMs: 60_000 };
    const first = host({ ...base, wait: false }, workspace, env);
    await run(step, first);
    const name = first.outputs.jobName;
    // What the killed main process had saved: everything except "mainEnded".
    const h = host(base, workspace, env);
    for (const key of ['jobName', 'backend', 'connection']) h.saveState(key, first.getState(key)!);
    await runPost(step, h);
    expect(fake.callsOf('StopTrainingJob').map((c) => (c.body as { TrainingJobName: string }).TrainingJobName)).toEqual([name]);
    expect(h.text).toContain(`stopping training job ${name}`);
  });

  it('still succeeds after 20 injected throttles and a few 5xx', async () => {
    fake.throttle(20);
    fake.serverErrors(3, 'DescribeTrainingJob');
    const h = host(base, workspace, env);
    await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(h.outputs.status).toBe('Completed');
    expect(fake.calls.filter((c) => c.error === 'ThrottlingException')).toHaveLength(20);
    expect(fake.calls.filter((c) => c.error === 'ServiceUnavailable')).toHaveLength(3);
    expect(fake.callsOf('CreateTrainingJob').filter((c) => c.status === 200)).toHaveLength(1);
  });

  it('fails the step with the service’s FailureReason, and re-runs start a new job only when asked', async () => {
    fake.plan = {
      ...fake.plan,
      outcome: 'Failed',
      failureReason: 'AlgorithmError: CUDA out of memory. Tried to allocate 2.00 GiB, exit code 1',
    };
    const h = host(base, workspace, env);
    await run(step, h);
    const name = [...fake.jobs.keys()][0];
    expect(h.failure).toContain(
      `Training job ${name} failed (Failed): AlgorithmError: CUDA out of memory. Tried to allocate 2.00 GiB, exit code 1`,
    );
    expect(h.summary).toContain('| Failure | AlgorithmError: CUDA out of memory');

    const rerun = host(base, workspace, env, { attempt: 2 });
    await run(step, rerun);
    expect(rerun.failure).toContain(`Training job ${name} of this run already failed (Failed): AlgorithmError`);
    expect(rerun.failure).toContain('rerun-failed: true');
    expect(fake.callsOf('CreateTrainingJob')).toHaveLength(1);

    fake.plan = { ...fake.plan, outcome: 'Completed' };
    const asked = host({ ...base, rerunFailed: true }, workspace, env, { attempt: 3 });
    await run(step, asked);
    expect(asked.failure).toBeUndefined();
    expect(asked.outputs.jobName).toBe(`${name}-r2`);
    expect(fake.callsOf('CreateTrainingJob')).toHaveLength(2);
  });

  it('detached mode returns the job name; the same step with job-name attaches later', async () => {
    const submit = host({ ...base, wait: false }, workspace, env);
    await run(step, submit);
    expect(submit.failure).toBeUndefined();
    const name = submit.outputs.jobName;
    expect(submit.outputs.status).toBe('InProgress');
    expect(submit.outputs.metrics).toBeUndefined();

    const attach = host({ backend: 'sagemaker', jobName: name, pollInterval: 0.005, streamLogs: false }, workspace, env, {
      id: 'another-run',
    });
    await run(step, attach);
    expect(attach.failure).toBeUndefined();
    expect(attach.outputs.jobName).toBe(name);
    expect(attach.outputs.status).toBe('Completed');
    expect(JSON.parse(attach.outputs.metrics).mAP).toBe(0.512);
    expect(fake.callsOf('CreateTrainingJob')).toHaveLength(1);

    const missing = host({ backend: 'sagemaker', jobName: 'no-such-job' }, workspace, env);
    await run(step, missing);
    expect(missing.failure).toContain('There is no sagemaker training job named no-such-job to attach to.');
  });

  it('treats a job stopped from outside as a failure, not a success', async () => {
    fake.plan = { ...fake.plan, trainingMs: 10_000_000 };
    const h = host(base, workspace, env);
    const running = run(step, h);
    const job = await until(() => [...fake.jobs.values()].find((j) => fake.jobState(j).secondary === 'Training'));
    job.stoppedAt = job.elapsed; // someone pressed "Stop" in the console
    await running;
    expect(h.failure).toMatch(/Training job cellseg-[0-9a-f]{12} was stopped \(Stopped\)/);
    expect(h.outputs.modelUri).toBeUndefined();
    expect(fake.callsOf('StopTrainingJob')).toHaveLength(0);
  });

  it('stops the job when the wait times out', async () => {
    fake.plan = { ...fake.plan, trainingMs: 10_000_000 };
    const h = host({ ...base, timeoutMinutes: 0.0005 }, workspace, env);
    await run(step, h);
    const name = [...fake.jobs.keys()][0];
    expect(h.failure).toContain(`The wait timed out after 0.0005 minutes; training job ${name} was stopped.`);
    expect(fake.callsOf('StopTrainingJob')).toHaveLength(1);
  });

  it('registers the model in the SageMaker Model Registry when asked', async () => {
    const h = host({ ...base, register: true, registry: 'sagemaker', dataFingerprint: 'sha256:abc' }, workspace, env);
    await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(h.outputs.modelVersion).toBe('1');
    const pkg = fake.packages[0];
    expect(pkg.group).toBe('cellseg');
    expect(pkg.metadata).toMatchObject({
      'mlship:stage': 'candidate',
      'mlship:trainingJob': h.outputs.jobName,
      'mlship:gitCommit': 'c0ffee1234567890',
      'mlship:dataFingerprint': 'sha256:abc',
      'metric:mAP': '0.512',
    });
    expect(h.summary).toContain('| Registered | cellseg v1 (candidate) |');
    expect(h.summary).toContain(
      '| Logs | https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs',
    );
  });

  it('names the wrong job-spec field, its line and the allowed values', async () => {
    write(workspace, 'bad.yml', SPEC.replace('  instanceType: ml.g5.2xlarge', '  instanceTyp: ml.g5.2xlarge\n  inputMode: Fast'));
    const h = host({ ...base, jobSpec: 'bad.yml' }, workspace, env);
    const outcome = await run(step, h);
    expect(outcome.ok).toBe(false);
    expect(h.failure).toContain('has 2 invalid fields');
    expect(h.failure).toContain(
      'unknown field "sagemaker.instanceTyp"; allowed fields under "sagemaker": region, image, roleArn, instanceType, instanceCount',
    );
    expect(h.failure).toContain('Did you mean "instanceType"? (line 14)');
    expect(h.failure).toContain('field "sagemaker.inputMode" is "Fast"; allowed values: File, FastFile, Pipe (line 15)');
    expect(h.logs.find((l) => l.level === 'error')?.annotation).toEqual({ file: `${workspace}/bad.yml`, line: 14, column: undefined });
    expect(fake.calls).toHaveLength(0);
  });

  it('says which AWS credential sources it tried and how to set one up', async () => {
    const saved = { ...process.env };
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
    Object.assign(process.env, {
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: `${workspace}/none`,
      AWS_SHARED_CREDENTIALS_FILE: `${workspace}/none`,
    });
    try {
      const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...noKeys } = env;
      void AWS_ACCESS_KEY_ID;
      void AWS_SECRET_ACCESS_KEY;
      const h = track(new MemoryHost(base, { workspace, env: noKeys }));
      await run(step, h);
      expect(h.failure).toContain('No AWS credentials found. Tried:');
      expect(h.failure).toContain("1. role-to-assume with the platform's OIDC token: not set");
      expect(h.failure).toContain('2. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment: not set');
      expect(h.failure).toContain('3. the AWS SDK default chain');
      expect(h.failure).toContain('GitHub: add `permissions: id-token: write` and set the input role-to-assume');
      expect(h.failure).toContain('Azure DevOps:');
      expect(fake.calls).toHaveLength(0);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

describe('long jobs outlive short credentials (GitHub OIDC → AssumeRoleWithWebIdentity)', () => {
  const oidcEnv = () => ({ AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL_SAGEMAKER: fake.url, AWS_ENDPOINT_URL_STS: fake.url });
  const inputs = { ...base, roleToAssume: 'arn:aws:iam::123456789012:role/Trainer' };

  it('re-exchanges a fresh OIDC token when the fake expires the credentials mid-wait', async () => {
    fake.plan = { ...fake.plan, trainingMs: 400 };
    const h = ciHost(inputs, workspace, oidcEnv());
    const running = run(step, h);
    await until(() => fake.callsOf('DescribeTrainingJob').filter((c) => c.status === 200).length >= 3);
    fake.expireIssuedCredentials();
    await running;
    expect(h.failure).toBeUndefined();
    expect(h.outputs.status).toBe('Completed');
    expect(fake.calls.filter((c) => c.error === 'ExpiredTokenException').length).toBeGreaterThanOrEqual(1);
    // Each exchange used a new token from the platform, for the STS audience.
    expect(fake.webIdentityTokens.length).toBeGreaterThanOrEqual(2);
    expect(new Set(fake.webIdentityTokens).size).toBe(fake.webIdentityTokens.length);
    expect(h.idTokens.every((t) => t.audience === 'sts.amazonaws.com')).toBe(true);
    const principals = new Set(fake.callsOf('DescribeTrainingJob').map((c) => c.principal));
    expect(principals.size).toBeGreaterThanOrEqual(2);
    expect(h.text).not.toContain('session-token-');
  });

  it('refreshes ahead of expiry when sessions are short', async () => {
    fake.stsLifetimeMs = 30;
    fake.plan = { ...fake.plan, trainingMs: 200 };
    const h = ciHost(inputs, workspace, oidcEnv());
    await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(fake.webIdentityTokens.length).toBeGreaterThanOrEqual(3);
    expect(fake.calls.filter((c) => c.error === 'ExpiredTokenException')).toHaveLength(0);
  });
});
