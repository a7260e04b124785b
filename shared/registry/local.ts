import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../core/errors';
import type { ModelRegistry, ModelStage, ModelVersion, RegisterModelInput, StageOptions } from './types';
import { writeFileAtomicSync } from '../core/atomic-write';
import { LockTimeout, withFileLock } from '../core/file-lock';

export interface LocalRegistryOptions {
  /** Folder holding one `<model>.json` per model. */
  root: string;
  /** How long to wait for another process's lock before failing. */
  lockTimeoutMs?: number;
}

interface ModelFile {
  name: string;
  versions: ModelVersion[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const STALE_LOCK_MS = 60_000;

/**
 * The default registry: a folder with one JSON file per model, committed to git or kept as a CI cache.
 * Writes go to a temp file and are renamed into place, under a lock file, so versions stay monotonic
 * even when two jobs register at once and a reader never sees half a file.
 */
export class LocalRegistry implements ModelRegistry {
  readonly kind = 'local' as const;

  constructor(private readonly options: LocalRegistryOptions) {}

  async register(input: RegisterModelInput): Promise<ModelVersion> {
    checkName(input.name);
    return this.update(input.name, (file) => {
      // The same training job registering the same artifact again (a re-run) gets the version it already has.
      const existing = file.versions.find(
        (v) => input.trainingJob && v.trainingJob === input.trainingJob && v.artifactUri === input.artifactUri,
      );
      if (existing) return existing;
      const next = file.versions.reduce((max, v) => Math.max(max, Number(v.version) || 0), 0) + 1;
      const version: ModelVersion = {
        name: input.name,
        version: String(next),
        artifactUri: input.artifactUri,
        metrics: { ...input.metrics },
        dataFingerprint: input.dataFingerprint,
        gitCommit: input.gitCommit,
        trainingJob: input.trainingJob,
        stage: 'candidate',
        approval: 'pending',
        createdAt: new Date().toISOString(),
        properties: { ...input.properties },
      };
      file.versions.push(version);
      return version;
    });
  }

  async get(name: string, version: string): Promise<ModelVersion | undefined> {
    return this.read(name).versions.find((v) => v.version === version);
  }

  async list(name: string): Promise<ModelVersion[]> {
    return [...this.read(name).versions].sort((a, b) => Number(a.version) - Number(b.version));
  }

  async production(name: string): Promise<ModelVersion | undefined> {
    return (await this.list(name)).filter((v) => v.stage === 'production').pop();
  }

  async setStage(name: string, version: string, stage: ModelStage, options: StageOptions = {}): Promise<ModelVersion> {
    checkName(name);
    return this.update(name, (file) => {
      const target = file.versions.find((v) => v.version === version);
      if (!target) {
        throw new StepError(`Model ${name} has no version ${version} in the local registry ${this.file(name)}.`, {
          hint: `Known versions: ${file.versions.map((v) => v.version).join(', ') || 'none'}.`,
          file: this.file(name),
        });
      }
      if (stage === 'production') {
        for (const v of file.versions) if (v !== target && v.stage === 'production') v.stage = 'archived';
      }
      target.stage = stage;
      if (options.approval) target.approval = options.approval;
      if (options.evidence) target.evidence = options.evidence;
      return target;
    });
  }

  private file(name: string): string {
    return path.join(this.options.root, `${name}.json`);
  }

  private read(name: string): ModelFile {
    checkName(name);
    const file = this.file(name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { name, versions: [] };
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as ModelFile;
      if (!Array.isArray(parsed.versions)) throw new Error('"versions" is not a list');
      return parsed;
    } catch (error) {
      throw new StepError(`The local registry file ${file} is not a valid model file: ${(error as Error).message}.`, {
        file,
        hint: 'Restore it from git or the CI cache; the registry never writes partial files, so it was edited by hand or truncated elsewhere.',
      });
    }
  }

  private async update<T>(name: string, change: (file: ModelFile) => T): Promise<T> {
    fs.mkdirSync(this.options.root, { recursive: true });
    const lockFile = path.join(this.options.root, `${name}.lock`);
    const timeoutMs = this.options.lockTimeoutMs ?? 30_000;
    try {
      return await withFileLock(
        lockFile,
        async () => {
          const file = this.read(name);
          const result = change(file);
          writeFileAtomicSync(this.file(name), JSON.stringify(file, null, 2) + '\n');
          return structuredClone(result);
        },
        // A lock of a process that is gone, or older than any registration could take, was left by a killed process.
        { timeoutMs, staleAfterMs: STALE_LOCK_MS },
      );
    } catch (error) {
      if (!(error instanceof LockTimeout)) throw error;
      throw new StepError(`The local registry is locked by another process: ${lockFile}.`, {
        hint: 'Wait for the other registration to finish, or delete the lock file if no process holds it.',
        cause: error,
      });
    }
  }
}

function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new StepError(`Model name "${name}" is not allowed.`, {
      hint: 'Use letters, digits, dots, hyphens and underscores, starting with a letter or digit (at most 128 characters).',
    });
  }
}
