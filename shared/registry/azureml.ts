import { StepError } from '../core/errors';
import { type ArmClient, AzureServiceError } from '../cloud/azure-arm';
import { type AzureWorkspaceConnection, workspaceArm } from '../cloud/azureml-workspace';
import type { ApprovalEvidence, ApprovalStatus, ModelRegistry, ModelStage, ModelVersion, RegisterModelInput, StageOptions } from './types';

export type AzureMlRegistryOptions = AzureWorkspaceConnection;

interface ArmModelVersion {
  name: string;
  systemData?: { createdAt?: string };
  properties: {
    modelUri?: string;
    modelType?: string;
    description?: string;
    jobName?: string;
    tags?: Record<string, string> | null;
    properties?: Record<string, string> | null;
  };
}

/** Tags are mutable in Azure ML and carry the lifecycle; properties are write-once and carry the lineage. */
const TAG = { stage: 'mlship.stage', approval: 'mlship.approval', evidence: 'mlship.evidence' };
const PROP = { commit: 'mlship.gitCommit', data: 'mlship.dataFingerprint', job: 'mlship.trainingJob', metrics: 'mlship.metrics' };
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/**
 * Azure ML model versions through ARM (`workspaces/{ws}/models/{name}/versions/{version}`). Versions are
 * integers chosen as max + 1; a concurrent registration that took the number first answers 409, and the
 * next number is tried.
 */
export class AzureMlRegistry implements ModelRegistry {
  readonly kind = 'azureml' as const;
  private readonly arm: ArmClient;
  private readonly ws: string;

  constructor(private readonly options: AzureMlRegistryOptions) {
    ({ arm: this.arm, ws: this.ws } = workspaceArm(options));
  }

  async register(input: RegisterModelInput): Promise<ModelVersion> {
    if (!NAME.test(input.name))
      throw new StepError(`Model name "${input.name}" is not a valid Azure ML model name.`, {
        hint: 'Use letters, digits, dots, hyphens and underscores.',
      });
    const existing = await this.list(input.name);
    const again = existing.find((v) => input.trainingJob && v.trainingJob === input.trainingJob && v.artifactUri === input.artifactUri);
    if (again) return again;
    await this.arm.put(`${this.ws}/models/${input.name}`, { properties: { description: `Registered by mlship` } });
    let next = existing.reduce((max, v) => Math.max(max, Number(v.version) || 0), 0) + 1;
    const body = {
      properties: {
        modelUri: input.artifactUri,
        modelType: 'custom_model',
        description: `From ${input.trainingJob ?? 'training'}${input.gitCommit ? ` at ${input.gitCommit.slice(0, 12)}` : ''}`,
        jobName: input.trainingJob,
        tags: { [TAG.stage]: 'candidate', [TAG.approval]: 'pending' },
        properties: {
          ...input.properties,
          [PROP.metrics]: JSON.stringify(input.metrics),
          ...(input.gitCommit ? { [PROP.commit]: input.gitCommit } : {}),
          ...(input.dataFingerprint ? { [PROP.data]: input.dataFingerprint } : {}),
          ...(input.trainingJob ? { [PROP.job]: input.trainingJob } : {}),
        },
      },
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.arm.put<ArmModelVersion>(`${this.ws}/models/${input.name}/versions/${next}`, body);
        return toVersion(input.name, res.body);
      } catch (error) {
        if (error instanceof AzureServiceError && error.status === 409 && attempt < 5) {
          next++;
          continue;
        }
        throw error;
      }
    }
  }

  async get(name: string, version: string): Promise<ModelVersion | undefined> {
    const v = await this.arm.get<ArmModelVersion>(`${this.ws}/models/${name}/versions/${version}`);
    return v ? toVersion(name, v) : undefined;
  }

  async list(name: string): Promise<ModelVersion[]> {
    const out: ModelVersion[] = [];
    let url: string | undefined = this.arm.url(`${this.ws}/models/${name}/versions`);
    while (url) {
      const res: { body?: { value?: ArmModelVersion[]; nextLink?: string } } = await this.arm.send('GET', url, undefined, {
        allowNotFound: true,
      });
      for (const v of res.body?.value ?? []) out.push(toVersion(name, v));
      url = res.body?.nextLink ?? undefined;
    }
    return out.sort((a, b) => Number(a.version) - Number(b.version));
  }

  async production(name: string): Promise<ModelVersion | undefined> {
    return (await this.list(name)).filter((v) => v.stage === 'production').pop();
  }

  async setStage(name: string, version: string, stage: ModelStage, options: StageOptions = {}): Promise<ModelVersion> {
    const target = await this.arm.get<ArmModelVersion>(`${this.ws}/models/${name}/versions/${version}`);
    if (!target)
      throw new StepError(`Azure ML model ${name} has no version ${version} in workspace ${this.options.workspace}.`, {
        hint: 'Check the model name and version in Azure ML studio → Models.',
      });
    if (stage === 'production') {
      for (const v of await this.list(name)) {
        if (v.version !== version && v.stage === 'production') {
          const old = await this.arm.get<ArmModelVersion>(`${this.ws}/models/${name}/versions/${v.version}`);
          if (old) await this.putTags(name, v.version, old, { [TAG.stage]: 'archived' });
        }
      }
    }
    const tags: Record<string, string> = { [TAG.stage]: stage };
    if (options.approval) tags[TAG.approval] = options.approval;
    if (options.evidence) tags[TAG.evidence] = JSON.stringify(options.evidence);
    return toVersion(name, await this.putTags(name, version, target, tags));
  }

  /** Model versions are immutable except description and tags; re-PUT the same body with new tags. */
  private async putTags(name: string, version: string, current: ArmModelVersion, tags: Record<string, string>): Promise<ArmModelVersion> {
    const body = { properties: { ...current.properties, tags: { ...(current.properties.tags ?? {}), ...tags } } };
    return (await this.arm.put<ArmModelVersion>(`${this.ws}/models/${name}/versions/${version}`, body)).body;
  }
}

function toVersion(name: string, v: ArmModelVersion): ModelVersion {
  const tags = v.properties.tags ?? {};
  const props = v.properties.properties ?? {};
  let metrics: Record<string, number> = {};
  try {
    metrics = props[PROP.metrics] ? (JSON.parse(props[PROP.metrics]) as Record<string, number>) : {};
  } catch {
    metrics = {};
  }
  let evidence: ApprovalEvidence | undefined;
  try {
    evidence = tags[TAG.evidence] ? (JSON.parse(tags[TAG.evidence]) as ApprovalEvidence) : undefined;
  } catch {
    evidence = undefined;
  }
  const extra = Object.fromEntries(Object.entries(props).filter(([k]) => !Object.values(PROP).includes(k)));
  return {
    name,
    version: v.name,
    artifactUri: v.properties.modelUri ?? '',
    metrics,
    dataFingerprint: props[PROP.data],
    gitCommit: props[PROP.commit],
    trainingJob: props[PROP.job] ?? v.properties.jobName,
    stage: (tags[TAG.stage] as ModelStage | undefined) ?? 'candidate',
    approval: (tags[TAG.approval] as ApprovalStatus | undefined) ?? 'pending',
    createdAt: v.systemData?.createdAt ?? new Date(0).toISOString(),
    properties: extra,
    evidence,
  };
}
