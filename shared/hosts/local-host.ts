import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Annotation, RunInfo } from '../core/host';
import { HostBase, type LogLevel } from '../core/host-base';
import { kebabCase } from '../core/names';
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
export class LocalHost extends HostBase {
  readonly platform = 'local' as const;
  readonly outputs: Record<string, string> = {};
  readonly workspace: string;
  readonly run: RunInfo;
  readonly env: NodeJS.ProcessEnv;
  failure?: string;
  private readonly write: (line: string) => void;
  private depth = 0;

  constructor(private readonly options: LocalHostOptions) {
    super(2000);
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

  private print(prefix: string, text: string): void {
    const indent = '  '.repeat(this.depth);
    for (const line of text.split('\n')) this.write(`${indent}${prefix}${line}`);
  }

  protected emit(level: LogLevel, text: string, a?: Annotation): void {
    if (level === 'debug') {
      if (this.options.verbose) this.print('debug: ', text);
    } else this.print(level === 'info' ? '' : `${level}${where(a)}: `, text);
  }
  protected emitGroupStart(title: string): void {
    this.print('▸ ', title);
    this.depth++;
  }
  protected emitGroupEnd(): void {
    this.depth = Math.max(0, this.depth - 1);
  }
  get summaryFlavor(): SummaryFlavor {
    return this.options.summaryFlavor ?? 'github';
  }

  protected emitSummary(markdown: string, summary?: Summary): void {
    if (this.options.summaryFile) fs.appendFileSync(this.options.summaryFile, markdown + '\n');
    for (const [flavor, file] of Object.entries(this.options.extraSummaryFiles ?? {})) {
      if (summary && file) fs.appendFileSync(file, this.mask(summary.toMarkdown(flavor as SummaryFlavor)) + '\n');
    }
  }
  protected emitFailed(message: string): void {
    this.failure = message;
    this.print('error: ', message);
  }
}

function where(a?: Annotation): string {
  if (!a?.file) return '';
  return ` ${a.file}${a.line ? `:${a.line}${a.column ? `:${a.column}` : ''}` : ''}`;
}
