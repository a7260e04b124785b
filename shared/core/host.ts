import type { Summary, SummaryFlavor } from './summary';
/**
 * Everything platform-specific a step may touch. GitHub Actions, Azure DevOps, the local CLI and the
 * in-memory test host each implement it; step logic only ever sees a `StepContext` built over it.
 */
export type Platform = 'github' | 'azure' | 'local' | 'memory';

export interface Annotation {
  file?: string;
  line?: number;
  column?: number;
  title?: string;
}

export interface RunInfo {
  /** Stable across re-runs of the same pipeline run (GITHUB_RUN_ID, Build.BuildId). */
  id: string;
  /** 1 for the first attempt, incremented by "re-run". */
  attempt: number;
  repository?: string;
  commit?: string;
  ref?: string;
  /** Who triggered the run. */
  actor?: string;
  /** Link to the run in the platform's UI. */
  url?: string;
  /** Workflow / pipeline name and the job or step id, for idempotency keys. */
  workflow?: string;
  job?: string;
}

export interface ProgressReport {
  /** Short label of the work, e.g. "upload model.onnx". */
  label: string;
  done: number;
  total?: number;
  /** Unit of done/total: "bytes" is printed in MB. */
  unit?: 'bytes' | 'items';
  message?: string;
}

export interface Host {
  readonly platform: Platform;
  /** How the user spells an input on this platform (`ground-truth` on GitHub, `groundTruth` on Azure). */
  inputLabel(key: string): string;
  /**
   * Raw input value, or undefined when not given (an empty string counts as not given). `secret` inputs must
   * be read without echoing them to any debug log.
   */
  getInput(key: string, options?: { secret?: boolean }): string | undefined;
  setOutput(key: string, value: string): void;
  setSecret(value: string): void;
  debug(message: string): void;
  info(message: string): void;
  warning(message: string, annotation?: Annotation): void;
  error(message: string, annotation?: Annotation): void;
  startGroup(title: string): void;
  endGroup(): void;
  /**
   * Appends markdown to the job summary, rendered for `summaryFlavor` (GitHub: Mermaid charts; Azure DevOps:
   * tables; the local and memory hosts: GitHub's unless told otherwise). `summary` is the builder it came from,
   * for hosts that keep other renderings too.
   */
  appendSummary(markdown: string, summary?: Summary): void | Promise<void>;
  /** How this host's summaries are read; the runtime derives it from `platform` when absent. */
  readonly summaryFlavor?: SummaryFlavor;
  progress(report: ProgressReport): void;
  /** The step failed; hosts print it and set the exit status their runner expects. */
  setFailed(message: string): void;
  readonly workspace: string;
  readonly tempDir: string;
  readonly run: RunInfo;
  readonly env: NodeJS.ProcessEnv;
  /** Values kept from the main entry for the `post:` entry (GitHub saveState); in-process elsewhere. */
  saveState(key: string, value: string): void;
  getState(key: string): string | undefined;
  /**
   * A fresh OIDC token from the CI platform for `audience` (GitHub: core.getIDToken), or undefined where the
   * platform has none. Called again whenever a token may have expired: long waits outlive one token.
   */
  getIdToken?(audience: string): Promise<string>;
  /** An Azure DevOps service connection (endpoint) by id or name; undefined on other platforms. */
  getServiceConnection?(id: string): ServiceConnection | undefined;
}

export interface ServiceConnection {
  id: string;
  url?: string;
  scheme: string;
  /** Authorization parameters (tenantid, serviceprincipalid, …); values are secrets and already masked. */
  parameters: Record<string, string>;
  /** Connection data (subscriptionid, workspace, …). */
  data: Record<string, string>;
}

/**
 * The CI system a process runs under, from the variables the runners set in every job (GitHub: GITHUB_ACTIONS=true;
 * Azure Pipelines: TF_BUILD=True), whatever host adapter runs the step: the CLI run inside a pipeline is still a
 * pipeline run, and must not accept what only a workstation may (approvals typed on the command line).
 */
export function ciPlatformOf(env: NodeJS.ProcessEnv): 'github' | 'azure' | undefined {
  if (env.GITHUB_ACTIONS?.toLowerCase() === 'true') return 'github';
  if (env.TF_BUILD?.toLowerCase() === 'true') return 'azure';
  return undefined;
}
