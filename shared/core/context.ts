import type { Annotation, Host, Platform, ProgressReport, RunInfo, ServiceConnection } from './host';
import { Summary } from './summary';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string, annotation?: Annotation): void;
  error(message: string, annotation?: Annotation): void;
}

/** What a step's `run` gets besides its inputs. */
export interface StepContext {
  readonly platform: Platform;
  readonly log: Logger;
  /** Markdown job summary; written to the platform when the step ends, also on failure. */
  readonly summary: Summary;
  /** Runs `fn` inside a collapsible log group. */
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
  progress(report: ProgressReport): void;
  /** Masks a value in every later log line. */
  setSecret(value: string): void;
  /** How the user spells an input on this platform, for error messages. */
  inputLabel(key: string): string;
  readonly workspace: string;
  readonly tempDir: string;
  readonly run: RunInfo;
  readonly env: NodeJS.ProcessEnv;
  /** Aborted when the runner cancels the job (SIGINT/SIGTERM). */
  readonly signal: AbortSignal;
  /** Kept for the GitHub `post:` entry, which runs even when the workflow was cancelled. */
  saveState(key: string, value: string): void;
  getState(key: string): string | undefined;
  /** A fresh OIDC token for `audience` where the platform issues one (GitHub with `id-token: write`). */
  getIdToken?(audience: string): Promise<string>;
  /** An Azure DevOps service connection by id or name. */
  getServiceConnection?(id: string): ServiceConnection | undefined;
}

export function createContext(host: Host, signal: AbortSignal, summary = new Summary()): StepContext {
  return {
    platform: host.platform,
    log: {
      debug: (m) => host.debug(m),
      info: (m) => host.info(m),
      warning: (m, a) => host.warning(m, a),
      error: (m, a) => host.error(m, a),
    },
    summary,
    async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
      host.startGroup(title);
      try {
        return await fn();
      } finally {
        host.endGroup();
      }
    },
    progress: (r) => host.progress(r),
    setSecret: (v) => host.setSecret(v),
    inputLabel: (k) => host.inputLabel(k),
    workspace: host.workspace,
    get tempDir() {
      return host.tempDir;
    },
    run: host.run,
    env: host.env,
    signal,
    saveState: (k, v) => host.saveState(k, v),
    getState: (k) => host.getState(k),
    getIdToken: host.getIdToken?.bind(host),
    getServiceConnection: host.getServiceConnection?.bind(host),
  };
}

/**
 * A credential read from the environment (GITHUB_TOKEN, SYSTEM_ACCESSTOKEN, AWS_SECRET_ACCESS_KEY…), registered as
 * a secret before anything can print it: an API error that echoes the request would otherwise show it in clear.
 * Inputs of type secret are registered when parsed; this is the same rule for values that never were inputs.
 */
export function secretFromEnv(ctx: Pick<StepContext, 'env' | 'setSecret'>, name: string): string | undefined {
  const value = ctx.env[name];
  if (!value) return undefined;
  ctx.setSecret(value);
  return value;
}
