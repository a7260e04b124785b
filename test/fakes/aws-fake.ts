import { createHash } from 'node:crypto';
import { FakeServer, sleep, type RawRequest, type RawResponse } from './http';

/**
 * A small AWS that the real SDK clients talk to: SageMaker over its JSON 1.1 protocol
 * (`X-Amz-Target: SageMaker.<Action>`), STS AssumeRoleWithWebIdentity over the query protocol, and S3
 * PutObject/GetObject with path-style addressing. Training jobs move through their statuses on a job clock
 * that advances `tickMs` per DescribeTrainingJob, so what a test sees does not depend on machine speed;
 * throttling, 5xx and slow answers can be injected; credentials are checked and can expire.
 */
export interface JobPlan {
  outcome: 'Completed' | 'Failed';
  failureReason?: string;
  /** Length of each non-training phase. */
  phaseMs: number;
  trainingMs: number;
  metrics: { MetricName: string; Value: number }[];
  billableSeconds: number;
}

interface FakeJob {
  request: Record<string, unknown>;
  created: number;
  plan: JobPlan;
  /** Job clock (ms), advanced by each describe. */
  elapsed: number;
  stoppedAt?: number;
}

interface IssuedCredential {
  secret: string;
  sessionToken?: string;
  expiresAt: number;
  revoked: boolean;
}

interface FakePackage {
  arn: string;
  group: string;
  version: number;
  created: number;
  input: Record<string, unknown>;
  approval: string;
  approvalDescription?: string;
  metadata: Record<string, string>;
  token?: string;
}

const ACCOUNT = '123456789012';
export const STATIC_KEY = { accessKeyId: 'AKIDSTATICFAKE', secretAccessKey: 'static-secret-fake' };

export class AwsFake extends FakeServer {
  readonly jobs = new Map<string, FakeJob>();
  readonly s3 = new Map<string, Buffer>();
  readonly groups = new Map<string, { arn: string; created: number }>();
  readonly packages: FakePackage[] = [];
  /** Web identity tokens STS received, in order. */
  readonly webIdentityTokens: string[] = [];
  private readonly credentials = new Map<string, IssuedCredential>([
    [STATIC_KEY.accessKeyId, { secret: STATIC_KEY.secretAccessKey, expiresAt: Infinity, revoked: false }],
  ]);
  private issued = 0;
  /** What the next training jobs will do. */
  plan: JobPlan = {
    outcome: 'Completed',
    phaseMs: 10,
    trainingMs: 30,
    metrics: [
      { MetricName: 'mAP', Value: 0.512 },
      { MetricName: 'loss', Value: 0.07 },
    ],
    billableSeconds: 1234,
  };
  /** Job time that passes per DescribeTrainingJob call. */
  tickMs = 10;
  /** Lifetime of STS credentials; the Expiration sent adds the SDK's five-minute refresh margin on top. */
  stsLifetimeMs = 3_600_000;

  /** Everything STS has issued so far stops working, as if the sessions ran out. */
  expireIssuedCredentials(): void {
    for (const [key, c] of this.credentials) if (key !== STATIC_KEY.accessKeyId) c.revoked = true;
  }

  protected async handle(req: RawRequest): Promise<RawResponse> {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (target.startsWith('SageMaker.')) return this.sagemaker(target.slice('SageMaker.'.length), req);
    if (req.method === 'POST' && req.url.pathname === '/' && req.body.toString().includes('Action=')) return this.sts(req);
    return this.s3Request(req);
  }

  // --- SageMaker ---------------------------------------------------------------------------------

  private async sagemaker(action: string, req: RawRequest): Promise<RawResponse> {
    const body = JSON.parse(req.body.toString() || '{}') as Record<string, unknown>;
    const auth = this.checkAuth(req);
    const record = (out: RawResponse) => {
      const error = out.status >= 400 ? (JSON.parse(String(out.body)) as { __type: string }).__type : undefined;
      this.calls.push({ service: 'sagemaker', action, status: out.status, error, body, principal: auth.key, at: Date.now() });
      return out;
    };
    const fault = this.nextFault(action);
    if (fault?.kind === 'slow') await sleep(fault.delayMs ?? 0);
    if (fault?.kind === 'throttle') return record(awsError(400, 'ThrottlingException', 'Rate exceeded'));
    if (fault?.kind === '5xx') return record(awsError(503, 'ServiceUnavailable', 'Service is unavailable, please try again'));
    if (auth.error) return record(auth.error);
    const handler = (this as unknown as Record<string, (b: Record<string, unknown>, region: string) => RawResponse>)[`sm${action}`];
    return record(
      handler ? handler.call(this, body, auth.region) : awsError(400, 'UnknownOperationException', `fake does not implement ${action}`),
    );
  }

  private smCreateTrainingJob(b: Record<string, unknown>, region: string): RawResponse {
    const name = String(b.TrainingJobName);
    if (this.jobs.has(name))
      return awsError(
        400,
        'ResourceInUse',
        `Training job names must be unique within an AWS account and region, and a training job with this name already exists (${arn(region, 'training-job', name)})`,
      );
    for (const field of ['RoleArn', 'OutputDataConfig', 'AlgorithmSpecification', 'ResourceConfig', 'StoppingCondition']) {
      if (!b[field])
        return awsError(
          400,
          'ValidationException',
          `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
        );
    }
    this.jobs.set(name, { request: b, created: Date.now(), plan: { ...this.plan }, elapsed: 0 });
    return ok({ TrainingJobArn: arn(region, 'training-job', name) });
  }

  private smDescribeTrainingJob(b: Record<string, unknown>, region: string): RawResponse {
    const name = String(b.TrainingJobName);
    const job = this.jobs.get(name);
    if (!job) return awsError(400, 'ValidationException', 'Requested resource not found.');
    const s = this.jobState(job);
    job.elapsed += this.tickMs;
    const output = String((job.request.OutputDataConfig as { S3OutputPath: string }).S3OutputPath).replace(/\/+$/, '');
    const done = s.status === 'Completed';
    return ok({
      TrainingJobName: name,
      TrainingJobArn: arn(region, 'training-job', name),
      TrainingJobStatus: s.status,
      SecondaryStatus: s.secondary,
      FailureReason: s.status === 'Failed' ? job.plan.failureReason : undefined,
      ModelArtifacts: { S3ModelArtifacts: done ? `${output}/${name}/output/model.tar.gz` : undefined },
      AlgorithmSpecification: job.request.AlgorithmSpecification,
      RoleArn: job.request.RoleArn,
      ResourceConfig: job.request.ResourceConfig,
      StoppingCondition: job.request.StoppingCondition,
      CreationTime: job.created / 1000,
      TrainingStartTime: (job.created + 2 * job.plan.phaseMs) / 1000,
      TrainingEndTime: s.terminal ? (job.created + s.endedAt) / 1000 : undefined,
      SecondaryStatusTransitions: s.transitions,
      FinalMetricDataList: done ? job.plan.metrics.map((m) => ({ ...m, Timestamp: (job.created + s.endedAt) / 1000 })) : undefined,
      BillableTimeInSeconds: s.terminal ? job.plan.billableSeconds : undefined,
      TrainingTimeInSeconds: s.terminal ? job.plan.billableSeconds : undefined,
    });
  }

  private smStopTrainingJob(b: Record<string, unknown>): RawResponse {
    const job = this.jobs.get(String(b.TrainingJobName));
    if (!job) return awsError(400, 'ValidationException', 'Requested resource not found.');
    const s = this.jobState(job);
    if (s.terminal || job.stoppedAt)
      return awsError(400, 'ValidationException', `The request was rejected because the training job is in status ${s.status}.`);
    job.stoppedAt = job.elapsed;
    return ok({});
  }

  /** Status of a job at its current clock; times are job-clock milliseconds (epoch = its creation). */
  jobState(job: FakeJob): { status: string; secondary: string; terminal: boolean; endedAt: number; transitions: unknown[] } {
    const p = job.plan;
    const phases: [string, number, string][] = [
      ['Starting', p.phaseMs, 'Launching requested ML instances'],
      ['Downloading', p.phaseMs, 'Downloading input data'],
      ['Training', p.trainingMs, 'Training image download completed. Training in progress.'],
      ['Uploading', p.phaseMs, 'Uploading generated training model'],
    ];
    const now = job.elapsed;
    const at = (t: number) => (job.created + t) / 1000;
    const transitions: unknown[] = [];
    let t = 0;
    for (const [secondary, length, message] of phases) {
      if (job.stoppedAt !== undefined && job.stoppedAt < t + length) {
        transitions.push({ Status: secondary, StartTime: at(t), EndTime: at(job.stoppedAt), StatusMessage: message });
        const stopDone = job.stoppedAt + p.phaseMs;
        if (now < stopDone)
          return {
            status: 'Stopping',
            secondary: 'Stopping',
            terminal: false,
            endedAt: 0,
            transitions: [...transitions, { Status: 'Stopping', StartTime: at(job.stoppedAt), StatusMessage: 'Stopping the training job' }],
          };
        return {
          status: 'Stopped',
          secondary: 'Stopped',
          terminal: true,
          endedAt: stopDone,
          transitions: [...transitions, { Status: 'Stopped', StartTime: at(stopDone), StatusMessage: 'Training job stopped' }],
        };
      }
      if (now < t + length) {
        transitions.push({ Status: secondary, StartTime: at(t), StatusMessage: message });
        return { status: 'InProgress', secondary, terminal: false, endedAt: 0, transitions };
      }
      transitions.push({ Status: secondary, StartTime: at(t), EndTime: at(t + length), StatusMessage: message });
      t += length;
    }
    const final = p.outcome;
    transitions.push({
      Status: final,
      StartTime: at(t),
      StatusMessage: final === 'Completed' ? 'Training job completed' : `Training job failed. Reason: ${p.failureReason}`,
    });
    return { status: final, secondary: final, terminal: true, endedAt: t, transitions };
  }

  private smDescribeModelPackageGroup(b: Record<string, unknown>): RawResponse {
    const g = this.groups.get(String(b.ModelPackageGroupName));
    if (!g) return awsError(400, 'ValidationException', `ModelPackageGroup ${String(b.ModelPackageGroupName)} does not exist.`);
    return ok({
      ModelPackageGroupName: b.ModelPackageGroupName,
      ModelPackageGroupArn: g.arn,
      CreationTime: g.created / 1000,
      CreatedBy: {},
      ModelPackageGroupStatus: 'Completed',
    });
  }

  private smCreateModelPackageGroup(b: Record<string, unknown>, region: string): RawResponse {
    const name = String(b.ModelPackageGroupName);
    if (this.groups.has(name))
      return awsError(400, 'ValidationException', `Model Package Group already exists: ${this.groups.get(name)!.arn}`);
    const g = { arn: arn(region, 'model-package-group', name), created: Date.now() };
    this.groups.set(name, g);
    return ok({ ModelPackageGroupArn: g.arn });
  }

  private smCreateModelPackage(b: Record<string, unknown>, region: string): RawResponse {
    const group = String(b.ModelPackageGroupName);
    if (!this.groups.has(group)) return awsError(400, 'ValidationException', `Model Package Group ${group} does not exist.`);
    const same = b.ClientToken ? this.packages.find((p) => p.token === b.ClientToken) : undefined;
    if (same) return ok({ ModelPackageArn: same.arn });
    const version = this.packages.filter((p) => p.group === group).length + 1;
    const pkg: FakePackage = {
      arn: arn(region, 'model-package', `${group}/${version}`),
      group,
      version,
      created: Date.now(),
      input: b,
      approval: String(b.ModelApprovalStatus ?? 'PendingManualApproval'),
      metadata: { ...((b.CustomerMetadataProperties as Record<string, string>) ?? {}) },
      token: b.ClientToken as string | undefined,
    };
    this.packages.push(pkg);
    return ok({ ModelPackageArn: pkg.arn });
  }

  private smDescribeModelPackage(b: Record<string, unknown>): RawResponse {
    const pkg = this.packages.find((p) => p.arn === b.ModelPackageName);
    if (!pkg) return awsError(400, 'ValidationException', `Model package ${String(b.ModelPackageName)} does not exist.`);
    return ok({
      ModelPackageName: pkg.group,
      ModelPackageGroupName: pkg.group,
      ModelPackageVersion: pkg.version,
      ModelPackageArn: pkg.arn,
      ModelPackageDescription: pkg.input.ModelPackageDescription,
      CreationTime: pkg.created / 1000,
      ModelPackageStatus: 'Completed',
      ModelPackageStatusDetails: { ValidationStatuses: [] },
      ModelApprovalStatus: pkg.approval,
      ApprovalDescription: pkg.approvalDescription,
      ModelMetrics: pkg.input.ModelMetrics,
      MetadataProperties: pkg.input.MetadataProperties,
      CustomerMetadataProperties: pkg.metadata,
    });
  }

  private smListModelPackages(b: Record<string, unknown>): RawResponse {
    const all = this.packages.filter((p) => p.group === b.ModelPackageGroupName);
    // Pages of two, so callers must follow NextToken.
    const start = Number(b.NextToken ?? 0);
    const page = all.slice(start, start + 2);
    return ok({
      ModelPackageSummaryList: page.map((p) => ({
        ModelPackageGroupName: p.group,
        ModelPackageVersion: p.version,
        ModelPackageArn: p.arn,
        CreationTime: p.created / 1000,
        ModelPackageStatus: 'Completed',
        ModelApprovalStatus: p.approval,
      })),
      NextToken: start + 2 < all.length ? String(start + 2) : undefined,
    });
  }

  private smUpdateModelPackage(b: Record<string, unknown>): RawResponse {
    const pkg = this.packages.find((p) => p.arn === b.ModelPackageArn);
    if (!pkg) return awsError(400, 'ValidationException', `Model package ${String(b.ModelPackageArn)} does not exist.`);
    if (b.ModelApprovalStatus) pkg.approval = String(b.ModelApprovalStatus);
    if (b.ApprovalDescription) pkg.approvalDescription = String(b.ApprovalDescription);
    Object.assign(pkg.metadata, (b.CustomerMetadataProperties as Record<string, string>) ?? {});
    return ok({ ModelPackageArn: pkg.arn });
  }

  // --- STS -----------------------------------------------------------------------------------------

  private sts(req: RawRequest): RawResponse {
    const form = new URLSearchParams(req.body.toString());
    const action = form.get('Action') ?? '';
    const token = form.get('WebIdentityToken') ?? '';
    this.calls.push({ service: 'sts', action, status: 200, body: Object.fromEntries(form), at: Date.now() });
    if (action !== 'AssumeRoleWithWebIdentity') return xmlError(400, 'InvalidAction', `fake STS does not implement ${action}`);
    if (!token) return xmlError(400, 'InvalidIdentityToken', 'No web identity token');
    this.webIdentityTokens.push(token);
    const n = ++this.issued;
    const key = `ASIAFAKE${String(n).padStart(8, '0')}`;
    const secret = createHash('sha256').update(`secret-${n}`).digest('hex');
    const session = `session-token-${n}`;
    const expiresAt = Date.now() + 300_000 + this.stsLifetimeMs;
    this.credentials.set(key, { secret, sessionToken: session, expiresAt, revoked: false });
    const xml = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>repo:acme/cells:ref:refs/heads/main</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser><Arn>arn:aws:sts::${ACCOUNT}:assumed-role/Trainer/${form.get('RoleSessionName')}</Arn><AssumedRoleId>AROAFAKE:${form.get('RoleSessionName')}</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <SessionToken>${session}</SessionToken>
      <SecretAccessKey>${secret}</SecretAccessKey>
      <Expiration>${new Date(expiresAt).toISOString()}</Expiration>
      <AccessKeyId>${key}</AccessKeyId>
    </Credentials>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>${n}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`;
    return { status: 200, headers: { 'content-type': 'text/xml' }, body: xml };
  }

  // --- S3 --------------------------------------------------------------------------------------------

  private s3Request(req: RawRequest): RawResponse {
    const key = decodeURIComponent(req.url.pathname.slice(1));
    const auth = this.checkAuth(req);
    const action = req.method === 'PUT' ? 'PutObject' : req.method === 'GET' ? 'GetObject' : req.method;
    this.calls.push({ service: 's3', action, status: 200, body: key, principal: auth.key, at: Date.now() });
    if (auth.error) return s3Error(400, 'ExpiredToken', 'The provided token has expired.');
    if (req.method === 'PUT') {
      const body = req.headers['content-encoding']?.includes('aws-chunked') ? dechunk(req.body) : req.body;
      this.s3.set(key, body);
      return { status: 200, headers: { etag: `"${createHash('md5').update(body).digest('hex')}"` } };
    }
    if (req.method === 'GET') {
      const body = this.s3.get(key);
      if (!body) return s3Error(404, 'NoSuchKey', 'The specified key does not exist.');
      return { status: 200, headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body };
    }
    return s3Error(405, 'MethodNotAllowed', 'fake S3 supports PUT and GET');
  }

  // --- auth ------------------------------------------------------------------------------------------

  private checkAuth(req: RawRequest): { key?: string; region: string; error?: RawResponse } {
    const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization ?? ''));
    if (!m) return { region: 'us-east-1', error: awsError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token') };
    const [, key, region] = m;
    const cred = this.credentials.get(key);
    if (!cred)
      return { key, region, error: awsError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.') };
    if (cred.sessionToken && req.headers['x-amz-security-token'] !== cred.sessionToken)
      return { key, region, error: awsError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.') };
    if (cred.revoked || Date.now() > cred.expiresAt)
      return { key, region, error: awsError(400, 'ExpiredTokenException', 'The security token included in the request is expired') };
    return { key, region };
  }
}

function ok(body: unknown): RawResponse {
  return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake' }, body: JSON.stringify(body) };
}

function awsError(status: number, type: string, message: string): RawResponse {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake' },
    body: JSON.stringify({ __type: type, message }),
  };
}

function xmlError(status: number, code: string, message: string): RawResponse {
  return {
    status,
    headers: { 'content-type': 'application/xml' },
    body: `<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
  };
}

function s3Error(status: number, code: string, message: string): RawResponse {
  return {
    status,
    headers: { 'content-type': 'application/xml' },
    body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>fake</RequestId></Error>`,
  };
}

function arn(region: string, kind: string, name: string): string {
  return `arn:aws:sagemaker:${region}:${ACCOUNT}:${kind}/${name}`;
}

/** Decodes `aws-chunked` upload bodies (`<hex size>;chunk-signature=…\r\n<data>\r\n` … `0;…`). */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < body.length) {
    const eol = body.indexOf('\r\n', i);
    const size = parseInt(body.subarray(i, eol).toString().split(';')[0], 16);
    if (!size) break;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
