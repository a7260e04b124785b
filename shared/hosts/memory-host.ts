import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Annotation, ProgressReport, RunInfo } from '../core/host';
import { HostBase, type LogLevel } from '../core/host-base';
import { kebabCase } from '../core/names';
import type { SummaryFlavor } from '../core/summary';

export interface LogEntry {
  level: 'debug' | 'info' | 'warning' | 'error' | 'group';
  message: string;
  annotation?: Annotation;
}

/** Records everything a step does, for unit tests of step logic and for running steps in-process. */
export class MemoryHost extends HostBase {
  readonly platform = 'memory' as const;
  readonly outputs: Record<string, string> = {};
  readonly logs: LogEntry[] = [];
  readonly progressReports: ProgressReport[] = [];
  summary = '';
  failure?: string;
  readonly workspace: string;
  readonly run: RunInfo;
  readonly env: NodeJS.ProcessEnv;

  readonly summaryFlavor: SummaryFlavor;

  constructor(
    private readonly inputs: Record<string, string | number | boolean> = {},
    options: { workspace?: string; run?: Partial<RunInfo>; env?: NodeJS.ProcessEnv; summaryFlavor?: SummaryFlavor } = {},
  ) {
    super();
    this.summaryFlavor = options.summaryFlavor ?? 'github';
    this.workspace = options.workspace ?? process.cwd();
    this.run = { id: 'memory-run', attempt: 1, ...options.run };
    this.env = options.env ?? {};
  }

  private temp?: string;
  /** Created on first use: most steps never need one, and tests create thousands of hosts. */
  get tempDir(): string {
    this.temp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-mem-'));
    return this.temp;
  }

  inputLabel(key: string): string {
    return kebabCase(key);
  }
  getInput(key: string): string | undefined {
    const v = this.inputs[key];
    return v === undefined || v === '' ? undefined : String(v);
  }
  setOutput(key: string, value: string): void {
    this.outputs[key] = value;
  }
  protected emit(level: LogLevel, message: string, annotation?: Annotation): void {
    this.logs.push({ level, message, annotation });
  }
  protected emitGroupStart(title: string): void {
    this.logs.push({ level: 'group', message: title });
  }
  protected emitGroupEnd(): void {}
  protected emitSummary(markdown: string): void {
    this.summary += markdown;
  }
  protected emitFailed(message: string): void {
    this.failure = message;
  }
  /** Every report, unthrottled: tests assert on the sequence a step reported. */
  override progress(report: ProgressReport): void {
    this.progressReports.push(report);
  }
  /** All log text, one entry per line, as a test would grep it. */
  get text(): string {
    return this.logs.map((l) => l.message).join('\n');
  }
}
