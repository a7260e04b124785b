import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Annotation, Host, ProgressReport, RunInfo } from '../core/host';
import { SecretMasker } from '../core/mask';
import { kebabCase } from '../core/names';
import { formatProgress, ProgressThrottle } from '../core/progress';
import type { Summary, SummaryFlavor } from '../core/summary';

export interface LocalHostOptions {
  /** Inputs keyed by their camelCase key. */
  inputs: Record<string, string>;
  /** Where log lines go; stderr by default, so stdout carries only results. */
  write?: (line: string) => void;
  /** Job summary file to append to, if any. */
  summaryFile?: string;
  /** How summaryFile is rendered (default github: Mermaid charts, as GitHub shows them). */
  summaryFlavor?: SummaryFlavor;
  /** Other renderings of the same summary to append, e.g. what Azure DevOps would show. */
  extraSummaryFiles?: Partial<Record<SummaryFlavor, string>>;
  workspace?: string;
  env?: NodeJS.ProcessEnv;
  verbose?: boolean;
}

/** The host behind `mlship <step>` on a laptop: inputs from flags, logs to stderr, outputs returned. */
export class LocalHost implements Host {
  readonly platform = 'local' as const;
  readonly outputs: Record<string, string> = {};
  readonly workspace: string;
  readonly run: RunInfo;
  readonly env: NodeJS.ProcessEnv;
  failure?: string;
  private readonly masker = new SecretMasker();
  private readonly throttle = new ProgressThrottle(2000);
  private readonly write: (line: string) => void;
  private depth = 0;

  constructor(private readonly options: LocalHostOptions) {
    this.write = options.write ?? ((line) => process.stderr.write(line + '\n'));
    this.workspace = path.resolve(options.workspace ?? process.cwd());
    this.env = options.env ?? process.env;
    this.run = {
      id: this.env.MLSHIP_RUN_ID ?? `local-${process.pid}-${Date.now()}`,
      attempt: Number(this.env.MLSHIP_RUN_ATTEMPT ?? 1),
      actor: this.env.USER,
    };
  }

  private temp?: string;
  /** Created on first use, so a step that needs none leaves nothing behind. */
  get tempDir(): string {
    this.temp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-'));
    return this.temp;
  }

  inputLabel(key: string): string {
    return `--${kebabCase(key)}`;
  }

  getInput(key: string): string | undefined {
    const v = this.options.inputs[key];
    return v === undefined || v === '' ? undefined : v;
  }

  setOutput(key: string, value: string): void {
    this.outputs[key] = value;
  }

  setSecret(value: string): void {
    this.masker.add(value);
  }

  private print(prefix: string, message: string): void {
    const indent = '  '.repeat(this.depth);
    for (const line of this.masker.mask(message).split('\n')) this.write(`${indent}${prefix}${line}`);
  }

  debug(message: string): void {
    if (this.options.verbose) this.print('debug: ', message);
  }
  info(message: string): void {
    this.print('', message);
  }
  warning(message: string, a?: Annotation): void {
    this.print(`warning${where(a)}: `, message);
  }
  error(message: string, a?: Annotation): void {
    this.print(`error${where(a)}: `, message);
  }
  startGroup(title: string): void {
    this.print('▸ ', title);
    this.depth++;
  }
  endGroup(): void {
    this.depth = Math.max(0, this.depth - 1);
  }
  get summaryFlavor(): SummaryFlavor {
    return this.options.summaryFlavor ?? 'github';
  }

  appendSummary(markdown: string, summary?: Summary): void {
    if (this.options.summaryFile) fs.appendFileSync(this.options.summaryFile, this.masker.mask(markdown) + '\n');
    for (const [flavor, file] of Object.entries(this.options.extraSummaryFiles ?? {})) {
      if (summary && file) fs.appendFileSync(file, this.masker.mask(summary.toMarkdown(flavor as SummaryFlavor)) + '\n');
    }
  }
  progress(report: ProgressReport): void {
    if (this.throttle.shouldPrint(report)) this.print('', formatProgress(report));
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
    this.print('error: ', message);
  }
}

function where(a?: Annotation): string {
  if (!a?.file) return '';
  return ` ${a.file}${a.line ? `:${a.line}${a.column ? `:${a.column}` : ''}` : ''}`;
}
