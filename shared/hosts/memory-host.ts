import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Annotation, Host, ProgressReport, RunInfo } from '../core/host';
import { SecretMasker } from '../core/mask';
import { kebabCase } from '../core/names';
import type { SummaryFlavor } from '../core/summary';

export interface LogEntry {
  level: 'debug' | 'info' | 'warning' | 'error' | 'group';
  message: string;
  annotation?: Annotation;
}

/** Records everything a step does, for unit tests of step logic and for running steps in-process. */
export class MemoryHost implements Host {
  readonly platform = 'memory' as const;
  readonly outputs: Record<string, string> = {};
  readonly logs: LogEntry[] = [];
  readonly progressReports: ProgressReport[] = [];
  summary = '';
  failure?: string;
  readonly workspace: string;
  readonly run: RunInfo;
  readonly env: NodeJS.ProcessEnv;
  private readonly masker = new SecretMasker();

  readonly summaryFlavor: SummaryFlavor;

  constructor(private readonly inputs: Record<string, string | number | boolean> = {}, options: { workspace?: string; run?: Partial<RunInfo>; env?: NodeJS.ProcessEnv; summaryFlavor?: SummaryFlavor } = {}) {
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
  setSecret(value: string): void {
    this.masker.add(value);
  }
  private log(level: LogEntry['level'], message: string, annotation?: Annotation): void {
    this.logs.push({ level, message: this.masker.mask(message), annotation });
  }
  debug(m: string): void {
    this.log('debug', m);
  }
  info(m: string): void {
    this.log('info', m);
  }
  warning(m: string, a?: Annotation): void {
    this.log('warning', m, a);
  }
  error(m: string, a?: Annotation): void {
    this.log('error', m, a);
  }
  startGroup(title: string): void {
    this.log('group', title);
  }
  endGroup(): void {}
  appendSummary(markdown: string): void {
    this.summary += this.masker.mask(markdown);
  }
  progress(report: ProgressReport): void {
    this.progressReports.push(report);
  }
  private readonly state = new Map<string, string>();
  saveState(key: string, value: string): void {
    this.state.set(key, value);
  }
  getState(key: string): string | undefined {
    return this.state.get(key);
  }
  setFailed(message: string): void {
    this.failure = this.masker.mask(message);
  }
  /** All log text, one entry per line, as a test would grep it. */
  get text(): string {
    return this.logs.map((l) => l.message).join('\n');
  }
}
