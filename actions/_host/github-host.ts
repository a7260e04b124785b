import * as core from '@actions/core';
import { Context } from '@actions/github/lib/context';
import type { Annotation, RunInfo } from '../../shared/core/host';
import { HostBase, type LogLevel } from '../../shared/core/host-base';
import { kebabCase } from '../../shared/core/names';

/**
 * GitHub Actions host: inputs from INPUT_*, outputs to GITHUB_OUTPUT, summary to GITHUB_STEP_SUMMARY, workflow
 * commands for masks, groups and annotations. Log text is also masked here, so a secret never reaches the log
 * even where the runner's own masking does not apply (e.g. a local act run).
 */
export class GitHubHost extends HostBase {
  readonly platform = 'github' as const;
  readonly workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
  readonly tempDir = process.env.RUNNER_TEMP ?? require('node:os').tmpdir();
  readonly env = process.env;
  readonly run: RunInfo;

  constructor() {
    super();
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
  protected override registerSecretLine(line: string): void {
    core.setSecret(line);
  }
  protected emit(level: LogLevel, text: string, a?: Annotation): void {
    if (level === 'debug') core.debug(text);
    else if (level === 'info') core.info(text);
    else if (level === 'warning') core.warning(text, annotation(a));
    else core.error(text, annotation(a));
  }
  protected emitGroupStart(title: string): void {
    core.startGroup(title);
  }
  protected emitGroupEnd(): void {
    core.endGroup();
  }
  protected async emitSummary(markdown: string): Promise<void> {
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(markdown, true).write();
  }
  protected emitFailed(message: string): void {
    core.setFailed(message);
  }
  /** In GITHUB_STATE, so the `post:` entry (another process) reads what the main entry kept. */
  override saveState(key: string, value: string): void {
    core.saveState(key, value);
  }
  override getState(key: string): string | undefined {
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
