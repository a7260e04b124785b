import { MemoryHost } from '../../../shared/hosts/memory-host';
import { createSubmitTrainingStep } from '../../../shared/steps/submit-training';
import { AzureFake, FAKE_DEVOPS, SUB } from '../../fakes/azure-fake';
import { until } from '../../fakes/http';
import { FAST_RETRY, ciHost, runPost, tempWorkspace, write, run, track } from '../../training/helpers';

let fake: AzureFake;
let workspace: string;
let step: ReturnType<typeof createSubmitTrainingStep>;

const spec = (armEndpoint: string) => `name: cellseg
backend: azureml
command: python train.py --data \${{inputs.train}} --epochs \${{inputs.epochs}} --out \${{outputs.model}}
inputs:
  train: azureml://datastores/workspaceblobstore/paths/cells/train/
  val: { uri: azureml://datastores/workspaceblobstore/paths/cells/val/, mode: download }
hyperparameters: { epochs: 20, lr: 0.001 }
environment: { WANDB_MODE: offline }
maxRuntimeMinutes: 120
azureml:
  subscriptionId: ${SUB}
  resourceGroup: ml-rg
  workspace: cells-ws
  compute: gpu-cluster
  environment: azureml:acpt-pytorch-2.2-cuda12.1:23
  code: /subscriptions/${SUB}/resourceGroups/ml-rg/providers/Microsoft.MachineLearningServices/workspaces/cells-ws/codes/cellseg/versions/3
  experimentName: cellseg-ci
  instanceType: Standard_NC6s_v3
  instanceCount: 2
  distribution: { type: pytorch, processCountPerInstance: 1 }
  armEndpoint: ${armEndpoint}
`;

const github = {
  jobSpec: 'azureml.yml',
  pollInterval: 0.005,
  azureClientId: '11111111-2222-3333-4444-555555555555',
  azureTenantId: '99999999-8888-7777-6666-555555555555',
};

beforeEach(async () => {
  fake = await new AzureFake().start();
  workspace = tempWorkspace();
  write(workspace, 'azureml.yml', spec(fake.url));
  step = createSubmitTrainingStep({ retry: FAST_RETRY, azureIdentityOptions: fake.identityOptions() });
});

afterEach(() => fake.close());

const jobPuts = () => fake.calls.filter((c) => /^PUT \{ws\}\/jobs\//.test(c.action));

describe('submit-training on Azure ML (ARM REST + real @azure/identity against the fake)', () => {
  it('streams the job’s user log from run history during the wait, in groups of at most log-lines-per-poll lines', async () => {
    fake.plan = { ...fake.plan, trainingMs: 80, logLines: Array.from({ length: 9 }, (_, i) => `epoch ${i + 1}/9 dice=0.${70 + i}`) };
    const h = ciHost({ ...github, logLinesPerPoll: 2 }, workspace, {});
    await run(step, h);
    expect(h.failure).toBeUndefined();
    const printed = h.logs.filter((l) => l.message.startsWith('  | epoch')).map((l) => l.message);
    expect(printed).toEqual(Array.from({ length: 9 }, (_, i) => `  | epoch ${i + 1}/9 dice=0.${70 + i}`));
    const groups = h.logs.filter((l) => l.level === 'group' && l.message.startsWith('Training log ')).length;
    expect(groups).toBeGreaterThanOrEqual(3);
    const firstLine = h.logs.findIndex((l) => l.message.startsWith('  | epoch 1/9'));
    expect(firstLine).toBeLessThan(h.logs.findIndex((l) => / Completed/.test(l.message)));
  });

  it('PUTs a command job, waits, and reads metrics from MLflow; tokens come from GitHub OIDC', async () => {
    const h = ciHost(github, workspace, {});
    await run(step, h);
    expect(h.failure).toBeUndefined();
    const name = h.outputs.jobName;
    expect(name).toMatch(/^cellseg-[0-9a-f]{12}$/);
    expect(h.outputs.status).toBe('Completed');
    expect(JSON.parse(h.outputs.metrics)).toEqual({ mAP: 0.488, dice: 0.861 });
    expect(h.outputs.modelUri).toBe(`azureml://jobs/${name}/outputs/model`);
    expect(h.outputs.consoleUrl).toBe(`https://ml.azure.com/runs/${name}?wsid=${fake.workspacePath()}`);

    expect(jobPuts()).toHaveLength(1);
    const body = jobPuts()[0].body as { properties: Record<string, unknown> };
    const ws = fake.workspacePath();
    expect(body.properties).toMatchObject({
      jobType: 'Command',
      experimentName: 'cellseg-ci',
      command: 'python train.py --data ${{inputs.train}} --epochs ${{inputs.epochs}} --out ${{outputs.model}}',
      environmentId: `${ws}/environments/acpt-pytorch-2.2-cuda12.1/versions/23`,
      computeId: `${ws}/computes/gpu-cluster`,
      codeId: `${ws}/codes/cellseg/versions/3`,
      environmentVariables: { WANDB_MODE: 'offline' },
      inputs: {
        train: { jobInputType: 'uri_folder', uri: 'azureml://datastores/workspaceblobstore/paths/cells/train/' },
        val: { jobInputType: 'uri_folder', uri: 'azureml://datastores/workspaceblobstore/paths/cells/val/', mode: 'Download' },
        epochs: { jobInputType: 'literal', value: '20' },
        lr: { jobInputType: 'literal', value: '0.001' },
      },
      outputs: { model: { jobOutputType: 'uri_folder', mode: 'ReadWriteMount' } },
      distribution: { distributionType: 'PyTorch', processCountPerInstance: 1 },
      resources: { instanceCount: 2, instanceType: 'Standard_NC6s_v3' },
      limits: { jobLimitsType: 'Command', timeout: 'PT7200S' },
      tags: { 'mlship:repository': 'acme/cells', 'mlship:run-id': '4242', 'mlship:commit': 'c0ffee1234567890' },
    });
    // Every ARM call carried the api-version; the token came from exchanging GitHub's OIDC token.
    expect(fake.calls.filter((c) => c.service === 'arm' && c.status === 400)).toHaveLength(0);
    expect(fake.assertions).toEqual(expect.arrayContaining([h.idTokens[0].token]));
    expect(new Set(h.idTokens.map((t) => t.audience))).toEqual(new Set(['api://AzureADTokenExchange']));
    const statuses = h.logs
      .map((l) => l.message)
      .filter((m) => m.includes(`] ${name}: `))
      .map((m) => m.split(`${name}: `)[1]);
    expect(statuses).toEqual(['NotStarted', 'Queued', 'Preparing', 'Running', 'Finalizing', 'Completed']);
  });

  it('starts one job per workflow run across three re-runs', async () => {
    const names: string[] = [];
    for (const [attempt, wait] of [
      [1, false],
      [2, true],
      [3, true],
    ] as const) {
      const h = ciHost({ ...github, wait }, workspace, {}, { attempt });
      await run(step, h);
      expect(h.failure).toBeUndefined();
      names.push(h.outputs.jobName);
    }
    expect(new Set(names).size).toBe(1);
    expect(jobPuts()).toHaveLength(1);
    expect(fake.jobs.size).toBe(1);
  });

  it('cancels the job through the cancel LRO when the run is cancelled', async () => {
    fake.plan = { ...fake.plan, trainingMs: 600_000 };
    const h = ciHost(github, workspace, {});
    const controller = new AbortController();
    const running = run(step, h, controller.signal);
    await until(() => [...fake.jobs.values()].some((j) => fake.jobStatus(j) === 'Running'));
    controller.abort();
    await running;
    const name = [...fake.jobs.keys()][0];
    expect(h.failure).toContain(`The run was cancelled; training job ${name} was stopped.`);
    expect(fake.calls.filter((c) => c.action === `POST {ws}/jobs/${name}/cancel`)).toHaveLength(1);
    expect(fake.jobStatus(fake.jobs.get(name)!)).toBe('Canceled');
    await runPost(step, h);
    expect(fake.calls.filter((c) => c.action.endsWith('/cancel'))).toHaveLength(1);
  });

  it('post entry cancels the job when the main process died mid-wait', async () => {
    fake.plan = { ...fake.plan, trainingMs: 600_000 };
    const first = ciHost({ ...github, wait: false }, workspace, {});
    await run(step, first);
    const h = ciHost(github, workspace, {});
    for (const key of ['jobName', 'backend', 'connection']) h.saveState(key, first.getState(key)!);
    await runPost(step, h);
    expect(fake.calls.filter((c) => c.action === `POST {ws}/jobs/${first.outputs.jobName}/cancel`)).toHaveLength(1);
  });

  it('fails the step with Azure ML’s error message for a failed job', async () => {
    fake.plan = {
      ...fake.plan,
      outcome: 'Failed',
      errorMessage: "Execution failed. User process 'python' exited with status code 1: RuntimeError: CUDA error: out of memory",
    };
    const h = ciHost(github, workspace, {});
    await run(step, h);
    const name = [...fake.jobs.keys()][0];
    expect(h.failure).toContain(
      `Training job ${name} failed (Failed): UserError: Execution failed. User process 'python' exited with status code 1: RuntimeError: CUDA error: out of memory`,
    );
    expect(fake.calls.some((c) => c.action === `GET /history/v1.0{ws}/experiments/cellseg-ci/runs/${name}`)).toBe(true);
  });

  it('rides out 20 throttles (429 + Retry-After) and 5xx', async () => {
    fake.throttle(20);
    fake.serverErrors(3);
    const h = ciHost(github, workspace, {});
    await run(step, h);
    expect(h.failure).toBeUndefined();
    expect(h.outputs.status).toBe('Completed');
    expect(fake.calls.filter((c) => c.error === 'TooManyRequests')).toHaveLength(20);
    expect(fake.calls.filter((c) => c.error === 'ServiceUnavailable')).toHaveLength(3);
    expect(jobPuts().filter((c) => c.status === 201)).toHaveLength(1);
  });

  it('gets a fresh GitHub OIDC token and access token when the fake expires tokens mid-wait', async () => {
    fake.plan = { ...fake.plan, trainingMs: 300 };
    const h = ciHost(github, workspace, {});
    const running = run(step, h);
    await until(() => fake.calls.filter((c) => c.action.startsWith('GET {ws}/jobs/') && c.status === 200).length >= 3);
    fake.expireTokens();
    await running;
    expect(h.failure).toBeUndefined();
    expect(h.outputs.status).toBe('Completed');
    expect(fake.calls.filter((c) => c.error === 'ExpiredAuthenticationToken').length).toBeGreaterThanOrEqual(1);
    expect(fake.assertions.length).toBeGreaterThanOrEqual(2);
    expect(new Set(fake.assertions).size).toBe(fake.assertions.length);
    const principals = new Set(fake.calls.filter((c) => c.action.startsWith('GET {ws}/jobs/')).map((c) => c.principal));
    expect(principals.size).toBeGreaterThanOrEqual(2);
    expect(h.text).not.toMatch(/aad-token-\d/);
  });

  it('uses the Azure DevOps service connection (workload identity federation) with System.AccessToken', async () => {
    const saved = process.env.SYSTEM_OIDCREQUESTURI;
    process.env.SYSTEM_OIDCREQUESTURI = `${FAKE_DEVOPS}/oidctoken`;
    try {
      const h = ciHost({ jobSpec: 'azureml.yml', pollInterval: 0.005, azureServiceConnection: 'ml-conn' }, workspace, {
        SYSTEM_ACCESSTOKEN: fake.systemAccessToken,
      });
      h.connections = [
        {
          id: 'ml-conn',
          scheme: 'WorkloadIdentityFederation',
          parameters: { tenantid: '99999999-8888-7777-6666-555555555555', serviceprincipalid: 'app-1' },
          data: { subscriptionid: SUB },
        },
      ];
      await run(step, h);
      expect(h.failure).toBeUndefined();
      expect(h.outputs.status).toBe('Completed');
      // MSAL asks for the assertion when it builds the token request; every ask went to the service connection.
      const oidc = fake.calls.filter((c) => c.service === 'devops');
      expect(oidc.length).toBeGreaterThanOrEqual(1);
      expect(oidc.every((c) => c.status === 200 && (c.body as { connection: string }).connection === 'ml-conn')).toBe(true);
      expect(fake.assertions).toEqual(['ado-oidc-ml-conn-1']);
      expect(h.idTokens).toHaveLength(0);
    } finally {
      if (saved === undefined) delete process.env.SYSTEM_OIDCREQUESTURI;
      else process.env.SYSTEM_OIDCREQUESTURI = saved;
    }
  });

  it('explains a missing System.AccessToken and where credentials come from', async () => {
    const h = ciHost({ jobSpec: 'azureml.yml', azureServiceConnection: 'ml-conn' }, workspace, {});
    h.connections = [
      { id: 'ml-conn', scheme: 'WorkloadIdentityFederation', parameters: { tenantid: 't', serviceprincipalid: 'app-1' }, data: {} },
    ];
    await run(step, h);
    expect(h.failure).toContain(
      'Service connection "ml-conn" uses workload identity federation, which needs the pipeline\'s System.AccessToken, but SYSTEM_ACCESSTOKEN is not in the task\'s environment.',
    );
    expect(h.failure).toContain('env: { SYSTEM_ACCESSTOKEN: $(System.AccessToken) }');
    expect(fake.calls).toHaveLength(0);
  });

  it('lists the Azure credential sources it tried when none works', async () => {
    // A host without OIDC and no client id: DefaultAzureCredential, restricted to the environment source so
    // the test does not probe this machine's managed identity or CLI logins.
    const saved = { ...process.env };
    for (const k of Object.keys(process.env)) if (k.startsWith('AZURE_')) delete process.env[k];
    process.env.AZURE_TOKEN_CREDENTIALS = 'EnvironmentCredential';
    try {
      const h = track(new MemoryHost({ jobSpec: 'azureml.yml' }, { workspace, env: {} }));
      await run(step, h);
      expect(h.failure).toContain('No usable Azure credential: DefaultAzureCredential failed:');
      expect(h.failure).toContain('1. azure-service-connection (Azure DevOps): not set');
      expect(h.failure).toContain('2. OIDC federation: this platform (memory) issues no OIDC token to the step');
      expect(h.failure).toContain('3. DefaultAzureCredential: environment');
      expect(h.failure).toContain('GitHub: add `permissions: id-token: write`');
      expect(h.failure).toContain('Azure DevOps: create an Azure Resource Manager service connection with workload identity federation');
      expect(fake.calls.filter((c) => c.service === 'arm')).toHaveLength(0);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('rejects an unpinned environment label', async () => {
    write(
      workspace,
      'latest.yml',
      spec(fake.url).replace('azureml:acpt-pytorch-2.2-cuda12.1:23', 'azureml:acpt-pytorch-2.2-cuda12.1@latest'),
    );
    const h = ciHost({ ...github, jobSpec: 'latest.yml' }, workspace, {});
    await run(step, h);
    expect(h.failure).toContain(
      'The Azure ML environment "azureml:acpt-pytorch-2.2-cuda12.1@latest" uses a label; the step needs a pinned version.',
    );
    expect(jobPuts()).toHaveLength(0);
  });
});
