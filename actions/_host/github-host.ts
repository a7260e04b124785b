import * as core from '@actions/core';
import { Context } from '@actions/github/lib/context';
import type { Annotation, Host, ProgressReport, RunInfo } from '../../shared/core/host';
import { SecretMasker } from '../../shared/core/mask';
import { kebabCase } from '../../shared/core/names';
import { formatProgress, ProgressThrottle } from '../../shared/core/progress';

/**
 * GitHub Actions host: inputs from INPUT_*, outputs to GITHUB_OUTPUT, summary to GITHUB_STEP_SUMMARY, workflow
 * commands for masks, groups and annotations. Log text is also masked here, so a secret never reaches the log
 * even where the runner's own masking does not apply (e.g. a local act run).
 */
export class GitHubHost implements Host {
  readonly platform = 'github' as const;
  readonly workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
  readonly tempDir = process.env.RUNNER_TEMP ?? require('node:os').tmpdir();
  readonly env = process.env;
  readonly run: RunInfo;
  private readonly masker = new SecretMasker();
  private readonly throttle = new ProgressThrottle();

  constructor() {
    const c = new Context();
    this.run = {
      id: String(process.env.GITHUB_RUN_ID ?? c.runId),
      attempt: Number.isFinite(c.runAttempt) ? c.runAttempt : 1,
      repository: process.env.GITHUB_REPOSITORY,
      commit: c.sha,
      ref: c.ref,
      actor: c.actor,
      workflow: c.workflow,
      job: c.job,
      url: process.env.GITHUB_REPOSITORY && c.runId ? `${c.serverUrl}/${process.env.GITHUB_REPOSITORY}/actions/runs/${c.runId}` : undefined,
    };
  }

  inputLabel(key: string): string {
    return kebabCase(key);
  }
  getInput(key: string): string | undefined {
    const v = core.getInput(kebabCase(key));
    return v === '' ? undefined : v;
  }
  setOutput(key: string, value: string): void {
    core.setOutput(kebabCase(key), value);
  }
  setSecret(value: string): void {
    this.masker.add(value);
    for (const line of value.split(/\r?\n/)) if (line.trim()) core.setSecret(line.trim());
  }
  debug(message: string): void {
    core.debug(this.masker.mask(message));
  }
  info(message: string): void {
    core.info(this.masker.mask(message));
  }
  warning(message: string, a?: Annotation): void {
    core.warning(this.masker.mask(message), annotation(a));
  }
  error(message: string, a?: Annotation): void {
    core.error(this.masker.mask(message), annotation(a));
  }
  startGroup(title: string): void {
    core.startGroup(this.masker.mask(title));
  }
  endGroup(): void {
    core.endGroup();
  }
  async appendSummary(markdown: string): Promise<void> {
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(this.masker.mask(markdown), true).write();
  }
  progress(report: ProgressReport): void {
    if (this.throttle.shouldPrint(report)) core.info(this.masker.mask(formatProgress(report)));
  }
  setFailed(message: string): void {
    core.setFailed(this.masker.mask(message));
  }
  saveState(key: string, value: string): void {
    core.saveState(key, value);
  }
  getState(key: string): string | undefined {
    return core.getState(key) || undefined;
  }
  async getIdToken(audience: string): Promise<string> {
    const token = await core.getIDToken(audience);
    this.setSecret(token);
    return token;
  }
}

function annotation(a?: Annotation): core.AnnotationProperties | undefined {
  if (!a) return undefined;
  return { file: a.file, startLine: a.line, startColumn: a.column, title: a.title };
}
