import type { IdentityOptions } from '../../shared/cloud/auth/azure';
import { createHttpHeaders, type HttpClient } from '@azure/core-rest-pipeline';
import { FakeServer, sleep, type RawRequest, type RawResponse } from './http';

/**
 * A small Azure for the real @azure/identity credentials and the ARM client: Entra ID's token endpoint (client
 * assertions), Azure DevOps' OIDC endpoint, ARM for Azure ML workspaces, jobs (with a cancel LRO) and model
 * versions, the default datastore and code assets, and the MLflow / run-history data plane. Bearer tokens are checked and can be expired; jobs move
 * on a clock advanced per job GET; 429/5xx/slow answers can be injected; every call is recorded.
 */
export interface AzureJobPlan {
  outcome: 'Completed' | 'Failed';
  errorMessage?: string;
  phaseMs: number;
  trainingMs: number;
  metrics: Record<string, number>;
  /** Lines of user_logs/std_log.txt; one more becomes visible per status poll while the job runs. */
  logLines?: string[];
}

interface FakeJob {
  id: string;
  body: { properties: Record<string, unknown> };
  created: string;
  plan: AzureJobPlan;
  elapsed: number;
  cancelAt?: number;
}

interface FakeModelVersion {
  name: string;
  version: string;
  properties: Record<string, unknown>;
  created: string;
  /** Registered by someone else after our list: invisible to list, still conflicts on PUT. */
  hidden?: boolean;
}

export const FAKE_AUTHORITY = 'https://login.fake';
export const FAKE_DEVOPS = 'https://dev.azure.fake';
export const SUB = '00000000-1111-2222-3333-444444444444';
export const API = '2024-04-01';

export class AzureFake extends FakeServer {
  readonly jobs = new Map<string, FakeJob>();
  readonly models = new Map<string, FakeModelVersion[]>();
  /** Code assets by ARM path (…/codes/<name>/versions/<v>). */
  readonly codes = new Map<string, Record<string, unknown>>();
  /** The workspace's default blob datastore; tests point it at Azurite. */
  datastore?: { name: string; accountName: string; containerName: string; endpoint: string; protocol: string; key: string };
  /** Client assertions (the platform's OIDC tokens) Entra ID received, in order. */
  readonly assertions: string[] = [];
  /** Client secrets Entra ID received (service principal secret connections), in order. */
  readonly secrets: string[] = [];
  plan: AzureJobPlan = { outcome: 'Completed', phaseMs: 10, trainingMs: 30, metrics: { mAP: 0.488, dice: 0.861 } };
  tickMs = 10;
  /** Seconds an issued access token claims to live. */
  tokenLifetimeSeconds = 3600;
  systemAccessToken = 'ado-system-access-token';
  private readonly tokens = new Map<string, { expiresAt: number; revoked: boolean }>();
  private issued = 0;

  /** ARM base URL for the workspace scope. */
  workspacePath(rg = 'ml-rg', ws = 'cells-ws'): string {
    return `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.MachineLearningServices/workspaces/${ws}`;
  }

  /** Every token issued so far is rejected from now on, as after a session ends. */
  expireTokens(): void {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  /** A token the fake accepts, for tests that use a plain TokenCredential. */
  mintToken(): { token: string; expiresOnTimestamp: number } {
    const token = `aad-token-${++this.issued}`;
    const expiresAt = Date.now() + this.tokenLifetimeSeconds * 1000;
    this.tokens.set(token, { expiresAt, revoked: false });
    return { token, expiresOnTimestamp: expiresAt };
  }

  /** @azure/identity options that route Entra ID and Azure DevOps requests here. */
  identityOptions(): IdentityOptions {
    const target = this.url;
    const httpClient: HttpClient = {
      async sendRequest(request) {
        const url = request.url.replace(FAKE_AUTHORITY, `${target}/aad`).replace(FAKE_DEVOPS, `${target}/devops`);
        const res = await fetch(url, {
          method: request.method,
          headers: request.headers.toJSON(),
          body: request.body as string | undefined,
        });
        const headers = createHttpHeaders();
        res.headers.forEach((v, k) => headers.set(k, v));
        return { request, status: res.status, headers, bodyAsText: await res.text() };
      },
    };
    return { authorityHost: FAKE_AUTHORITY, httpClient, disableInstanceDiscovery: true };
  }

  protected async handle(req: RawRequest): Promise<RawResponse> {
    const p = req.url.pathname;
    if (p.startsWith('/aad/')) return this.aad(req);
    // Log files are read with the SAS URL run history hands out: no bearer token.
    if (p.startsWith('/joblogs/')) return this.jobLog(req);
    if (p.startsWith('/devops/')) return this.devops(req);
    if (p === '/msi') return this.managedIdentity(req);
    const action = `${req.method} ${p.replace(/\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.MachineLearningServices\/workspaces\/[^/]+/, '{ws}')}`;
    const auth = this.checkToken(req);
    const record = (out: RawResponse) => {
      const error = out.status >= 400 ? (JSON.parse(String(out.body || '{}')) as { error?: { code?: string } }).error?.code : undefined;
      this.calls.push({
        service: 'arm',
        action,
        status: out.status,
        error,
        body: req.body.length ? JSON.parse(req.body.toString()) : undefined,
        principal: auth.token,
        at: Date.now(),
      });
      return out;
    };
    const fault = this.nextFault(action);
    if (fault?.kind === 'slow') await sleep(fault.delayMs ?? 0);
    if (fault?.kind === 'throttle')
      return record({
        status: 429,
        headers: { 'retry-after': '0', 'content-type': 'application/json' },
        body: JSON.stringify({ error: { code: 'TooManyRequests', message: 'The request is being throttled.' } }),
      });
    if (fault?.kind === '5xx') return record(armError(503, 'ServiceUnavailable', 'The service is temporarily unavailable.'));
    if (auth.error) return record(auth.error);
    if (p.startsWith('/mlflow/') || p.startsWith('/history/')) return record(this.dataPlane(req));
    if (!req.url.searchParams.get('api-version'))
      return record(
        armError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.'),
      );
    return record(this.arm(req));
  }

  // --- Entra ID and Azure DevOps OIDC -----------------------------------------------------------------

  private aad(req: RawRequest): RawResponse {
    const tenant = req.url.pathname.split('/')[2];
    if (req.url.pathname.endsWith('/openid-configuration')) {
      const base = `${FAKE_AUTHORITY}/${tenant}`;
      return json(200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
      });
    }
    const form = new URLSearchParams(req.body.toString());
    const assertion = form.get('client_assertion');
    const secret = form.get('client_secret');
    // Entra ID takes a client assertion (federated token, or a JWT signed with the app's certificate) or a secret.
    const grant = assertion ? 'assertion' : secret ? 'secret' : undefined;
    this.calls.push({
      service: 'aad',
      action: 'token',
      status: grant ? 200 : 400,
      body: { client_id: form.get('client_id'), scope: form.get('scope'), grant },
      at: Date.now(),
    });
    if (!grant)
      return json(400, { error: 'invalid_client', error_description: 'AADSTS7000216: client_assertion or client_secret is required.' });
    if (assertion) this.assertions.push(assertion);
    else this.secrets.push(secret!);
    const t = this.mintToken();
    return json(200, {
      token_type: 'Bearer',
      expires_in: this.tokenLifetimeSeconds,
      ext_expires_in: this.tokenLifetimeSeconds,
      access_token: t.token,
    });
  }

  /** The App Service managed-identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER), which agents on Azure VMs and App Service use. */
  readonly identityHeader = 'msi-identity-header';
  private managedIdentity(req: RawRequest): RawResponse {
    const ok = req.headers['x-identity-header'] === this.identityHeader;
    this.calls.push({
      service: 'msi',
      action: 'token',
      status: ok ? 200 : 401,
      body: { resource: req.url.searchParams.get('resource') },
      at: Date.now(),
    });
    if (!ok) return json(401, { error: 'unauthorized', error_description: 'X-IDENTITY-HEADER is missing or wrong.' });
    const t = this.mintToken();
    return json(200, {
      access_token: t.token,
      expires_on: String(Math.floor(t.expiresOnTimestamp / 1000)),
      resource: req.url.searchParams.get('resource'),
      token_type: 'Bearer',
    });
  }

  private devops(req: RawRequest): RawResponse {
    const ok = req.headers.authorization === `Bearer ${this.systemAccessToken}`;
    const connection = req.url.searchParams.get('serviceConnectionId');
    this.calls.push({ service: 'devops', action: 'oidctoken', status: ok ? 200 : 401, body: { connection }, at: Date.now() });
    if (!ok) return json(401, { message: 'TF400813: The user is not authorized to access this resource.' });
    return json(200, { oidcToken: `ado-oidc-${connection}-${this.assertions.length + 1}` });
  }

  private checkToken(req: RawRequest): { token?: string; error?: RawResponse } {
    const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const known = token ? this.tokens.get(token) : undefined;
    if (!token || !known) return { token, error: armError(401, 'InvalidAuthenticationToken', 'The access token is invalid.') };
    if (known.revoked || Date.now() > known.expiresAt) {
      return {
        token,
        error: {
          ...armError(401, 'ExpiredAuthenticationToken', 'The access token expiry UTC time is earlier than current UTC time.'),
          headers: {
            'content-type': 'application/json',
            'www-authenticate': 'Bearer error="invalid_token", error_description="The access token has expired."',
          },
        },
      };
    }
    return { token };
  }

  // --- ARM -----------------------------------------------------------------------------------------------

  private arm(req: RawRequest): RawResponse {
    const m =
      /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.MachineLearningServices\/(workspaces\/([^/]+)|locations\/([^/]+)\/mfeOperationResults\/([^/]+))(\/.*)?$/.exec(
        req.url.pathname,
      );
    if (!m) return armError(404, 'NotFound', `no route for ${req.url.pathname}`);
    const [, , , , ws, , operation, rest = ''] = m;
    const wsPath = req.url.pathname.slice(0, req.url.pathname.length - rest.length);
    if (operation) return this.operation(operation);
    if (rest === '' && req.method === 'GET') {
      const host = new URL(this.url).host;
      return json(200, {
        id: wsPath,
        name: ws,
        location: 'westeurope',
        properties: { mlFlowTrackingUri: `azureml://${host}/mlflow/v1.0${wsPath}`, discoveryUrl: `${this.url}/discovery` },
      });
    }
    let r: RegExpExecArray | null;
    if ((r = /^\/jobs\/([^/]+)$/.exec(rest))) return req.method === 'PUT' ? this.putJob(r[1], wsPath, req) : this.getJob(r[1], wsPath);
    if ((r = /^\/jobs\/([^/]+)\/cancel$/.exec(rest)) && req.method === 'POST') return this.cancelJob(r[1], m[1], m[2]);
    if (rest === '/datastores' && req.method === 'GET') {
      const d = this.datastore;
      return json(200, {
        value:
          d && req.url.searchParams.get('isDefault') === 'true'
            ? [
                {
                  id: `${wsPath}/datastores/${d.name}`,
                  name: d.name,
                  properties: {
                    datastoreType: 'AzureBlob',
                    accountName: d.accountName,
                    containerName: d.containerName,
                    endpoint: d.endpoint,
                    protocol: d.protocol,
                    isDefault: true,
                    credentials: { credentialsType: 'AccountKey' },
                  },
                },
              ]
            : [],
      });
    }
    if ((r = /^\/datastores\/([^/]+)\/listSecrets$/.exec(rest)) && req.method === 'POST') {
      return this.datastore?.name === r[1]
        ? json(200, { secretsType: 'AccountKey', key: this.datastore.key })
        : armError(404, 'UserError', `Datastore ${r[1]} not found`);
    }
    if ((r = /^\/codes\/([^/]+)\/versions\/([^/]+)$/.exec(rest))) {
      const key = `${wsPath}${rest}`;
      if (req.method === 'PUT') {
        const created = !this.codes.has(key);
        this.codes.set(key, JSON.parse(req.body.toString()).properties);
        return json(created ? 201 : 200, { id: key, name: r[2], properties: this.codes.get(key) });
      }
      const code = this.codes.get(key);
      return code ? json(200, { id: key, name: r[2], properties: code }) : armError(404, 'UserError', `Code ${r[1]}:${r[2]} not found`);
    }
    if ((r = /^\/models\/([^/]+)$/.exec(rest)) && req.method === 'PUT')
      return json(200, { name: r[1], properties: JSON.parse(req.body.toString()).properties });
    if ((r = /^\/models\/([^/]+)\/versions$/.exec(rest))) return this.listVersions(r[1], wsPath, req);
    if ((r = /^\/models\/([^/]+)\/versions\/([^/]+)$/.exec(rest)))
      return req.method === 'PUT' ? this.putVersion(r[1], r[2], wsPath, req) : this.getVersion(r[1], r[2], wsPath);
    return armError(404, 'NotFound', `no route for ${req.method} ${rest}`);
  }

  private putJob(id: string, wsPath: string, req: RawRequest): RawResponse {
    const body = JSON.parse(req.body.toString()) as FakeJob['body'];
    const existing = this.jobs.get(id);
    if (existing) {
      existing.body.properties.tags = body.properties.tags;
      return json(200, this.jobResource(existing, wsPath));
    }
    for (const field of ['command', 'environmentId', 'computeId']) {
      if (!body.properties?.[field]) return armError(400, 'UserError', `${field} is required for a command job.`);
    }
    const job: FakeJob = { id, body, created: new Date().toISOString(), plan: { ...this.plan }, elapsed: 0 };
    this.jobs.set(id, job);
    return json(201, this.jobResource(job, wsPath));
  }

  private getJob(id: string, wsPath: string): RawResponse {
    const job = this.jobs.get(id);
    if (!job) return armError(404, 'UserError', `Could not find job with name ${id}`);
    const out = json(200, this.jobResource(job, wsPath));
    job.elapsed += this.tickMs;
    return out;
  }

  private cancelJob(id: string, sub: string, rg: string): RawResponse {
    const job = this.jobs.get(id);
    if (!job) return armError(404, 'UserError', `Could not find job with name ${id}`);
    if (['Completed', 'Failed', 'Canceled'].includes(this.jobStatus(job)))
      return armError(400, 'UserError', `Job ${id} is already in a terminal state.`);
    job.cancelAt ??= job.elapsed;
    return {
      status: 202,
      headers: {
        location: `${this.url}/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.MachineLearningServices/locations/westeurope/mfeOperationResults/jc:${id}?api-version=${API}`,
        'retry-after': '0',
      },
    };
  }

  /** The cancel LRO: 202 until the job is Canceled, then 200. */
  private operation(op: string): RawResponse {
    const job = this.jobs.get(op.replace(/^jc:/, ''));
    if (!job) return armError(404, 'NotFound', 'operation not found');
    job.elapsed += this.tickMs;
    return this.jobStatus(job) === 'Canceled' ? { status: 200 } : { status: 202, headers: { 'retry-after': '0' } };
  }

  jobStatus(job: FakeJob): string {
    const p = job.plan;
    if (job.cancelAt !== undefined) return job.elapsed < job.cancelAt + p.phaseMs ? 'CancelRequested' : 'Canceled';
    const phases: [string, number][] = [
      ['NotStarted', p.phaseMs],
      ['Queued', p.phaseMs],
      ['Preparing', p.phaseMs],
      ['Running', p.trainingMs],
      ['Finalizing', p.phaseMs],
    ];
    let t = 0;
    for (const [status, length] of phases) {
      if (job.elapsed < t + length) return status;
      t += length;
    }
    return p.outcome;
  }

  private jobResource(job: FakeJob, wsPath: string): unknown {
    const props = job.body.properties;
    const outputs = Object.fromEntries(
      Object.entries((props.outputs as Record<string, Record<string, unknown>>) ?? {}).map(([k, v]) => [k, { ...v, uri: v.uri ?? null }]),
    );
    return {
      id: `${wsPath}/jobs/${job.id}`,
      name: job.id,
      type: 'Microsoft.MachineLearningServices/workspaces/jobs',
      systemData: { createdAt: job.created, createdByType: 'Application' },
      properties: {
        ...props,
        status: this.jobStatus(job),
        outputs,
        services: { Studio: { jobServiceType: 'Studio', endpoint: `https://ml.azure.com/runs/${job.id}?wsid=${wsPath}` } },
      },
    };
  }

  private putVersion(name: string, version: string, wsPath: string, req: RawRequest): RawResponse {
    const body = JSON.parse(req.body.toString()) as { properties: Record<string, unknown> };
    const list = this.models.get(name) ?? [];
    const existing = list.find((v) => v.version === version);
    if (existing) {
      if (existing.properties.modelUri !== body.properties.modelUri)
        return armError(
          409,
          'Conflict',
          `Model version ${name}:${version} already exists with a different modelUri; versions are immutable.`,
        );
      existing.properties = { ...existing.properties, tags: body.properties.tags, description: body.properties.description };
      return json(200, versionResource(existing, wsPath));
    }
    const v: FakeModelVersion = { name, version, properties: body.properties, created: new Date().toISOString() };
    list.push(v);
    this.models.set(name, list);
    return json(201, versionResource(v, wsPath));
  }

  private getVersion(name: string, version: string, wsPath: string): RawResponse {
    const v = this.models.get(name)?.find((x) => x.version === version);
    return v ? json(200, versionResource(v, wsPath)) : armError(404, 'UserError', `Model ${name}:${version} not found`);
  }

  /** Pages of two versions, so clients must follow nextLink. */
  private listVersions(name: string, wsPath: string, req: RawRequest): RawResponse {
    const all = (this.models.get(name) ?? []).filter((v) => !v.hidden);
    const skip = Number(req.url.searchParams.get('$skip') ?? 0);
    const page = all.slice(skip, skip + 2);
    const next = skip + 2 < all.length ? `${this.url}${wsPath}/models/${name}/versions?api-version=${API}&$skip=${skip + 2}` : undefined;
    return json(200, { value: page.map((v) => versionResource(v, wsPath)), nextLink: next });
  }

  // --- data plane ------------------------------------------------------------------------------------------

  private jobLog(req: RawRequest): RawResponse {
    const job = this.jobs.get(decodeURIComponent(req.url.pathname.split('/')[2]));
    if (!job || req.url.searchParams.get('sig') !== 'fake-sas') return { status: 403, headers: {}, body: 'AuthenticationFailed' };
    const lines = job.plan.logLines ?? [];
    const done = ['Completed', 'Failed', 'Canceled'].includes(this.jobStatus(job));
    const text = Buffer.from(
      lines
        .slice(0, done ? lines.length : Math.floor(job.elapsed / this.tickMs))
        .map((l) => `${l}\n`)
        .join(''),
    );
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (!range) return { status: 200, headers: { 'content-type': 'text/plain' }, body: text };
    const start = Number(range[1]);
    if (start >= text.length) return { status: 416, headers: { 'content-range': `bytes */${text.length}` } };
    const end = Math.min(text.length - 1, range[2] ? Number(range[2]) : text.length - 1);
    return {
      status: 206,
      headers: { 'content-type': 'text/plain', 'content-range': `bytes ${start}-${end}/${text.length}` },
      body: text.subarray(start, end + 1),
    };
  }

  private dataPlane(req: RawRequest): RawResponse {
    const details = /\/runs\/([^/]+)\/details$/.exec(req.url.pathname);
    if (details) {
      const job = this.jobs.get(decodeURIComponent(details[1]));
      if (!job) return json(404, { error: { code: 'UserError', message: 'Run not found' } });
      return json(200, {
        runId: job.id,
        status: this.jobStatus(job),
        logFiles: job.plan.logLines ? { 'user_logs/std_log.txt': `${this.url}/joblogs/${job.id}/std_log.txt?sig=fake-sas` } : {},
      });
    }
    if (req.url.pathname.endsWith('/api/2.0/mlflow/runs/get')) {
      const job = this.jobs.get(req.url.searchParams.get('run_id') ?? '');
      if (!job) return json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Run not found' });
      const metrics =
        this.jobStatus(job) === 'Completed'
          ? Object.entries(job.plan.metrics).map(([key, value]) => ({ key, value, timestamp: Date.now(), step: 0 }))
          : [];
      return json(200, { run: { info: { run_id: job.id, status: 'FINISHED' }, data: { metrics } } });
    }
    const m = /\/experiments\/([^/]+)\/runs\/([^/]+)$/.exec(req.url.pathname);
    const job = m ? this.jobs.get(decodeURIComponent(m[2])) : undefined;
    if (!job) return json(404, { error: { code: 'UserError', message: 'Run not found' } });
    const status = this.jobStatus(job);
    return json(200, {
      runId: job.id,
      status,
      experimentId: 'exp-1',
      ...(status === 'Failed' ? { error: { error: { code: 'UserError', message: job.plan.errorMessage } } } : {}),
    });
  }
}

function versionResource(v: FakeModelVersion, wsPath: string): unknown {
  return {
    id: `${wsPath}/models/${v.name}/versions/${v.version}`,
    name: v.version,
    systemData: { createdAt: v.created },
    properties: v.properties,
  };
}

function json(status: number, body: unknown): RawResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function armError(status: number, code: string, message: string): RawResponse {
  return json(status, { error: { code, message } });
}
