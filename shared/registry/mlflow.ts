import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../core/context';
import { StepError } from '../core/errors';
import { isMlflowCode, MlflowClient, type MlflowAuth } from '../cloud/mlflow-client';
import type { RetryPolicy } from '../core/retry';
import type { ApprovalEvidence, ApprovalStatus, ModelRegistry, ModelStage, ModelVersion, RegisterModelInput, StageOptions } from './types';

export const DEFAULT_ALIAS = 'champion';

export interface MlflowRegistryOptions extends MlflowAuth {
  trackingUri: string;
  /** Alias that marks the production version (MLflow 2.9+ aliases; `champion` by MLflow's own convention). */
  alias?: string;
  /** Experiment that holds the registration runs (metrics, uploaded model files). */
  experimentName?: string;
  /** Folder against which a local model path is resolved. */
  workspace?: string;
  retry: RetryPolicy;
  log?: Logger;
  uriLabel?: string;
}

interface MlflowModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number | string;
  source?: string;
  run_id?: string;
  description?: string;
  tags?: { key: string; value: string }[];
  aliases?: string[];
}

interface MlflowRun {
  info: { run_id: string; artifact_uri?: string };
  data?: { metrics?: { key: string; value: number }[] };
}

/** Model-version tags: lineage is written once, stage/approval/evidence move with promotions. */
const TAG = {
  stage: 'mlship.stage',
  approval: 'mlship.approval',
  evidence: 'mlship.evidence',
  commit: 'mlship.gitCommit',
  data: 'mlship.dataFingerprint',
  job: 'mlship.trainingJob',
  artifact: 'mlship.artifactUri',
  metrics: 'mlship.metrics',
};
const OWN_TAGS = new Set(Object.values(TAG));
const NAME = /^[^/:%\\]{1,256}$/;
const ALIAS = /^[A-Za-z_][A-Za-z0-9_-]{0,254}$/;
/** MLflow caps tag values (5000 characters for model-version tags). */
const MAX_TAG = 5000;
/** At most this many files of a local model folder are uploaded (a model is a file or a handful). */
const MAX_FILES = 1000;

/**
 * The MLflow Model Registry through the REST API of `mlflow server` (self-hosted, Databricks, or an Azure ML
 * workspace's MLflow endpoint). Each registration is an MLflow run that holds the metrics (and the model file
 * when it is local), and a model version pointing at it; lineage and approval live in version tags; the
 * production version is the one holding the alias, so moving the alias is the promotion.
 */
export class MlflowRegistry implements ModelRegistry {
  readonly kind = 'mlflow' as const;
  readonly alias: string;
  readonly client: MlflowClient;
  private experimentId?: string;

  constructor(private readonly options: MlflowRegistryOptions) {
    this.alias = options.alias ?? DEFAULT_ALIAS;
    if (!ALIAS.test(this.alias) || /^v\d+$/i.test(this.alias) || this.alias.toLowerCase() === 'latest') {
      throw new StepError(`"${this.alias}" cannot be an MLflow model alias.`, {
        hint: 'Use letters, digits, _ and -, starting with a letter (not "latest" or v<number>, which MLflow reserves); e.g. champion or production.',
      });
    }
    this.client = new MlflowClient({ ...options, onRetry: (m) => options.log?.debug(m) });
  }

  get location(): string {
    return this.client.location;
  }

  /** Where production is read from, for messages: `alias "champion" at http://…`. */
  get productionMarker(): string {
    return `alias "${this.alias}" at ${this.client.location}`;
  }

  async register(input: RegisterModelInput): Promise<ModelVersion> {
    if (!NAME.test(input.name))
      throw new StepError(`Model name "${input.name}" is not a valid MLflow registered model name.`, {
        hint: 'Leave out / : % and \\; at most 256 characters.',
      });
    const existing = await this.list(input.name);
    const again = input.trainingJob
      ? existing.find((v) => v.trainingJob === input.trainingJob && v.properties[TAG.artifact] === input.artifactUri)
      : undefined;
    if (again) return again;
    const local = localPath(input.artifactUri, this.options.workspace);
    if (local && !fs.existsSync(local))
      throw new StepError(`The model to register, ${local}, does not exist.`, {
        hint: 'Register the folder or file the training wrote (the modelUri output of submit-training).',
      });

    try {
      await this.client.post('registered-models/create', { name: input.name, description: 'Registered by mlship' });
    } catch (error) {
      if (!isMlflowCode(error, 'RESOURCE_ALREADY_EXISTS')) throw error;
    }
    const experimentId = await this.experiment();
    const lineage: Record<string, string> = {
      ...(input.gitCommit ? { [TAG.commit]: input.gitCommit } : {}),
      ...(input.dataFingerprint ? { [TAG.data]: input.dataFingerprint } : {}),
      ...(input.trainingJob ? { [TAG.job]: input.trainingJob } : {}),
    };
    const { run } = await this.client.post<{ run: MlflowRun }>('runs/create', {
      experiment_id: experimentId,
      run_name: `${input.name}-${input.trainingJob ?? 'registration'}`.slice(0, 250),
      start_time: Date.now(),
      tags: tagList({ ...lineage, 'mlflow.source.git.commit': input.gitCommit, 'mlship.model': input.name }),
    });
    const runId = run.info.run_id;
    const metrics = Object.entries(input.metrics).filter(([, v]) => Number.isFinite(v));
    for (let i = 0; i < metrics.length; i += 1000) {
      await this.client.post('runs/log-batch', {
        run_id: runId,
        metrics: metrics.slice(i, i + 1000).map(([key, value]) => ({ key, value, timestamp: Date.now(), step: 0 })),
      });
    }
    const source = local ? await this.upload(run, local) : input.artifactUri;
    await this.client.post('runs/update', { run_id: runId, status: 'FINISHED', end_time: Date.now() });
    const metricsJson = JSON.stringify(input.metrics);
    const tags: Record<string, string> = {
      ...Object.fromEntries(Object.entries(input.properties ?? {}).map(([k, v]) => [k, v.slice(0, MAX_TAG)])),
      ...lineage,
      [TAG.artifact]: input.artifactUri.slice(0, MAX_TAG),
      [TAG.stage]: 'candidate',
      [TAG.approval]: 'pending',
      ...(metricsJson.length <= MAX_TAG ? { [TAG.metrics]: metricsJson } : {}),
    };
    const { model_version } = await this.client.post<{ model_version: MlflowModelVersion }>('model-versions/create', {
      name: input.name,
      source,
      run_id: runId,
      description: `From ${input.trainingJob ?? 'training'}${input.gitCommit ? ` at ${input.gitCommit.slice(0, 12)}` : ''}`,
      tags: tagList(tags),
    });
    return this.toVersion(model_version, input.metrics);
  }

  async get(name: string, version: string): Promise<ModelVersion | undefined> {
    const v = await this.getRaw(name, version);
    return v ? this.toVersion(v) : undefined;
  }

  async list(name: string): Promise<ModelVersion[]> {
    const found: MlflowModelVersion[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.get<{ model_versions?: MlflowModelVersion[]; next_page_token?: string }>('model-versions/search', {
        filter: `name='${name.replace(/'/g, "\\'")}'`,
        max_results: 200,
        ...(token ? { page_token: token } : {}),
      });
      found.push(...(page.model_versions ?? []));
      token = page.next_page_token || undefined;
    } while (token);
    // search does not return aliases on every server version; the registered model does.
    const aliases = await this.aliases(name);
    const out: ModelVersion[] = [];
    for (const v of found) out.push(await this.toVersion({ ...v, aliases: aliases.get(v.version) ?? v.aliases ?? [] }));
    return out.sort((a, b) => Number(a.version) - Number(b.version));
  }

  async production(name: string): Promise<ModelVersion | undefined> {
    try {
      const { model_version } = await this.client.get<{ model_version: MlflowModelVersion }>('registered-models/alias', {
        name,
        alias: this.alias,
      });
      return this.toVersion(model_version);
    } catch (error) {
      if (isMlflowCode(error, 'RESOURCE_DOES_NOT_EXIST', 'INVALID_PARAMETER_VALUE')) return undefined;
      throw error;
    }
  }

  async setStage(name: string, version: string, stage: ModelStage, options: StageOptions = {}): Promise<ModelVersion> {
    const target = await this.getRaw(name, version);
    if (!target)
      throw new StepError(`MLflow model ${name} has no version ${version} at ${this.client.location}.`, {
        hint: 'Check the model name and version in the MLflow UI → Models.',
      });
    const holder = await this.production(name);
    if (stage === 'production') {
      if (holder && holder.version !== version) await this.setTags(name, holder.version, { [TAG.stage]: 'archived' });
      await this.client.post('registered-models/alias', { name, alias: this.alias, version });
    } else if (holder?.version === version) {
      await this.client.delete('registered-models/alias', { name, alias: this.alias });
    }
    const tags: Record<string, string> = { [TAG.stage]: stage };
    if (options.approval) tags[TAG.approval] = options.approval;
    if (options.evidence) tags[TAG.evidence] = JSON.stringify(options.evidence).slice(0, MAX_TAG);
    await this.setTags(name, version, tags);
    return (await this.get(name, version))!;
  }

  private async getRaw(name: string, version: string): Promise<MlflowModelVersion | undefined> {
    try {
      return (await this.client.get<{ model_version: MlflowModelVersion }>('model-versions/get', { name, version })).model_version;
    } catch (error) {
      if (isMlflowCode(error, 'RESOURCE_DOES_NOT_EXIST', 'INVALID_PARAMETER_VALUE')) return undefined;
      throw error;
    }
  }

  private async aliases(name: string): Promise<Map<string, string[]>> {
    const byVersion = new Map<string, string[]>();
    try {
      const { registered_model } = await this.client.get<{ registered_model: { aliases?: { alias: string; version: string }[] } }>(
        'registered-models/get',
        { name },
      );
      for (const a of registered_model.aliases ?? []) byVersion.set(a.version, [...(byVersion.get(a.version) ?? []), a.alias]);
    } catch (error) {
      if (!isMlflowCode(error, 'RESOURCE_DOES_NOT_EXIST')) throw error;
    }
    return byVersion;
  }

  private async setTags(name: string, version: string, tags: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(tags)) await this.client.post('model-versions/set-tag', { name, version, key, value });
  }

  private async experiment(): Promise<string> {
    if (this.experimentId) return this.experimentId;
    const name = this.options.experimentName ?? 'mlship-model-registry';
    try {
      this.experimentId = (
        await this.client.get<{ experiment: { experiment_id: string } }>('experiments/get-by-name', { experiment_name: name })
      ).experiment.experiment_id;
    } catch (error) {
      if (!isMlflowCode(error, 'RESOURCE_DOES_NOT_EXIST')) throw error;
      try {
        this.experimentId = (await this.client.post<{ experiment_id: string }>('experiments/create', { name })).experiment_id;
      } catch (again) {
        // Another registration created it in between.
        if (!isMlflowCode(again, 'RESOURCE_ALREADY_EXISTS')) throw again;
        this.experimentId = (
          await this.client.get<{ experiment: { experiment_id: string } }>('experiments/get-by-name', { experiment_name: name })
        ).experiment.experiment_id;
      }
    }
    return this.experimentId;
  }

  /** Uploads a local model file or folder into the run's artifacts (under model/); returns the version source. */
  private async upload(run: MlflowRun, local: string): Promise<string> {
    const root = run.info.artifact_uri ?? '';
    const m = /^mlflow-artifacts:\/+(.*)$/.exec(root);
    if (!m) {
      throw new StepError(
        `The MLflow server at ${this.client.location} keeps run artifacts at ${root.replace(/\/\/[^@/]*@/, '//')} and does not proxy uploads, so the local model ${local} cannot be stored there.`,
        {
          hint: 'Run the server with artifact proxying (`mlflow server --artifacts-destination …`, the default since MLflow 2), or register a model already in object storage (s3://, wasbs://).',
        },
      );
    }
    const prefix = `${m[1].replace(/\/+$/, '')}/model`;
    const files = listFiles(local);
    let bytes = 0;
    for (const f of files) {
      await this.client.uploadArtifact(`${prefix}/${f.rel}`, f.abs);
      bytes += fs.statSync(f.abs).size;
    }
    this.options.log?.info(
      `Uploaded ${files.length} model file${files.length === 1 ? '' : 's'} (${(bytes / 1e6).toFixed(1)} MB) to the MLflow run ${run.info.run_id}.`,
    );
    return `${root.replace(/\/+$/, '')}/model`;
  }

  private async toVersion(v: MlflowModelVersion, knownMetrics?: Record<string, number>): Promise<ModelVersion> {
    const tags = Object.fromEntries((v.tags ?? []).map((t) => [t.key, t.value]));
    let metrics = knownMetrics;
    if (!metrics && v.run_id) {
      try {
        const { run } = await this.client.get<{ run: MlflowRun }>('runs/get', { run_id: v.run_id });
        metrics = Object.fromEntries((run.data?.metrics ?? []).map((x) => [x.key, x.value]));
      } catch (error) {
        if (!isMlflowCode(error, 'RESOURCE_DOES_NOT_EXIST')) throw error;
      }
    }
    if (!metrics || Object.keys(metrics).length === 0) metrics = parseJson<Record<string, number>>(tags[TAG.metrics]) ?? {};
    const aliased = (v.aliases ?? []).includes(this.alias);
    const stage = aliased
      ? 'production'
      : (tags[TAG.stage] as ModelStage | undefined) === 'production'
        ? 'archived'
        : ((tags[TAG.stage] as ModelStage | undefined) ?? 'candidate');
    const created = Number(v.creation_timestamp);
    return {
      name: v.name,
      version: String(v.version),
      artifactUri: v.source ?? '',
      metrics,
      dataFingerprint: tags[TAG.data],
      gitCommit: tags[TAG.commit],
      trainingJob: tags[TAG.job],
      stage,
      approval: (tags[TAG.approval] as ApprovalStatus | undefined) ?? 'pending',
      createdAt: new Date(Number.isFinite(created) ? created : 0).toISOString(),
      properties: Object.fromEntries(
        Object.entries(tags)
          .filter(([k]) => !OWN_TAGS.has(k) || k === TAG.artifact)
          .concat(v.run_id ? [['mlflowRunId', v.run_id]] : []),
      ),
      evidence: parseJson<ApprovalEvidence>(tags[TAG.evidence]),
    };
  }
}

function tagList(tags: Record<string, string | undefined>): { key: string; value: string }[] {
  return Object.entries(tags)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .map(([key, value]) => ({ key, value }));
}

function parseJson<T>(text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // edited by hand in the MLflow UI
  }
}

/** A model URI on this machine (a path or file://), resolved; undefined for remote URIs (s3://, wasbs://, …). */
function localPath(uri: string, workspace = process.cwd()): string | undefined {
  if (uri.startsWith('file://')) return new URL(uri).pathname;
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) && !/^[a-z]:[\\/]/i.test(uri)) return undefined;
  return path.resolve(workspace, uri);
}

function listFiles(local: string): { abs: string; rel: string }[] {
  if (fs.statSync(local).isFile()) return [{ abs: local, rel: path.basename(local) }];
  const out: { abs: string; rel: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(abs);
      else if (entry.isFile()) out.push({ abs, rel: path.relative(local, abs).split(path.sep).join('/') });
      if (out.length > MAX_FILES)
        throw new StepError(`The model folder ${local} holds more than ${MAX_FILES} files; that is not one model.`, {
          hint: 'Register the folder the training wrote its model to, not the whole output.',
        });
    }
  };
  walk(local);
  return out;
}
