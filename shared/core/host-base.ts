import type { Annotation, Host, Platform, ProgressReport, RunInfo } from './host';
import { SecretMasker } from './mask';
import { formatProgress, ProgressThrottle } from './progress';
import type { Summary } from './summary';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

/**
 * What every host does the same way, so each platform adapter implements only its platform calls: every text
 * that leaves the process is masked here (also where the platform masks too: a local `act` run, a summary
 * file); a multi-line secret (a PEM key) is registered line by line with the platform, since runners match
 * masks per line; progress is throttled; state lives in the process unless the platform keeps it.
 */
export abstract class HostBase implements Host {
  abstract readonly platform: Platform;
  abstract readonly workspace: string;
  abstract readonly tempDir: string;
  abstract readonly env: NodeJS.ProcessEnv;
  abstract readonly run: RunInfo;
  protected readonly masker = new SecretMasker();
  private readonly throttle: ProgressThrottle;
  private readonly state = new Map<string, string>();

  /** `progressIntervalMs`: least time between two progress lines of one task (0: every report). */
  constructor(progressIntervalMs?: number) {
    this.throttle = new ProgressThrottle(progressIntervalMs);
  }

  abstract inputLabel(key: string): string;
  abstract getInput(key: string, options?: { secret?: boolean }): string | undefined;
  abstract setOutput(key: string, value: string): void;

  // --- the platform calls; text arrives masked ----------------------------------------------------

  protected abstract emit(level: LogLevel, text: string, annotation?: Annotation): void;
  protected abstract emitGroupStart(title: string): void;
  protected abstract emitGroupEnd(): void;
  /** `summary`: the whole summary, for hosts that also keep other renderings of it (mask what you write). */
  protected abstract emitSummary(markdown: string, summary?: Summary): void | Promise<void>;
  protected abstract emitFailed(message: string): void;
  /** Registers one line of a secret with the platform's own masking; nothing to do where there is none. */
  protected registerSecretLine(_line: string): void {}
  /** A progress line that passed the throttle; by default an info line. */
  protected emitProgress(report: ProgressReport, line: string): void {
    this.emit('info', line);
  }

  // --- the shared behaviour -----------------------------------------------------------------------

  setSecret(value: string): void {
    this.masker.add(value);
    for (const line of value.split(/\r?\n/)) if (line.trim()) this.registerSecretLine(line.trim());
  }
  protected mask(text: string): string {
    return this.masker.mask(text);
  }
  debug(message: string): void {
    this.emit('debug', this.mask(message));
  }
  info(message: string): void {
    this.emit('info', this.mask(message));
  }
  warning(message: string, annotation?: Annotation): void {
    this.emit('warning', this.mask(message), annotation);
  }
  error(message: string, annotation?: Annotation): void {
    this.emit('error', this.mask(message), annotation);
  }
  startGroup(title: string): void {
    this.emitGroupStart(this.mask(title));
  }
  endGroup(): void {
    this.emitGroupEnd();
  }
  appendSummary(markdown: string, summary?: Summary): void | Promise<void> {
    return this.emitSummary(this.mask(markdown), summary);
  }
  progress(report: ProgressReport): void {
    if (this.throttle.shouldPrint(report))
      this.emitProgress({ ...report, label: this.mask(report.label) }, this.mask(formatProgress(report)));
  }
  setFailed(message: string): void {
    this.emitFailed(this.mask(message));
  }
  saveState(key: string, value: string): void {
    this.state.set(key, value);
  }
  getState(key: string): string | undefined {
    return this.state.get(key);
  }
}
