import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  ListModelPackagesCommand,
  SageMakerClient,
  UpdateModelPackageCommand,
  type DescribeModelPackageOutput,
  type ModelApprovalStatus,
} from '@aws-sdk/client-sagemaker';
import type { Logger } from '../core/context';
import { StepError } from '../core/errors';
import type { AwsAuth } from '../cloud/auth/aws';
import { AwsCaller } from '../cloud/aws-call';
import { sageMakerCaller } from '../cloud/sagemaker-caller';
import { awsErrorName } from '../cloud/aws-errors';
import type { RetryPolicy } from '../core/retry';
import type { ApprovalEvidence, ApprovalStatus, ModelRegistry, ModelStage, ModelVersion, RegisterModelInput, StageOptions } from './types';

export interface SageMakerRegistryOptions {
  region: string;
  auth: AwsAuth;
  /** SageMaker endpoint override (VPC endpoint or a test fake). */
  endpoint?: string;
  /** S3 endpoint override; path-style addressing is used with it. */
  s3Endpoint?: string;
  retry: RetryPolicy;
  log?: Logger;
  /** Where metrics documents go when the artifact is not in S3 (s3://bucket/prefix/). */
  metricsS3Prefix?: string;
}

const APPROVAL_TO_SM: Record<ApprovalStatus, ModelApprovalStatus> = {
  pending: 'PendingManualApproval',
  approved: 'Approved',
  rejected: 'Rejected',
};
const SM_TO_APPROVAL: Record<string, ApprovalStatus> = { PendingManualApproval: 'pending', Approved: 'approved', Rejected: 'rejected' };
const GROUP_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const META = {
  stage: 'mlship:stage',
  artifact: 'mlship:artifactUri',
  commit: 'mlship:gitCommit',
  data: 'mlship:dataFingerprint',
  job: 'mlship:trainingJob',
};
/** CustomerMetadataProperties holds at most 50 entries; the full metrics live in the ModelMetrics document. */
const MAX_HEADLINE_METRICS = 40;

/** Metrics document referenced from ModelMetrics.ModelQuality.Statistics. */
interface MetricsDocument {
  metrics: Record<string, number>;
  artifactUri: string;
  gitCommit?: string;
  dataFingerprint?: string;
  trainingJob?: string;
  properties?: Record<string, string>;
}

/**
 * SageMaker Model Registry: a model package group per model name, one model package per version. Metrics are
 * written to S3 as a JSON document referenced from ModelMetrics (so Studio shows them), headline metrics and
 * lineage go into CustomerMetadataProperties, approval is ModelApprovalStatus, and the stage is a metadata
 * property updated with UpdateModelPackage.
 */
export class SageMakerRegistry implements ModelRegistry {
  readonly kind = 'sagemaker' as const;
  private readonly sm: AwsCaller<SageMakerClient>;
  private readonly s3: AwsCaller<S3Client>;
  private readonly groupArns = new Map<string, string>();

  constructor(private readonly options: SageMakerRegistryOptions) {
    this.sm = sageMakerCaller(options);
    this.s3 = new AwsCaller(
      'S3',
      () =>
        new S3Client({
          region: options.region,
          endpoint: options.s3Endpoint,
          forcePathStyle: Boolean(options.s3Endpoint),
          credentials: options.auth.credentials,
          maxAttempts: 1,
        }),
      options.auth,
      options.retry,
      options.log,
    );
  }

  async register(input: RegisterModelInput): Promise<ModelVersion> {
    checkGroupName(input.name);
    await this.ensureGroup(input.name);
    const again = input.trainingJob
      ? await this.newest(input.name, 20, (m) => m[META.job] === input.trainingJob && m[META.artifact] === input.artifactUri)
      : undefined;
    if (again) return again;
    const doc: MetricsDocument = {
      metrics: input.metrics,
      artifactUri: input.artifactUri,
      gitCommit: input.gitCommit,
      dataFingerprint: input.dataFingerprint,
      trainingJob: input.trainingJob,
      properties: input.properties,
    };
    const metricsUri = this.metricsUri(input);
    await this.putJson(metricsUri, doc);
    const metadata: Record<string, string> = { [META.stage]: 'candidate' };
    if (input.artifactUri.length <= 256) metadata[META.artifact] = input.artifactUri;
    if (input.gitCommit) metadata[META.commit] = input.gitCommit;
    if (input.dataFingerprint) metadata[META.data] = input.dataFingerprint.slice(0, 256);
    if (input.trainingJob) metadata[META.job] = input.trainingJob;
    for (const [k, v] of Object.entries(input.metrics).slice(0, MAX_HEADLINE_METRICS)) metadata[metricKey(k)] = String(v);
    const token = createHash('sha256')
      .update(JSON.stringify([input.name, input.trainingJob ?? '', input.artifactUri]))
      .digest('hex')
      .slice(0, 32);
    const created = await this.sm.call('CreateModelPackage', (c) =>
      c.send(
        new CreateModelPackageCommand({
          ModelPackageGroupName: input.name,
          ModelPackageDescription: `Model ${input.name} from ${input.trainingJob ?? 'training'}${input.gitCommit ? ` at ${input.gitCommit.slice(0, 12)}` : ''}`,
          ModelApprovalStatus: 'PendingManualApproval',
          ModelMetrics: { ModelQuality: { Statistics: { ContentType: 'application/json', S3Uri: metricsUri } } },
          MetadataProperties: { CommitId: input.gitCommit, GeneratedBy: input.trainingJob },
          CustomerMetadataProperties: metadata,
          ClientToken: token,
        }),
      ),
    );
    return this.describe(created.ModelPackageArn!);
  }

  async get(name: string, version: string): Promise<ModelVersion | undefined> {
    const groupArn = await this.groupArn(name);
    if (!groupArn) return undefined;
    const arn = groupArn.replace(':model-package-group/', ':model-package/') + `/${version}`;
    return this.sm.call(
      'DescribeModelPackage',
      async (c) => this.toVersion(await c.send(new DescribeModelPackageCommand({ ModelPackageName: arn }))),
      (error) => (isMissing(error) ? { value: undefined } : undefined),
    );
  }

  async list(name: string): Promise<ModelVersion[]> {
    const versions: ModelVersion[] = [];
    for (const arn of await this.packageArns(name)) versions.push(await this.describe(arn));
    return versions.sort((a, b) => Number(a.version) - Number(b.version));
  }

  async production(name: string): Promise<ModelVersion | undefined> {
    return this.newest(name, Infinity, (m) => m[META.stage] === 'production');
  }

  /** Newest-first search over at most `limit` versions, reading metrics documents only for the match. */
  private async newest(
    name: string,
    limit: number,
    match: (metadata: Record<string, string>) => boolean,
  ): Promise<ModelVersion | undefined> {
    const arns = (await this.packageArns(name)).reverse().slice(0, limit);
    for (const arn of arns) {
      const p = await this.sm.call('DescribeModelPackage', (c) => c.send(new DescribeModelPackageCommand({ ModelPackageName: arn })));
      if (match(p.CustomerMetadataProperties ?? {})) return this.toVersion(p);
    }
    return undefined;
  }

  /** Package ARNs of a group, oldest first (ListModelPackages pages followed). */
  private async packageArns(name: string): Promise<string[]> {
    if (!(await this.groupArn(name))) return [];
    const arns: string[] = [];
    let next: string | undefined;
    do {
      const page = await this.sm.call('ListModelPackages', (c) =>
        c.send(
          new ListModelPackagesCommand({ ModelPackageGroupName: name, SortBy: 'CreationTime', SortOrder: 'Ascending', NextToken: next }),
        ),
      );
      for (const s of page.ModelPackageSummaryList ?? []) if (s.ModelPackageArn) arns.push(s.ModelPackageArn);
      next = page.NextToken;
    } while (next);
    return arns;
  }

  async setStage(name: string, version: string, stage: ModelStage, options: StageOptions = {}): Promise<ModelVersion> {
    const target = await this.get(name, version);
    if (!target)
      throw new StepError(`SageMaker model package group ${name} has no version ${version}.`, {
        hint:
          'Check the model name and version; list them with `aws sagemaker list-model-packages --model-package-group-name ' + name + '`.',
      });
    if (stage === 'production') {
      for (const arn of await this.packageArns(name)) {
        const p = await this.sm.call('DescribeModelPackage', (c) => c.send(new DescribeModelPackageCommand({ ModelPackageName: arn })));
        if (String(p.ModelPackageVersion) !== version && p.CustomerMetadataProperties?.[META.stage] === 'production')
          await this.update(name, String(p.ModelPackageVersion), 'archived', {});
      }
    }
    await this.update(name, version, stage, options);
    return (await this.get(name, version))!;
  }

  private async update(
    name: string,
    version: string,
    stage: ModelStage,
    options: { approval?: ApprovalStatus; evidence?: ApprovalEvidence },
  ): Promise<void> {
    const arn = (await this.groupArn(name))!.replace(':model-package-group/', ':model-package/') + `/${version}`;
    // The full state goes with every update (status, description, metadata merged here): AWS keeps omitted
    // fields, but other implementations of the API (moto) reset them, and sending them is correct for both.
    const current = await this.sm.call('DescribeModelPackage', (c) => c.send(new DescribeModelPackageCommand({ ModelPackageName: arn })));
    await this.sm.call('UpdateModelPackage', (c) =>
      c.send(
        new UpdateModelPackageCommand({
          ModelPackageArn: arn,
          ModelApprovalStatus: options.approval ? APPROVAL_TO_SM[options.approval] : current.ModelApprovalStatus,
          ApprovalDescription: options.evidence ? JSON.stringify(options.evidence).slice(0, 1024) : current.ApprovalDescription,
          CustomerMetadataProperties: { ...(current.CustomerMetadataProperties ?? {}), [META.stage]: stage },
        }),
      ),
    );
  }

  private async describe(arn: string): Promise<ModelVersion> {
    return this.toVersion(
      await this.sm.call('DescribeModelPackage', (c) => c.send(new DescribeModelPackageCommand({ ModelPackageName: arn }))),
    );
  }

  private async toVersion(p: DescribeModelPackageOutput): Promise<ModelVersion> {
    const meta = p.CustomerMetadataProperties ?? {};
    const metricsUri = p.ModelMetrics?.ModelQuality?.Statistics?.S3Uri;
    const doc = metricsUri ? await this.getJson<MetricsDocument>(metricsUri) : undefined;
    const headline: Record<string, number> = {};
    for (const [k, v] of Object.entries(meta)) if (k.startsWith('metric:')) headline[k.slice(7)] = Number(v);
    let evidence: ApprovalEvidence | undefined;
    try {
      evidence = p.ApprovalDescription ? (JSON.parse(p.ApprovalDescription) as ApprovalEvidence) : undefined;
    } catch {
      evidence = undefined; // set by a person in Studio, not by mlship
    }
    return {
      name: p.ModelPackageGroupName ?? p.ModelPackageName ?? '',
      version: String(p.ModelPackageVersion ?? ''),
      artifactUri: doc?.artifactUri ?? meta[META.artifact] ?? '',
      metrics: doc?.metrics ?? headline,
      dataFingerprint: doc?.dataFingerprint ?? meta[META.data],
      gitCommit: doc?.gitCommit ?? meta[META.commit] ?? p.MetadataProperties?.CommitId,
      trainingJob: doc?.trainingJob ?? meta[META.job],
      stage: (meta[META.stage] as ModelStage | undefined) ?? 'candidate',
      approval: SM_TO_APPROVAL[p.ModelApprovalStatus ?? 'PendingManualApproval'] ?? 'pending',
      createdAt: (p.CreationTime ?? new Date(0)).toISOString(),
      properties: { ...(doc?.properties ?? {}), modelPackageArn: p.ModelPackageArn ?? '' },
      evidence,
    };
  }

  private async groupArn(name: string): Promise<string | undefined> {
    const known = this.groupArns.get(name);
    if (known) return known;
    const group = await this.sm.call(
      'DescribeModelPackageGroup',
      (c) =>
        c.send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: name })) as Promise<
          { ModelPackageGroupArn?: string } | undefined
        >,
      (error) => (isMissing(error) ? { value: undefined } : undefined),
    );
    if (group?.ModelPackageGroupArn) this.groupArns.set(name, group.ModelPackageGroupArn);
    return group?.ModelPackageGroupArn;
  }

  private async ensureGroup(name: string): Promise<void> {
    if (await this.groupArn(name)) return;
    await this.sm.call(
      'CreateModelPackageGroup',
      async (c) => {
        await c.send(
          new CreateModelPackageGroupCommand({
            ModelPackageGroupName: name,
            ModelPackageGroupDescription: `Models registered by mlship for ${name}`,
          }),
        );
      },
      // Another registration created it first.
      (error) =>
        awsErrorName(error) === 'ResourceInUse' || /already exists/i.test((error as Error).message) ? { value: undefined } : undefined,
    );
    if (!(await this.groupArn(name))) throw new StepError(`SageMaker did not create model package group ${name}.`);
  }

  private metricsUri(input: RegisterModelInput): string {
    const base = input.artifactUri.startsWith('s3://') ? input.artifactUri.replace(/\/[^/]*$/, '/') : this.options.metricsS3Prefix;
    if (!base) {
      throw new StepError(
        `The SageMaker registry stores model metrics in S3, but the artifact ${input.artifactUri} is not in S3 and no metrics S3 prefix is set.`,
        {
          hint: 'Set the input registry-metrics-s3-prefix to an s3://bucket/prefix/ the identity may write to.',
        },
      );
    }
    const stamp = createHash('sha256')
      .update(`${input.trainingJob ?? ''}|${input.artifactUri}`)
      .digest('hex')
      .slice(0, 12);
    return `${base.replace(/\/?$/, '/')}mlship-metrics-${stamp}.json`;
  }

  private async putJson(uri: string, value: unknown): Promise<void> {
    const { bucket, key } = parseS3(uri);
    await this.s3.call('PutObject', (c) =>
      c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value, null, 2), ContentType: 'application/json' })),
    );
  }

  private async getJson<T>(uri: string): Promise<T | undefined> {
    const { bucket, key } = parseS3(uri);
    return this.s3.call(
      'GetObject',
      async (c) => JSON.parse(await (await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString()) as T,
      (error) => (awsErrorName(error) === 'NoSuchKey' ? { value: undefined } : undefined),
    );
  }
}

function metricKey(name: string): string {
  return `metric:${name.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_')}`.slice(0, 128);
}

function parseS3(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new StepError(`"${uri}" is not an s3://bucket/key URI.`);
  return { bucket: m[1], key: m[2] };
}

function isMissing(error: unknown): boolean {
  const name = awsErrorName(error);
  return (
    name === 'ResourceNotFound' || (name === 'ValidationException' && /not (be )?found|does not exist/i.test((error as Error).message))
  );
}

function checkGroupName(name: string): void {
  if (!GROUP_NAME.test(name)) {
    throw new StepError(`Model name "${name}" cannot be a SageMaker model package group name.`, {
      hint: 'Use letters, digits and hyphens only, at most 63 characters.',
    });
  }
}
