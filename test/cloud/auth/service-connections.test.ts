/**
 * Service connections the way the Azure Pipelines agent hands them to a task: for an input of type
 * `connectedService:<type>` it sets ENDPOINT_URL_<id>, ENDPOINT_AUTH_<id> (JSON), ENDPOINT_AUTH_SCHEME_<id>,
 * ENDPOINT_AUTH_PARAMETER_<id>_<KEY> and ENDPOINT_DATA_<id>_<KEY>, plus SYSTEM_OIDCREQUESTURI for OIDC. The real
 * AzureHost reads them through azure-pipelines-task-lib, and the real @azure/identity and @aws-sdk credential
 * classes use them. STS is moto_server. Entra ID, the App Service managed-identity endpoint and Azure DevOps'
 * oidctoken API have no emulator, so test/fakes/azure-fake.ts speaks their wire protocol.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CloudConnections } from '../../../shared/cloud/connections';
import { createContext } from '../../../shared/core/context';
import type { Host } from '../../../shared/core/host';
import { Summary } from '../../../shared/core/summary';
import { AzureFake, FAKE_DEVOPS, SUB } from '../../fakes/azure-fake';
import { startMoto, type Moto } from '../../support/moto';
import { runAzureTask, shippedBundle } from '../../support/runners';

const ARM = 'https://management.azure.com/.default';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = '3f1a0d3c-5a7e-4d8b-9d0e-1b2c3d4e5f60';
const CONN = 'a7f5c2e1-0b9d-4c3a-8e6f-2d1c0b9a8e7f';

let fake: AzureFake;
let moto: Moto;
const saved = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(() => moto.stop());
beforeEach(async () => {
  fake = await new AzureFake().start();
});
afterEach(async () => {
  await fake.close();
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

interface Endpoint {
  url?: string;
  scheme: string;
  parameters: Record<string, string>;
  data?: Record<string, string>;
}

/** The variables the agent sets for one service connection. */
function agentVariables(id: string, e: Endpoint): Record<string, string> {
  const vars: Record<string, string> = {
    [`ENDPOINT_URL_${id}`]: e.url ?? 'https://management.azure.com/',
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ parameters: e.parameters, scheme: e.scheme }),
    [`ENDPOINT_AUTH_SCHEME_${id}`]: e.scheme,
  };
  for (const [k, v] of Object.entries(e.parameters)) vars[`ENDPOINT_AUTH_PARAMETER_${id}_${k.toUpperCase()}`] = v;
  for (const [k, v] of Object.entries(e.data ?? {})) vars[`ENDPOINT_DATA_${id}_${k.toUpperCase()}`] = v;
  return vars;
}

/**
 * A real AzureHost over a fresh copy of azure-pipelines-task-lib, which moves inputs and endpoint credentials from
 * the environment into its vault when it loads (once per process, hence the flag reset).
 */
function azureHost(env: Record<string, string>): { host: Host; stdout: string[] } {
  Object.assign(process.env, { AGENT_TEMPDIRECTORY: fs.mkdtempSync(path.join(os.tmpdir(), 'agent-')) }, env);
  delete (global as Record<string, unknown>)._vsts_task_lib_loaded;
  const stdout: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => (stdout.push(String(chunk)), true)) as typeof process.stdout.write;
  let host!: Host;
  try {
    jest.isolateModules(() => {
      const { AzureHost } = require('../../../azure-tasks/_host/azure-host') as typeof import('../../../azure-tasks/_host/azure-host');
      host = new AzureHost();
    });
  } finally {
    process.stdout.write = write;
  }
  // Later task-lib output (##vso[task.setsecret], debug lines) is collected too, not printed into jest's output.
  const wrap = <K extends keyof Host>(key: K) => {
    const inner = host[key] as unknown as (...a: unknown[]) => unknown;
    (host as unknown as Record<string, unknown>)[key] = (...a: unknown[]) => {
      const w = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((chunk: string) => (stdout.push(String(chunk)), true)) as typeof process.stdout.write;
      try {
        return inner.apply(host, a);
      } finally {
        process.stdout.write = w;
      }
    };
  };
  for (const key of ['setSecret', 'debug', 'info', 'getServiceConnection'] as const) wrap(key);
  return { host, stdout };
}

function connections(host: Host, settings: ConstructorParameters<typeof CloudConnections>[1]) {
  const ctx = createContext(host, new AbortController().signal, new Summary());
  return new CloudConnections(ctx, { ...settings, identityOptions: fake.identityOptions() });
}

const azureSettings = (id = CONN) => ({ azure: { serviceConnection: id, resourceGroup: 'ml-rg', workspace: 'cells-ws' } });

describe('Azure Resource Manager service connections read from the agent', () => {
  it('workload identity federation: AzurePipelinesCredential with the connection id and System.AccessToken', async () => {
    const { host, stdout } = azureHost({
      ...agentVariables(CONN, {
        scheme: 'WorkloadIdentityFederation',
        parameters: { tenantid: TENANT, serviceprincipalid: APP },
        data: { subscriptionId: SUB },
      }),
      SYSTEM_OIDCREQUESTURI: `${FAKE_DEVOPS}/oidctoken`,
      SYSTEM_ACCESSTOKEN: fake.systemAccessToken,
    });
    const azure = connections(host, azureSettings()).azure();
    expect(azure.auth.source).toBe(`Azure DevOps service connection "${CONN}" (workload identity federation)`);
    expect(azure.workspace.subscriptionId).toBe(SUB);
    const token = await azure.auth.token(ARM);
    expect(token).toMatch(/^aad-token-/);
    // MSAL may ask for the assertion more than once while it builds the request; every ask names this connection.
    const oidc = fake.calls.filter((c) => c.service === 'devops');
    expect(oidc.length).toBeGreaterThanOrEqual(1);
    expect(oidc.every((c) => c.status === 200 && (c.body as { connection: string }).connection === CONN)).toBe(true);
    expect(fake.assertions).toEqual([`ado-oidc-${CONN}-1`]);
    expect(fake.calls.find((c) => c.service === 'aad')?.body).toMatchObject({ client_id: APP, grant: 'assertion' });
    // The job token and the access token are masked for the rest of the job.
    const masked = stdout.join('');
    expect(masked).toContain(`##vso[task.setsecret]${fake.systemAccessToken}`);
    expect(masked).toContain(`##vso[task.setsecret]${token}`);
  });

  it('service principal with a secret: ClientSecretCredential', async () => {
    const { host, stdout } = azureHost(
      agentVariables(CONN, {
        scheme: 'ServicePrincipal',
        parameters: { tenantid: TENANT, serviceprincipalid: APP, serviceprincipalkey: 'spn-secret-value', authenticationType: 'spnKey' },
        data: { subscriptionId: SUB },
      }),
    );
    const azure = connections(host, azureSettings()).azure();
    expect(azure.auth.source).toBe(`Azure DevOps service connection "${CONN}" (service principal secret)`);
    await azure.auth.token(ARM);
    expect(fake.secrets).toEqual(['spn-secret-value']);
    expect(stdout.join('')).toContain('##vso[task.setsecret]spn-secret-value');
  });

  it('service principal with a certificate: ClientCertificateCredential signs a client assertion with it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-cert-'));
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=mlship-test',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    const pem = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') + fs.readFileSync(path.join(dir, 'key.pem'), 'utf8');
    const { host } = azureHost(
      agentVariables(CONN, {
        scheme: 'ServicePrincipal',
        parameters: { tenantid: TENANT, serviceprincipalid: APP, authenticationType: 'spnCertificate', servicePrincipalCertificate: pem },
        data: { subscriptionId: SUB },
      }),
    );
    const azure = connections(host, azureSettings()).azure();
    expect(azure.auth.source).toBe(`Azure DevOps service connection "${CONN}" (service principal certificate)`);
    await azure.auth.token(ARM);
    expect(fake.assertions).toHaveLength(1);
    const header = JSON.parse(Buffer.from(fake.assertions[0].split('.')[0], 'base64url').toString()) as Record<string, string>;
    expect(header.alg).toMatch(/^(RS256|PS256)$/);
    expect(header.x5t ?? header['x5t#S256']).toBeTruthy();
  });

  it('managed identity: ManagedIdentityCredential on the agent machine', async () => {
    const { host } = azureHost({
      ...agentVariables(CONN, { scheme: 'ManagedServiceIdentity', parameters: { tenantid: TENANT }, data: { subscriptionId: SUB } }),
      IDENTITY_ENDPOINT: `${fake.url}/msi`,
      IDENTITY_HEADER: fake.identityHeader,
    });
    const azure = connections(host, azureSettings()).azure();
    expect(azure.auth.source).toBe(`Azure DevOps service connection "${CONN}" (managed identity)`);
    expect(await azure.auth.token(ARM)).toMatch(/^aad-token-/);
    expect(fake.calls.filter((c) => c.service === 'msi')).toEqual([
      expect.objectContaining({ status: 200, body: { resource: 'https://management.azure.com' } }),
    ]);
  });

  it('names the connection, the scheme found and what to grant, and prints no secret', async () => {
    const { host, stdout } = azureHost({ SYSTEM_ACCESSTOKEN: 'job-token-never-printed' });
    expect(() => connections(host, azureSettings('ml-prod')).azure()).toThrow(
      'Service connection "ml-prod" (input azureServiceConnection) was not handed to the task: the agent provided no authorization scheme for it.',
    );
    try {
      connections(host, azureSettings('ml-prod')).azure();
    } catch (error) {
      expect((error as { hint: string }).hint).toContain('an Azure Resource Manager service connection');
      expect((error as { hint: string }).hint).toContain('Pipeline permissions');
    }
    const other = azureHost(
      agentVariables(CONN, { scheme: 'UsernamePassword', parameters: { username: 'u', password: 'p4ssw0rd-never-printed' } }),
    );
    expect(() => connections(other.host, azureSettings()).azure()).toThrow(
      `Service connection "${CONN}" (input azureServiceConnection) uses the "UsernamePassword" authorization scheme, which this step cannot use.`,
    );
    expect(stdout.join('')).not.toContain('job-token-never-printed');
  });
});

describe('AWS service connections (AWS Toolkit for Azure DevOps) read from the agent', () => {
  const awsEnv = () => ({ AWS_ENDPOINT_URL_STS: moto.url, AWS_REGION: 'eu-west-1' });

  it('access keys: used as they are, and masked', async () => {
    const { host, stdout } = azureHost({
      ...awsEnv(),
      ...agentVariables(CONN, {
        scheme: 'UsernamePassword',
        parameters: { username: 'AKIAEXAMPLEKEY00001', password: 'aws-secret-key-value' },
      }),
    });
    const aws = connections(host, { awsServiceConnection: CONN }).aws();
    expect(aws.auth.source).toBe(`AWS service connection "${CONN}" (access keys)`);
    expect(await aws.auth.credentials()).toMatchObject({ accessKeyId: 'AKIAEXAMPLEKEY00001', secretAccessKey: 'aws-secret-key-value' });
    expect(stdout.join('')).toContain('##vso[task.setsecret]aws-secret-key-value');
  });

  it('access keys with the connection’s role: AssumeRole at STS (moto) with the external id', async () => {
    const { host } = azureHost({
      ...awsEnv(),
      ...agentVariables(CONN, {
        scheme: 'UsernamePassword',
        parameters: {
          username: 'AKIAEXAMPLEKEY00002',
          password: 'aws-secret-2',
          assumeRoleArn: 'arn:aws:iam::123456789012:role/mlship-ci',
          externalId: 'lab-42',
          roleSessionName: 'cells-ci',
        },
      }),
    });
    const aws = connections(host, { awsServiceConnection: CONN }).aws();
    expect(aws.auth.source).toBe(`role arn:aws:iam::123456789012:role/mlship-ci assumed with AWS service connection "${CONN}"`);
    const creds = await aws.auth.credentials();
    expect(creds.accessKeyId).toMatch(/^ASIA/);
    expect(creds.sessionToken).toBeTruthy();
    expect(creds.accessKeyId).not.toBe('AKIAEXAMPLEKEY00002');
  });

  it('OpenID Connect: a token from Azure DevOps for this connection, exchanged at STS (moto) for the role', async () => {
    const { host } = azureHost({
      ...awsEnv(),
      ...agentVariables(CONN, { scheme: 'None', parameters: { role: 'arn:aws:iam::123456789012:role/mlship-oidc' } }),
      SYSTEM_OIDCREQUESTURI: `${fake.url}/devops/oidctoken`,
      SYSTEM_ACCESSTOKEN: fake.systemAccessToken,
    });
    const aws = connections(host, { awsServiceConnection: CONN }).aws();
    expect(aws.auth.source).toBe(`AWS service connection "${CONN}" (OpenID Connect)`);
    const creds = await aws.auth.credentials();
    expect(creds.accessKeyId).toMatch(/^ASIA/);
    expect(fake.calls.filter((c) => c.service === 'devops')).toEqual([
      expect.objectContaining({ status: 200, body: { connection: CONN } }),
    ]);
  });

  it('OpenID Connect without System.AccessToken says which variable to map', async () => {
    const { host } = azureHost({
      ...awsEnv(),
      ...agentVariables(CONN, { scheme: 'None', parameters: { role: 'arn:aws:iam::123456789012:role/mlship-oidc' } }),
      SYSTEM_OIDCREQUESTURI: `${fake.url}/devops/oidctoken`,
    });
    const aws = connections(host, { awsServiceConnection: CONN }).aws();
    await expect(aws.auth.credentials()).rejects.toThrow(
      `Service connection "${CONN}" (input awsServiceConnection) uses OpenID Connect, which needs the pipeline's System.AccessToken, but SYSTEM_ACCESSTOKEN is not in the task's environment.`,
    );
  });

  it('a connection with only one of the two keys is refused naming the missing one', async () => {
    const { host } = azureHost({
      ...awsEnv(),
      ...agentVariables(CONN, { scheme: 'UsernamePassword', parameters: { username: 'AKIAEXAMPLEKEY00003' } }),
    });
    expect(() => connections(host, { awsServiceConnection: CONN }).aws()).toThrow(
      `AWS service connection "${CONN}" (input awsServiceConnection) has no secret access key.`,
    );
  });
});

describe('the built Azure DevOps task and a connection the pipeline may not use', () => {
  it('fails naming the connection and what to grant, without printing the job token', async () => {
    const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'conn-ws-'));
    fs.writeFileSync(
      path.join(ws, 'job.yml'),
      [
        'name: cellseg',
        'backend: azureml',
        'command: python train.py',
        'azureml:',
        `  subscriptionId: ${SUB}`,
        '  resourceGroup: ml-rg',
        '  workspace: cells-ws',
        '  compute: gpu-cluster',
        '  environment: azureml:acpt-pytorch-2.2-cuda12.1:23',
        '',
      ].join('\n'),
    );
    const run = await runAzureTask(
      shippedBundle('azure', 'submit-training'),
      { backend: 'azureml', jobSpec: 'job.yml', azureServiceConnection: 'ml-prod' },
      { workspace: ws, env: { SYSTEM_ACCESSTOKEN: 'job-token-never-printed', AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential' } },
    );
    // The agent reads the task's result from ##vso[task.complete], not from its exit code.
    expect(run.result).toBe('Failed');
    const log = run.lines.join('\n');
    expect(log).toContain('Service connection "ml-prod" (input azureServiceConnection) was not handed to the task');
    expect(log).toContain('Pipeline permissions');
    expect(log).not.toContain('job-token-never-printed');
    expect(log).not.toMatch(/\n\s+at /);
  });
});
